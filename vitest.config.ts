import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "experiments/test/**/*.test.ts"],
    testTimeout: 60_000,
    // vitest's default for `run` is one worker fewer than the cores: a single worker on the
    // 2-core machines CI runs on, where much of a file's time is spent waiting on spawned CLIs,
    // worker pools starting and loopback servers rather than computing. Two workers took the
    // suite from 221 s to 154 s on an idle 2-core machine (CI whole: 5m30s -> 3m34s).
    maxWorkers: availableParallelism(),
  },
});
