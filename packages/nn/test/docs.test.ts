import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../", import.meta.url));

describe("README example", () => {
  it("is scripts/readme-example.ts verbatim", () => {
    const readme = readFileSync(`${root}README.md`, "utf8");
    const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(`${root}scripts/readme-example.ts`, "utf8"));
  });
  it("runs and prints the lines the README shows", () => {
    const out = execFileSync(
      process.execPath,
      ["--import", "tsx", `${root}scripts/readme-example.ts`],
      {
        cwd: root,
        encoding: "utf8",
      },
    );
    const lines = out.trim().split("\n");
    // Everything but the timing column is fixed by the seeds.
    const readme = readFileSync(`${root}README.md`, "utf8");
    const shown = /```text\n([\s\S]*?)```/.exec(readme)![1]!.trim().split("\n");
    const strip = (l: string) => l.replace(/\s+\d+\.\d s$/, "");
    expect(strip(lines[0]!)).toBe(strip(shown[0]!));
    expect(strip(lines[1]!)).toBe(strip(shown[1]!));
    expect(lines.slice(-3).map(strip)).toEqual(shown.slice(-3).map(strip));
  });
});
