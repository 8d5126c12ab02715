// The paper's CIFAR-10 experiment (Huang et al. 2021, method 1 of shared/reference/papers.md)
// in a CPU-sized form. The paper freezes a ResNet-18 trunk and block-prunes only its
// 512-300-10 classifier head (97% of the head's weights pruned: 90.73% test accuracy against
// 90.37% unpruned). ResNet-18 is far beyond a CPU budget here, so the trunk is a small CNN
// that also ends in 512 features; the head is the paper's.
//
// Stages, each checkpointed in the run directory so a killed run resumes where it was:
//   1. dense: trunk + head trained together (per-epoch checkpoint: model + Adam state);
//   2. features: the frozen trunk's 512 features of every train and test image, computed
//      once in eval mode without a graph (the trunk is then never run again: cheaper than
//      running it under noGrad every batch of every round, and exactly the same numbers, as
//      the trunk has no dropout, batch norm or augmentation);
//   3. prune: the head alone (an Adam over the head's parameters only) block-pruned round by
//      round with the paper's rule (20% of fc1's alive tiles, 10% of fc2's, per round) and
//      fine-tuned on the features with the masks fixed, or one shot to a target density;
//   4. bsr: the pruned head converted to BsrLinear layers, checked against the masked dense
//      head, evaluated, timed, and exported with scipy's BSR arrays.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Generator, Tensor } from "@tessera/tensor";
import { Variable, getMatrixPool, noGrad, setMatrixPool } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import {
  Adam,
  Conv2d,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
  arrayDataset,
  evaluate,
  fit,
  loadModel,
  loadSafetensors,
  saveModel,
  saveSafetensors,
  stateFromRecords,
  tensorToRecord,
  type Dataset,
  type EpochSummary,
  type Module,
  type TensorRecord,
} from "@tessera/nn";
import {
  PruningState,
  loadPruned,
  saveBsrModel,
  savePruned,
  storageBytes,
  toBsr,
  type BsrConversion,
} from "@tessera/pruning";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { acquireRunLock } from "./run-lock.ts";
import { timeForward } from "./timing.ts";
import { blockKind } from "./block-chain.ts";
import { markdownTable } from "./sweep/index.ts";

/** The paper's CIFAR-10 figures (ResNet-18 trunk), for the table beside ours. */
export const PAPER_CIFAR = { unpruned: 0.9037, pruned: 0.9073, prunedFraction: 0.97 } as const;

export const HEAD_LAYERS = [
  { name: "fc1.weight", hidden: true },
  { name: "fc2.weight", hidden: false },
] as const;

export interface CifarHeadConfig {
  /**
   * Output channels of the trunk's three conv3x3 (padding 1) + ReLU + maxpool 2 stages: a
   * 32x32 image ends as widths[2] x 4 x 4 features (32 -> 512, the head's input).
   */
  widths: [number, number, number];
  /** The head's hidden width (the paper's 300). */
  hidden: number;
  seed: number;
  /** Use the first `trainLimit` training images (0: all), for quick runs; stated in results. */
  trainLimit: number;
  dense: { epochs: number; lr: number; batchSize: number };
  prune: {
    blockSize: number;
    /** "rounds": the paper's per-round rule for `rounds` rounds; "one-shot": to targetDensity. */
    mode: "rounds" | "one-shot";
    rounds: number;
    rates: { hidden: number; output: number };
    /** One-shot: each head layer pruned to this density (by weights) at once. */
    targetDensity: number;
    /** Fine-tuning epochs per round (one-shot: after the cut). */
    ftEpochs: number;
    ftLr: number;
    batchSize: number;
  };
}

/** The trunk: three conv3x3 + ReLU + maxpool 2 stages, flattened ([N,3,32,32] -> [N, w2*16]). */
export function cifarTrunk(widths: readonly number[], generator: Generator): Sequential {
  const [a, b, c] = widths;
  if (widths.length !== 3 || ![a, b, c].every((w) => Number.isSafeInteger(w) && w! >= 1))
    throw new RangeError(
      `cifarTrunk: widths must be three positive integers, got [${widths.join(",")}]`,
    );
  const conv = (i: number, o: number) => new Conv2d(i, o, 3, { padding: 1, generator });
  return Sequential.named([
    ["conv1", conv(3, a!)],
    ["relu1", new ReLU()],
    ["pool1", new MaxPool2d(2)],
    ["conv2", conv(a!, b!)],
    ["relu2", new ReLU()],
    ["pool2", new MaxPool2d(2)],
    ["conv3", conv(b!, c!)],
    ["relu3", new ReLU()],
    ["pool3", new MaxPool2d(2)],
    ["flatten", new Flatten()],
  ]);
}

/** The paper's head: Linear features -> hidden, ReLU, Linear hidden -> 10. */
export function cifarHead(features: number, hidden: number, generator: Generator): Sequential {
  return Sequential.named([
    ["fc1", new Linear(features, hidden, { generator })],
    ["relu", new ReLU()],
    ["fc2", new Linear(hidden, 10, { generator })],
  ]);
}

export interface CifarModel {
  /** trunk then head (state-dict keys "trunk.*", "head.*"); shares the two modules. */
  model: Sequential;
  trunk: Sequential;
  head: Sequential;
  features: number;
}

export function cifarHeadModel(config: CifarHeadConfig): CifarModel {
  const g = new Generator(config.seed);
  const trunk = cifarTrunk(config.widths, g);
  const features = config.widths[2] * 16;
  const head = cifarHead(features, config.hidden, g);
  return {
    model: Sequential.named([
      ["trunk", trunk],
      ["head", head],
    ]),
    trunk,
    head,
    features,
  };
}

/** A description of the architecture for the results. */
export function describeArchitecture(config: CifarHeadConfig): string {
  const [a, b, c] = config.widths;
  return (
    `trunk: conv3x3(3->${a})-ReLU-maxpool2, conv3x3(${a}->${b})-ReLU-maxpool2, ` +
    `conv3x3(${b}->${c})-ReLU-maxpool2, flatten (${c}x4x4 = ${c * 16}); ` +
    `head: Linear ${c * 16}->${config.hidden}, ReLU, Linear ${config.hidden}->10`
  );
}

/** SHA-256 over a module's state dict (names, shapes, bytes) in key order. */
export function stateDigest(module: Module): string {
  const h = createHash("sha256");
  for (const [name, t] of [...module.stateDict()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const c = t.contiguous();
    h.update(`${name}[${c.shape.join(",")}]`);
    h.update(new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength));
  }
  return h.digest("hex");
}

/** The trunk's features of every example (eval mode, no graph), with the labels. */
export function trunkFeatures(
  trunk: Module,
  data: Dataset,
  options: { batchSize?: number; pool?: MatrixPool } = {},
): { x: Float32Array; y: Int32Array; features: number } {
  const bs = options.batchSize ?? 500;
  const wasTraining = trunk.training;
  trunk.eval();
  const prev = getMatrixPool();
  setMatrixPool(options.pool);
  try {
    let x: Float32Array | null = null;
    let features = 0;
    const y = new Int32Array(data.count);
    noGrad(() => {
      for (let start = 0; start < data.count; start += bs) {
        const end = Math.min(start + bs, data.count);
        const idx = new Int32Array(end - start);
        for (let i = 0; i < idx.length; i++) idx[i] = start + i;
        const batch = data.getBatch(idx);
        const f = trunk.forward(new Variable(batch.x)).data.contiguous();
        if (x === null) {
          features = f.shape[1]!;
          x = new Float32Array(data.count * features);
        }
        x.set(f.data as Float32Array, start * features);
        y.set(batch.y, start);
      }
    });
    return { x: x ?? new Float32Array(0), y, features };
  } finally {
    setMatrixPool(prev);
    trunk.train(wasTraining);
  }
}

/** One pruning round of the head. */
export interface HeadRound {
  round: number;
  density: number;
  layerDensity: Record<string, number>;
  accuracyPruned: number;
  accuracyFineTuned: number;
}

export interface CifarHeadResult {
  architecture: string;
  trainExamples: number;
  testExamples: number;
  dense: { testAccuracy: number; history: EpochSummary[] };
  trunkDigest: { afterDense: string; afterPruning: string; unchanged: boolean };
  rounds: HeadRound[];
  pruned: {
    testAccuracy: number;
    /** Kept weights / all weights of the head's two weight matrices. */
    density: number;
    keptWeights: number;
    headWeights: number;
    bytes: { dense: number; csr: number; bsr: number };
  };
  bsr: {
    testAccuracy: number;
    /** Largest |BSR head - masked dense head| over the test features' logits. */
    maxAbsDiff: number;
    layers: BsrConversion[];
    /** Median seconds of the head's forward at batch 128, dense (masked) vs BSR, side by side. */
    seconds: { dense: number; bsr: number };
    speedup: number;
  };
  paper: typeof PAPER_CIFAR & { trunk: string };
}

export interface CifarHeadIo {
  train: Dataset;
  test: Dataset;
  /** The run directory (locked while running; stages checkpoint here). */
  dir: string;
  pool?: MatrixPool;
  progress?: (text: string) => void;
}

const FILES = {
  config: "config.json",
  denseCheckpoint: "dense-checkpoint.safetensors",
  dense: "dense.safetensors",
  denseJson: "dense.json",
  features: "features.safetensors",
  rounds: "rounds.json",
  bsr: "head-bsr.safetensors",
  result: "result.json",
} as const;
export const CIFAR_HEAD_FILES = FILES;

export const headRoundFile = (r: number): string =>
  `head-round-${String(r).padStart(2, "0")}.safetensors`;

function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

function limitTo(data: Dataset, n: number): Dataset {
  return n <= 0 || n >= data.count
    ? data
    : { count: n, inputShape: data.inputShape, getBatch: (i) => data.getBatch(i) };
}

/** Stage 1: dense training of trunk + head, one checkpoint (model + Adam) per epoch. */
function denseStage(
  config: CifarHeadConfig,
  m: CifarModel,
  train: Dataset,
  io: CifarHeadIo,
): EpochSummary[] {
  const path = join(io.dir, FILES.dense);
  if (existsSync(path)) {
    loadModel(path, m.model);
    return readJson<{ history: EpochSummary[] }>(join(io.dir, FILES.denseJson)).history;
  }
  const d = config.dense;
  const optimizer = new Adam(m.model.parameters(), { lr: d.lr });
  const ckpt = join(io.dir, FILES.denseCheckpoint);
  let history: EpochSummary[] = [];
  let done = 0;
  if (existsSync(ckpt)) {
    const file = loadSafetensors(ckpt);
    const modelRecords = new Map<string, TensorRecord>();
    const optState = new Map<string, TensorRecord>();
    for (const [key, r] of file.tensors)
      (key.startsWith("model.") ? modelRecords : optState).set(key.replace(/^[a-z]+\./, ""), r);
    m.model.loadStateDict(stateFromRecords(ckpt, modelRecords, m.model).state);
    optimizer.loadStateDict(optState);
    done = Number(file.metadata.epoch);
    history = JSON.parse(file.metadata.history ?? "[]") as EpochSummary[];
    io.progress?.(`dense: resuming after epoch ${done}`);
  }
  if (done < d.epochs)
    fit(m.model, {
      train,
      epochs: d.epochs,
      batchSize: d.batchSize,
      optimizer,
      seed: config.seed,
      startEpoch: done + 1,
      pool: io.pool,
      onEpochEnd: (summary) => {
        history = [...history, summary];
        io.progress?.(
          `dense: epoch ${summary.epoch}/${d.epochs}, loss ${summary.trainLoss.toFixed(4)}, train accuracy ${(100 * summary.trainAccuracy).toFixed(2)}%`,
        );
        const records = new Map<string, TensorRecord>();
        for (const [n, t] of m.model.stateDict()) records.set(`model.${n}`, tensorToRecord(t));
        for (const [n, r] of optimizer.stateDict()) records.set(`optimizer.${n}`, r);
        saveSafetensors(ckpt, records, {
          epoch: String(summary.epoch),
          history: JSON.stringify(history),
        });
      },
    });
  writeJson(join(io.dir, FILES.denseJson), { history });
  saveModel(path, m.model);
  return history;
}

interface Features {
  train: { x: Float32Array; y: Int32Array };
  test: { x: Float32Array; y: Int32Array };
  features: number;
}

/** Stage 2: the frozen trunk's features, computed once and stored. */
function featureStage(m: CifarModel, train: Dataset, io: CifarHeadIo): Features {
  const path = join(io.dir, FILES.features);
  if (existsSync(path)) {
    const f = loadSafetensors(path).tensors;
    const get = (k: string) => f.get(k)!.data;
    return {
      train: { x: get("train.x") as Float32Array, y: get("train.y") as Int32Array },
      test: { x: get("test.x") as Float32Array, y: get("test.y") as Int32Array },
      features: m.features,
    };
  }
  io.progress?.(
    `features: running the frozen trunk once over ${train.count} + ${io.test.count} images`,
  );
  const tr = trunkFeatures(m.trunk, train, { pool: io.pool });
  const te = trunkFeatures(m.trunk, io.test, { pool: io.pool });
  const rec = (x: Float32Array | Int32Array, shape: number[]): TensorRecord =>
    tensorToRecord(new Tensor(x, shape));
  saveSafetensors(path, {
    "train.x": rec(tr.x, [train.count, m.features]),
    "train.y": rec(tr.y, [train.count]),
    "test.x": rec(te.x, [io.test.count, m.features]),
    "test.y": rec(te.y, [io.test.count]),
  });
  return { train: tr, test: te, features: m.features };
}

function headState(head: Module, blockSize: number): PruningState {
  const kind = blockKind(blockSize);
  return new PruningState(head, Object.fromEntries(HEAD_LAYERS.map((l) => [l.name, kind])));
}

/**
 * Runs (or resumes) the whole experiment in `io.dir` and returns its result (also written as
 * result.json). A run directory belongs to one config: resuming with another is refused.
 */
export function runCifarHead(config: CifarHeadConfig, io: CifarHeadIo): CifarHeadResult {
  const fn = "runCifarHead";
  const lock = acquireRunLock(io.dir, "cifar-head");
  try {
    const cfgPath = join(io.dir, FILES.config);
    if (existsSync(cfgPath)) {
      const stored = readFileSync(cfgPath, "utf8");
      if (stored !== JSON.stringify(config, null, 2) + "\n")
        throw new Error(
          `${fn}: ${io.dir} holds a run of another config (${cfgPath}); use another directory or the same options`,
        );
    } else writeJson(cfgPath, config);
    const p = config.prune;
    if (p.mode === "one-shot" && !(p.targetDensity > 0 && p.targetDensity <= 1))
      throw new RangeError(`${fn}: prune.targetDensity must be in (0, 1], got ${p.targetDensity}`);

    const train = limitTo(io.train, config.trainLimit);
    const m = cifarHeadModel(config);
    const history = denseStage(config, m, train, io);
    const afterDense = stateDigest(m.trunk);
    const feats = featureStage(m, train, io);
    const trainF = arrayDataset(feats.train.x, feats.train.y, [feats.features]);
    const testF = arrayDataset(feats.test.x, feats.test.y, [feats.features]);
    const evalHead = (head: Module) =>
      evaluate(head, testF, { batchSize: 1000, pool: io.pool }).accuracy;
    const denseAccuracy = evalHead(m.head);

    // Stage 3: the head alone; the trunk's parameters are in no optimizer from here on.
    const head = m.head;
    let state = headState(head, p.blockSize);
    let rounds: HeadRound[] = [];
    const roundsPath = join(io.dir, FILES.rounds);
    if (existsSync(roundsPath)) {
      rounds = readJson<{ rounds: HeadRound[] }>(roundsPath).rounds.filter((r) =>
        existsSync(join(io.dir, headRoundFile(r.round))),
      );
      if (rounds.length > 0) {
        const loaded = loadPruned(join(io.dir, headRoundFile(rounds.length)), head).state;
        if (loaded === null)
          throw new Error(`${fn}: ${headRoundFile(rounds.length)} holds no masks`);
        state = loaded;
      }
    }
    const total = p.mode === "one-shot" ? 1 : p.rounds;
    const rates = Object.fromEntries(
      HEAD_LAYERS.map((l) => [l.name, l.hidden ? p.rates.hidden : p.rates.output]),
    );
    for (let round = rounds.length + 1; round <= total; round++) {
      if (p.mode === "one-shot")
        state.pruneToDensity(Object.fromEntries(HEAD_LAYERS.map((l) => [l.name, p.targetDensity])));
      else state.pruneFraction(rates);
      const accuracyPruned = evalHead(head);
      const optimizer = new Adam(head.parameters(), { lr: p.ftLr });
      state.attach(optimizer);
      fit(head, {
        train: trainF,
        epochs: p.ftEpochs,
        batchSize: p.batchSize,
        optimizer,
        seed: config.seed * 1000 + round,
        pool: io.pool,
      });
      state.detach(optimizer);
      const row: HeadRound = {
        round,
        density: state.density(),
        layerDensity: Object.fromEntries(state.densities()),
        accuracyPruned,
        accuracyFineTuned: evalHead(head),
      };
      rounds = [...rounds, row];
      savePruned(join(io.dir, headRoundFile(round)), head, state, { round: String(round) });
      writeJson(roundsPath, { rounds });
      io.progress?.(
        `head round ${round}/${total}: density ${(100 * row.density).toFixed(1)}%, ` +
          `pruned ${(100 * accuracyPruned).toFixed(2)}% -> fine-tuned ${(100 * row.accuracyFineTuned).toFixed(2)}%`,
      );
    }
    const prunedAccuracy = evalHead(head);
    const bytes = { dense: 0, csr: 0, bsr: 0 };
    let headWeights = 0;
    for (const l of HEAD_LAYERS) {
      const shape = head.getParameter(l.name).shape;
      const b = storageBytes(state.mask(l.name), shape, [p.blockSize, p.blockSize]);
      bytes.dense += b.dense;
      bytes.csr += b.csr;
      bytes.bsr += b.bsr;
      headWeights += shape[0]! * shape[1]!;
    }

    // Stage 4: the head as BSR, beside a masked dense copy of itself.
    const denseHead = cifarHeadModel(config).head;
    loadPruned(join(io.dir, headRoundFile(total)), denseHead);
    const layers = toBsr(head, state);
    saveBsrModel(join(io.dir, FILES.bsr), head);
    const x = new Tensor(feats.test.x, [io.test.count, feats.features]);
    const yDense = noGrad(() => denseHead.eval().forward(new Variable(x)).data.data);
    const yBsr = noGrad(() => head.eval().forward(new Variable(x)).data.data);
    let maxAbsDiff = 0;
    for (let i = 0; i < yDense.length; i++)
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(yDense[i]! - yBsr[i]!));
    const batch = Math.min(128, io.test.count);
    const t = timeForward(
      [
        { name: "dense", model: denseHead },
        { name: "bsr", model: head },
      ],
      new Tensor(feats.test.x.slice(0, batch * feats.features), [batch, feats.features]),
      { pool: io.pool, reps: 9, callsPerRep: 4 },
    );
    const seconds = { dense: t.get("dense")!, bsr: t.get("bsr")! };
    const result: CifarHeadResult = {
      architecture: describeArchitecture(config),
      trainExamples: train.count,
      testExamples: io.test.count,
      dense: { testAccuracy: denseAccuracy, history },
      trunkDigest: {
        afterDense,
        afterPruning: stateDigest(m.trunk),
        unchanged: afterDense === stateDigest(m.trunk),
      },
      rounds,
      pruned: {
        testAccuracy: prunedAccuracy,
        density: state.density(),
        keptWeights: state.keptCount(),
        headWeights,
        bytes,
      },
      bsr: {
        testAccuracy: evalHead(head),
        maxAbsDiff,
        layers,
        seconds,
        speedup: seconds.dense / seconds.bsr,
      },
      paper: { ...PAPER_CIFAR, trunk: "ResNet-18 (ours: the small CNN above)" },
    };
    writeJson(join(io.dir, FILES.result), result);
    return result;
  } finally {
    lock.release();
  }
}

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;

/** The summary table: ours beside the paper's figures. */
export function cifarHeadTable(config: CifarHeadConfig, r: CifarHeadResult): string {
  const p = config.prune;
  const how =
    p.mode === "one-shot"
      ? `one shot to ${pct(p.targetDensity, 1)} per layer, ${p.ftEpochs} fine-tuning epochs`
      : `${p.rounds} rounds of ${p.blockSize}x${p.blockSize} tiles (${pct(p.rates.hidden, 0)} of fc1's, ${pct(p.rates.output, 0)} of fc2's alive tiles per round), ${p.ftEpochs} fine-tuning epoch(s) each`;
  const rows: [string, string, string][] = [
    ["model", r.architecture, "ResNet-18 trunk + the same 512-300-10 head"],
    [
      "data",
      `${r.trainExamples} train / ${r.testExamples} test images` +
        (config.trainLimit > 0 ? ` (training limited to the first ${config.trainLimit})` : ""),
      "CIFAR-10, 50000 / 10000",
    ],
    [
      "dense test accuracy",
      `${pct(r.dense.testAccuracy)} (${config.dense.epochs} epochs)`,
      pct(PAPER_CIFAR.unpruned),
    ],
    ["head pruning", how, "iterative, 97% of the head pruned"],
    [
      "head density",
      `${pct(r.pruned.density, 1)} (${r.pruned.keptWeights} of ${r.pruned.headWeights} weights; ${pct(1 - r.pruned.density, 1)} pruned)`,
      "3%",
    ],
    ["pruned test accuracy", pct(r.pruned.testAccuracy), pct(PAPER_CIFAR.pruned)],
    [
      "same, head run as BSR",
      `${pct(r.bsr.testAccuracy)} (max logit diff ${r.bsr.maxAbsDiff.toExponential(1)})`,
      "-",
    ],
    [
      "head storage dense / CSR / BSR",
      `${kib(r.pruned.bytes.dense)} / ${kib(r.pruned.bytes.csr)} / ${kib(r.pruned.bytes.bsr)}`,
      "-",
    ],
    [
      "head inference, batch 128",
      `dense ${(r.bsr.seconds.dense * 1e3).toFixed(3)} ms, BSR ${(r.bsr.seconds.bsr * 1e3).toFixed(3)} ms (${r.bsr.speedup.toFixed(2)}x)`,
      "-",
    ],
    [
      "trunk unchanged by head pruning",
      r.trunkDigest.unchanged ? "yes (SHA-256 of its weights)" : "NO",
      "frozen",
    ],
  ];
  return [
    markdownTable(rows, [
      { header: "", value: (x) => x[0] },
      { header: "ours", value: (x) => x[1] },
      { header: "paper (Huang et al. 2021)", value: (x) => x[2] },
    ]),
    `The trunk differs from the paper's (a small CNN, not ResNet-18), so the accuracies are not comparable in level; what carries over is the head's accuracy before vs after pruning 97% of its weights.`,
    ``,
  ].join("\n");
}
