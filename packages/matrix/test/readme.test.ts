import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const example = fileURLToPath(new URL("./fixtures/readme-example.ts", import.meta.url));

describe("README example", () => {
  it("is the README's code block verbatim", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toContain("```ts\n" + readFileSync(example, "utf8").trimEnd() + "\n```");
  });

  it("runs and prints what its comments say", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", example], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["3 0.333 76", "3 3 0 0 4 4 0 0 0 0 3 3", "true"]);
    expect(r.status).toBe(0);
  });
});

const chainExample = fileURLToPath(new URL("./fixtures/readme-chain.ts", import.meta.url));

describe("README example of BsrChain", () => {
  it("is the README's code block verbatim", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toContain("```ts\n" + readFileSync(chainExample, "utf8").trimEnd() + "\n```");
  });

  it("runs and gives the layer-by-layer bits", () => {
    const r = spawnSync(process.execPath, ["--import", "tsx", chainExample], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("true -0.15625 0.15625");
    expect(r.status).toBe(0);
  });
});
