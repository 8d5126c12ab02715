// Inference and training timing of several models side by side. Models are timed in turn within each
// repetition (dense, BSR, CSR, dense, BSR, CSR, ...) so a load that comes and goes on a shared
// machine hits all of them alike; the figure kept per model is the median repetition.
// Beside the wall clock, each repetition's CPU time (process.cpuUsage(), user + system) is kept:
// it covers every thread of the process, so with a pool it sums the caller's and the workers'
// time (their spin-waits included), and it is what other jobs on a shared machine distort least.
import {
  type BufferArena,
  Variable,
  noGrad,
  setMatrixPool,
  getMatrixPool,
  softmaxCrossEntropy,
} from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import { Module, type Dataset, type Optimizer } from "@tessera/nn";
import type { InferencePlan } from "@tessera/pruning";
import { Generator, Tensor } from "@tessera/tensor";

export interface TimedModel {
  name: string;
  model: Module;
}

export interface TimingOptions {
  /** Timed repetitions per model (after the untimed warm-up). Default 9. */
  reps?: number;
  /**
   * Untimed forwards per model before the reps (default 20, at least 1). One was too few: the
   * JavaScript around the kernels (products' dispatch, the pool, the plans) is still being
   * optimised in the first reps, on a background compiler thread that takes a core from the
   * timed work on a 2-core machine. With one warm-up, the two-thread BSR plan of LeNet-300-100
   * at 10.8% had reps of 1.4-3.5 ms among its 1.0-1.1 ms ones (2-4 of 9; medians 1.09-1.26 ms
   * over 5 processes), with 20 none (1.03-1.13 ms; dense plan medians 5.8 ms either way): a
   * scratch copy of this loop, 2026-12-02.
   */
  warmup?: number;
  /** Forward passes per repetition (for tiny batches, so one repetition is not ~10 us). */
  callsPerRep?: number;
  pool?: MatrixPool;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** CPU seconds (user + system, every thread of this process) since `start`. */
function cpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

/**
 * Median seconds of one forward pass of each model on `x` (eval mode, no graph), by name.
 * With `pool`, products run on it (results are the same bits either way).
 */
export function timeForward(
  models: readonly TimedModel[],
  x: Tensor,
  options: TimingOptions = {},
): Map<string, number> {
  return timeForwardCpu(models, x, options).wall;
}

/** Medians of one forward pass by name: wall-clock seconds and CPU seconds (all threads). */
export interface ForwardTiming {
  wall: Map<string, number>;
  cpu: Map<string, number>;
}

/**
 * timeForward, also keeping each repetition's CPU time (process.cpuUsage(): all threads of the
 * process, so on a pool of 2 threads the sum of both); both medians are over the same reps.
 */
export function timeForwardCpu(
  models: readonly TimedModel[],
  x: Tensor,
  options: TimingOptions = {},
): ForwardTiming {
  const reps = options.reps ?? 9;
  const calls = options.callsPerRep ?? 1;
  const warmup = options.warmup ?? 20;
  if (!Number.isSafeInteger(reps) || reps < 1)
    throw new RangeError(`timeForward: reps must be a positive integer, got ${reps}`);
  if (!Number.isSafeInteger(warmup) || warmup < 1)
    throw new RangeError(`timeForward: warmup must be a positive integer, got ${warmup}`);
  const input = new Variable(x);
  const times = new Map<string, number[]>(models.map((m) => [m.name, []]));
  const cpu = new Map<string, number[]>(models.map((m) => [m.name, []]));
  const prev = getMatrixPool();
  setMatrixPool(options.pool);
  try {
    noGrad(() => {
      for (const { model } of models) {
        model.eval();
        for (let w = 0; w < warmup; w++) model.forward(input); // JIT, pool staging caches
      }
      for (let r = 0; r < reps; r++) {
        for (const { name, model } of models) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          for (let c = 0; c < calls; c++) model.forward(input);
          times.get(name)!.push((performance.now() - t0) / 1000 / calls);
          cpu.get(name)!.push(cpuSince(c0) / calls);
        }
      }
    });
  } finally {
    setMatrixPool(prev);
  }
  const medians = (m: Map<string, number[]>) => new Map([...m].map(([k, v]) => [k, median(v)]));
  return { wall: medians(times), cpu: medians(cpu) };
}

/** A [batch, ...shape] float32 tensor of the first `batch` examples' inputs. */
export function firstBatch(
  data: { getBatch(idx: Int32Array): { x: Tensor } },
  batch: number,
): Tensor {
  const idx = new Int32Array(batch);
  for (let i = 0; i < batch; i++) idx[i] = i;
  return data.getBatch(idx).x;
}

/** One model trained in a timing run, with its own optimizer (masked or not). */
export interface TimedTraining {
  name: string;
  model: Module;
  optimizer: Optimizer;
  /** Run each step inside this arena's step() (as fit's `arena` option); default none. */
  arena?: BufferArena;
}

export interface TrainingTimingOptions {
  batchSize: number;
  /**
   * Optimizer steps per repetition; default a full epoch (ceil(count / batchSize) steps, the
   * last batch shorter). Fewer steps make a quick run: the result says how many were timed.
   */
  steps?: number;
  /** Timed repetitions per model (after one untimed warm-up step each). Default 3. */
  reps?: number;
  /** Seeds the order of examples; every model sees the same batches in the same order. */
  seed: number;
  pool?: MatrixPool;
}

export interface TrainingTiming {
  /** Median seconds of one repetition (`steps` optimizer steps), by name. */
  seconds: Map<string, number>;
  /** Every repetition's seconds, by name (in the order they ran). */
  all: Map<string, number[]>;
  /** Median CPU seconds of one repetition (all threads of the process: a pool's workers too), by name. */
  cpuSeconds: Map<string, number>;
  steps: number;
  /** Steps of a full epoch at this batch size. */
  stepsPerEpoch: number;
  /** Mean training loss of each model's last repetition, by name (a sanity figure). */
  lastLoss: Map<string, number>;
}

/**
 * Times training steps (forward, cross-entropy, backward, optimizer step, zero grad) of several
 * models side by side: within each repetition every model runs the same `steps` batches in
 * turn (dense, sparse, dense, sparse, ...), so a load that comes and goes on a shared machine
 * hits them alike. The models keep training across repetitions, as fine-tuning would.
 */
export function timeTraining(
  variants: readonly TimedTraining[],
  data: Dataset,
  options: TrainingTimingOptions,
): TrainingTiming {
  const fn = "timeTraining";
  const reps = options.reps ?? 3;
  const { batchSize } = options;
  if (!Number.isSafeInteger(reps) || reps < 1)
    throw new RangeError(`${fn}: reps must be a positive integer, got ${reps}`);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new RangeError(`${fn}: batchSize must be a positive integer, got ${batchSize}`);
  if (data.count < 1) throw new RangeError(`${fn}: the dataset is empty`);
  const stepsPerEpoch = Math.ceil(data.count / batchSize);
  const steps = options.steps ?? stepsPerEpoch;
  if (!Number.isSafeInteger(steps) || steps < 1)
    throw new RangeError(`${fn}: steps must be a positive integer, got ${steps}`);
  const rng = new Generator(options.seed);
  let order = rng.permutation(data.count);
  let cursor = 0;
  // The batches of one repetition, drawn before timing (every model gets the same ones); an
  // epoch's order is used up before the next permutation is drawn.
  const nextBatches = (): Int32Array[] => {
    const out: Int32Array[] = [];
    for (let s = 0; s < steps; s++) {
      if (cursor >= data.count) {
        order = rng.permutation(data.count);
        cursor = 0;
      }
      const end = Math.min(cursor + batchSize, data.count);
      out.push(order.slice(cursor, end));
      cursor = end;
    }
    return out;
  };
  const step = (v: TimedTraining, idx: Int32Array): number => {
    const batch = data.getBatch(idx);
    const body = (): number => {
      const loss = softmaxCrossEntropy(v.model.forward(new Variable(batch.x)), batch.y);
      loss.backward();
      v.optimizer.step();
      v.model.zeroGrad();
      return loss.data.item();
    };
    return v.arena === undefined ? body() : v.arena.step(body);
  };
  const all = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const allCpu = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const lastLoss = new Map<string, number>();
  const prev = getMatrixPool();
  setMatrixPool(options.pool);
  try {
    const warm = nextBatches()[0]!;
    for (const v of variants) {
      v.model.train();
      v.model.zeroGrad();
      step(v, warm); // JIT and pool staging caches, like timeForward's warm-up
    }
    for (let r = 0; r < reps; r++) {
      const batches = nextBatches();
      for (const v of variants) {
        let lossSum = 0;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        for (const idx of batches) lossSum += step(v, idx) * idx.length;
        all.get(v.name)!.push((performance.now() - t0) / 1000);
        allCpu.get(v.name)!.push(cpuSince(c0));
        lastLoss.set(v.name, lossSum / batches.reduce((a, b) => a + b.length, 0));
      }
    }
  } finally {
    setMatrixPool(prev);
  }
  return {
    seconds: new Map([...all].map(([k, v]) => [k, median(v)])),
    all,
    cpuSeconds: new Map([...allCpu].map(([k, v]) => [k, median(v)])),
    steps,
    stepsPerEpoch,
    lastLoss,
  };
}

/**
 * An InferencePlan behind Module's forward, so timeForwardCpu times it in the same reps as the
 * modules (the wrapper objects it makes per call are two small ones, no arrays).
 */
export class PlannedForward extends Module {
  constructor(private readonly plan: InferencePlan) {
    super();
  }
  override forward(x: Variable): Variable {
    const y = this.plan.run(x.data);
    return new Variable(new Tensor(y, [this.plan.batch, this.plan.outFeatures]));
  }
}
