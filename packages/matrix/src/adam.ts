// Adam's update (PyTorch's form) as an elementwise kernel over one parameter's arrays, so it can
// run on a matrix pool's threads: on one thread it was 5.3% of the calling thread's samples in a
// two-thread LeNet-5 step (docs/benchmarks/epoch-profile.md), serial while the worker waited.
// Every element's arithmetic is the same expression in the same order whichever thread runs
// it, so a split gives the serial loop's bits. @tessera/nn's Adam and AdamW call it.
import type { FloatArray } from "./types.ts";
import { checkFloatArray, checkSameType } from "./types.ts";
import type { MatrixPool } from "./pool.ts";
import { runAdam } from "./parallel.ts";
import { resolveKernels } from "./kernels.ts";
import type { KernelPath } from "./kernels.ts";
import { ADAM_FIELDS, type AdamJobArgs } from "./adam-kernel.ts";

/** One step's scalars (the step count t is folded into stepSize and bc2sqrt). */
export interface AdamStep {
  beta1: number;
  beta2: number;
  eps: number;
  /** lr / (1 - beta1^t). */
  stepSize: number;
  /** sqrt(1 - beta2^t). */
  bc2sqrt: number;
  /** Adam's L2 term added to the gradient (0: none). */
  l2: number;
  /** AdamW's decoupled decay factor on the weights, 1 - lr * wd (1: none). */
  shrink: number;
}

/**
 * In place, for every k: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
 * w = w - stepSize m / (sqrt(v) / bc2sqrt + eps), with Adam's L2 term (g + l2 w) and AdamW's
 * decay (w shrink) when set; sums in double, stored in the arrays' type; on the wasm kernel path
 * (float32 arrays) the same expression in float32 on f32x4 lanes (wasm-adam.ts). With a pool,
 * split over its threads when w, g, m and v are all on shared memory and the work pays for it
 * (the same bits as one thread on either path).
 */
export function adamUpdate(
  w: FloatArray,
  g: FloatArray,
  m: FloatArray,
  v: FloatArray,
  step: AdamStep,
  options?: { pool?: MatrixPool; kernels?: KernelPath },
): void {
  const fn = "adamUpdate";
  const arrays = { w, g, m, v };
  for (const [name, a] of Object.entries(arrays)) {
    checkFloatArray(fn, name, a);
    checkSameType(fn, name, w, a);
    if (a.length !== w.length)
      throw new RangeError(`${fn}: ${name} has ${a.length} values, expected w's ${w.length}`);
  }
  const h = new Float64Array(ADAM_FIELDS.length);
  ADAM_FIELDS.forEach((f, i) => {
    const x = step[f];
    if (typeof x !== "number" || !Number.isFinite(x))
      throw new TypeError(`${fn}: step.${f} must be a finite number, got ${String(x)}`);
    h[i] = x;
  });
  const args: AdamJobArgs = { w, g, m, v, h };
  const shared = [w, g, m, v].every((a) => a.buffer instanceof SharedArrayBuffer);
  const wasm =
    w instanceof Float32Array && resolveKernels(fn, options?.kernels, options?.pool) === "wasm";
  runAdam(args, w.length, shared ? options?.pool : undefined, wasm);
}
