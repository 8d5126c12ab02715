import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "experiments/test/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
