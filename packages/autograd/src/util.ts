// Small private helpers shared by the ops: typed-array access, allocation, shape text and
// argument checks. Kept here so each op file holds only its own math.
import { channelSums as matrixChannelSums, wasmReluBackwardChannelSums } from "@tessera/matrix";
import { Tensor } from "@tessera/tensor";
import type { DType, TypedArray } from "@tessera/tensor";
import { activeArena } from "./arena.ts";
import { getMatrixPool } from "./matrix-pool.ts";

export type FloatArray = Float32Array | Float64Array;

/** `[2,3]` style text for error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A zero-filled float array of `dtype` (int32 is never a gradient or op output here). */
export function allocFloat(dtype: DType, n: number): FloatArray {
  return alloc(dtype === "float64", n);
}

/** A zero-filled array of `n` elements of `like`'s element type. */
export function allocLike(like: FloatArray, n: number): FloatArray {
  return alloc(like instanceof Float64Array, n);
}

/**
 * An array of `n` elements of `like`'s type for an op that writes every element before anything
 * reads it: inside a BufferArena's step a reused array comes back as the last step left it,
 * without allocLike's zero fill (poison mode fills recycled arrays with NaN, so an element the
 * op failed to write shows up in the arena tests).
 */
export function allocOutputLike(like: FloatArray, n: number): FloatArray {
  return alloc(like instanceof Float64Array, n, false);
}

// Every op output, saved temporary and gradient comes through here: inside a BufferArena's
// step() it is the arena's (zero-filled unless `zero` is false, recycled when the step ends, on
// shared memory while a matrix pool is set so the pool's workers use it in place; see
// arena.ts), else new.
function alloc(f64: boolean, n: number, zero = true): FloatArray {
  const arena = activeArena();
  if (arena !== null && n > 0) return arena.take(f64, n, getMatrixPool() !== undefined, zero);
  return f64 ? new Float64Array(n) : new Float32Array(n);
}

/**
 * The bias gradient of a layer whose output gradient `g` is [n, c, p] (a Linear's [rows, out]
 * is p = 1): per channel the sum over images and positions, accumulated in float64 and
 * rounded once into an array of `like`'s type. Positions are summed first, then images, so
 * every layer that shares this gets the same bits for the same numbers.
 */
export function channelSums(g: FloatArray, n: number, c: number, p: number, like: FloatArray) {
  // Split over the matrix pool by channels when g and acc are shared (inside an arena's step).
  return roundedSums(c, like, (acc) =>
    matrixChannelSums(g, n, c, p, acc, { pool: getMatrixPool() }),
  );
}

/** c float64 sums accumulated by `sum` from zero, rounded once into an array of `like`'s type. */
function roundedSums(c: number, like: FloatArray, sum: (acc: Float64Array) => void) {
  const acc = alloc(true, c) as Float64Array;
  sum(acc);
  const out = allocLike(like, c);
  out.set(acc);
  return out;
}

/**
 * A fused ReLU's backward with the layer's bias gradient, on the wasm path (float32): gx = g where
 * y > 0, else +0, over [n, c, p], and the bias gradient of gx as channelSums gives it, from one
 * pass over the arrays (the same bits as relu's backward followed by channelSums).
 */
export function reluGateChannelSums(
  g: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
  c: number,
  p: number,
  like: FloatArray,
) {
  return roundedSums(c, like, (acc) =>
    wasmReluBackwardChannelSums(g, y, gx, n, c, p, acc, { pool: getMatrixPool() }),
  );
}

/**
 * The elements of `t` in row-major order as a bare array starting at index 0: a subarray
 * (no copy) when `t` is packed, a packed copy otherwise. The result must be treated as
 * read-only: it may share memory with `t`.
 */
export function dense(t: Tensor): TypedArray {
  if (t.isContiguous()) {
    if (t.offset === 0 && t.data.length === t.size) return t.data;
    return t.data.subarray(t.offset, t.offset + t.size);
  }
  return t.clone().data;
}

/** Like dense() for float tensors (int32 is converted to float32). */
export function denseFloat(t: Tensor): FloatArray {
  if (t.dtype === "int32") return t.astype("float32").data as Float32Array;
  return dense(t) as FloatArray;
}

/** Wraps a packed array as a tensor of `shape`. */
export function wrap(data: TypedArray, shape: readonly number[]): Tensor {
  return new Tensor(data, shape);
}

// Gradients an op has just allocated and hands to exactly one input. The engine may adopt
// such a tensor as a leaf's .grad (or add into it) instead of copying it; adoption removes
// the mark, so a tensor passed on twice is copied the second time.
const freshGrads = new WeakSet<Tensor>();

/** Like wrap(), for a gradient array the op allocated itself and returns for one input. */
export function freshGrad(data: TypedArray, shape: readonly number[]): Tensor {
  const t = new Tensor(data, shape);
  freshGrads.add(t);
  return t;
}

/** True (once) when `t` was made by freshGrad() and not adopted yet. */
export function adoptFresh(t: Tensor): boolean {
  return freshGrads.delete(t);
}

/** Float dtype an op computes in for an input of `dtype` (int32 inputs become float32). */
export function floatOf(dtype: DType): "float32" | "float64" {
  return dtype === "float64" ? "float64" : "float32";
}

/** Reads a per-axis option given as one number or a pair [h, w]; checks integer range. */
export function pair(fn: string, name: string, v: unknown, min: number): [number, number] {
  const list = typeof v === "number" ? [v, v] : v;
  if (
    !Array.isArray(list) ||
    list.length !== 2 ||
    !list.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= min)
  ) {
    throw new RangeError(
      `${fn}: ${name} must be an integer >= ${min} or a pair [h, w] of such integers, got ${JSON.stringify(v)}`,
    );
  }
  return [list[0] as number, list[1] as number];
}

// Axis normalisation is the tensor package's, so both layers accept and reject the same axes.
export { normalizeAxes as normAxes, normalizeAxis as normAxis } from "@tessera/tensor";
