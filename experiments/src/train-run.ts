// One resumable training run: a config, a run directory, and an epoch loop that writes a
// checkpoint (model + optimizer state in one safetensors file, written atomically) after
// every epoch. Re-running the same config continues from the last finished epoch and gives
// the same numbers as an uninterrupted run; asking for more epochs extends a finished run.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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
  recordToTensor,
  type Dataset,
  type EpochSummary,
  type Module,
  type Optimizer,
  type ProgressReporter,
  type TensorRecord,
} from "@tessera/nn";
import type { Tensor } from "@tessera/tensor";
import { Generator } from "@tessera/tensor";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";

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

export interface RunOptions {
  config: TrainConfig;
  train: Dataset;
  test?: Dataset;
  /** Directory for config.json, checkpoint.safetensors, metrics.jsonl and summary.json. */
  dir: string;
  progress?: boolean | ProgressReporter;
  /** Stop after this many epochs in this call (the run stays resumable); for tests. */
  maxEpochsThisCall?: number;
}

export interface RunResult {
  config: TrainConfig;
  history: EpochSummary[];
  /** Epochs done in earlier calls (0 for a fresh run). */
  resumedFrom: number;
  finished: boolean;
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
  const file = loadSafetensors(path);
  const modelState = new Map<string, Tensor>();
  const optState = new Map<string, TensorRecord>();
  for (const [key, r] of file.tensors) {
    if (key.startsWith("model.")) modelState.set(key.slice(6), recordToTensor(r, key));
    else if (key.startsWith("optimizer.")) optState.set(key.slice(10), r);
    else throw new Error(`loadCheckpoint(${path}): unexpected key "${key}"`);
  }
  model.loadStateDict(modelState);
  optimizer.loadStateDict(optState);
  const epoch = Number(file.metadata.epoch);
  if (!Number.isSafeInteger(epoch) || epoch < 0)
    throw new Error(`loadCheckpoint(${path}): metadata "epoch" is missing or not an integer`);
  const history = JSON.parse(file.metadata.history ?? "[]") as EpochSummary[];
  return { epoch, history };
}

/**
 * Trains (or resumes) the run in `dir`. A directory holding a different config is refused
 * with an error naming the differing run; a larger `epochs` extends a finished run.
 */
export function runTraining(options: RunOptions): RunResult {
  const config = validateConfig({ ...options.config });
  const { dir, train, test } = options;
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, "config.json");
  if (existsSync(configPath)) {
    const old = JSON.parse(readFileSync(configPath, "utf8")) as TrainConfig;
    if (identity(old) !== identity(config)) {
      throw new Error(
        `runTraining: ${dir} holds a run with a different config (${identity(old)}); ` +
          `use another --out directory or delete it to start over`,
      );
    }
    if (old.schedule === "cosine" && old.epochs !== config.epochs) {
      throw new Error(
        `runTraining: ${dir} uses a cosine schedule over ${old.epochs} epochs; its length cannot change`,
      );
    }
  }
  writeTextAtomic(configPath, JSON.stringify(config, null, 2) + "\n");

  const model = buildModel(config, train.inputShape);
  const stepsPerEpoch = Math.ceil(train.count / config.batchSize);
  const optimizer = buildOptimizer(config, model, stepsPerEpoch);
  const ckptPath = join(dir, CHECKPOINT);
  let done = 0;
  let history: EpochSummary[] = [];
  if (existsSync(ckptPath)) ({ epoch: done, history } = loadCheckpoint(ckptPath, model, optimizer));
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
          totalSeconds: history.reduce((s, h) => s + h.seconds, 0),
        },
        null,
        2,
      ) + "\n",
    );
  }
  return { config, history, resumedFrom, finished, model };
}
