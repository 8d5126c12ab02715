// The README's code blocks are the fixtures verbatim, and each runs and prints what it says.
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const examples = [
  {
    name: "README example",
    fixture: "readme-example.ts",
    prints: ["3 0.333 76", "3 3 0 0 4 4 0 0 0 0 3 3", "true"],
  },
  // The chain's output equals the layers run one by one, bit for bit.
  {
    name: "README example of BsrChain",
    fixture: "readme-chain.ts",
    prints: ["true -0.15625 0.15625"],
  },
];

for (const { name, fixture, prints } of examples) {
  const path = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url));
  describe(name, () => {
    it("is the README's code block verbatim", () => {
      const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
      expect(readme).toContain("```ts\n" + readFileSync(path, "utf8").trimEnd() + "\n```");
    });

    it("runs and prints what its comments say", () => {
      const r = spawnSync(process.execPath, ["--import", "tsx", path], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.stderr).toBe("");
      expect(r.stdout.trim().split("\n")).toEqual(prints);
      expect(r.status).toBe(0);
    });
  });
}
