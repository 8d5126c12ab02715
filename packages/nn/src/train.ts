// The training loop: seeded shuffled mini-batches, one optimizer step per batch, per-epoch
// loss / accuracy / time, JSONL metrics and progress output.
import type { Tensor } from "@tessera/tensor";
import { Generator } from "@tessera/tensor";
import type { MatrixPool } from "@tessera/matrix";
import {
  BufferArena,
  Variable,
  getMatrixPool,
  noGrad,
  setMatrixPool,
  softmaxCrossEntropy,
} from "@tessera/autograd";
import type { Dataset } from "./data.ts";
import { MetricsLogger } from "./metrics.ts";
import type { Module } from "./module.ts";
import type { Optimizer } from "./optim.ts";
import {
  createProgress,
  type EpochSummary,
  type ProgressOptions,
  type ProgressReporter,
} from "./progress.ts";

/** Loss from logits [N, C] and labels; must return a scalar averaged over the batch. */
export type LossFn = (logits: Variable, labels: Int32Array) => Variable;

export const crossEntropyLoss: LossFn = (logits, labels) => softmaxCrossEntropy(logits, labels);

export interface StepInfo {
  epoch: number; // 1-based
  step: number; // 1-based within the epoch
  globalStep: number; // optimizer steps done before this one
  loss: number;
  model: Module;
  optimizer: Optimizer;
}

export interface FitOptions {
  train: Dataset;
  test?: Dataset;
  epochs: number;
  batchSize: number;
  optimizer: Optimizer;
  lossFn?: LossFn;
  /** Seeds the order of examples; the same seed (and model init) gives identical runs. */
  seed: number;
  /** Append one JSON line per epoch (the EpochSummary) to this file. */
  logFile?: string;
  /** true: bar on a TTY, lines otherwise (stderr); or options / a reporter. Default: silent. */
  progress?: boolean | ProgressOptions | ProgressReporter;
  /**
   * Run the matrix products on this @tessera/matrix worker pool (createPool({ threads: 2 }))
   * for the duration of the call; the previously set pool is restored afterwards. Default:
   * whatever autograd's setMatrixPool has set (none: one thread).
   */
  pool?: MatrixPool;
  /** Batch size for the test pass (default: batchSize). */
  evalBatchSize?: number;
  /**
   * Run every training step inside this @tessera/autograd BufferArena's step(): the arrays a
   * step's forward, backward and gradients allocate are recycled after the optimizer step and
   * zeroGrad, so later steps allocate (and page-fault) nothing new. Same numbers bit for bit.
   * Default: none (every step allocates fresh arrays). The loss and the logits are read inside
   * the step; nothing a step allocated is handed out of fit, and the parameters' gradients are
   * cleared at the end of every step, so fit itself keeps nothing the arena recycles. A
   * beforeStep hook must not keep references to the gradients it sees (it may read and write
   * them in place).
   */
  arena?: BufferArena;
  /**
   * Called after backward() and before optimizer.step(): the place to add penalty gradients
   * (ADMM, KEP regularisation) to the parameters' .grad in place.
   */
  beforeStep?: (info: StepInfo) => void;
  /**
   * First epoch to run (1-based, default 1), for resuming from a checkpoint taken after epoch
   * startEpoch - 1. The shuffling generator is advanced past the skipped epochs, so every epoch
   * sees the same order as in an uninterrupted run.
   */
  startEpoch?: number;
  /** Called after each epoch; return "stop" to end training early. */
  onEpochEnd?: (summary: EpochSummary, model: Module) => void | "stop";
}

export interface FitResult {
  history: EpochSummary[];
}

function checkPositiveInt(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function checkDataset(fn: string, name: string, d: unknown): asserts d is Dataset {
  const ds = d as Dataset;
  if (
    d === null ||
    typeof d !== "object" ||
    typeof ds.getBatch !== "function" ||
    !Number.isSafeInteger(ds.count) ||
    !Array.isArray(ds.inputShape)
  ) {
    throw new Error(`${fn}: ${name} must be a Dataset { count, inputShape, getBatch(indices) }`);
  }
}

/** Number of rows of `logits` [N, C] whose arg-max equals the label. */
export function countCorrect(logits: Tensor, labels: Int32Array): number {
  if (logits.shape.length !== 2 || logits.shape[0] !== labels.length) {
    throw new Error(
      `countCorrect: expected logits [${labels.length}, C], got [${logits.shape.join(",")}]`,
    );
  }
  const t = logits.contiguous();
  const d = t.data;
  const n = t.shape[0]!;
  const c = t.shape[1]!;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = d[i * c]!;
    for (let j = 1; j < c; j++) {
      const v = d[i * c + j]!;
      if (v > bv) {
        bv = v;
        best = j;
      }
    }
    if (best === labels[i]) correct++;
  }
  return correct;
}

/** Runs `fn` with `pool` set as autograd's matrix pool (when given), restoring the previous one. */
function withPool<T>(pool: MatrixPool | undefined, fn: () => T): T {
  if (pool === undefined) return fn();
  const prev = getMatrixPool();
  setMatrixPool(pool);
  try {
    return fn();
  } finally {
    setMatrixPool(prev);
  }
}

function sequentialIndices(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/**
 * Mean loss and accuracy over a dataset, in evaluation mode and without recording a graph.
 * The model's training flag is restored afterwards.
 */
export function evaluate(
  model: Module,
  data: Dataset,
  options: { batchSize?: number; lossFn?: LossFn; pool?: MatrixPool } = {},
): { loss: number; accuracy: number } {
  const fn = "evaluate";
  checkDataset(fn, "data", data);
  const batchSize = checkPositiveInt(fn, "batchSize", options.batchSize ?? 256);
  const lossFn = options.lossFn ?? crossEntropyLoss;
  if (data.count === 0) throw new RangeError(`${fn}: the dataset is empty`);
  const wasTraining = model.training;
  model.eval();
  try {
    return withPool(options.pool, () =>
      noGrad(() => {
        const idx = sequentialIndices(data.count);
        let lossSum = 0;
        let correct = 0;
        for (let start = 0; start < data.count; start += batchSize) {
          const end = Math.min(start + batchSize, data.count);
          const batch = data.getBatch(idx.subarray(start, end));
          const logits = model.forward(new Variable(batch.x));
          lossSum += lossFn(logits, batch.y).data.item() * (end - start);
          correct += countCorrect(logits.data, batch.y);
        }
        return { loss: lossSum / data.count, accuracy: correct / data.count };
      }),
    );
  } finally {
    model.train(wasTraining);
  }
}

function makeReporter(p: FitOptions["progress"]): ProgressReporter {
  if (p === undefined || p === false) return createProgress({ mode: "none" });
  if (p === true) return createProgress();
  if (typeof (p as ProgressReporter).startEpoch === "function") return p as ProgressReporter;
  return createProgress(p as ProgressOptions);
}

/**
 * Trains `model` for `epochs` passes over `train`. Each epoch visits every example once in an
 * order drawn from a Generator seeded with `seed` (the last batch may be smaller). A
 * non-finite loss stops training with an error naming the epoch and step.
 */
export function fit(model: Module, options: FitOptions): FitResult {
  const fn = "fit";
  if (options === null || typeof options !== "object")
    throw new Error(`${fn}: options are required`);
  checkDataset(fn, "train", options.train);
  if (options.test !== undefined) checkDataset(fn, "test", options.test);
  const epochs = checkPositiveInt(fn, "epochs", options.epochs);
  const batchSize = checkPositiveInt(fn, "batchSize", options.batchSize);
  if (!Number.isSafeInteger(options.seed) || options.seed < 0)
    throw new RangeError(`${fn}: seed must be a non-negative integer, got ${String(options.seed)}`);
  const opt = options.optimizer;
  if (opt === undefined || typeof opt.step !== "function")
    throw new Error(`${fn}: optimizer must be an Optimizer (SGD, Adam, AdamW)`);
  const train = options.train;
  if (train.count === 0) throw new RangeError(`${fn}: the training set is empty`);
  const lossFn = options.lossFn ?? crossEntropyLoss;
  const logger = options.logFile !== undefined ? new MetricsLogger(options.logFile) : null;
  const reporter = makeReporter(options.progress);
  const arena = options.arena;
  if (arena !== undefined && !(arena instanceof BufferArena))
    throw new TypeError(`${fn}: arena must be a BufferArena from @tessera/autograd`);
  const startEpoch = checkPositiveInt(fn, "startEpoch", options.startEpoch ?? 1);
  if (startEpoch > epochs)
    throw new RangeError(`${fn}: startEpoch ${startEpoch} is beyond epochs ${epochs}`);
  const rng = new Generator(options.seed);
  for (let e = 1; e < startEpoch; e++) rng.permutation(options.train.count);
  const steps = Math.ceil(train.count / batchSize);
  const history: EpochSummary[] = [];

  model.zeroGrad();
  try {
    withPool(options.pool, runEpochs);
  } finally {
    reporter.close?.();
  }
  return { history };

  function runEpochs(): void {
    for (let epoch = startEpoch; epoch <= epochs; epoch++) {
      model.train();
      const t0 = performance.now();
      const order = rng.permutation(train.count);
      reporter.startEpoch(epoch, epochs, steps);
      let lossSum = 0;
      let correct = 0;
      let lr = opt.lr;
      for (let step = 1; step <= steps; step++) {
        const start = (step - 1) * batchSize;
        const end = Math.min(start + batchSize, train.count);
        const batch = train.getBatch(order.subarray(start, end));
        const run = (): number => {
          const logits = model.forward(new Variable(batch.x));
          const loss = lossFn(logits, batch.y);
          const lv = loss.data.item();
          if (!Number.isFinite(lv)) {
            throw new Error(
              `${fn}: loss is ${lv} at epoch ${epoch}, step ${step} of ${steps} (global step ${opt.stepCount}); lower the learning rate or check the inputs`,
            );
          }
          loss.backward();
          lr = opt.lr;
          options.beforeStep?.({
            epoch,
            step,
            globalStep: opt.stepCount,
            loss: lv,
            model,
            optimizer: opt,
          });
          opt.step();
          model.zeroGrad();
          // read before the arena (if any) takes the logits' array back
          correct += countCorrect(logits.data, batch.y);
          return lv;
        };
        const lv = arena === undefined ? run() : arena.step(run);
        lossSum += lv * (end - start);
        reporter.step(step, lv);
      }
      const summary: EpochSummary = {
        epoch,
        epochs,
        trainLoss: lossSum / train.count,
        trainAccuracy: correct / train.count,
        seconds: 0,
        lr,
      };
      if (options.test !== undefined) {
        const r = evaluate(model, options.test, {
          batchSize: options.evalBatchSize ?? batchSize,
          lossFn,
        });
        summary.testLoss = r.loss;
        summary.testAccuracy = r.accuracy;
      }
      summary.seconds = (performance.now() - t0) / 1000;
      history.push(summary);
      reporter.endEpoch(summary);
      logger?.log({ ...summary });
      if (options.onEpochEnd?.(summary, model) === "stop") break;
    }
  }
}
