// The KEP experiment end to end on a tiny generated dataset: one point's pipeline (masks at
// equal kept counts, the penalty phase, the cut, fine-tuning, the KEP form and its file), a
// point killed mid-penalty and mid-fine-tuning resuming to the uninterrupted result, and
// `pnpm kep-sweep` / `pnpm kep-report` as child processes on MNIST-format files (two shards,
// a re-run that skips finished points, the report's tables).
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { writeIdxFile } from "@tessera/mnist-dataset-loader";
import { arrayDataset, loadSafetensors, type Dataset } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { BufferArena } from "@tessera/autograd";
import type { KepConv2d } from "@tessera/pruning";
import { loadKepModel } from "@tessera/pruning";
import {
  denseKepModel,
  kepCnn,
  kepModel,
  runKepPoint,
  type KepDenseConfig,
  type KepPointConfig,
  type KepPointResult,
} from "../src/kep-run.ts";
import { denseDirOf, kepModelSpecs, kepPointKey, kepSweepConfigs } from "../src/kep-sweep.ts";
import { kepCells, kepTargets } from "../src/kep-report.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "tessera-kep-sweep-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** count side x side images whose label (0..7) is which horizontal band is bright. */
function bandImages(count: number, side: number, seed: number) {
  const g = new Generator(seed);
  const images = new Uint8Array(count * side * side);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = g.int(0, 8);
    labels[i] = label;
    for (let p = 0; p < side * side; p++) {
      const band = Math.floor((Math.floor(p / side) * 8) / side);
      images[i * side * side + p] = Math.floor(g.nextFloat() * 100) + (band === label ? 150 : 0);
    }
  }
  return { images, labels };
}

function dataset(count: number, seed: number, side = 8): Dataset {
  const { images, labels } = bandImages(count, side, seed);
  return arrayDataset(images, labels, [1, side, side], { mean: 0.5, std: 0.5 });
}

const train = dataset(96, 1);
const test = dataset(48, 2);
const widths = { channels: [3, 4, 4, 6] as [number, number, number, number], hidden: 8 };
const denseConfig: KepDenseConfig = {
  dataset: "bands",
  widths,
  epochs: 3,
  lr: 1e-2,
  batchSize: 16,
  seed: 1,
};

function point(over: Partial<KepPointConfig> = {}): KepPointConfig {
  return {
    dataset: "bands",
    seed: 1,
    method: "kep-free",
    n: 3,
    score: "magnitude",
    taylorBatches: 2,
    librarySize: 4,
    planeFraction: 0,
    layers: ["conv2.weight", "conv3.weight", "conv4.weight"],
    penalty: { lambda: 1, power: 1 },
    penaltyEpochs: 2,
    fineTuneEpochs: 2,
    lr: 5e-3,
    batchSize: 16,
    dense: denseConfig,
    ...over,
  };
}

const denseDir = join(root, "dense");
const dense = () => denseKepModel(denseConfig, { train, test, dir: denseDir });
const io = (scratchDir: string, progress?: (t: string) => void) => {
  mkdirSync(scratchDir, { recursive: true });
  return {
    train,
    test,
    dense,
    freshModel: () => kepCnn(widths, train.inputShape, 0),
    scratchDir,
    progress,
  };
};

/** The result without wall times (the only fields a resumed run may change). */
function timeless(r: KepPointResult) {
  return { ...r, seconds: 0, epochs: r.epochs.map((e) => ({ ...e, seconds: 0 })) };
}

describe("runKepPoint", () => {
  it("waits while another live process holds the dense model's lock", () => {
    const dir = join(root, "dense-wait");
    mkdirSync(dir, { recursive: true });
    // The parent process (vitest's runner) is alive and is not this process.
    const holder = { pid: process.ppid, host: hostname(), started: "now", command: "other shard" };
    writeFileSync(join(dir, ".lock"), JSON.stringify(holder));
    const lines: string[] = [];
    const r = denseKepModel(denseConfig, {
      train,
      test,
      dir,
      pollMs: 10,
      progress: (t) => {
        lines.push(t);
        // The other shard finishes after the second look.
        if (lines.length === 2) rmSync(join(dir, ".lock"));
      },
    });
    expect(lines[0]).toMatch(
      new RegExp(
        `^waiting for the dense model: denseKepModel: ${dir} is in use by pid ${process.ppid}`,
      ),
    );
    expect(lines.filter((l) => l.startsWith("waiting")).length).toBe(2);
    expect(r.accuracy).toBe(dense().accuracy);
  });

  it("trains the dense model once and loads it after", () => {
    const a = dense();
    expect(existsSync(join(denseDir, "dense.safetensors"))).toBe(true);
    const b = dense();
    expect(b.accuracy).toBe(a.accuracy);
    expect(b.model.getParameter("conv2.weight").data.data).toEqual(
      a.model.getParameter("conv2.weight").data.data,
    );
  });

  it("keeps the same weights per layer for every method; KEP points run as KepConv2d and reload", () => {
    const results = new Map<string, KepPointResult>();
    for (const method of ["kep-free", "kep-pattern", "magnitude", "filter"] as const) {
      const c = point({ method, penalty: null });
      results.set(method, runKepPoint(c, io(join(root, "eq", method))));
    }
    const free = results.get("kep-free")!;
    // conv2 4x3 planes, conv3 4x4, conv4 6x4: n = 3 of 9 kept in each plane.
    expect(free.layerKept).toEqual({
      "conv2.weight": 36,
      "conv3.weight": 48,
      "conv4.weight": 72,
    });
    expect(results.get("kep-pattern")!.layerKept).toEqual(free.layerKept);
    expect(results.get("magnitude")!.layerKept).toEqual(free.layerKept);
    // Filter pruning keeps whole filters (27, 36, 36 weights each): rounded up.
    expect(results.get("filter")!.layerKept).toEqual({
      "conv2.weight": 54,
      "conv3.weight": 72,
      "conv4.weight": 72,
    });
    for (const m of ["kep-free", "kep-pattern"]) {
      const r = results.get(m)!;
      expect(r.kepMaxDiff!).toBeLessThan(1e-4);
      expect(r.reloadedMaxDiff!).toBeLessThan(1e-4);
      expect(r.kepAccuracy).toBeCloseTo(r.accuracyFineTuned, 1);
      expect(r.storage!.map((s) => s.name)).toEqual(["conv2", "conv3", "conv4"]);
      expect(r.storage!.reduce((a, s) => a + s.nnz, 0)).toBe(156);
    }
    expect(results.get("kep-free")!.storage![0]!.indexBytes).toBe(Math.ceil((36 * 4) / 8));
    expect(results.get("magnitude")!.storage).toBeNull();
    // The cut variants have no penalty phase and fine-tune E1 + E2 epochs.
    expect(free.accuracyBeforeCut).toBeNull();
    expect(free.epochs.map((e) => e.stage)).toEqual([
      "finetune",
      "finetune",
      "finetune",
      "finetune",
    ]);
  });

  it("the Taylor score builds another mask with the same counts", () => {
    const c = point({ score: "taylor", penalty: null, penaltyEpochs: 1, fineTuneEpochs: 1 });
    const r = runKepPoint(c, io(join(root, "taylor")));
    expect(r.layerKept).toEqual({ "conv2.weight": 36, "conv3.weight": 48, "conv4.weight": 72 });
    // The same point by |w| ran in the equal-counts test above.
    const positions = (dir: string) =>
      loadSafetensors(join(root, dir, "kep.safetensors")).tensors.get("conv4.positions")!.data;
    expect(positions("taylor")).not.toEqual(positions(join("eq", "kep-free")));
  });

  it("with plane removal the baselines keep the KEP count: n per plane of the planes left", () => {
    const kept = (method: KepPointConfig["method"]) =>
      runKepPoint(
        point({ method, penalty: null, planeFraction: 0.25, fineTuneEpochs: 1, penaltyEpochs: 1 }),
        io(join(root, "planes", method)),
      ).layerKept;
    // 12, 16 and 24 planes lose 3, 4 and 6; 3 of 9 kept in the others.
    const want = { "conv2.weight": 27, "conv3.weight": 36, "conv4.weight": 54 };
    expect(kept("kep-pattern")).toEqual(want);
    expect(kept("magnitude")).toEqual(want);
  });

  it("with the ramp the masked-out weights shrink before the cut (against lambda = 0)", () => {
    // Adam moves a weight by about lr per step: 4 epochs of 6 steps at 2e-2 can undo ~0.5.
    const c = (lambda: number) =>
      point({ penalty: { lambda, power: 1 }, penaltyEpochs: 4, lr: 2e-2 });
    const r = runKepPoint(c(1), io(join(root, "ramp")));
    const zero = runKepPoint(c(0), io(join(root, "ramp0")));
    expect(r.epochs.map((e) => `${e.stage}${e.epoch}`)).toEqual([
      "penalty1",
      "penalty2",
      "penalty3",
      "penalty4",
      "finetune1",
      "finetune2",
    ]);
    expect(r.outsideNormStart).toBe(zero.outsideNormStart);
    expect(r.outsideNormBeforeCut!).toBeLessThan(0.5 * r.outsideNormStart!);
    expect(zero.outsideNormBeforeCut!).toBeGreaterThan(0.8 * zero.outsideNormStart!);
    expect(r.accuracyBeforeCut).not.toBeNull();
  });

  it("a point killed in the penalty phase and again in fine-tuning resumes to the uninterrupted result", () => {
    const c = point({ method: "kep-pattern" });
    const whole = runKepPoint(c, io(join(root, "whole")));
    const dir = join(root, "killed");
    const killAt = (line: string) => (t: string) => {
      if (t.startsWith(line)) throw new Error(`killed at ${line}`);
    };
    expect(() => runKepPoint(c, io(dir, killAt("penalty epoch 1/2")))).toThrow(/killed at penalty/);
    expect(() => runKepPoint(c, io(dir, killAt("finetune epoch 1/2")))).toThrow(
      /killed at finetune/,
    );
    const resumed = runKepPoint(c, io(dir));
    expect(timeless(resumed)).toEqual(timeless(whole));
  });
});

describe("runKepPoint and denseKepModel through a BufferArena (kep-sweep's default)", () => {
  it("train to the same bits as without one, the dense model and points with penalty, KEP form and masks", () => {
    const arena = new BufferArena({ poison: true });
    const a = dense();
    const b = denseKepModel(denseConfig, { train, test, dir: join(root, "dense-arena"), arena });
    expect(b.accuracy).toBe(a.accuracy);
    for (const [name, p] of a.model.namedParameters())
      expect(b.model.getParameter(name).data.data, name).toEqual(p.data.data);
    for (const method of ["kep-pattern", "filter"] as const) {
      // the ramp (a beforeStep writing into gradients), the cut, masked / KepConv2d fine-tuning
      const c = point({ method });
      const plain = runKepPoint(c, io(join(root, `arena-off-${method}`)));
      const withArena = runKepPoint(c, {
        ...io(join(root, `arena-on-${method}`)),
        arena,
      });
      expect(timeless(withArena), method).toEqual(timeless(plain));
    }
    expect(arena.stats.reused).toBeGreaterThan(0);
  });
});

describe("runKepPoint on LeNet-5 (conv2: 50 x 20 planes of 5x5)", () => {
  // LeNet-5 takes 28x28 images only.
  const train28 = dataset(64, 5, 28);
  const test28 = dataset(32, 6, 28);
  const lenetDense: KepDenseConfig = {
    dataset: "bands28",
    model: "lenet5",
    epochs: 1,
    lr: 5e-3,
    batchSize: 16,
    seed: 1,
  };
  const dir = join(root, "lenet5-dense");
  const lenetIo = (scratchDir: string) => {
    mkdirSync(scratchDir, { recursive: true });
    return {
      train: train28,
      test: test28,
      dense: () => denseKepModel(lenetDense, { train: train28, test: test28, dir }),
      freshModel: () => kepModel(lenetDense, train28.inputShape, 0),
      scratchDir,
    };
  };
  const lenetPoint = (over: Partial<KepPointConfig>) =>
    point({
      dataset: "bands28",
      dense: lenetDense,
      layers: ["conv2.weight"],
      penalty: null,
      penaltyEpochs: 1,
      fineTuneEpochs: 1,
      ...over,
    });
  /** The kept positions of every plane of conv2 in a point's saved KEP file. */
  const keptPlanes = (scratchDir: string): number[][] => {
    const copy = kepModel(lenetDense, train28.inputShape, 0);
    loadKepModel(join(scratchDir, "kep.safetensors"), copy);
    const { ptr, pos } = (copy.getSubmodule("conv2") as KepConv2d).layout;
    return Array.from({ length: 1000 }, (_, p) => Array.from(pos.subarray(ptr[p]!, ptr[p + 1]!)));
  };

  it("keeps n of 25 per plane at equal counts in every method; KEP runs as KepConv2d, stores 5-bit positions and reloads", () => {
    const results = new Map<string, KepPointResult>();
    for (const method of ["kep-free", "kep-pattern", "magnitude", "filter"] as const)
      results.set(method, runKepPoint(lenetPoint({ method }), lenetIo(join(root, "l5", method))));
    // 1,000 planes x 3; filter pruning: 6 whole filters of 20·25 = 500 weights.
    for (const r of results.values()) {
      expect(r.layerKept).toEqual({ "conv2.weight": 3000 });
      expect(r.prunedLayerWeights).toBe(25_000);
    }
    for (const m of ["kep-free", "kep-pattern"]) {
      const r = results.get(m)!;
      expect(r.kepMaxDiff!).toBeLessThan(1e-4);
      expect(r.reloadedMaxDiff!).toBeLessThan(1e-4);
      expect(r.storage!.map((s) => [s.name, s.nnz, s.denseBytes, s.valueBytes])).toEqual([
        ["conv2", 3000, 100_000, 12_000],
      ]);
      const planes = keptPlanes(join(root, "l5", m));
      expect(planes.every((q) => q.length === 3 && q.every((x) => x >= 0 && x < 25))).toBe(true);
    }
    // Positions take ceil(log2 25) = 5 bits (a 3x3 plane's take 4).
    expect(results.get("kep-free")!.storage![0]!.indexBytes).toBe(Math.ceil((3000 * 5) / 8));
    // conv1 (one input channel, 500 weights) is not pruned: no zero among its weights.
    const model = kepModel(lenetDense, train28.inputShape, 0);
    loadKepModel(join(root, "l5", "kep-free", "kep.safetensors"), model);
    expect(Array.from(model.getParameter("conv1.weight").data.data).includes(0)).toBe(false);
  });

  it("pattern mode on 5x5 planes: the library is the L most frequent top-n patterns of the pretrained |w|, each plane takes the one keeping most |w|", () => {
    const n = 2;
    const L = 4;
    const scratch = join(root, "l5-pattern");
    // With the ramp: the mask is built on the pretrained weights, which stay dense for a phase.
    const r = runKepPoint(
      lenetPoint({ method: "kep-pattern", n, librarySize: L, penalty: { lambda: 1, power: 1 } }),
      lenetIo(scratch),
    );
    expect(r.layerKept).toEqual({ "conv2.weight": 1000 * n });
    // Reference, written independently of the library: per plane the n largest |w| (ties
    // cannot matter for random float weights), counted; most frequent first, then by layer
    // score, then by positions.
    const w = Array.from(lenetIo(scratch).dense().model.getParameter("conv2.weight").data.data);
    const count = new Map<string, number>();
    for (let p = 0; p < 1000; p++) {
      const top = [...Array(25).keys()]
        .sort((a, b) => Math.abs(w[p * 25 + b]!) - Math.abs(w[p * 25 + a]!))
        .slice(0, n)
        .sort((a, b) => a - b);
      count.set(top.join(","), (count.get(top.join(",")) ?? 0) + 1);
    }
    // Equal counts: the larger sum over the pattern's positions of |w| summed over all planes.
    const column = Array.from({ length: 25 }, (_, q) => {
      let t = 0;
      for (let p = 0; p < 1000; p++) t += Math.abs(w[p * 25 + q]!);
      return t;
    });
    const mass = (key: string) => key.split(",").reduce((a, q) => a + column[Number(q)]!, 0);
    const lex = (a: string, b: string) => {
      const x = a.split(",").map(Number);
      const y = b.split(",").map(Number);
      return x[0]! - y[0]! || x[1]! - y[1]!;
    };
    const library = [...count.entries()]
      .sort((a, b) => b[1] - a[1] || mass(b[0]) - mass(a[0]) || lex(a[0], b[0]))
      .slice(0, L)
      .map(([k]) => k.split(",").map(Number));
    // Pairs of 25 positions: 300 possible, so 1,000 planes repeat some.
    expect([...count.values()].some((c) => c > 1)).toBe(true);
    const planes = keptPlanes(scratch);
    planes.forEach((kept, p) => {
      const sums = library.map((pat) => pat.reduce((a, q) => a + Math.abs(w[p * 25 + q]!), 0));
      expect(kept, `plane ${p}`).toEqual(library[sums.indexOf(Math.max(...sums))]);
    });
    expect(r.libraryPatterns!["conv2.weight"]).toBe(new Set(planes.map((q) => q.join())).size);
    expect(r.accuracyBeforeCut).not.toBeNull();
  });
});

describe("kep-sweep configs", () => {
  it("KEP methods with ramp and cut, baselines cut only unless asked; keys are unique", () => {
    const o = {
      datasets: ["mnist"],
      seeds: [1],
      models: [{ arch: { widths }, layers: ["conv2.weight"], ns: [2, 4] }],
      methods: ["kep-free", "kep-pattern", "magnitude", "filter"] as KepPointConfig["method"][],
      scores: ["magnitude" as const],
      taylorBatches: 2,
      penalty: [true, false],
      baselinePenalty: false,
      librarySize: 8,
      planeFraction: 0,
      lambda: 1,
      rampPower: 1,
      denseEpochs: 1,
      penaltyEpochs: 1,
      fineTuneEpochs: 1,
      lr: 1e-3,
      batchSize: 32,
    };
    const keys = kepSweepConfigs({ ...o, methods: [...o.methods] }).map(kepPointKey);
    expect(keys).toEqual([
      "mnist-kep-free-n2-ramp-s1",
      "mnist-kep-free-n2-cut-s1",
      "mnist-kep-pattern-n2-ramp-s1",
      "mnist-kep-pattern-n2-cut-s1",
      "mnist-magnitude-n2-cut-s1",
      "mnist-filter-n2-cut-s1",
      "mnist-kep-free-n4-ramp-s1",
      "mnist-kep-free-n4-cut-s1",
      "mnist-kep-pattern-n4-ramp-s1",
      "mnist-kep-pattern-n4-cut-s1",
      "mnist-magnitude-n4-cut-s1",
      "mnist-filter-n4-cut-s1",
    ]);
    const taylor = kepSweepConfigs({
      ...o,
      models: [{ ...o.models[0]!, ns: [2] }],
      methods: ["kep-free"],
      scores: ["magnitude", "taylor"],
      penalty: [false],
    });
    expect(taylor.map(kepPointKey)).toEqual([
      "mnist-kep-free-n2-cut-s1",
      "mnist-kep-free-n2-taylor-cut-s1",
    ]);
    // The narrow CNN's configs are what they were before LeNet-5 joined (runSweep refuses a
    // stored point whose config differs under its key): no model field, widths after dataset.
    expect(JSON.stringify(kepSweepConfigs(o)[0]!.dense)).toBe(
      '{"dataset":"mnist","widths":{"channels":[3,4,4,6],"hidden":8},"epochs":1,"lr":0.001,"batchSize":32,"seed":1}',
    );
    const both = kepSweepConfigs({
      ...o,
      models: [
        { arch: { widths }, layers: ["conv2.weight"], ns: [9] },
        { arch: { model: "lenet5" }, layers: ["conv2.weight"], ns: [1, 25] },
      ],
      methods: ["kep-free", "filter"],
      penalty: [false],
    });
    expect(both.map(kepPointKey)).toEqual([
      "mnist-kep-free-n9-cut-s1",
      "mnist-filter-n9-cut-s1",
      "mnist-lenet5-kep-free-n1-cut-s1",
      "mnist-lenet5-filter-n1-cut-s1",
      "mnist-lenet5-kep-free-n25-cut-s1",
      "mnist-lenet5-filter-n25-cut-s1",
    ]);
    expect(JSON.stringify(both[2]!.dense)).toBe(
      '{"dataset":"mnist","model":"lenet5","epochs":1,"lr":0.001,"batchSize":32,"seed":1}',
    );
    expect([both[0]!, both[2]!].map((c) => denseDirOf("d", c))).toEqual([
      join("d", "mnist-c3x4x4x6-h8-s1"),
      join("d", "mnist-lenet5-s1"),
    ]);
    expect(() =>
      kepSweepConfigs({ ...o, models: [{ arch: { model: "lenet5" }, layers: [], ns: [26] }] }),
    ).toThrow("kepSweepConfigs: n must be an integer in 1..25 for lenet5 (k x k planes), got 26");
    expect(() => kepSweepConfigs({ ...o, models: [{ ...o.models[0]!, ns: [10] }] })).toThrow(
      "kepSweepConfigs: n must be an integer in 1..9 for narrow-cnn (k x k planes), got 10",
    );
    // The command line's models: the default grids as given, --full-grid 1..9 and 1..25.
    const cli = {
      models: ["narrow-cnn", "lenet5"] as const,
      widths,
      layers: ["conv2", "conv3"],
      lenet5Layers: ["conv2"],
      n: [2, 6],
      lenet5N: [1, 8],
      fullGrid: false,
    };
    expect(kepModelSpecs(cli)).toEqual([
      { arch: { widths }, layers: ["conv2.weight", "conv3.weight"], ns: [2, 6] },
      { arch: { model: "lenet5" }, layers: ["conv2.weight"], ns: [1, 8] },
    ]);
    expect(kepModelSpecs({ ...cli, fullGrid: true }).map((m) => m.ns)).toEqual([
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
      Array.from({ length: 25 }, (_, i) => i + 1),
    ]);
    const withBase = kepSweepConfigs({ ...o, methods: ["filter"], baselinePenalty: true });
    expect(withBase.map(kepPointKey)).toEqual([
      "mnist-filter-n2-ramp-s1",
      "mnist-filter-n2-cut-s1",
      "mnist-filter-n4-ramp-s1",
      "mnist-filter-n4-cut-s1",
    ]);
  });
});

describe("pnpm kep-sweep and kep-report", () => {
  const dataDir = join(root, "mnist");
  mkdirSync(dataDir, { recursive: true });
  for (const [split, count, seed] of [
    ["train", 64, 3],
    ["t10k", 32, 4],
  ] as const) {
    const { images, labels } = bandImages(count, 28, seed);
    writeIdxFile(join(dataDir, `${split}-images-idx3-ubyte`), {
      shape: [count, 28, 28],
      data: images,
    });
    writeIdxFile(join(dataDir, `${split}-labels-idx1-ubyte`), { shape: [count], data: labels });
  }
  const run = (script: string, args: string[]) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "experiments", script), ...args],
      {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 240_000,
        env: { ...process.env, TESSERA_DATASETS: "", DEBUG: "" },
      },
    );
  const common = [
    "--dataset",
    "mnist",
    "--data-dir",
    dataDir,
    "--models",
    "narrow-cnn,lenet5",
    "--n",
    "2,4",
    "--lenet5-n",
    "3",
    "--methods",
    "kep-free,kep-pattern,magnitude",
    "--channels",
    "2,2,3,3",
    "--hidden",
    "8",
    "--dense-epochs",
    "1",
    "--batch-size",
    "32",
  ];

  it("trains the dense models once, runs two shards on them, skips finished points on a re-run, and writes the report for both models", () => {
    const out = (i: number) => join(root, "sweep", `shard-${i}`);
    const denseDir = join(root, "sweep", "dense");
    const pre = run("kep-sweep.ts", [...common, "--dense-only", "--dense-dir", denseDir]);
    expect(pre.status, pre.stderr).toBe(0);
    expect(pre.stderr).toMatch(/dense epoch 1\/1/);
    expect(pre.stderr).toMatch(/kep-sweep: dense .*mnist-c2x2x3x3-h8-s1: \d+\.\d\d%/);
    expect(pre.stderr).toMatch(/kep-sweep: dense .*mnist-lenet5-s1: \d+\.\d\d%/);
    for (const i of [0, 1]) {
      const r = run("kep-sweep.ts", [
        ...common,
        "--shard",
        `${i}/2`,
        "--out",
        out(i),
        "--dense-dir",
        denseDir,
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/kep-sweep: \d+ points run, 0 already done/);
      // Progress lines of the point's stages; the dense model is loaded, not trained again.
      expect(r.stderr).toMatch(/finetune epoch 2\/2/);
      expect(r.stderr).not.toMatch(/dense epoch/);
    }
    const keys = [0, 1].flatMap((i) => readdirSync(join(out(i), "points"))).sort();
    expect(keys).toEqual(
      [
        "mnist-kep-free-n2-cut-s1",
        "mnist-kep-free-n2-ramp-s1",
        "mnist-kep-free-n4-cut-s1",
        "mnist-kep-free-n4-ramp-s1",
        "mnist-kep-pattern-n2-cut-s1",
        "mnist-kep-pattern-n2-ramp-s1",
        "mnist-kep-pattern-n4-cut-s1",
        "mnist-kep-pattern-n4-ramp-s1",
        "mnist-lenet5-kep-free-n3-cut-s1",
        "mnist-lenet5-kep-free-n3-ramp-s1",
        "mnist-lenet5-kep-pattern-n3-cut-s1",
        "mnist-lenet5-kep-pattern-n3-ramp-s1",
        "mnist-lenet5-magnitude-n3-cut-s1",
        "mnist-magnitude-n2-cut-s1",
        "mnist-magnitude-n4-cut-s1",
      ].map((k) => `${k}.json`),
    );
    const again = run("kep-sweep.ts", [...common, "--shard", "0/2", "--out", out(0)]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/kep-sweep: 0 points run, \d+ already done/);

    const md = join(root, "report", "kep.md");
    const rep = run("kep-report.ts", [
      out(0),
      out(1),
      "--out",
      md,
      "--command",
      "pnpm kep-sweep (test)",
    ]);
    expect(rep.status, rep.stderr).toBe(0);
    const text = readFileSync(md, "utf8");
    expect(text).toContain(
      "# KEP: kernel-element pruning of a narrow small CNN and LeNet-5 (issue 13)",
    );
    expect(text).toContain("- `pnpm kep-sweep (test)`");
    expect(text).toMatch(/\| kep-free ramp +\| kep-free cut/);
    // One section per model: its n grid out of k², storage with 4- and 5-bit positions.
    const section = (title: string) => text.slice(text.indexOf(`## ${title}, mnist`));
    const narrow = section("Narrow small CNN (3x3 planes)");
    const lenet = section("LeNet-5 (5x5 planes)");
    expect(narrow.length).toBeGreaterThan(lenet.length);
    expect(lenet.length).toBeGreaterThan(0);
    expect(narrow).toMatch(/\| n of 9 \|/);
    expect(narrow).toMatch(/\| +2 of 9 \| positions \(4 bits\) /);
    expect(lenet).toMatch(/\| n of 25 \|/);
    expect(lenet).toMatch(/\| +3 \| +12\.0% \|/);
    expect(lenet).toMatch(
      /\| +3 of 25 \| positions \(5 bits\) +\| +3000 \| +100000 \| +12000 \| +1875 \|/,
    );
    // The n = 4 target is the small CNN's; the ramp target is checked for both models.
    expect(text).toMatch(
      /\| n = 4, kep-free ramp: within 0.3 points of dense +\| narrow-cnn +\| mnist/,
    );
    expect(text).not.toMatch(/n = 4, [^|]*\| lenet5/);
    expect(text).toMatch(
      /\| kep-pattern: ramp above the cut at once, right after the cut \| lenet5 +\| mnist/,
    );
    expect(text).toContain("## What is the paper's and what is reconstructed");
    expect(existsSync(join(root, "report", "kep", "accuracy.svg"))).toBe(true);
    expect(existsSync(join(root, "report", "kep", "accuracy.vl.json"))).toBe(true);
  }, 300_000); // two dense models, 15 points, 5 child processes: 45-58 s at load ~10

  it("refuses a bad option in one line", () => {
    const r = run("kep-sweep.ts", ["--n", "0"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'kep-sweep: --n: expected a comma-separated list of items each an integer from 1 to 9 (item "0" is not), got "0"\n',
    );
    const l = run("kep-sweep.ts", ["--lenet5-n", "3,26"]);
    expect(l.stderr).toBe(
      'kep-sweep: --lenet5-n: expected a comma-separated list of items each an integer from 1 to 25 (item "26" is not), got "3,26"\n',
    );
    const g = run("kep-sweep.ts", ["--full-grid", "--lenet5-n", "3"]);
    expect(g.stderr).toBe(
      "kep-sweep: --full-grid: it sets n = 1..k² for every model; leave out --lenet5-n\n",
    );
    const c = run("kep-sweep.ts", ["--dataset", "cifar-10"]);
    expect(c.stderr).toBe(
      "kep-sweep: --dataset: lenet5 takes 1x28x28 images (mnist, fashion-mnist), not cifar-10; use --models narrow-cnn for it\n",
    );
  }, 120_000);
});

describe("kep-report targets", () => {
  it("checks n = 4 against dense and the ramp against the cut right after it", () => {
    const mk = (variant: string, n: number, afterCut: number, fineTuned: number) => ({
      key: `${variant}-${n}`,
      config: point({
        dataset: "mnist",
        method: variant.split(" ")[0] as KepPointConfig["method"],
        n,
        penalty: variant.endsWith("ramp") ? { lambda: 1, power: 1 } : null,
      }),
      result: {
        denseAccuracy: 0.99,
        accuracyAfterCut: afterCut,
        accuracyFineTuned: fineTuned,
        accuracyBeforeCut: null,
        keptWeights: n,
        prunedLayerWeights: 9,
      } as KepPointResult,
    });
    const cells = kepCells([
      mk("kep-free ramp", 4, 0.9, 0.988),
      mk("kep-free cut", 4, 0.5, 0.985),
      mk("kep-free ramp", 2, 0.4, 0.95),
      mk("kep-free cut", 2, 0.6, 0.95),
    ] as never[]);
    const t = kepTargets(cells);
    expect(t.map((x) => [x.target, x.met])).toEqual([
      ["n = 4, kep-free ramp: within 0.3 points of dense", true],
      ["n = 4, kep-free cut: within 0.3 points of dense", false],
      ["kep-free: ramp above the cut at once, right after the cut", false],
    ]);
    expect(t[2]!.measured).toBe("1 of 2 n: n=2 40.00 vs 60.00; n=4 90.00 vs 50.00");
    // A tie is no win, and is named with where the cut at once stood against dense.
    const tied = kepTargets(
      kepCells([
        mk("kep-free ramp", 4, 0.9, 0.988),
        mk("kep-free cut", 4, 0.5, 0.985),
        mk("kep-free ramp", 8, 0.991, 0.99),
        mk("kep-free cut", 8, 0.991, 0.99),
        mk("kep-free ramp", 6, 0.95, 0.99),
        mk("kep-free cut", 6, 0.95, 0.99),
      ] as never[]),
    ).find((x) => x.target.startsWith("kep-free: ramp"))!;
    expect(tied.met).toBe(false);
    expect(tied.measured).toBe(
      "1 of 3 n, equal at n=6 (the cut at once below dense 99.00), n=8 (the cut at once at or above dense 99.00): n=4 90.00 vs 50.00; n=6 95.00 vs 95.00; n=8 99.10 vs 99.10",
    );
  });
});
