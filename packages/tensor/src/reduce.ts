// Reductions over any set of axes.
//
// sum/mean/max/min walk the input once in its logical order and accumulate into a float64
// buffer of the output's size, addressed through strides that are 0 on the reduced axes.
// This reads the input sequentially whichever axes are reduced (summing a [batch, features]
// gradient over the batch axis streams memory), and sums float32 data in double precision
// before the single rounding to the output dtype.
//
// Result dtypes: sum, max, min keep the input dtype (int32 sums wrap like any Int32Array
// write); mean and logsumexp give float32 for int32 input; argmax/argmin give int32.
// Reducing an axis of size 0: sum gives 0, mean NaN, max/min/argmax/argmin throw.

import { allocate, toFloat } from "./dtype.ts";
import type { DType } from "./dtype.ts";
import { makeReducer } from "./kernels.ts";
import type { Reducer } from "./kernels.ts";
import {
  broadcastShapes,
  contiguousStrides,
  fmtShape,
  normalizeAxes,
  normalizeAxis,
  shapesEqual,
  checkShape,
} from "./shape.ts";
import { Tensor, wrap } from "./tensor.ts";
import { add, div, exp, finiteOrZero, log, sub } from "./elementwise.ts";

type Axes = number | readonly number[] | undefined;

const ACC_SUM = makeReducer("x + y");
const ACC_MAX = makeReducer("(y > x || y !== y ? y : x)");
const ACC_MIN = makeReducer("(y < x || y !== y ? y : x)");

interface Plan {
  axes: number[];
  keptShape: number[]; // output shape with keepdims
  outShape: number[]; // output shape as returned
  count: number; // elements folded into each output
  outSize: number;
}

function plan(fn: string, t: Tensor, axes: Axes, keepdims: boolean): Plan {
  if (!(t instanceof Tensor)) throw new TypeError(`${fn}: operand must be a Tensor`);
  if (typeof keepdims !== "boolean") throw new TypeError(`${fn}: keepdims must be a boolean`);
  const ax = normalizeAxes(fn, axes, t.ndim);
  const keptShape = t.shape.slice();
  const outShape: number[] = [];
  let count = 1;
  for (let i = 0; i < t.ndim; i++) {
    if (ax.includes(i)) {
      count *= t.shape[i]!;
      keptShape[i] = 1;
      if (keepdims) outShape.push(1);
    } else outShape.push(t.shape[i]!);
  }
  let outSize = 1;
  for (const d of keptShape) outSize *= d;
  return { axes: ax, keptShape, outShape, count, outSize };
}

/** Folds t into a float64 accumulator of the kept shape, starting from `init`. */
function accumulate(t: Tensor, p: Plan, k: Reducer, init: number): Float64Array {
  const acc = new Float64Array(p.outSize);
  if (t.size === 0) return init === 0 ? acc : acc.fill(init);
  if (p.outSize === 1 && t.isContiguous()) {
    acc[0] = k.flat(t.data, t.offset, t.size, init);
    return acc;
  }
  if (init !== 0) acc.fill(init);
  const accStrides = contiguousStrides(p.keptShape);
  for (const a of p.axes) accStrides[a] = 0;
  k.strided(acc, 0, accStrides, t.data, t.offset, t.strides, t.shape);
  return acc;
}

function finish(acc: Float64Array, dtype: DType, shape: number[]): Tensor {
  const o = allocate(dtype, acc.length);
  o.set(acc);
  return wrap(o, shape);
}

function checkNonEmpty(fn: string, t: Tensor, p: Plan): void {
  if (p.count === 0 && p.outSize > 0) {
    throw new RangeError(
      `${fn}: cannot reduce over zero-size axes ${fmtShape(p.axes)} of shape ${fmtShape(t.shape)}; the reduction has no identity`,
    );
  }
}

/** Sum over `axes` (all when omitted). */
export function sum(t: Tensor, axes?: Axes, keepdims = false): Tensor {
  const p = plan("sum", t, axes, keepdims);
  return finish(accumulate(t, p, ACC_SUM, 0), t.dtype, p.outShape);
}

/** Arithmetic mean over `axes`; float result (int32 input gives float32). */
export function mean(t: Tensor, axes?: Axes, keepdims = false): Tensor {
  const p = plan("mean", t, axes, keepdims);
  const acc = accumulate(t, p, ACC_SUM, 0);
  for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! / p.count;
  return finish(acc, toFloat(t.dtype), p.outShape);
}

/** Maximum over `axes`; NaN propagates. */
export function max(t: Tensor, axes?: Axes, keepdims = false): Tensor {
  const p = plan("max", t, axes, keepdims);
  checkNonEmpty("max", t, p);
  return finish(accumulate(t, p, ACC_MAX, -Infinity), t.dtype, p.outShape);
}

/** Minimum over `axes`; NaN propagates. */
export function min(t: Tensor, axes?: Axes, keepdims = false): Tensor {
  const p = plan("min", t, axes, keepdims);
  checkNonEmpty("min", t, p);
  return finish(accumulate(t, p, ACC_MIN, Infinity), t.dtype, p.outShape);
}

function argReduce(
  fn: string,
  t: Tensor,
  axis: number | undefined,
  keepdims: boolean,
  sign: 1 | -1,
): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${fn}: operand must be a Tensor`);
  if (axis === undefined) {
    // over the flattened tensor, like NumPy: a 0-d (or all-ones with keepdims) index
    if (t.size === 0)
      throw new RangeError(
        `${fn}: cannot take ${fn} of an empty tensor of shape ${fmtShape(t.shape)}`,
      );
    const flat = t.reshape([t.size]);
    const r = argReduce(fn, flat, 0, false, sign);
    return keepdims ? r.reshape(t.shape.map(() => 1)) : r;
  }
  const ax = normalizeAxis(fn, axis, t.ndim);
  const n = t.shape[ax]!;
  const outShapeKept = t.shape.slice();
  outShapeKept[ax] = 1;
  let outSize = 1;
  for (const d of outShapeKept) outSize *= d;
  if (n === 0 && outSize > 0) {
    throw new RangeError(
      `${fn}: axis ${axis} of shape ${fmtShape(t.shape)} has size 0; nothing to pick from`,
    );
  }
  const out = new Int32Array(outSize);
  // walk every output position with an odometer over the other axes
  const others: number[] = [];
  for (let i = 0; i < t.ndim; i++) if (i !== ax) others.push(i);
  const idx = new Int32Array(others.length);
  const sAx = t.strides[ax]!;
  const data = t.data;
  let base = t.offset;
  for (let o = 0; o < outSize; o++) {
    let best = sign * data[base]!;
    let bi = 0;
    if (best === best) {
      for (let j = 1, p = base + sAx; j < n; j++, p += sAx) {
        const v = sign * data[p]!;
        if (v > best) {
          best = v;
          bi = j;
        } else if (v !== v) {
          bi = j; // first NaN wins, as in NumPy
          break;
        }
      }
    }
    out[o] = bi;
    for (let k = others.length - 1; k >= 0; k--) {
      const a = others[k]!;
      base += t.strides[a]!;
      if (++idx[k]! < t.shape[a]!) break;
      base -= t.strides[a]! * t.shape[a]!;
      idx[k] = 0;
    }
  }
  const shape = keepdims ? outShapeKept : outShapeKept.filter((_, i) => i !== ax);
  return wrap(out, shape);
}

/** Index of the largest value along `axis` (first one on ties; first NaN wins); int32. */
export function argmax(t: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce("argmax", t, axis, keepdims, 1);
}

/** Index of the smallest value along `axis` (first one on ties; first NaN wins); int32. */
export function argmin(t: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce("argmin", t, axis, keepdims, -1);
}

/**
 * log(sum(exp(t))) over `axes`, computed as m + log(sum(exp(t - m))) with m the maximum
 * (replaced by 0 where it is not finite, so all -Infinity gives -Infinity and any +Infinity
 * gives +Infinity without NaN).
 */
export function logsumexp(t: Tensor, axes?: Axes, keepdims = false): Tensor {
  const p = plan("logsumexp", t, axes, keepdims);
  const x = t.dtype === "int32" ? t.astype("float32") : t;
  if (p.count === 0) {
    // log of an empty sum
    return wrap(allocate(toFloat(t.dtype), p.outSize).fill(-Infinity), p.outShape);
  }
  const m = finiteOrZero(max(x, p.axes, true));
  const s = sum(exp(sub(x, m)), p.axes, true);
  const r = add(log(s), m);
  return keepdims ? r : r.reshape(p.outShape);
}

/**
 * Sums `t` down to `shape`, undoing NumPy broadcasting: `shape` must broadcast to t.shape;
 * leading extra axes and axes where `shape` has 1 are summed. Returns `t` itself when the
 * shapes already match. This is the backward of every broadcasting op.
 */
export function sumToShape(t: Tensor, shape: readonly number[]): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError("sumToShape: operand must be a Tensor");
  const target = checkShape("sumToShape", shape);
  if (shapesEqual(target, t.shape)) return t;
  let ok = target.length <= t.ndim;
  if (ok) {
    try {
      ok = shapesEqual(broadcastShapes("sumToShape", target, t.shape), t.shape);
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new Error(
      `sumToShape: cannot reduce shape ${fmtShape(t.shape)} to ${fmtShape(target)}: ${fmtShape(target)} does not broadcast to ${fmtShape(t.shape)}`,
    );
  }
  const lead = t.ndim - target.length;
  const axes: number[] = [];
  for (let i = 0; i < t.ndim; i++) {
    if (i < lead || (target[i - lead] === 1 && t.shape[i] !== 1)) axes.push(i);
  }
  return sum(t, axes, true).reshape(target);
}

/** exp(t) / sum(exp(t)) along `axis` (default last), stable: the max is subtracted first. */
export function softmax(t: Tensor, axis = -1): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError("softmax: operand must be a Tensor");
  const ax = normalizeAxis("softmax", axis, t.ndim);
  const x = t.dtype === "int32" ? t.astype("float32") : t;
  if (x.size === 0) return x.clone();
  const e = exp(sub(x, finiteOrZero(max(x, ax, true))));
  return div(e, sum(e, ax, true));
}

/** t - logsumexp(t) along `axis` (default last): log-probabilities without overflow. */
export function logSoftmax(t: Tensor, axis = -1): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError("logSoftmax: operand must be a Tensor");
  const ax = normalizeAxis("logSoftmax", axis, t.ndim);
  const x = t.dtype === "int32" ? t.astype("float32") : t;
  return sub(x, logsumexp(x, ax, true));
}
