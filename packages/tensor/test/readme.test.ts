// Runs the README's ```ts example and checks every `// -> expected` comment against what
// the console.log on that line printed, so the documented example is proven to run.
import { afterAll, describe, expect, it, vi } from "vitest";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { format } from "node:util";

const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
const tmp = fileURLToPath(new URL(`./.readme-example-${process.pid}.tmp.ts`, import.meta.url));

afterAll(() => rmSync(tmp, { force: true }));

describe("README example", () => {
  it("has exactly one ts block, importing the package", () => {
    expect(blocks.length).toBe(1);
    expect(blocks[0]).toContain('from "@tessera/tensor"');
  });

  it("runs and prints what its comments say", async () => {
    const code = blocks[0]!;
    const expected = code
      .split("\n")
      .filter((l) => l.includes("console.log"))
      .map((l) => {
        const m = /\/\/ -> (.*)$/.exec(l);
        if (!m) throw new Error(`README example: console.log line without a "// ->" comment: ${l}`);
        return m[1]!.trim();
      });
    // the test file lives beside src/, so point the package import at the sources
    writeFileSync(tmp, code.replace('"@tessera/tensor"', '"../src/index.ts"'));
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
  });
});
