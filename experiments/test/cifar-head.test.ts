import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CIFAR10_FILES, writeCifar10Batch } from "@tessera/mnist-dataset-loader";
import { Variable, noGrad } from "@tessera/autograd";
import { evaluate, loadModel } from "@tessera/nn";
import { BsrLinear, loadBsrModel, loadPruned } from "@tessera/pruning";
import { Generator, Tensor } from "@tessera/tensor";
import {
  CIFAR_HEAD_FILES,
  cifarHeadModel,
  cifarHeadTable,
  headRoundFile,
  runCifarHead,
  stateDigest,
  trunkFeatures,
  type CifarHeadConfig,
} from "../src/cifar-head.ts";
import { loadSplitsAsync } from "../src/data.ts";

const root = mkdtempSync(join(tmpdir(), "tessera-cifar-head-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * A tiny CIFAR-10 in the official binary format (files named as the real ones): the label is
 * which of ten horizontal bands of the red channel is bright, the rest noise.
 */
function writeTinyCifar(dir: string, perBatch: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  const g = new Generator(seed);
  for (const name of [...CIFAR10_FILES.train, ...CIFAR10_FILES.test]) {
    const labels = new Uint8Array(perBatch);
    const images = new Uint8Array(perBatch * 3072);
    for (let i = 0; i < perBatch; i++) {
      const label = g.int(0, 10);
      labels[i] = label;
      for (let p = 0; p < 3072; p++) {
        const row = Math.floor((p % 1024) / 32);
        const bright = p < 1024 && Math.floor(row / 3.2) === label;
        images[i * 3072 + p] = Math.floor(g.nextFloat() * 100) + (bright ? 150 : 0);
      }
    }
    writeFileSync(join(dir, name), writeCifar10Batch({ images, labels }));
  }
}

const dataDir = join(root, "cifar");
writeTinyCifar(dataDir, 24, 7); // 5 x 24 = 120 train, 24 test images
const splits = await loadSplitsAsync("cifar-10", { dir: dataDir });

const config = (over: Partial<CifarHeadConfig["prune"]> = {}): CifarHeadConfig => ({
  // conv widths 2, 2, 32: a cheap trunk that still ends in 32 x 4 x 4 = 512 features.
  widths: [2, 2, 32],
  hidden: 300,
  seed: 3,
  trainLimit: 0,
  dense: { epochs: 2, lr: 1e-3, batchSize: 32 },
  prune: {
    blockSize: 4,
    mode: "rounds",
    rounds: 16,
    rates: { hidden: 0.2, output: 0.1 },
    targetDensity: 0.03,
    ftEpochs: 1,
    ftLr: 1e-3,
    batchSize: 32,
    ...over,
  },
});

/** Alive tiles after `rounds` rounds of removing round(rate * alive). */
function aliveAfter(tiles: number, rate: number, rounds: number): number {
  let alive = tiles;
  for (let r = 0; r < rounds; r++) alive -= Math.round(rate * alive);
  return alive;
}

describe("runCifarHead on a tiny CIFAR-10 in the binary format", () => {
  const dir = join(root, "run");
  const c = config();
  const result = runCifarHead(c, { train: splits.train, test: splits.test, dir });

  it("prunes the head by the paper's rule to ~3% and reports it", () => {
    expect(result.trainExamples).toBe(120);
    expect(result.testExamples).toBe(24);
    expect(result.rounds.map((r) => r.round)).toEqual([...Array(16).keys()].map((k) => k + 1));
    // fc1 [300, 512] is 75 x 128 whole 4x4 tiles: its density is exactly the alive tiles'.
    const fc1 = aliveAfter(75 * 128, 0.2, 16) / (75 * 128);
    expect(result.rounds[15]!.layerDensity["fc1.weight"]).toBeCloseTo(fc1, 12);
    expect(result.pruned.density).toBeGreaterThan(0.025);
    expect(result.pruned.density).toBeLessThan(0.035);
    expect(result.pruned.headWeights).toBe(512 * 300 + 300 * 10);
    expect(result.pruned.keptWeights).toBe(Math.round(result.pruned.density * 156600));
    expect(result.pruned.bytes.bsr).toBeLessThan(result.pruned.bytes.dense / 20);
    const densities = result.rounds.map((r) => r.density);
    for (let k = 1; k < 16; k++) expect(densities[k]).toBeLessThan(densities[k - 1]!);
    // The saved masks say the same.
    const m = cifarHeadModel(c);
    const { state } = loadPruned(join(dir, headRoundFile(16)), m.head);
    expect(state!.density()).toBe(result.pruned.density);
    const table = cifarHeadTable(c, result);
    expect(table).toContain("90.73%");
    expect(table).toContain("90.37%");
    expect(table).toMatch(/trunk differs/);
  });

  it("leaves the trunk exactly as dense training left it", () => {
    expect(result.trunkDigest.unchanged).toBe(true);
    const m = cifarHeadModel(c);
    loadModel(join(dir, CIFAR_HEAD_FILES.dense), m.model);
    expect(stateDigest(m.trunk)).toBe(result.trunkDigest.afterPruning);
    // And dense training did change it (the digest can tell trunks apart).
    expect(stateDigest(cifarHeadModel(c).trunk)).not.toBe(result.trunkDigest.afterDense);
  });

  it("the stored features are the trunk's, and the head on them is the full model", () => {
    const m = cifarHeadModel(c);
    loadModel(join(dir, CIFAR_HEAD_FILES.dense), m.model);
    const f = trunkFeatures(m.trunk, splits.test);
    expect(f.features).toBe(512);
    const full = evaluate(m.model, splits.test).accuracy;
    expect(result.dense.testAccuracy).toBe(full);
  });

  it("runs the head as BSR with the masked dense head's outputs", () => {
    expect(result.bsr.maxAbsDiff).toBeLessThan(1e-5);
    expect(result.bsr.testAccuracy).toBe(result.pruned.testAccuracy);
    expect(result.bsr.layers.map((l) => [l.name, l.blockShape])).toEqual([
      ["fc1", [4, 4]],
      ["fc2", [4, 4]],
    ]);
    // Independently: the exported BSR file against the last round's masked dense head.
    const dense = cifarHeadModel(c);
    loadModel(join(dir, CIFAR_HEAD_FILES.dense), dense.model);
    loadPruned(join(dir, headRoundFile(16)), dense.head);
    const bsr = cifarHeadModel(c);
    loadModel(join(dir, CIFAR_HEAD_FILES.dense), bsr.model);
    loadBsrModel(join(dir, CIFAR_HEAD_FILES.bsr), bsr.head);
    expect(bsr.head.getSubmodule("fc1")).toBeInstanceOf(BsrLinear);
    const x = new Tensor(trunkFeatures(dense.trunk, splits.test).x, [24, 512]);
    const a = noGrad(() => dense.head.eval().forward(new Variable(x)).data.data);
    const b = noGrad(() => bsr.head.eval().forward(new Variable(x)).data.data);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    expect(diff).toBeLessThan(1e-5);
  });

  it("resumes: a second run reuses every stage; another config is refused", () => {
    const again = runCifarHead(c, { train: splits.train, test: splits.test, dir });
    expect({ ...again, bsr: { ...again.bsr, seconds: 0, speedup: 0 } }).toEqual({
      ...result,
      bsr: { ...result.bsr, seconds: 0, speedup: 0 },
    });
    expect(() =>
      runCifarHead(config({ rounds: 3 }), { train: splits.train, test: splits.test, dir }),
    ).toThrow(/holds a run of another config/);
  });

  it("resumes mid-pruning with the numbers of the uninterrupted run", () => {
    const d2 = join(root, "killed");
    runCifarHead(c, { train: splits.train, test: splits.test, dir: d2 });
    // "Killed" after round 5: later rounds, the BSR export and the result are gone.
    for (let r = 6; r <= 16; r++) rmSync(join(d2, headRoundFile(r)));
    rmSync(join(d2, CIFAR_HEAD_FILES.result));
    rmSync(join(d2, CIFAR_HEAD_FILES.bsr));
    const resumed = runCifarHead(c, { train: splits.train, test: splits.test, dir: d2 });
    expect(resumed.rounds).toEqual(result.rounds);
    expect(existsSync(join(d2, CIFAR_HEAD_FILES.bsr))).toBe(true);
  });

  it("a run killed after dense epoch 1 resumes from its checkpoint with the same trunk", () => {
    const short = config({ rounds: 1 }); // same dense stage, cheaper pruning
    const d3 = join(root, "killed-dense");
    const kill = (text: string) => {
      // Called after epoch 2's summary and before its checkpoint: epoch 1's is on disk.
      if (text.startsWith("dense: epoch 2/")) throw new Error("killed");
    };
    expect(() =>
      runCifarHead(short, { train: splits.train, test: splits.test, dir: d3, progress: kill }),
    ).toThrow("killed");
    expect(existsSync(join(d3, CIFAR_HEAD_FILES.denseCheckpoint))).toBe(true);
    expect(existsSync(join(d3, CIFAR_HEAD_FILES.dense))).toBe(false);
    const lines: string[] = [];
    const r = runCifarHead(short, {
      train: splits.train,
      test: splits.test,
      dir: d3,
      progress: (t) => lines.push(t),
    });
    expect(lines[0]).toBe("dense: resuming after epoch 1");
    expect(r.trunkDigest.afterDense).toBe(result.trunkDigest.afterDense);
    expect(r.dense.testAccuracy).toBe(result.dense.testAccuracy);
    const noTime = (h: typeof r.dense.history) => h.map(({ seconds: _s, ...e }) => e);
    expect(noTime(r.dense.history)).toEqual(noTime(result.dense.history));
  });

  it("one-shot mode prunes each head layer to the target in one cut", () => {
    const oneShot = config({ mode: "one-shot", targetDensity: 0.03 });
    const r = runCifarHead(oneShot, {
      train: splits.train,
      test: splits.test,
      dir: join(root, "one-shot"),
    });
    expect(r.rounds).toHaveLength(1);
    // At least the target, and above it by less than one tile (16 weights) per layer.
    for (const [name, size] of [
      ["fc1.weight", 153600],
      ["fc2.weight", 3000],
    ] as const) {
      const d = r.rounds[0]!.layerDensity[name]!;
      expect(d).toBeGreaterThanOrEqual(0.03 - 1e-12);
      expect(d * size - 0.03 * size).toBeLessThan(16 + 1);
    }
  });
});
