// One resumable training run: a config, a run directory, and an epoch loop that writes a
// checkpoint (model + optimizer state in one safetensors file, written atomically) after
// every epoch. Re-running the same config continues from the last finished epoch and gives
// the same numbers as an uninterrupted run; asking for more epochs extends a finished run.
// One process at a time per run directory (a PID lock, see run-lock.ts and docs/runs.md).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Adam,
  SGD,
  cosineLr,
  fit,
  constantLr,
  lenet300100,
  lenet5,
  loadSafetensors,
  saveSafetensors,
  smallCnn,
  tensorToRecord,
  isDiverged,
  stateFromRecords,
  type Dataset,
  type EpochSummary,
  type Module,
  type Optimizer,
  type ProgressReporter,
  type TensorRecord,
} from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import type { BufferArena } from "@tessera/autograd";
import { kernelPath, wasmFmaFromEnv, winogradFromEnv } from "@tessera/matrix";
import type { KernelPath, MatrixPool } from "@tessera/matrix";
import { removeAtomicTemporaries, writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { LOCK_FILE, acquireRunLock, type RunLock } from "./run-lock.ts";

const writeTextAtomic = (path: string, text: string): void =>
  writeFileAtomic(path, new TextEncoder().encode(text));

export const MODEL_NAMES = ["lenet300100", "lenet5", "small-cnn"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];
export const OPTIMIZER_NAMES = ["adam", "sgd"] as const;
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];
export const SCHEDULE_NAMES = ["constant", "cosine"] as const;
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];

/** Everything that decides a run's numbers. Two runs with equal configs are identical. */
export interface TrainConfig {
  model: ModelName;
  dataset: string;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerName;
  lr: number;
  schedule: ScheduleName;
  /** SGD momentum (ignored by Adam). */
  momentum: number;
  weightDecay: number;
  seed: number;
}

export const DEFAULT_CONFIG: Omit<TrainConfig, "model" | "dataset"> = {
  epochs: 20,
  batchSize: 128,
  optimizer: "adam",
  lr: 1e-3,
  schedule: "cosine",
  momentum: 0.9,
  weightDecay: 0,
  seed: 1,
};

/** The parts of a config that must match for a run directory to be resumed. */
function identity(c: TrainConfig): string {
  const { epochs: _epochs, ...rest } = c;
  return JSON.stringify(rest);
}

export function validateConfig(c: TrainConfig): TrainConfig {
  const fn = "validateConfig";
  if (!MODEL_NAMES.includes(c.model))
    throw new Error(`${fn}: model must be one of ${MODEL_NAMES.join(", ")}, got "${c.model}"`);
  if (!OPTIMIZER_NAMES.includes(c.optimizer))
    throw new Error(
      `${fn}: optimizer must be one of ${OPTIMIZER_NAMES.join(", ")}, got "${c.optimizer}"`,
    );
  if (!SCHEDULE_NAMES.includes(c.schedule))
    throw new Error(
      `${fn}: schedule must be one of ${SCHEDULE_NAMES.join(", ")}, got "${c.schedule}"`,
    );
  for (const k of ["epochs", "batchSize"] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] < 1)
      throw new RangeError(`${fn}: ${k} must be a positive integer, got ${c[k]}`);
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0)
    throw new RangeError(`${fn}: seed must be a non-negative integer, got ${c.seed}`);
  if (!(c.lr > 0) || !Number.isFinite(c.lr))
    throw new RangeError(`${fn}: lr must be a positive number, got ${c.lr}`);
  for (const k of ["momentum", "weightDecay"] as const) {
    if (!(c[k] >= 0) || !Number.isFinite(c[k]))
      throw new RangeError(`${fn}: ${k} must be a finite number >= 0, got ${c[k]}`);
  }
  return c;
}

/**
 * Throws unless `model` can take examples of `inputShape` ([C, H, W]); `small-cnn` adapts to
 * the channels and (square, multiple-of-4) image size, the LeNets are fixed to 1x28x28.
 * Checked before any data is loaded or any file written.
 */
export function checkModelInput(model: ModelName, inputShape: readonly number[]): void {
  const shown = `[${inputShape.join(", ")}]`;
  const fail = (expected: string): never => {
    throw new RangeError(
      `checkModelInput: model ${model} takes ${expected}; the dataset's examples are ${shown}`,
    );
  };
  const [c = 0, h = 0, w = 0] = inputShape;
  const is = (...want: number[]) =>
    inputShape.length === want.length && want.every((d, i) => inputShape[i] === d);
  if (model === "lenet300100") {
    if (!is(1, 28, 28) && !is(784)) fail("1x28x28 images ([1, 28, 28] or [784])");
  } else if (model === "lenet5") {
    if (!is(1, 28, 28)) fail("1x28x28 images ([1, 28, 28])");
  } else if (inputShape.length !== 3 || h !== w || h < 4 || h % 4 !== 0 || c < 1) {
    fail("[C, S, S] images whose side S is a multiple of 4");
  }
}

/** Builds the named model with weights drawn from a generator seeded by the config. */
export function buildModel(c: TrainConfig, inputShape: readonly number[]): Module {
  const generator = new Generator(c.seed).fork();
  switch (c.model) {
    case "lenet300100":
      return lenet300100({ generator });
    case "lenet5":
      return lenet5({ generator });
    case "small-cnn":
      return smallCnn({
        generator,
        inChannels: inputShape[0] ?? 1,
        imageSize: inputShape[1] ?? 28,
      });
  }
}

export function buildOptimizer(c: TrainConfig, model: Module, stepsPerEpoch: number): Optimizer {
  const lr =
    c.schedule === "cosine"
      ? cosineLr({ lr: c.lr, totalSteps: c.epochs * stepsPerEpoch })
      : constantLr(c.lr);
  if (c.optimizer === "adam")
    return new Adam(model.parameters(), { lr, weightDecay: c.weightDecay });
  return new SGD(model.parameters(), { lr, momentum: c.momentum, weightDecay: c.weightDecay });
}

/** Where one split's examples came from: the files read, their checksums, and the count. */
export interface SplitProvenance {
  files: { path: string; bytes: number; sha256: string }[];
  count: number;
  /** SHA-256 of the decoded labels then images, independent of how the files are stored. */
  contentSha256: string;
}

/** Recorded in config.json under "data"; a resumed run must see the same content. */
export interface DataProvenance {
  dataset: string;
  train: SplitProvenance;
  test?: SplitProvenance;
}

export interface RunOptions {
  config: TrainConfig;
  train: Dataset;
  test?: Dataset;
  /** Where the data came from, recorded in config.json (and checked when resuming). */
  data?: DataProvenance;
  /**
   * The lock of `dir`, when the caller took it already (pnpm train does, before loading data,
   * so that a busy directory is refused at once); it stays the caller's to release.
   */
  lock?: RunLock;
  /** Directory for config.json, checkpoint.safetensors, metrics.jsonl and summary.json. */
  dir: string;
  progress?: boolean | ProgressReporter;
  /** Run the matrix products on this pool (fit's option; the numbers do not depend on it). */
  pool?: MatrixPool;
  /** Run every training step inside this arena (fit's option; the numbers do not depend on it). */
  arena?: BufferArena;
  /** Stop after this many epochs in this call (the run stays resumable); for tests. */
  maxEpochsThisCall?: number;
}

export interface RunResult {
  config: TrainConfig;
  history: EpochSummary[];
  /** Epochs done in earlier calls (0 for a fresh run). */
  resumedFrom: number;
  finished: boolean;
  /** The first epoch whose training loss says the run diverged (see isDiverged), or null. */
  divergedAtEpoch: number | null;
  /** Temporaries of killed writes removed from the run directory when this call started. */
  removedTemporaries: string[];
  model: Module;
}

const CHECKPOINT = "checkpoint.safetensors";

function saveCheckpoint(
  path: string,
  model: Module,
  optimizer: Optimizer,
  epoch: number,
  history: EpochSummary[],
): void {
  const records = new Map<string, TensorRecord>();
  for (const [name, t] of model.stateDict()) records.set(`model.${name}`, tensorToRecord(t));
  for (const [name, r] of optimizer.stateDict()) records.set(`optimizer.${name}`, r);
  saveSafetensors(path, records, { epoch: String(epoch), history: JSON.stringify(history) });
}

function loadCheckpoint(
  path: string,
  model: Module,
  optimizer: Optimizer,
): { epoch: number; history: EpochSummary[] } {
  const where = `loadCheckpoint(${path})`;
  const file = loadSafetensors(path);
  const modelRecords = new Map<string, TensorRecord>();
  const optState = new Map<string, TensorRecord>();
  for (const [key, r] of file.tensors) {
    if (key.startsWith("model.")) modelRecords.set(key.slice(6), r);
    else if (key.startsWith("optimizer.")) optState.set(key.slice(10), r);
    else throw new Error(`${where}: unexpected key "${key}"`);
  }
  // A record whose dtype is not its parameter's is refused, not reinterpreted.
  const { state, skipped } = stateFromRecords(where, modelRecords, model);
  if (skipped.length > 0) throw new Error(`${where}: unexpected keys: ${skipped.join(", ")}`);
  const epoch = Number(file.metadata.epoch);
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new Error(`${where}: metadata "epoch" is missing or not an integer`);
  let history: EpochSummary[];
  try {
    history = JSON.parse(file.metadata.history ?? "[]") as EpochSummary[];
  } catch (e) {
    throw new Error(`${where}: metadata "history" is not JSON: ${(e as Error).message}`);
  }
  model.loadStateDict(state);
  optimizer.loadStateDict(optState);
  return { epoch, history };
}

/**
 * The kernels a run's float32 products ran on, recorded in config.json under "kernels": the path
 * and, on the wasm path, its two switches (TESSERA_WASM_FMA, TESSERA_WINOGRAD). Each rounds the
 * products differently, so a run resumed on other kernels would not be the run it continues.
 */
export interface KernelProvenance {
  path: KernelPath;
  fma?: boolean;
  winograd?: boolean;
}

/** The kernels this process runs a training on `pool` with (its path, else TESSERA_KERNELS). */
export function kernelProvenance(pool?: MatrixPool): KernelProvenance {
  const path = kernelPath({ pool });
  if (path === "asm") return { path };
  return { path, fma: wasmFmaFromEnv(process.env), winograd: winogradFromEnv(process.env) };
}

interface StoredConfig extends TrainConfig {
  data?: DataProvenance;
  kernels?: KernelProvenance;
}

function readStoredConfig(path: string): StoredConfig {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as StoredConfig;
  } catch (e) {
    throw new Error(`runTraining: ${path} is not readable JSON: ${(e as Error).message}`);
  }
}

/**
 * Trains (or resumes) the run in `dir`. Everything is checked before the directory is touched:
 * the config, that the model takes the dataset's examples, that the training set is not
 * empty. Then the directory's lock is taken (a second process refuses, naming the holder; a
 * dead holder's lock is taken over) and the temporaries of writes killed earlier are removed.
 * A directory holding a different config, or a run trained on other data, is refused with an
 * error naming it; a larger `epochs` extends a finished run.
 */
export function runTraining(options: RunOptions): RunResult {
  const fn = "runTraining";
  const config = validateConfig({ ...options.config });
  const { dir, train } = options;
  checkModelInput(config.model, train.inputShape);
  if (train.count === 0)
    throw new RangeError(`${fn}: the training set is empty (0 examples); expected at least one`);
  if (options.lock !== undefined && options.lock.path !== join(dir, LOCK_FILE))
    throw new Error(`${fn}: options.lock holds ${options.lock.path}, not the lock of ${dir}`);
  const lock = options.lock ?? acquireRunLock(dir, fn);
  try {
    const removedTemporaries = removeAtomicTemporaries(dir);
    return trainLocked(options, config, removedTemporaries);
  } finally {
    if (options.lock === undefined) lock.release();
  }
}

function trainLocked(
  options: RunOptions,
  config: TrainConfig,
  removedTemporaries: string[],
): RunResult {
  const fn = "runTraining";
  const { dir, train, test } = options;
  const configPath = join(dir, "config.json");
  const kernels = kernelProvenance(options.pool);
  // what config.json records: this process's kernels for a new run, else what the run recorded
  // (nothing, for runs begun before the field existed: their kernels are not known)
  let recorded: KernelProvenance | undefined = kernels;
  let data = options.data;
  if (existsSync(configPath)) {
    const { data: oldData, kernels: oldKernels, ...old } = readStoredConfig(configPath);
    if (identity(old) !== identity(config)) {
      throw new Error(
        `${fn}: ${dir} holds a run with a different config (${identity(old)}); ` +
          `use another --out directory or delete it to start over`,
      );
    }
    if (old.schedule === "cosine" && old.epochs !== config.epochs) {
      throw new Error(
        `${fn}: ${dir} uses a cosine schedule over ${old.epochs} epochs; its length cannot change`,
      );
    }
    if (oldData !== undefined && data !== undefined) {
      for (const split of ["train", "test"] as const) {
        const was = oldData[split]?.contentSha256;
        const now = data[split]?.contentSha256;
        if (was !== undefined && now !== undefined && was !== now) {
          throw new Error(
            `${fn}: ${dir} was trained on other ${split} data (content SHA-256 ${was}, now ${now} ` +
              `from ${data[split]!.files.map((f) => f.path).join(", ")}); ` +
              `use another --out directory or the data it was started with`,
          );
        }
      }
    }
    recorded = oldKernels;
    data ??= oldData;
  }
  const stored: StoredConfig = {
    ...config,
    ...(data === undefined ? {} : { data }),
    ...(recorded === undefined ? {} : { kernels: recorded }),
  };
  writeTextAtomic(configPath, JSON.stringify(stored, null, 2) + "\n");

  const model = buildModel(config, train.inputShape);
  const stepsPerEpoch = Math.ceil(train.count / config.batchSize);
  const optimizer = buildOptimizer(config, model, stepsPerEpoch);
  const ckptPath = join(dir, CHECKPOINT);
  let done = 0;
  let history: EpochSummary[] = [];
  if (existsSync(ckptPath)) ({ epoch: done, history } = loadCheckpoint(ckptPath, model, optimizer));
  // Training more epochs on other kernels would not continue the same numbers; loading a
  // finished run (a sweep's dense model) computes nothing, so any kernels may.
  if (
    done < config.epochs &&
    recorded !== undefined &&
    JSON.stringify(recorded) !== JSON.stringify(kernels)
  ) {
    throw new Error(
      `${fn}: ${dir} was trained on the kernels ${JSON.stringify(recorded)}, and this ` +
        `process would run ${JSON.stringify(kernels)}; they round differently, so the ` +
        `resumed run would not continue the same numbers: set TESSERA_KERNELS, ` +
        `TESSERA_WASM_FMA and TESSERA_WINOGRAD as they were, or use another --out directory`,
    );
  }
  const resumedFrom = done;
  const writeMetrics = () =>
    writeTextAtomic(
      join(dir, "metrics.jsonl"),
      history.map((h) => JSON.stringify(h) + "\n").join(""),
    );

  const target = Math.min(config.epochs, done + (options.maxEpochsThisCall ?? Infinity));
  if (done < target) {
    fit(model, {
      train,
      test,
      epochs: config.epochs,
      startEpoch: done + 1,
      batchSize: config.batchSize,
      optimizer,
      seed: config.seed,
      pool: options.pool,
      arena: options.arena,
      progress: options.progress ?? false,
      onEpochEnd: (summary) => {
        history = [...history, summary];
        saveCheckpoint(ckptPath, model, optimizer, summary.epoch, history);
        writeMetrics();
        return summary.epoch >= target ? "stop" : undefined;
      },
    });
    done = target;
  }
  const finished = done >= config.epochs;
  const divergedAtEpoch = history.find((h) => isDiverged(h))?.epoch ?? null;
  if (finished) {
    const last = history[history.length - 1];
    writeTextAtomic(
      join(dir, "summary.json"),
      JSON.stringify(
        {
          config,
          epochs: done,
          finalTestAccuracy: last?.testAccuracy ?? null,
          finalTrainLoss: last?.trainLoss ?? null,
          diverged: divergedAtEpoch !== null,
          divergedAtEpoch,
          totalSeconds: history.reduce((s, h) => s + h.seconds, 0),
        },
        null,
        2,
      ) + "\n",
    );
  }
  return { config, history, resumedFrom, finished, divergedAtEpoch, removedTemporaries, model };
}
