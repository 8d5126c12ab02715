// `pnpm start` (the README's first command) end to end on a tiny generated MNIST, as a child
// process: it must finish, print its table, write its outputs, agree with itself when run as
// BSR, and resume from its own run directory.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "tessera-start-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** IDX files (big-endian header, uint8 body) of `count` 28x28 images: class c is a bright band at row 2c. */
function writeSplit(dir: string, prefix: string, count: number): void {
  const images = new Uint8Array(16 + count * 784);
  const labels = new Uint8Array(8 + count);
  const iv = new DataView(images.buffer);
  iv.setUint32(0, 0x803);
  iv.setUint32(4, count);
  iv.setUint32(8, 28);
  iv.setUint32(12, 28);
  const lv = new DataView(labels.buffer);
  lv.setUint32(0, 0x801);
  lv.setUint32(4, count);
  for (let i = 0; i < count; i++) {
    const c = i % 10;
    labels[8 + i] = c;
    for (let x = 0; x < 28; x++) {
      images[16 + i * 784 + (2 * c + 4) * 28 + x] = 255;
      images[16 + i * 784 + ((i * 7 + x) % 784)] = 60; // a little per-image noise
    }
  }
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), images);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), labels);
}

const data = join(tmp, "data");
mkdirSync(data);
writeSplit(data, "train", 400);
writeSplit(data, "t10k", 200);

function start(out: string) {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repoRoot, "experiments", "start.ts"),
      ...["--data-dir", data, "--epochs", "1", "--rounds", "2", "--ft-epochs", "1"],
      ...["--threads", "1", "--out", out],
    ],
    { cwd: repoRoot, encoding: "utf8", timeout: 150_000, env: { ...process.env, DEBUG: "" } },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("pnpm start", () => {
  it("trains, prunes two rounds, runs as BSR, prints the table and saves its outputs; a re-run resumes", () => {
    const out = join(tmp, "out");
    const first = start(out);
    expect(first.status, first.stderr).toBe(0);
    // Two rounds of the paper's rule: 20% then 20% of the hidden tiles, 10% twice of fc3's.
    expect(first.stdout).toMatch(/\| weight density \| 64\.\d% \([\d,]+ of 266,200 weights\) \|/);
    expect(first.stdout).toContain("| inference, batch 128, 1 thread |");
    expect(first.stdout).toMatch(
      /\| inference plans, batch 128, 1 thread \| dense [\d.]+ ms, BSR [\d.]+ ms \([\d.]+x\) \|/,
    );
    for (const f of [
      "results.json",
      "summary.md",
      "pruned.safetensors",
      "pruned-bsr.safetensors",
      "accuracy-vs-density.svg",
    ])
      expect(existsSync(join(out, f)), f).toBe(true);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
      pruned: { testAccuracy: number; bsrTestAccuracy: number; density: number };
    };
    // The BSR model is the pruned model: the same predictions on every test image.
    expect(results.pruned.bsrTestAccuracy).toBe(results.pruned.testAccuracy);
    expect(results.pruned.density).toBeCloseTo(0.641, 2);

    // The second run finds the dense run and both rounds finished and recomputes nothing.
    const again = start(out);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("fine-tuning");
    const tableRows = (s: string) =>
      s.split("\n").filter((l) => l.startsWith("|") && /accuracy|density|storage/.test(l));
    expect(tableRows(again.stdout)).toEqual(tableRows(first.stdout));
  }, 300_000); // two child runs of ~8 s each idle; minutes when the 2 cores are shared
});
