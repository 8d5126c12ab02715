// The public ReLU kernels of the WebAssembly path (wasm-relu.ts holds the kernels and ranges):
// argument checks, then the range on this thread, or split over a pool by element ranges.
import { runRelu } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import { KIND_WASM_RELU, KIND_WASM_RELU_BACKWARD } from "./jobs.ts";
import { reluBackwardRange, reluRange } from "./wasm-relu.ts";
import type { ReluArgs, ReluBackwardArgs } from "./wasm-relu.ts";
import { localWasmThread } from "./wasm-gemm.ts";

/**
 * The pool to split over: only when every array is on shared memory (else the pool's staging
 * copies, serial on the caller, would cost as much as the work).
 */
function sharedPool(
  arrays: Float32Array[],
  options: { pool?: MatrixPool } | undefined,
): MatrixPool | undefined {
  return arrays.every((a) => a.buffer instanceof SharedArrayBuffer) ? options?.pool : undefined;
}

function checkLengths(fn: string, n: number, arrays: [string, Float32Array][]): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${fn}: n must be a non-negative integer, got ${n}`);
  for (const [name, a] of arrays)
    if (a.length < n) throw new RangeError(`${fn}: ${name} has ${a.length} elements, need ${n}`);
}

/**
 * y[i] = max(x[i], +0) for i < n (NaN stays NaN), float32. With a pool, split over its threads
 * by element ranges when x and y are on shared memory and the work pays (runRelu in
 * parallel.ts).
 */
export function wasmRelu(
  x: Float32Array,
  y: Float32Array,
  n: number,
  options?: { pool?: MatrixPool },
): void {
  checkLengths("wasmRelu", n, [
    ["x", x],
    ["y", y],
  ]);
  if (n === 0) return;
  const a: ReluArgs = { x: x.subarray(0, n), y: y.subarray(0, n) };
  runRelu(KIND_WASM_RELU, a, n, sharedPool([x, y], options), (lo, hi) =>
    reluRange(localWasmThread(), a, lo, hi),
  );
}

/**
 * gx[i] = y[i] > 0 ? g[i] + 0 : +0 for i < n (the ReLU gradient from its output), float32; split
 * over a pool as wasmRelu.
 */
export function wasmReluBackward(
  g: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
  options?: { pool?: MatrixPool },
): void {
  checkLengths("wasmReluBackward", n, [
    ["g", g],
    ["y", y],
    ["gx", gx],
  ]);
  if (n === 0) return;
  const a: ReluBackwardArgs = { g: g.subarray(0, n), y: y.subarray(0, n), gx: gx.subarray(0, n) };
  runRelu(KIND_WASM_RELU_BACKWARD, a, n, sharedPool([g, y, gx], options), (lo, hi) =>
    reluBackwardRange(localWasmThread(), a, lo, hi),
  );
}
