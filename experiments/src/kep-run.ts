// One point of the KEP experiments (issue 13; method 2 of shared/reference/papers.md, whose
// full text we did not have: see packages/pruning/src/kep.ts for what is the paper's and what
// is reconstructed). The model, a narrow small CNN (3x3 convolutions) or LeNet-5 (5x5), is
// trained dense once per dataset, architecture and seed; each point then
//   1. builds a mask on the pretrained weights of the pruned conv layers (scores |w|, or the
//      Taylor score |w · dL/dw| over some training batches): KEP free (top n per plane), KEP pattern (a library of the L most frequent top-n patterns), or the
//      baselines at the same kept count per layer: unstructured magnitude (elements) and
//      filter pruning (rows of [F, C·k·k] by mean |w|, the count rounded up to whole filters);
//   2. with the penalty: E1 epochs with the weights still dense and lambda(t)·||(1−M)⊙W||²
//      ramped from 0 (a gradient term through fit's beforeStep), then the hard cut W <- M⊙W;
//      without: the cut at once;
//   3. records the test accuracy right after the cut, then fine-tunes with the mask fixed
//      (PruningState attached to the optimizer) for E2 epochs, or E1 + E2 without the penalty
//      (so both see the same number of epochs after pretraining);
//   4. KEP points: converts the pruned convolutions to KepConv2d (toKep), checks that they give
//      the masked dense model's outputs, evaluates the model as KEP, saves it in the compact
//      form (positions, or pattern ids + library) and loads it back into a fresh model.
// Every epoch checkpoints (model, optimizer, masks, stage) into the point's scratch directory,
// so a killed point resumes at its epoch; the dense model checkpoints per epoch in its own
// directory (under a run lock: several shards may need the same one).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Generator, type Tensor } from "@tessera/tensor";
import { type BufferArena, Variable } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import {
  Adam,
  cosineLr,
  evaluate,
  fit,
  lenet5,
  loadSafetensors,
  saveSafetensors,
  smallCnn,
  stateFromRecords,
  tensorToRecord,
  type Dataset,
  type Module,
  type Optimizer,
  type TensorRecord,
} from "@tessera/nn";
import {
  MaskPenalty,
  PruningState,
  TaylorAccumulator,
  accumulateTaylor,
  applyKepMask,
  loadKepModel,
  preservingWeights,
  pruningFromRecords,
  pruningToRecords,
  saveKepModel,
  toKep,
  type GroupKind,
  type KepStorageRow,
  type PatternLibrary,
  type ScoreOptions,
} from "@tessera/pruning";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { acquireRunLock, type RunLock } from "./run-lock.ts";
import { firstBatch } from "./timing.ts";

export const KEP_METHODS = ["kep-free", "kep-pattern", "magnitude", "filter"] as const;
export type KepMethod = (typeof KEP_METHODS)[number];
export const KEP_SCORES = ["magnitude", "taylor"] as const;
export type KepScore = (typeof KEP_SCORES)[number];

/** The small CNN's widths: conv1..conv4 output channels and the hidden Linear's units. */
export interface KepWidths {
  channels: [number, number, number, number];
  hidden: number;
}

/** The sweep's models: the narrow small CNN (3x3 planes) and nn's LeNet-5 (5x5 planes). */
export const KEP_MODELS = ["narrow-cnn", "lenet5"] as const;
export type KepModelName = (typeof KEP_MODELS)[number];

/**
 * Which network a dense config trains: the small CNN of `widths` (no `model` field: the sweep's
 * first model, whose stored configs and keys predate the field and must stay identical), or
 * `model: "lenet5"`, nn's `lenet5()` as it is (Caffe's LeNet: conv1 20@5x5, conv2 50@5x5, no
 * ReLU after the convolutions, fc1 800->500, fc2 500->10; 28x28 single-channel input only).
 */
export type KepArch =
  { widths: KepWidths; model?: undefined } | { model: "lenet5"; widths?: undefined };

/** The dense model every point of a (dataset, architecture, seed) starts from. */
export type KepDenseConfig = KepArch & {
  dataset: string;
  epochs: number;
  /** Adam, cosine to 0 over all epochs. */
  lr: number;
  batchSize: number;
  seed: number;
};

/** The model name of an architecture ("narrow-cnn" when it has no `model` field). */
export function kepModelName(arch: KepArch): KepModelName {
  return arch.model ?? "narrow-cnn";
}

/** The plane side k of every convolution of an architecture: 3 (small CNN) or 5 (LeNet-5). */
export function kepKernelSize(arch: KepArch): number {
  return arch.model === "lenet5" ? 5 : 3;
}

export interface KepPenaltyConfig {
  /** lambda at the end of the ramp. */
  lambda: number;
  /** Ramp shape over the E1 epochs: 1 linear, 3 cubic. */
  power: number;
}

export interface KepPointConfig {
  dataset: string;
  seed: number;
  method: KepMethod;
  /** Elements kept per k x k plane (KEP), or the same count per layer (baselines). */
  n: number;
  /**
   * Element scores of the mask: "magnitude" |w| (default), or "taylor" |w · dL/dw| averaged
   * over `taylorBatches` training batches of the pretrained model (the frame's Taylor score).
   */
  score: KepScore;
  taylorBatches: number;
  /** Pattern mode's library size L. */
  librarySize: number;
  /**
   * Connectivity sparsity: KEP points also remove this fraction of each layer's planes (least
   * L2 norm over the kept elements); the baselines keep the same count. 0: none.
   */
  planeFraction: number;
  /** Pruned conv weights, e.g. ["conv2.weight", "conv3.weight", "conv4.weight"]. */
  layers: string[];
  /** null: no penalty phase (the cut at once, then E1 + E2 epochs of fine-tuning). */
  penalty: KepPenaltyConfig | null;
  penaltyEpochs: number;
  fineTuneEpochs: number;
  /** Adam learning rate of both phases (cosine to 0 within each). */
  lr: number;
  batchSize: number;
  dense: KepDenseConfig;
}

export interface KepPointResult {
  denseAccuracy: number;
  /** Kept / all weights of the pruned layers, per layer and together. */
  keptWeights: number;
  prunedLayerWeights: number;
  layerKept: Record<string, number>;
  /** Test accuracy after the penalty phase, weights still dense (null without penalty). */
  accuracyBeforeCut: number | null;
  /** ||(1−M)⊙W|| at the start and at the end of the penalty phase (null without penalty). */
  outsideNormStart: number | null;
  outsideNormBeforeCut: number | null;
  accuracyAfterCut: number;
  accuracyFineTuned: number;
  /** KEP points: accuracy of the model with KepConv2d layers, max |logit difference| against
   * the masked dense model on the first 256 test images, and the same after save / load. */
  kepAccuracy: number | null;
  kepMaxDiff: number | null;
  reloadedMaxDiff: number | null;
  /** KEP points: bytes per pruned layer as stored (values float32, index). */
  storage: KepStorageRow[] | null;
  /** Pattern mode: library size actually used per layer (fewer when fewer distinct patterns). */
  libraryPatterns: Record<string, number> | null;
  epochs: { stage: string; epoch: number; trainLoss: number; seconds: number }[];
  seconds: number;
}

/**
 * The network of `arch` with weights drawn from `seed`, for examples of `inputShape`
 * ([C, S, S]); LeNet-5 refuses anything but [1, 28, 28] (its fc1 expects 50·4·4 features).
 */
export function kepModel(arch: KepArch, inputShape: readonly number[], seed: number): Module {
  if (arch.model === undefined) return kepCnn(arch.widths, inputShape, seed);
  if (arch.model !== "lenet5")
    throw new Error(
      `kepModel: model must be one of ${KEP_MODELS.join(", ")}, got ${JSON.stringify((arch as { model: unknown }).model)}`,
    );
  if (
    inputShape.length !== 3 ||
    inputShape[0] !== 1 ||
    inputShape[1] !== 28 ||
    inputShape[2] !== 28
  )
    throw new Error(
      `kepModel: lenet5 takes examples of shape [1, 28, 28] (MNIST, Fashion-MNIST), got [${inputShape.join(", ")}]`,
    );
  return lenet5({ generator: new Generator(seed).fork() });
}

/** The small CNN with the config's widths for examples of `inputShape` ([C, S, S]). */
export function kepCnn(widths: KepWidths, inputShape: readonly number[], seed: number): Module {
  return smallCnn({
    generator: new Generator(seed).fork(),
    inChannels: inputShape[0] ?? 1,
    imageSize: inputShape[1] ?? 28,
    channels: widths.channels,
    hidden: widths.hidden,
  });
}

function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

function checkpointRecords(
  model: Module,
  optimizer: Optimizer | null,
  state: PruningState | null,
): { records: Map<string, TensorRecord>; metadata: Record<string, string> } {
  const records = new Map<string, TensorRecord>();
  for (const [n, t] of model.stateDict()) records.set(`model.${n}`, tensorToRecord(t));
  if (optimizer !== null)
    for (const [n, r] of optimizer.stateDict()) records.set(`optimizer.${n}`, r);
  let metadata: Record<string, string> = {};
  if (state !== null) {
    const p = pruningToRecords(state);
    for (const [k, r] of p.records) records.set(k, r);
    metadata = p.metadata;
  }
  return { records, metadata };
}

function splitRecords(file: { tensors: Map<string, TensorRecord> }, prefix: string) {
  const out = new Map<string, TensorRecord>();
  for (const [k, r] of file.tensors) if (k.startsWith(prefix)) out.set(k.slice(prefix.length), r);
  return out;
}

function loadModelRecords(where: string, model: Module, records: Map<string, TensorRecord>) {
  const { state, skipped } = stateFromRecords(where, records, model);
  if (skipped.length > 0) throw new Error(`${where}: unexpected keys: ${skipped.join(", ")}`);
  model.loadStateDict(state);
}

/**
 * The run lock of `dir`, waiting while another live process holds it: shards of one sweep
 * share the dense models, and the one that did not start training one waits for it rather
 * than failing (or training it twice).
 */
function lockWaiting(
  dir: string,
  fn: string,
  progress: ((t: string) => void) | undefined,
  pollMs: number,
): RunLock {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return acquireRunLock(dir, fn);
    } catch (e) {
      const msg = (e as Error).message;
      if (!msg.includes(" is in use by pid ")) throw e;
      progress?.(`waiting for the dense model: ${msg.replace(/; wait for it.*$/, "")}`);
      Atomics.wait(nap, 0, 0, pollMs);
    }
  }
}

/**
 * Trains (or resumes, or just loads) the dense model of `c` in `dir`: Adam, cosine over all
 * epochs, one checkpoint per epoch; the finished model is `dense.safetensors` with its test
 * accuracy in `summary.json`. A directory holding another config is refused; one another
 * process is training is waited for.
 */
export function denseKepModel(
  c: KepDenseConfig,
  io: {
    train: Dataset;
    test: Dataset;
    dir: string;
    pool?: MatrixPool;
    arena?: BufferArena;
    progress?: (t: string) => void;
    /** How often to look again while another process trains this model (ms; default 30 s). */
    pollMs?: number;
  },
): { model: Module; accuracy: number } {
  const fn = "denseKepModel";
  const lock = lockWaiting(io.dir, fn, io.progress, io.pollMs ?? 30_000);
  try {
    const configPath = join(io.dir, "config.json");
    if (existsSync(configPath)) {
      const old = readFileSync(configPath, "utf8").trim();
      if (old !== JSON.stringify(c, null, 2))
        throw new Error(`${fn}: ${io.dir} holds a dense model of another config: ${old}`);
    } else writeJson(configPath, c);
    const model = kepModel(c, io.train.inputShape, c.seed);
    const final = join(io.dir, "dense.safetensors");
    const summary = join(io.dir, "summary.json");
    if (existsSync(final) && existsSync(summary)) {
      loadModelRecords(fn, model, splitRecords(loadSafetensors(final), "model."));
      return {
        model,
        accuracy: (JSON.parse(readFileSync(summary, "utf8")) as { accuracy: number }).accuracy,
      };
    }
    const steps = Math.ceil(io.train.count / c.batchSize);
    const optimizer = new Adam(model.parameters(), {
      lr: cosineLr({ lr: c.lr, totalSteps: c.epochs * steps }),
    });
    const ck = join(io.dir, "checkpoint.safetensors");
    let done = 0;
    if (existsSync(ck)) {
      const file = loadSafetensors(ck);
      loadModelRecords(fn, model, splitRecords(file, "model."));
      optimizer.loadStateDict(splitRecords(file, "optimizer."));
      done = Number(file.metadata.epoch);
    }
    if (done < c.epochs)
      fit(model, {
        train: io.train,
        epochs: c.epochs,
        startEpoch: done + 1,
        batchSize: c.batchSize,
        optimizer,
        seed: c.seed,
        pool: io.pool,
        arena: io.arena,
        onEpochEnd: (s) => {
          const r = checkpointRecords(model, optimizer, null);
          saveSafetensors(ck, r.records, { epoch: String(s.epoch) });
          io.progress?.(
            `dense epoch ${s.epoch}/${c.epochs}: loss ${s.trainLoss.toFixed(4)} (${s.seconds.toFixed(0)} s)`,
          );
        },
      });
    const accuracy = evaluate(model, io.test, { batchSize: 500, pool: io.pool }).accuracy;
    saveSafetensors(final, checkpointRecords(model, null, null).records);
    writeJson(summary, { accuracy });
    return { model, accuracy };
  } finally {
    lock.release();
  }
}

export interface KepPointIo {
  train: Dataset;
  test: Dataset;
  /** A fresh copy of the trained dense model and its test accuracy. */
  dense: () => { model: Module; accuracy: number };
  /** A model of the same architecture to load checkpoints into. */
  freshModel: () => Module;
  /** Survives a kill: the point's checkpoint lives here. */
  scratchDir: string;
  pool?: MatrixPool;
  /** Every training step runs inside it (fit's `arena`: reused step arrays, same bits). */
  arena?: BufferArena;
  progress?: (text: string) => void;
  evalBatchSize?: number;
}

function groupKind(method: KepMethod): GroupKind {
  if (method === "magnitude") return { kind: "element" };
  if (method === "filter") return { kind: "row" };
  return { kind: "kernelElement" };
}

/** Builds the point's masks in `state` (weights zeroed where removed, as every prune does). */
function buildMasks(
  c: KepPointConfig,
  state: PruningState,
  train: Dataset,
): Record<string, number> | null {
  let scores: ScoreOptions = {};
  if (c.score === "taylor") {
    const taylor = new TaylorAccumulator(state.model, c.layers);
    accumulateTaylor(state.model, taylor, train, {
      batches: c.taylorBatches,
      batchSize: c.batchSize,
      seed: c.seed * 1000 + 3,
    });
    scores = { score: "taylor", taylor };
  }
  if (c.method === "kep-free" || c.method === "kep-pattern") {
    const info = applyKepMask(state, {
      ...scores,
      n: c.n,
      mode: c.method === "kep-free" ? "free" : "pattern",
      librarySize: c.librarySize,
      planeFraction: c.planeFraction,
    });
    if (c.method === "kep-free") return null;
    return Object.fromEntries([...info].map(([k, i]) => [k, i.library!.patterns.length]));
  }
  // Baselines: the KEP kept count of each layer, n of the k² elements of every plane that
  // the plane removal leaves.
  const targets = new Map<string, number>();
  for (const name of c.layers) {
    const s = state.layout(name).shape;
    const planes = s[0]! * s[1]!;
    const left = planes - Math.round(c.planeFraction * planes);
    targets.set(name, (c.n * left) / (planes * s[2]! * s[3]!));
  }
  state.pruneToDensity(targets, scores);
  return null;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

type Stage = "penalty" | "finetune" | "done";

interface Partial {
  denseAccuracy: number;
  accuracyBeforeCut: number | null;
  outsideNormStart: number | null;
  outsideNormBeforeCut: number | null;
  accuracyAfterCut: number | null;
  accuracyFineTuned: number | null;
  libraryPatterns: Record<string, number> | null;
  epochs: KepPointResult["epochs"];
  seconds: number;
}

/** Runs (or resumes) one point; see the file header. */
export function runKepPoint(c: KepPointConfig, io: KepPointIo): KepPointResult {
  const fn = "runKepPoint";
  const t0 = performance.now();
  const evalOpts = { batchSize: io.evalBatchSize ?? 500, pool: io.pool };
  const ck = join(io.scratchDir, "point.safetensors");
  const steps = Math.ceil(io.train.count / c.batchSize);
  const specs = Object.fromEntries(c.layers.map((n) => [n, groupKind(c.method)]));
  let model: Module;
  let state: PruningState;
  let stage: Stage;
  let epoch: number;
  let p: Partial;
  let optimizerRecords: Map<string, TensorRecord> | null = null;
  let secondsBefore = 0;
  if (existsSync(ck)) {
    const file = loadSafetensors(ck);
    model = io.freshModel();
    const modelRecords = splitRecords(file, "model.");
    const loaded = pruningFromRecords(model, file.tensors, file.metadata);
    if (loaded === null) throw new Error(`${fn}: ${ck} holds no masks`);
    state = loaded;
    // pruningFromRecords zeroed the masked weights; in the penalty phase they are still dense.
    loadModelRecords(fn, model, modelRecords);
    stage = file.metadata["kep.stage"] as Stage;
    epoch = Number(file.metadata["kep.epoch"]);
    p = JSON.parse(file.metadata["kep.partial"]!) as Partial;
    secondsBefore = p.seconds;
    if (epoch > 0) optimizerRecords = splitRecords(file, "optimizer.");
  } else {
    const dense = io.dense();
    model = dense.model;
    state = new PruningState(model, specs);
    const build = () => buildMasks(c, state, io.train);
    const libraryPatterns = c.penalty === null ? build() : preservingWeights(state, build);
    p = {
      denseAccuracy: dense.accuracy,
      accuracyBeforeCut: null,
      outsideNormStart: null,
      outsideNormBeforeCut: null,
      accuracyAfterCut: null,
      accuracyFineTuned: null,
      libraryPatterns,
      epochs: [],
      seconds: 0,
    };
    stage = c.penalty === null ? "finetune" : "penalty";
    epoch = 0;
    if (c.penalty === null) {
      p.accuracyAfterCut = evaluate(model, io.test, evalOpts).accuracy;
      io.progress?.(`cut at once: ${(100 * p.accuracyAfterCut).toFixed(2)}%`);
    }
  }
  const save = (s: Stage, e: number, optimizer: Optimizer | null): void => {
    p.seconds = secondsBefore + (performance.now() - t0) / 1000;
    const r = checkpointRecords(model, optimizer, state);
    saveSafetensors(ck, r.records, {
      ...r.metadata,
      "kep.stage": s,
      "kep.epoch": String(e),
      "kep.partial": JSON.stringify(p),
      "kep.config": JSON.stringify(c),
    });
  };
  if (epoch === 0 && !existsSync(ck)) save(stage, 0, null);

  const phase = (
    s: Exclude<Stage, "done">,
    epochs: number,
    seed: number,
    penalty: MaskPenalty | null,
  ): void => {
    const optimizer = new Adam(model.parameters(), {
      lr: cosineLr({ lr: c.lr, totalSteps: epochs * steps }),
    });
    if (s === "finetune") state.attach(optimizer);
    if (optimizerRecords !== null) optimizer.loadStateDict(optimizerRecords);
    optimizerRecords = null;
    if (epoch < epochs)
      fit(model, {
        train: io.train,
        epochs,
        startEpoch: epoch + 1,
        batchSize: c.batchSize,
        optimizer,
        seed,
        pool: io.pool,
        arena: io.arena,
        beforeStep: penalty?.beforeStep,
        onEpochEnd: (summary) => {
          p.epochs = [
            ...p.epochs,
            {
              stage: s,
              epoch: summary.epoch,
              trainLoss: summary.trainLoss,
              seconds: summary.seconds,
            },
          ];
          save(s, summary.epoch, optimizer);
          io.progress?.(
            `${s} epoch ${summary.epoch}/${epochs}: loss ${summary.trainLoss.toFixed(4)} (${summary.seconds.toFixed(0)} s)` +
              (penalty === null ? "" : `, ||(1-M)W|| ${penalty.outsideNorm().toExponential(2)}`),
          );
        },
      });
    if (s === "finetune") state.detach(optimizer);
  };

  if (stage === "penalty") {
    const pc = c.penalty!;
    const penalty = new MaskPenalty(model, state, {
      kind: "ramp",
      lambda: pc.lambda,
      beginStep: 0,
      endStep: c.penaltyEpochs * steps,
      power: pc.power,
    });
    p.outsideNormStart ??= penalty.outsideNorm();
    phase("penalty", c.penaltyEpochs, c.seed * 1000 + 1, penalty);
    p.outsideNormBeforeCut = penalty.outsideNorm();
    p.accuracyBeforeCut = evaluate(model, io.test, evalOpts).accuracy;
    state.apply();
    p.accuracyAfterCut = evaluate(model, io.test, evalOpts).accuracy;
    io.progress?.(
      `penalty done: ${(100 * p.accuracyBeforeCut).toFixed(2)}% dense, ${(100 * p.accuracyAfterCut).toFixed(2)}% after the cut`,
    );
    stage = "finetune";
    epoch = 0;
    save(stage, 0, null);
  }
  const ftEpochs = c.fineTuneEpochs + (c.penalty === null ? c.penaltyEpochs : 0);
  if (stage === "finetune") {
    phase("finetune", ftEpochs, c.seed * 1000 + 2, null);
    p.accuracyFineTuned = evaluate(model, io.test, evalOpts).accuracy;
    stage = "done";
    save(stage, ftEpochs, null);
  }
  io.progress?.(`fine-tuned: ${(100 * p.accuracyFineTuned!).toFixed(2)}%`);

  const layerKept: Record<string, number> = {};
  let prunedLayerWeights = 0;
  for (const name of c.layers) {
    layerKept[name] = Math.round(state.density(name) * state.layout(name).groupOf.length);
    prunedLayerWeights += state.layout(name).groupOf.length;
  }
  const result: KepPointResult = {
    denseAccuracy: p.denseAccuracy,
    keptWeights: state.keptCount(),
    prunedLayerWeights,
    layerKept,
    accuracyBeforeCut: p.accuracyBeforeCut,
    outsideNormStart: p.outsideNormStart,
    outsideNormBeforeCut: p.outsideNormBeforeCut,
    accuracyAfterCut: p.accuracyAfterCut!,
    accuracyFineTuned: p.accuracyFineTuned!,
    kepAccuracy: null,
    kepMaxDiff: null,
    reloadedMaxDiff: null,
    storage: null,
    libraryPatterns: p.libraryPatterns,
    epochs: p.epochs,
    seconds: 0,
  };
  if (c.method === "kep-free" || c.method === "kep-pattern") {
    // The libraries are rebuilt from the masks: each layer's distinct plane patterns, which
    // pattern mode drew from its library (all of them, unless some library pattern no plane
    // chose, which then costs nothing to leave out).
    const libraries = new Map<string, PatternLibrary>();
    if (c.method === "kep-pattern")
      for (const name of c.layers)
        libraries.set(name.replace(/\.weight$/, ""), usedPatterns(state, name));
    const x = firstBatch(io.test, Math.min(256, io.test.count));
    const logits = (m: Module, t: Tensor) => m.forward(new Variable(t)).data.data as Float32Array;
    model.eval();
    const dense = logits(model, x);
    toKep(model, state);
    model.eval();
    result.kepMaxDiff = maxAbsDiff(logits(model, x), dense);
    result.kepAccuracy = evaluate(model, io.test, evalOpts).accuracy;
    const path = join(io.scratchDir, "kep.safetensors");
    result.storage = saveKepModel(path, model, { libraries });
    const copy = io.freshModel();
    loadKepModel(path, copy);
    copy.eval();
    result.reloadedMaxDiff = maxAbsDiff(logits(copy, x), dense);
  }
  result.seconds = secondsBefore + (performance.now() - t0) / 1000;
  return result;
}

/** The distinct kept-position sets of a kernelElement parameter's planes, as a library. */
function usedPatterns(state: PruningState, name: string): PatternLibrary {
  const s = state.layout(name).shape;
  const k2 = s[2]! * s[3]!;
  const mask = state.mask(name);
  const seen = new Map<string, { pattern: Int32Array; count: number }>();
  let n = 0;
  for (let p = 0; p < mask.length / k2; p++) {
    const kept: number[] = [];
    for (let q = 0; q < k2; q++) if (mask[p * k2 + q] !== 0) kept.push(q);
    if (kept.length === 0) continue;
    n = kept.length;
    const key = kept.join(",");
    const e = seen.get(key);
    if (e === undefined) seen.set(key, { pattern: Int32Array.from(kept), count: 1 });
    else e.count++;
  }
  const list = [...seen.values()];
  return {
    kh: s[2]!,
    kw: s[3]!,
    n,
    patterns: list.map((e) => e.pattern),
    counts: list.map((e) => e.count),
  };
}
