// The public ReLU kernels of the WebAssembly path (wasm-relu.ts holds the kernels and ranges):
// argument checks, then the range on this thread, or split over a pool by element ranges.
import { runRelu } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import { KIND_WASM_RELU, KIND_WASM_RELU_BACKWARD } from "./jobs.ts";
import { reluBackwardRange, reluRange } from "./wasm-relu.ts";
import type { ReluArgs, ReluBackwardArgs } from "./wasm-relu.ts";
import { localWasmThread } from "./wasm-gemm.ts";

function checkLengths(fn: string, n: number, arrays: [string, Float32Array][]): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${fn}: n must be a non-negative integer, got ${n}`);
  for (const [name, a] of arrays)
    if (a.length < n) throw new RangeError(`${fn}: ${name} has ${a.length} elements, need ${n}`);
}

/**
 * y[i] = max(x[i], +0) for i < n (NaN stays NaN), float32; split over `pool` by element ranges
 * when it pays (runRelu in parallel.ts).
 */
export function wasmRelu(x: Float32Array, y: Float32Array, n: number, pool?: MatrixPool): void {
  checkLengths("wasmRelu", n, [
    ["x", x],
    ["y", y],
  ]);
  if (n === 0) return;
  const a: ReluArgs = { x: x.subarray(0, n), y: y.subarray(0, n) };
  runRelu(KIND_WASM_RELU, a, n, pool, (lo, hi) => reluRange(localWasmThread(), a, lo, hi));
}

/** gx[i] = y[i] > 0 ? g[i] + 0 : +0 for i < n (the ReLU gradient from its output), float32. */
export function wasmReluBackward(
  g: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
  pool?: MatrixPool,
): void {
  checkLengths("wasmReluBackward", n, [
    ["g", g],
    ["y", y],
    ["gx", gx],
  ]);
  if (n === 0) return;
  const a: ReluBackwardArgs = { g: g.subarray(0, n), y: y.subarray(0, n), gx: gx.subarray(0, n) };
  runRelu(KIND_WASM_RELU_BACKWARD, a, n, pool, (lo, hi) =>
    reluBackwardRange(localWasmThread(), a, lo, hi),
  );
}
