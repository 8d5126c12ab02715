// Element-wise ops with NumPy broadcasting.
//
// Paths, fastest first (chosen per call, no per-element branching or allocation):
//  1. both operands packed (isContiguous) with the same shape: one flat loop;
//  2. one operand a JS number or a size-1 tensor, the other packed: one flat loop;
//  3. anything else: a strided loop over the broadcast shape (stride 0 on broadcast axes),
//     with the innermost axis as a tight loop.
//
// Result dtypes:
//  - add, sub, mul, maximum, minimum, neg, abs, sign, square, relu, clamp: float64 if any
//    tensor operand is float64, else float32 if any is float32, else int32. A JS number
//    operand does not promote, except that a non-integer number makes an int32 result
//    float32. int32 results are computed in double precision and stored with ToInt32
//    (truncation, wrap-around modulo 2^32), like any write into an Int32Array.
//  - div, pow, exp, log, sqrt, sigmoid, tanh, reciprocal: as above, but int32 becomes float32.
//  - eq, ne, lt, le, gt, ge: always int32 holding 0 or 1.
//  - where(cond, a, b): cond is any dtype (non-zero means true); result as for add(a, b).
//
// In-place ops (addInPlace, ..., axpyInPlace, copyInto) write into an existing tensor: the
// target must already have the broadcast result shape (the other operand broadcasts to it,
// never the reverse), its dtype is kept (a float result into an int32 target throws), and
// it must not be a broadcast view (a stride-0 axis of size > 1 would receive several
// results). An operand overlapping the target's memory with a different layout is copied
// first, so `x.addInPlace(x.T)` is correct.

import { allocate, promoteTypes, promoteWithScalar, toFloat } from "./dtype.ts";
import type { DType, TypedArray } from "./dtype.ts";
import { makeBinary, makeUnary, selectStrided } from "./kernels.ts";
import type { BinaryKernel, UnaryKernel } from "./kernels.ts";
import {
  broadcastShapes,
  broadcastStrides,
  contiguousStrides,
  fmtShape,
  shapesEqual,
} from "./shape.ts";
import { Tensor, wrap } from "./tensor.ts";
import type { Operand } from "./tensor.ts";

type Rule = "keep" | "float" | "bool";

const ZERO_STRIDES: readonly number[][] = Array.from({ length: 33 }, (_, r) =>
  new Array<number>(r).fill(0),
);
function zeroStrides(r: number): readonly number[] {
  return ZERO_STRIDES[r] ?? new Array<number>(r).fill(0);
}

function resultDType(rule: Rule, a: Operand, b: Operand): DType {
  if (rule === "bool") return "int32";
  let d: DType;
  if (typeof a === "number") d = typeof b === "number" ? "float32" : promoteWithScalar(b.dtype, a);
  else d = typeof b === "number" ? promoteWithScalar(a.dtype, b) : promoteTypes(a.dtype, b.dtype);
  return rule === "float" ? toFloat(d) : d;
}

function checkOperand(fn: string, x: unknown, which: string): void {
  if (typeof x !== "number" && !(x instanceof Tensor)) {
    throw new TypeError(`${fn}: ${which} operand must be a Tensor or a number, got ${typeof x}`);
  }
}

/** Evaluates kernel(a, b) into a fresh packed tensor of the broadcast shape. */
function binary(
  fn: string,
  k: BinaryKernel,
  rule: Rule,
  a: Operand,
  b: Operand,
  p = 0,
  q = 0,
): Tensor {
  checkOperand(fn, a, "left");
  checkOperand(fn, b, "right");
  const dtype = resultDType(rule, a, b);
  if (typeof a === "number" && typeof b === "number") {
    const o = allocate(dtype, 1);
    k.scalarRight(o, 0, new Float64Array([a]), 0, b, 1, p, q);
    return wrap(o, []);
  }
  // a scalar or size-1 tensor meeting a packed tensor of the result shape: flat loop
  if (typeof a !== "number" && a.isContiguous()) {
    if (typeof b === "number" || (b.size === 1 && b.ndim <= a.ndim)) {
      const s = typeof b === "number" ? b : b.data[b.offset]!;
      const o = allocate(dtype, a.size);
      k.scalarRight(o, 0, a.data, a.offset, s, a.size, p, q);
      return wrap(o, a.shape);
    }
  }
  if (typeof b !== "number" && b.isContiguous()) {
    if (typeof a === "number" || (a.size === 1 && a.ndim <= b.ndim)) {
      const s = typeof a === "number" ? a : a.data[a.offset]!;
      const o = allocate(dtype, b.size);
      k.scalarLeft(o, 0, s, b.data, b.offset, b.size, p, q);
      return wrap(o, b.shape);
    }
  }
  const at = toTensor(a);
  const bt = toTensor(b);
  if (shapesEqual(at.shape, bt.shape)) {
    const o = allocate(dtype, at.size);
    if (at.isContiguous() && bt.isContiguous()) {
      k.same(o, 0, at.data, at.offset, bt.data, bt.offset, at.size, p, q);
    } else {
      k.strided(
        o,
        0,
        contiguousStrides(at.shape),
        at.data,
        at.offset,
        at.strides,
        bt.data,
        bt.offset,
        bt.strides,
        at.shape,
        p,
        q,
      );
    }
    return wrap(o, at.shape);
  }
  const shape = broadcastShapes(fn, at.shape, bt.shape);
  const out = wrap(allocate(dtype, sizeOf(shape)), shape);
  k.strided(
    out.data,
    0,
    out.strides,
    at.data,
    at.offset,
    broadcastStrides(at.shape, at.strides, shape),
    bt.data,
    bt.offset,
    broadcastStrides(bt.shape, bt.strides, shape),
    shape,
    p,
    q,
  );
  return out;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function toTensor(x: Operand): Tensor {
  return typeof x === "number" ? wrap(new Float64Array([x]), []) : x;
}

/** Throws unless `t` can receive writes element by element. */
function checkWritable(fn: string, t: Tensor): void {
  if (!(t instanceof Tensor)) throw new TypeError(`${fn}: target must be a Tensor`);
  if (t.size === 0) return;
  for (let i = 0; i < t.ndim; i++) {
    if (t.strides[i] === 0 && t.shape[i]! > 1) {
      throw new Error(
        `${fn}: target of shape ${fmtShape(t.shape)} is a broadcast view (stride 0 on axis ${i}); write into a contiguous() copy instead`,
      );
    }
  }
}

/** Evaluates kernel(target, other) back into target (see the header for the rules). */
function binaryInPlace(
  fn: string,
  k: BinaryKernel,
  rule: Rule,
  target: Tensor,
  other: Operand,
  p = 0,
  q = 0,
): void {
  checkWritable(fn, target);
  checkOperand(fn, other, "second");
  const dtype = resultDType(rule, target, other);
  if (dtype !== target.dtype && target.dtype === "int32") {
    throw new Error(`${fn}: cannot write a ${dtype} result into an int32 target`);
  }
  const t = target;
  if (typeof other === "number") {
    if (t.isContiguous()) k.scalarRight(t.data, t.offset, t.data, t.offset, other, t.size, p, q);
    else {
      k.strided(
        t.data,
        t.offset,
        t.strides,
        t.data,
        t.offset,
        t.strides,
        new Float64Array([other]),
        0,
        zeroStrides(t.ndim),
        t.shape,
        p,
        q,
      );
    }
    return;
  }
  let b = other;
  if (
    !shapesEqual(t.shape, b.shape) &&
    !shapesEqual(broadcastShapes(fn, t.shape, b.shape), t.shape)
  ) {
    throw new Error(
      `${fn}: cannot broadcast shapes ${fmtShape(t.shape)} and ${fmtShape(b.shape)} into the target shape ${fmtShape(t.shape)}`,
    );
  }
  if (
    b.data === t.data &&
    !(b.offset === t.offset && shapesEqual(b.strides, t.strides) && shapesEqual(b.shape, t.shape))
  ) {
    b = b.clone(); // overlapping memory with another layout: read from a snapshot
  }
  if (t.isContiguous() && b.isContiguous() && shapesEqual(t.shape, b.shape)) {
    k.same(t.data, t.offset, t.data, t.offset, b.data, b.offset, t.size, p, q);
  } else if (t.isContiguous() && b.size === 1) {
    k.scalarRight(t.data, t.offset, t.data, t.offset, b.data[b.offset]!, t.size, p, q);
  } else {
    k.strided(
      t.data,
      t.offset,
      t.strides,
      t.data,
      t.offset,
      t.strides,
      b.data,
      b.offset,
      broadcastStrides(b.shape, b.strides, t.shape),
      t.shape,
      p,
      q,
    );
  }
}

function unary(fn: string, k: UnaryKernel, rule: Rule, a: Tensor, p = 0, q = 0): Tensor {
  if (!(a instanceof Tensor))
    throw new TypeError(`${fn}: operand must be a Tensor, got ${typeof a}`);
  const dtype = rule === "float" ? toFloat(a.dtype) : a.dtype;
  const o = allocate(dtype, a.size);
  if (a.isContiguous()) k.same(o, 0, a.data, a.offset, a.size, p, q);
  else k.strided(o, 0, contiguousStrides(a.shape), a.data, a.offset, a.strides, a.shape, p, q);
  return wrap(o, a.shape);
}

// ---- kernels, one per op ----
const K = {
  add: makeBinary("x + y"),
  sub: makeBinary("x - y"),
  mul: makeBinary("x * y"),
  div: makeBinary("x / y"),
  pow: makeBinary("Math.pow(x, y)"),
  maximum: makeBinary("(x > y || x !== x ? x : y)"),
  minimum: makeBinary("(x < y || x !== x ? x : y)"),
  eq: makeBinary("(x === y ? 1 : 0)"),
  ne: makeBinary("(x !== y ? 1 : 0)"),
  lt: makeBinary("(x < y ? 1 : 0)"),
  le: makeBinary("(x <= y ? 1 : 0)"),
  gt: makeBinary("(x > y ? 1 : 0)"),
  ge: makeBinary("(x >= y ? 1 : 0)"),
  axpy: makeBinary("x + p * y"),
};
const U = {
  copy: makeUnary("x"),
  neg: makeUnary("-x"),
  abs: makeUnary("Math.abs(x)"),
  sign: makeUnary("(x > 0 ? 1 : x < 0 ? -1 : x)"),
  square: makeUnary("x * x"),
  relu: makeUnary("Math.max(x, 0)"), // branch-free on random signs; NaN stays NaN
  exp: makeUnary("Math.exp(x)"),
  log: makeUnary("Math.log(x)"),
  sqrt: makeUnary("Math.sqrt(x)"),
  sigmoid: makeUnary("(x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)))"),
  tanh: makeUnary("Math.tanh(x)"),
  reciprocal: makeUnary("1 / x"),
  clamp: makeUnary("(x < p ? p : x > q ? q : x)"),
  finiteOrZero: makeUnary("(x - x === 0 ? x : 0)"),
  fill: makeUnary("p"),
};

// ---- public binary ops ----
export const add = (a: Operand, b: Operand): Tensor => binary("add", K.add, "keep", a, b);
export const sub = (a: Operand, b: Operand): Tensor => binary("sub", K.sub, "keep", a, b);
export const mul = (a: Operand, b: Operand): Tensor => binary("mul", K.mul, "keep", a, b);
export const div = (a: Operand, b: Operand): Tensor => binary("div", K.div, "float", a, b);
export const pow = (a: Operand, b: Operand): Tensor => binary("pow", K.pow, "float", a, b);
/** Element-wise maximum; NaN in either operand gives NaN (as NumPy). */
export const maximum = (a: Operand, b: Operand): Tensor =>
  binary("maximum", K.maximum, "keep", a, b);
/** Element-wise minimum; NaN in either operand gives NaN (as NumPy). */
export const minimum = (a: Operand, b: Operand): Tensor =>
  binary("minimum", K.minimum, "keep", a, b);
export const eq = (a: Operand, b: Operand): Tensor => binary("eq", K.eq, "bool", a, b);
export const ne = (a: Operand, b: Operand): Tensor => binary("ne", K.ne, "bool", a, b);
export const lt = (a: Operand, b: Operand): Tensor => binary("lt", K.lt, "bool", a, b);
export const le = (a: Operand, b: Operand): Tensor => binary("le", K.le, "bool", a, b);
export const gt = (a: Operand, b: Operand): Tensor => binary("gt", K.gt, "bool", a, b);
export const ge = (a: Operand, b: Operand): Tensor => binary("ge", K.ge, "bool", a, b);

// ---- public unary ops ----
export const neg = (a: Tensor): Tensor => unary("neg", U.neg, "keep", a);
export const abs = (a: Tensor): Tensor => unary("abs", U.abs, "keep", a);
/** -1, 0 or 1 (NaN stays NaN, -0 stays -0). */
export const sign = (a: Tensor): Tensor => unary("sign", U.sign, "keep", a);
export const square = (a: Tensor): Tensor => unary("square", U.square, "keep", a);
/** max(x, 0); NaN stays NaN. */
export const relu = (a: Tensor): Tensor => unary("relu", U.relu, "keep", a);
export const exp = (a: Tensor): Tensor => unary("exp", U.exp, "float", a);
export const log = (a: Tensor): Tensor => unary("log", U.log, "float", a);
export const sqrt = (a: Tensor): Tensor => unary("sqrt", U.sqrt, "float", a);
/** 1 / (1 + e^-x), evaluated so that no exp overflows. */
export const sigmoid = (a: Tensor): Tensor => unary("sigmoid", U.sigmoid, "float", a);
export const tanh = (a: Tensor): Tensor => unary("tanh", U.tanh, "float", a);
export const reciprocal = (a: Tensor): Tensor => unary("reciprocal", U.reciprocal, "float", a);

/** Replaces non-finite values (NaN, ±Infinity) by 0 (used by logsumexp). */
export const finiteOrZero = (a: Tensor): Tensor => unary("finiteOrZero", U.finiteOrZero, "keep", a);

/**
 * Limits values to [lo, hi]; either bound may be omitted/null. lo > hi throws. int32 stays
 * int32 unless a bound is not an integer (then float32).
 */
export function clamp(a: Tensor, lo?: number | null, hi?: number | null): Tensor {
  const l = lo ?? -Infinity;
  const h = hi ?? Infinity;
  if (
    typeof l !== "number" ||
    typeof h !== "number" ||
    Number.isNaN(l) ||
    Number.isNaN(h) ||
    l > h
  ) {
    throw new RangeError(
      `clamp: bounds must be numbers with lo <= hi, got lo=${String(lo)}, hi=${String(hi)}`,
    );
  }
  if (!(a instanceof Tensor)) throw new TypeError("clamp: operand must be a Tensor");
  const intBounds = (lo == null || Number.isInteger(lo)) && (hi == null || Number.isInteger(hi));
  const res = unary(
    "clamp",
    U.clamp,
    a.dtype === "int32" && !intBounds ? "float" : "keep",
    a,
    l,
    h,
  );
  return res;
}

/**
 * Picks `a` where `cond` is non-zero and `b` elsewhere, broadcasting all three. Result dtype
 * as for add(a, b).
 */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (!(cond instanceof Tensor)) throw new TypeError("where: cond must be a Tensor");
  checkOperand("where", a, "second");
  checkOperand("where", b, "third");
  const dtype = resultDType("keep", a, b);
  const at = toTensor(a);
  const bt = toTensor(b);
  let shape: number[];
  try {
    shape = broadcastShapes("where", broadcastShapes("where", cond.shape, at.shape), bt.shape);
  } catch {
    throw new Error(
      `where: cannot broadcast shapes ${fmtShape(cond.shape)}, ${fmtShape(at.shape)} and ${fmtShape(bt.shape)}`,
    );
  }
  const out = wrap(allocate(dtype, sizeOf(shape)), shape);
  selectStrided(
    out.data,
    0,
    out.strides,
    cond.data,
    cond.offset,
    broadcastStrides(cond.shape, cond.strides, shape),
    at.data,
    at.offset,
    broadcastStrides(at.shape, at.strides, shape),
    bt.data,
    bt.offset,
    broadcastStrides(bt.shape, bt.strides, shape),
    shape,
  );
  return out;
}

// ---- in-place ----
/** target += other; returns target. */
export function addInPlace(target: Tensor, other: Operand): Tensor {
  binaryInPlace("addInPlace", K.add, "keep", target, other);
  return target;
}
/** target -= other; returns target. */
export function subInPlace(target: Tensor, other: Operand): Tensor {
  binaryInPlace("subInPlace", K.sub, "keep", target, other);
  return target;
}
/** target *= other; returns target. */
export function mulInPlace(target: Tensor, other: Operand): Tensor {
  binaryInPlace("mulInPlace", K.mul, "keep", target, other);
  return target;
}
/** target /= other; returns target (int32 targets are rejected: division gives floats). */
export function divInPlace(target: Tensor, other: Operand): Tensor {
  binaryInPlace("divInPlace", K.div, "float", target, other);
  return target;
}
/** target *= alpha; returns target. */
export function scaleInPlace(target: Tensor, alpha: number): Tensor {
  if (typeof alpha !== "number") throw new TypeError("scaleInPlace: alpha must be a number");
  binaryInPlace("scaleInPlace", K.mul, "keep", target, alpha);
  return target;
}
/** target += alpha * x (BLAS axpy; x broadcasts to target); returns target. */
export function axpyInPlace(target: Tensor, alpha: number, x: Operand): Tensor {
  if (typeof alpha !== "number") throw new TypeError("axpyInPlace: alpha must be a number");
  checkOperand("axpyInPlace", x, "x");
  if (target instanceof Tensor && target.dtype === "int32" && !Number.isInteger(alpha)) {
    throw new Error(
      `axpyInPlace: cannot write a float32 result into an int32 target (alpha=${alpha})`,
    );
  }
  binaryInPlace("axpyInPlace", K.axpy, "keep", target, x, alpha);
  return target;
}
/**
 * Copies `src` (broadcast to target's shape) into target, converting to target's dtype
 * (floats into int32 truncate, as any Int32Array write); returns target.
 */
export function copyInto(target: Tensor, src: Operand): Tensor {
  checkWritable("copyInto", target);
  checkOperand("copyInto", src, "source");
  const t = target;
  if (typeof src === "number") {
    fillStrided(t, src);
    return t;
  }
  if (!shapesEqual(broadcastShapes("copyInto", t.shape, src.shape), t.shape)) {
    throw new Error(
      `copyInto: cannot broadcast shapes ${fmtShape(t.shape)} and ${fmtShape(src.shape)} into the target shape ${fmtShape(t.shape)}`,
    );
  }
  let s = src;
  if (
    s.data === t.data &&
    !(s.offset === t.offset && shapesEqual(s.strides, t.strides) && shapesEqual(s.shape, t.shape))
  ) {
    s = s.clone();
  }
  if (t.isContiguous() && s.isContiguous() && shapesEqual(t.shape, s.shape)) {
    (t.data as TypedArray).set(s.data.subarray(s.offset, s.offset + s.size) as never, t.offset);
  } else {
    U.copy.strided(
      t.data,
      t.offset,
      t.strides,
      s.data,
      s.offset,
      broadcastStrides(s.shape, s.strides, t.shape),
      t.shape,
      0,
      0,
    );
  }
  return t;
}

/** Writes `value` into every element of the view `t` (any strides). */
export function fillStrided(t: Tensor, value: number): void {
  U.fill.strided(t.data, t.offset, t.strides, t.data, t.offset, t.strides, t.shape, value, 0);
}

// ---- comparisons of whole tensors ----
/** Same shape and every element equal (===; NaN never equals). dtypes may differ. */
export function equals(a: Tensor, b: Tensor): boolean {
  if (!(a instanceof Tensor) || !(b instanceof Tensor))
    throw new TypeError("equals: operands must be Tensors");
  if (!shapesEqual(a.shape, b.shape)) return false;
  if (a.size === 0) return true;
  return ne(a, b).data.indexOf(1) === -1;
}

/**
 * True when |a - b| <= atol + rtol * |b| everywhere (NumPy's allclose: b is the reference,
 * shapes broadcast, NaN is never close). Defaults rtol = 1e-5, atol = 1e-8.
 */
export function allClose(a: Operand, b: Operand, rtol = 1e-5, atol = 1e-8): boolean {
  if (!(rtol >= 0) || !(atol >= 0)) {
    throw new RangeError(`allClose: rtol and atol must be >= 0, got rtol=${rtol}, atol=${atol}`);
  }
  const close = binary("allClose", CLOSE, "bool", a, b, rtol, atol);
  return close.data.indexOf(0) === -1;
}
const CLOSE = makeBinary("(Math.abs(x - y) <= q + p * Math.abs(y) || (x === y) ? 1 : 0)");
