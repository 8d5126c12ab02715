// Inference timing of several models side by side. Models are timed in turn within each
// repetition (dense, BSR, CSR, dense, BSR, CSR, ...) so a load that comes and goes on a shared
// machine hits all of them alike; the figure kept per model is the median repetition.
import { Variable, noGrad, setMatrixPool, getMatrixPool } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import type { Module } from "@tessera/nn";
import type { Tensor } from "@tessera/tensor";

export interface TimedModel {
  name: string;
  model: Module;
}

export interface TimingOptions {
  /** Timed repetitions per model (after one untimed warm-up each). Default 9. */
  reps?: number;
  /** Forward passes per repetition (for tiny batches, so one repetition is not ~10 us). */
  callsPerRep?: number;
  pool?: MatrixPool;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
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
  const reps = options.reps ?? 9;
  const calls = options.callsPerRep ?? 1;
  if (!Number.isSafeInteger(reps) || reps < 1)
    throw new RangeError(`timeForward: reps must be a positive integer, got ${reps}`);
  const input = new Variable(x);
  const times = new Map<string, number[]>(models.map((m) => [m.name, []]));
  const prev = getMatrixPool();
  setMatrixPool(options.pool);
  try {
    noGrad(() => {
      for (const { model } of models) {
        model.eval();
        model.forward(input); // warm-up: JIT, pool staging caches
      }
      for (let r = 0; r < reps; r++) {
        for (const { name, model } of models) {
          const t0 = performance.now();
          for (let c = 0; c < calls; c++) model.forward(input);
          times.get(name)!.push((performance.now() - t0) / 1000 / calls);
        }
      }
    });
  } finally {
    setMatrixPool(prev);
  }
  return new Map([...times].map(([k, v]) => [k, median(v)]));
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
