import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DATASET_FILES, loadDataset } from "../src/index.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const repoRoot = here("../../../");

describe("documentation stays true", () => {
  it("datasets/README.md mirrors the checksum table in src/checksums.ts, and nothing else", () => {
    const readme = readFileSync(here("../../../datasets/README.md"), "utf8");
    const rows = [
      ...readme.matchAll(
        /^\|\s*(mnist|fashion-mnist)\s*\|\s*([\w-]+)\s*\|\s*(\d+)\s*\|\s*([0-9a-f]{64})\s*\|$/gm,
      ),
    ].map((m) => m.slice(1).join(" "));
    const want = Object.entries(DATASET_FILES).flatMap(([name, files]) =>
      files.map((f) => `${name} ${f.name} ${f.bytes} ${f.sha256}`),
    );
    expect(rows).toEqual(want);
    const allDigests = new Set(readme.match(/\b[0-9a-f]{64}\b/g));
    expect([...allDigests].sort()).toEqual(
      Object.values(DATASET_FILES)
        .flatMap((fs) => fs.map((f) => f.sha256))
        .sort(),
    );
  });

  it("the README example is scripts/readme-example.ts verbatim", () => {
    const readme = readFileSync(here("../README.md"), "utf8");
    const example = readFileSync(here("../scripts/readme-example.ts"), "utf8");
    expect(readme).toContain("```ts\n" + example + "```");
  });

  let present = true;
  try {
    loadDataset("mnist", { split: "train" });
  } catch (e) {
    present = false;
    console.log(`README example run skipped: MNIST not available: ${(e as Error).message}`);
  }
  it.skipIf(!present)("the README example runs and prints what the README shows", () => {
    const r = spawnSync(
      process.execPath,
      ["--import", "tsx", here("../scripts/readme-example.ts")],
      { cwd: repoRoot, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const readme = readFileSync(here("../README.md"), "utf8");
    expect(readme).toContain("```text\n" + r.stdout + "```");
  });
});
