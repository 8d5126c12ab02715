// The README's example is scripts/readme-example.ts verbatim; this runs it and checks every
// `// -> expected` comment against what the console.log on that line printed.
import { afterAll, describe, expect, it, vi } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { format } from "node:util";

const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
const script = readFileSync(
  fileURLToPath(new URL("../scripts/readme-example.ts", import.meta.url)),
  "utf8",
);
// The block under "## Example" (later sections may hold their own blocks).
const section = /\n## Example\n([\s\S]*?)(?=\n## |$)/.exec(readme)?.[1] ?? "";
const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
const tmp = fileURLToPath(new URL(`./.readme-example-${process.pid}.tmp.ts`, import.meta.url));

afterAll(() => rmSync(tmp, { force: true }));

describe("README example", () => {
  it("is scripts/readme-example.ts verbatim", () => {
    expect(block).toBe(script);
  });

  it("runs and prints what its comments say", async () => {
    const expected = script
      .split("\n")
      .filter((l) => l.includes("console.log"))
      .map((l) => {
        const m = /\/\/ -> (.*)$/.exec(l);
        if (!m) throw new Error(`README example: console.log line without a "// ->" comment: ${l}`);
        return m[1]!.trim();
      });
    // The test lives beside src/: point the package import at the sources.
    writeFileSync(tmp, script.replace('"@tessera/pruning"', '"../src/index.ts"'));
    const printed: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      printed.push(format(...args));
    });
    try {
      await import(/* @vite-ignore */ tmp);
    } finally {
      spy.mockRestore();
    }
    expect(printed).toEqual(expected);
  }, 60_000);
});
