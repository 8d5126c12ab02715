// The public ReLU kernels of the WebAssembly path (wasm-relu.ts holds the kernels and ranges):
// argument checks, then the range on this thread, or split over a pool by element ranges (by
// planes for the backward with the bias gradient's sums, by columns when a plane is one value).
import { runRelu } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import {
  KIND_WASM_RELU,
  KIND_WASM_RELU_BACKWARD,
  KIND_WASM_RELU_BACKWARD_COLUMNS,
  KIND_WASM_RELU_BACKWARD_SUMS,
} from "./jobs.ts";
import {
  reluBackwardColumnsRange,
  reluBackwardRange,
  reluBackwardSumsRange,
  reluRange,
} from "./wasm-relu.ts";
import type {
  ReluArgs,
  ReluBackwardArgs,
  ReluBackwardColumnsArgs,
  ReluBackwardSumsArgs,
} from "./wasm-relu.ts";
import { SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";
import { channelSums } from "./channel-sums.ts";
import { checkDim } from "./types.ts";

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
  runRelu(KIND_WASM_RELU, a, n, n, sharedPool([x, y], options), (lo, hi) =>
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
  runRelu(KIND_WASM_RELU_BACKWARD, a, n, n, sharedPool([g, y, gx], options), (lo, hi) =>
    reluBackwardRange(localWasmThread(), a, lo, hi),
  );
}

/**
 * wasmReluBackward over g, y, gx as [n, c, p] (n images of c channels of p positions) together
 * with a layer's bias gradient: acc[j] += the sum over images and positions of channel j of gx,
 * in float64, positions first, then images in order: channelSums' additions, so the bits are
 * those of wasmReluBackward followed by channelSums(gx), in one pass over the arrays instead of
 * two (a ReLU fused into a convolution or a Linear layer: autograd's conv2d and linear with
 * `relu`). Float32 arrays, acc float64 (at least c). With a pool, split by planes as wasmRelu
 * splits elements; p = 1 (a Linear layer's [n, c]) runs column by column instead, split by
 * columns. A sum that is NaN is NaN either way, but with p = 1 not always the same NaN (its
 * sign can differ: neither JavaScript nor WebAssembly fixes a NaN's bits, measured -NaN here
 * against the two passes' +NaN after Infinity - Infinity).
 */
export function wasmReluBackwardChannelSums(
  g: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
  c: number,
  p: number,
  acc: Float64Array,
  options?: { pool?: MatrixPool },
): void {
  const fn = "wasmReluBackwardChannelSums";
  checkDim(fn, "n", n);
  checkDim(fn, "c", c);
  checkDim(fn, "p", p);
  const len = n * c * p;
  checkLengths(fn, len, [
    ["g", g],
    ["y", y],
    ["gx", gx],
  ]);
  if (!(acc instanceof Float64Array) || acc.length < c)
    throw new RangeError(`${fn}: acc must be a Float64Array of at least c = ${c} sums`);
  if (len === 0) return;
  if (p === 1) {
    // A Linear layer's [rows, features]: each column summed down the rows, four columns a step
    // (the plane kernel below would run a one-float plane, its scalar tail, per element)
    const a: ReluBackwardColumnsArgs = {
      g: g.subarray(0, len),
      y: y.subarray(0, len),
      gx: gx.subarray(0, len),
      acc,
      rows: n,
      c,
    };
    runRelu(KIND_WASM_RELU_BACKWARD_COLUMNS, a, c, len, sharedPool([g, y, gx], options), (lo, hi) =>
      reluBackwardColumnsRange(localWasmThread(), a, lo, hi),
    );
    return;
  }
  // a plane must fit a thread's scratch region three times over: else the two passes
  if (12 * p + 72 > SCRATCH_BYTES) {
    wasmReluBackward(g, y, gx, len, options);
    channelSums(gx, n, c, p, acc, options);
    return;
  }
  const pool = sharedPool([g, y, gx], options);
  const planes = n * c;
  const sums =
    pool === undefined
      ? new Float64Array(planes)
      : new Float64Array(new SharedArrayBuffer(8 * planes));
  const a: ReluBackwardSumsArgs = {
    g: g.subarray(0, len),
    y: y.subarray(0, len),
    gx: gx.subarray(0, len),
    sums,
    p,
  };
  runRelu(KIND_WASM_RELU_BACKWARD_SUMS, a, planes, len, pool, (lo, hi) =>
    reluBackwardSumsRange(localWasmThread(), a, lo, hi),
  );
  for (let i = 0; i < n; i++) for (let j = 0; j < c; j++) acc[j] = acc[j]! + sums[i * c + j]!;
}
