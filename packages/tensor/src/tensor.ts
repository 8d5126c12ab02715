// The Tensor: a strided view (data, shape, strides, offset) over a typed array, laid out
// exactly like a scijs ndarray, plus the views that copy nothing. Arithmetic lives in the
// op modules; the methods here are thin wrappers so both `add(a, b)` and `a.add(b)` work.

import ndarray from "ndarray";
import { allocate, checkDType, dtypeOfArray } from "./dtype.ts";
import type { DType, TypedArray } from "./dtype.ts";
import {
  checkShape,
  contiguousStrides,
  fmtShape,
  normalizeAxes,
  normalizeAxis,
  shapeSize,
} from "./shape.ts";
import { broadcastShapes, broadcastStrides, shapesEqual } from "./shape.ts";
import * as ew from "./elementwise.ts";
import * as rd from "./reduce.ts";
import { formatTensor, toNested } from "./format.ts";
import type { NestedArray } from "./format.ts";
import { matmul } from "./matmul.ts";

/** One per-axis argument of `slice`: an index (drops the axis), a range, or null for all. */
export type SliceArg =
  | number
  | null
  | undefined
  | { start?: number | null; stop?: number | null; step?: number | null }
  | readonly [start?: number | null, stop?: number | null, step?: number | null];

export type Operand = Tensor | number;

export class Tensor {
  /** The underlying typed array (shared with every view of it). */
  readonly data: TypedArray;
  readonly shape: readonly number[];
  /** Element (not byte) strides per axis; may be 0 (broadcast) or negative (reversed). */
  readonly strides: readonly number[];
  /** Index in `data` of the element at all-zero indices. */
  readonly offset: number;
  readonly dtype: DType;
  /** Number of elements (product of shape; 1 for a 0-d tensor). */
  readonly size: number;
  private readonly packed: boolean;

  /**
   * Wraps `data` without copying. `strides` default to row-major for `shape`; every
   * reachable index must lie inside `data`.
   */
  constructor(data: TypedArray, shape: readonly number[], strides?: readonly number[], offset = 0) {
    let dtype: DType;
    let sh: number[];
    let st: number[];
    let size: number;
    if (trusted) {
      // internal fast path (see wrap): arguments were produced by this package's own code
      trusted = false;
      dtype =
        data instanceof Float32Array
          ? "float32"
          : data instanceof Float64Array
            ? "float64"
            : "int32";
      sh = shape as number[];
      st = strides === undefined ? contiguousStrides(sh) : (strides as number[]);
      size = shapeSize(sh);
    } else {
      const dt = dtypeOfArray(data);
      if (dt === undefined) {
        throw new TypeError("Tensor: data must be a Float32Array, Float64Array or Int32Array");
      }
      dtype = dt;
      sh = checkShape("Tensor", shape);
      st = strides === undefined ? contiguousStrides(sh) : strides.slice();
      size = shapeSize(sh);
      validateLayout(data, sh, st, offset, size);
    }
    this.data = data;
    this.shape = sh;
    this.strides = st;
    this.offset = offset;
    this.dtype = dtype;
    this.size = size;
    let packed = true;
    let acc = 1;
    for (let i = sh.length - 1; i >= 0; i--) {
      if (sh[i] !== 1 && st[i] !== acc) packed = false;
      acc *= sh[i]!;
    }
    this.packed = packed || size === 0;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Wraps a scijs ndarray's view (its data must be a Float32/Float64/Int32Array); no copy. */
  static fromNdarray(nd: ndarray.NdArray<TypedArray>): Tensor {
    if (
      nd === null ||
      typeof nd !== "object" ||
      !Array.isArray(nd.shape) ||
      !Array.isArray(nd.stride)
    ) {
      throw new TypeError(
        "Tensor.fromNdarray: expected a scijs ndarray (data, shape, stride, offset)",
      );
    }
    return new Tensor(nd.data, nd.shape, nd.stride, nd.offset);
  }

  /** A scijs ndarray viewing the same memory (shape and strides copied). */
  get nd(): ndarray.NdArray<TypedArray> {
    return ndarray(this.data, this.shape.slice(), this.strides.slice(), this.offset);
  }

  /**
   * True when the elements are packed in row-major order in
   * `data[offset .. offset + size)` (strides of size-1 axes are ignored). Such a tensor can
   * be walked with one flat loop starting at `offset`.
   */
  isContiguous(): boolean {
    return this.packed;
  }

  /**
   * Returns `this` when `isContiguous()`, `offset === 0` and `data.length === size` (so
   * `data` is exactly the elements in row-major order, ready for a kernel that takes a bare
   * array); otherwise a packed copy.
   */
  contiguous(): Tensor {
    if (this.packed && this.offset === 0 && this.data.length === this.size) return this;
    return this.clone();
  }

  /** A packed copy with its own memory (always copies). */
  clone(): Tensor {
    return this.astypeCopy(this.dtype);
  }

  /** The same values as `dtype`; returns `this` when the dtype already matches. */
  astype(dtype: DType): Tensor {
    checkDType("astype", dtype);
    if (dtype === this.dtype) return this;
    return this.astypeCopy(dtype);
  }

  private astypeCopy(dtype: DType): Tensor {
    const out = wrap(allocate(dtype, this.size), this.shape);
    if (this.packed) {
      out.data.set(this.data.subarray(this.offset, this.offset + this.size));
    } else {
      ew.copyInto(out, this);
    }
    return out;
  }

  /** Writes `value` into every element of this view; returns `this`. */
  fill(value: number): this {
    if (typeof value !== "number")
      throw new TypeError(`fill: value must be a number, got ${typeof value}`);
    if (this.packed) this.data.fill(value, this.offset, this.offset + this.size);
    else ew.fillStrided(this, value);
    return this;
  }

  /** The single element of a tensor with size 1 (any rank). */
  item(): number {
    if (this.size !== 1) {
      throw new RangeError(
        `item: tensor of shape ${fmtShape(this.shape)} has ${this.size} elements; expected 1`,
      );
    }
    // every axis has size 1, so index 0 everywhere: the element sits at offset
    return this.data[this.offset]!;
  }

  private index(fn: string, idx: readonly number[]): number {
    if (idx.length !== this.ndim) {
      throw new RangeError(`${fn}: got ${idx.length} indices for a tensor of rank ${this.ndim}`);
    }
    let p = this.offset;
    for (let i = 0; i < idx.length; i++) {
      const d = this.shape[i]!;
      let k = idx[i]!;
      if (!Number.isInteger(k) || k < -d || k >= d) {
        throw new RangeError(
          `${fn}: index ${String(k)} is out of range for axis ${i} of size ${d}; allowed ${-d}..${d - 1}`,
        );
      }
      if (k < 0) k += d;
      p += k * this.strides[i]!;
    }
    return p;
  }

  /** Element at the given indices (negative indices count from the end). */
  get(...idx: number[]): number {
    return this.data[this.index("get", idx)]!;
  }

  /** `set(i, j, ..., value)`: writes one element; returns `this`. */
  set(...idxAndValue: number[]): this {
    if (idxAndValue.length === 0) throw new RangeError("set: expected indices followed by a value");
    const value = idxAndValue[idxAndValue.length - 1]!;
    this.data[this.index("set", idxAndValue.slice(0, -1))] = value;
    return this;
  }

  /** Nested JS arrays (a plain number for a 0-d tensor). */
  toArray(): NestedArray {
    return toNested(this);
  }

  toString(): string {
    return formatTensor(this);
  }

  // ---- views (copy nothing) ----

  /**
   * Same elements in a new shape (one dim may be -1, inferred). Returns a view when the
   * strides allow it (always for contiguous tensors; NumPy's no-copy rule otherwise) and a
   * packed copy when they do not. Use `view()` to insist on no copy.
   */
  reshape(shape: readonly number[]): Tensor {
    const target = inferShape("reshape", this.shape, this.size, shape);
    const st = viewStrides(this, target);
    if (st !== null) return wrap(this.data, target, st, this.size === 0 ? 0 : this.offset);
    return wrap(this.clone().data, target);
  }

  /** Like reshape, but throws instead of copying when the strides do not allow a view. */
  view(shape: readonly number[]): Tensor {
    const target = inferShape("view", this.shape, this.size, shape);
    const st = viewStrides(this, target);
    if (st === null) {
      throw new Error(
        `view: a tensor of shape ${fmtShape(this.shape)} with strides ${fmtShape(this.strides)} cannot be viewed as ${fmtShape(target)} without a copy; use reshape()`,
      );
    }
    return wrap(this.data, target, st, this.size === 0 ? 0 : this.offset);
  }

  /** reshape([-1]). */
  flatten(): Tensor {
    return this.reshape([-1]);
  }

  /** Permutes axes: `axes[i]` is the source axis of result axis i. Omitted: reverse all. */
  transpose(axes?: readonly number[]): Tensor {
    if (axes === undefined) {
      return wrap(
        this.data,
        this.shape.slice().reverse(),
        this.strides.slice().reverse(),
        this.offset,
      );
    }
    return this.permuteImpl("transpose", axes);
  }

  /** 2-d transpose (reverses all axes for any rank, like NumPy's `.T`). */
  get T(): Tensor {
    return this.transpose();
  }

  /** Permutes axes: `permute(1, 0, 2)` or `permute([1, 0, 2])`. */
  permute(...axes: number[] | [readonly number[]]): Tensor {
    const list = (
      axes.length === 1 && Array.isArray(axes[0]) ? axes[0] : axes
    ) as readonly number[];
    return this.permuteImpl("permute", list);
  }

  private permuteImpl(fn: string, axes: readonly number[]): Tensor {
    const n = this.ndim;
    if (!Array.isArray(axes) || axes.length !== n) {
      throw new RangeError(`${fn}: expected a permutation of ${n} axes, got ${fmtShape(axes)}`);
    }
    const seen = new Array<boolean>(n).fill(false);
    const shape: number[] = [];
    const strides: number[] = [];
    for (const a of axes) {
      const k = normalizeAxis(fn, a, n);
      if (seen[k])
        throw new RangeError(`${fn}: axes ${fmtShape(axes)} are not a permutation of 0..${n - 1}`);
      seen[k] = true;
      shape.push(this.shape[k]!);
      strides.push(this.strides[k]!);
    }
    return wrap(this.data, shape, strides, this.offset);
  }

  /** Swaps two axes. */
  swapaxes(a: number, b: number): Tensor {
    const n = this.ndim;
    const i = normalizeAxis("swapaxes", a, n);
    const j = normalizeAxis("swapaxes", b, n);
    const axes = Array.from({ length: n }, (_, k) => k);
    axes[i] = j;
    axes[j] = i;
    return this.permuteImpl("swapaxes", axes);
  }

  /**
   * Basic slicing, one argument per leading axis (missing trailing axes are taken whole):
   * - a number picks one index and drops the axis (negative counts from the end);
   * - `{start, stop, step}` or `[start, stop, step]` takes a range; any part may be
   *   null/omitted. Negative start/stop count from the end; step may be negative (defaults
   *   then run from the last element down to the first). Unlike Python, bounds are not
   *   clamped: after adding the axis size to negatives, a start/stop outside 0..size
   *   (0..size-1 for a negative step) throws a RangeError. A range with start past stop
   *   is empty.
   * - null/undefined takes the whole axis.
   */
  slice(...specs: SliceArg[]): Tensor {
    const n = this.ndim;
    if (specs.length > n) {
      throw new RangeError(`slice: got ${specs.length} slice arguments for a tensor of rank ${n}`);
    }
    const shape: number[] = [];
    const strides: number[] = [];
    let offset = this.offset;
    for (let i = 0; i < n; i++) {
      const spec = specs[i];
      const d = this.shape[i]!;
      const s = this.strides[i]!;
      if (spec === null || spec === undefined) {
        shape.push(d);
        strides.push(s);
      } else if (typeof spec === "number") {
        if (!Number.isInteger(spec) || spec < -d || spec >= d) {
          throw new RangeError(
            `slice: index ${String(spec)} is out of range for axis ${i} of size ${d}; allowed ${-d}..${d - 1}`,
          );
        }
        offset += (spec < 0 ? spec + d : spec) * s;
      } else {
        let start: number | null | undefined,
          stop: number | null | undefined,
          step: number | null | undefined;
        if (Array.isArray(spec)) {
          const arr = spec as readonly (number | null | undefined)[];
          start = arr[0];
          stop = arr[1];
          step = arr[2];
        } else {
          const obj = spec as { start?: number | null; stop?: number | null; step?: number | null };
          start = obj.start;
          stop = obj.stop;
          step = obj.step;
        }
        const st = step ?? 1;
        if (!Number.isInteger(st) || st === 0) {
          throw new RangeError(
            `slice: step ${String(step)} on axis ${i} must be a non-zero integer`,
          );
        }
        // resolved bounds; for a negative step the default stop -1 means "past index 0"
        let a: number, b: number, len: number;
        if (st > 0) {
          a = start == null ? 0 : sliceBound("start", start, i, d, 0, d);
          b = stop == null ? d : sliceBound("stop", stop, i, d, 0, d);
          len = b > a ? Math.ceil((b - a) / st) : 0;
        } else {
          a = start == null ? d - 1 : sliceBound("start", start, i, d, 0, d - 1);
          b = stop == null ? -1 : sliceBound("stop", stop, i, d, 0, d - 1);
          len = a > b ? Math.ceil((a - b) / -st) : 0;
        }
        if (len > 0) offset += a * s;
        shape.push(len);
        strides.push(s * st);
      }
    }
    const size = shapeSize(shape);
    return wrap(this.data, shape, strides, size === 0 ? 0 : offset);
  }

  /** Removes size-1 axes: the given ones (each must have size 1) or all when omitted. */
  squeeze(axes?: number | readonly number[]): Tensor {
    const n = this.ndim;
    let drop: number[];
    if (axes === undefined) {
      drop = [];
      for (let i = 0; i < n; i++) if (this.shape[i] === 1) drop.push(i);
    } else {
      drop = normalizeAxes("squeeze", axes, n);
      for (const a of drop) {
        if (this.shape[a] !== 1) {
          throw new RangeError(
            `squeeze: axis ${a} has size ${this.shape[a]} in shape ${fmtShape(this.shape)}; only size-1 axes can be squeezed`,
          );
        }
      }
    }
    const shape: number[] = [];
    const strides: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!drop.includes(i)) {
        shape.push(this.shape[i]!);
        strides.push(this.strides[i]!);
      }
    }
    return wrap(this.data, shape, strides, this.offset);
  }

  /** Inserts a size-1 axis at `axis` (in -(ndim+1)..ndim). */
  unsqueeze(axis: number): Tensor {
    const n = this.ndim;
    const k = normalizeAxis("unsqueeze", axis, n + 1);
    const shape = this.shape.slice();
    const strides = this.strides.slice();
    // stride of a size-1 axis is never used; pick the packed value for tidiness
    const st = k < n ? this.strides[k]! * this.shape[k]! : 1;
    shape.splice(k, 0, 1);
    strides.splice(k, 0, st);
    return wrap(this.data, shape, strides, this.offset);
  }

  /** A read-only-in-spirit view with `shape`, stretching size-1 axes with stride 0. */
  broadcastTo(shape: readonly number[]): Tensor {
    const target = checkShape("broadcastTo", shape);
    let ok = target.length >= this.ndim;
    if (ok) {
      try {
        ok = shapesEqual(broadcastShapes("broadcastTo", this.shape, target), target);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      throw new Error(
        `broadcastTo: cannot broadcast shape ${fmtShape(this.shape)} to ${fmtShape(target)}`,
      );
    }
    const size = shapeSize(target);
    return wrap(
      this.data,
      target,
      broadcastStrides(this.shape, this.strides, target),
      size === 0 ? 0 : this.offset,
    );
  }

  // ---- element-wise (see elementwise.ts for rules) ----
  add(b: Operand): Tensor {
    return ew.add(this, b);
  }
  sub(b: Operand): Tensor {
    return ew.sub(this, b);
  }
  mul(b: Operand): Tensor {
    return ew.mul(this, b);
  }
  div(b: Operand): Tensor {
    return ew.div(this, b);
  }
  pow(b: Operand): Tensor {
    return ew.pow(this, b);
  }
  maximum(b: Operand): Tensor {
    return ew.maximum(this, b);
  }
  minimum(b: Operand): Tensor {
    return ew.minimum(this, b);
  }
  eq(b: Operand): Tensor {
    return ew.eq(this, b);
  }
  ne(b: Operand): Tensor {
    return ew.ne(this, b);
  }
  lt(b: Operand): Tensor {
    return ew.lt(this, b);
  }
  le(b: Operand): Tensor {
    return ew.le(this, b);
  }
  gt(b: Operand): Tensor {
    return ew.gt(this, b);
  }
  ge(b: Operand): Tensor {
    return ew.ge(this, b);
  }
  neg(): Tensor {
    return ew.neg(this);
  }
  abs(): Tensor {
    return ew.abs(this);
  }
  sign(): Tensor {
    return ew.sign(this);
  }
  square(): Tensor {
    return ew.square(this);
  }
  relu(): Tensor {
    return ew.relu(this);
  }
  exp(): Tensor {
    return ew.exp(this);
  }
  log(): Tensor {
    return ew.log(this);
  }
  sqrt(): Tensor {
    return ew.sqrt(this);
  }
  sigmoid(): Tensor {
    return ew.sigmoid(this);
  }
  tanh(): Tensor {
    return ew.tanh(this);
  }
  reciprocal(): Tensor {
    return ew.reciprocal(this);
  }
  clamp(lo?: number | null, hi?: number | null): Tensor {
    return ew.clamp(this, lo, hi);
  }
  addInPlace(b: Operand): this {
    ew.addInPlace(this, b);
    return this;
  }
  subInPlace(b: Operand): this {
    ew.subInPlace(this, b);
    return this;
  }
  mulInPlace(b: Operand): this {
    ew.mulInPlace(this, b);
    return this;
  }
  divInPlace(b: Operand): this {
    ew.divInPlace(this, b);
    return this;
  }
  scaleInPlace(alpha: number): this {
    ew.scaleInPlace(this, alpha);
    return this;
  }
  /** this += alpha * x */
  axpyInPlace(alpha: number, x: Operand): this {
    ew.axpyInPlace(this, alpha, x);
    return this;
  }
  /** Copies `src` (broadcast to this shape) into this view; returns `this`. */
  copyFrom(src: Operand): this {
    ew.copyInto(this, src);
    return this;
  }
  equals(other: Tensor): boolean {
    return ew.equals(this, other);
  }
  allClose(other: Operand, rtol?: number, atol?: number): boolean {
    return ew.allClose(this, other, rtol, atol);
  }

  // ---- reductions (see reduce.ts) ----
  sum(axes?: number | readonly number[], keepdims = false): Tensor {
    return rd.sum(this, axes, keepdims);
  }
  mean(axes?: number | readonly number[], keepdims = false): Tensor {
    return rd.mean(this, axes, keepdims);
  }
  max(axes?: number | readonly number[], keepdims = false): Tensor {
    return rd.max(this, axes, keepdims);
  }
  min(axes?: number | readonly number[], keepdims = false): Tensor {
    return rd.min(this, axes, keepdims);
  }
  argmax(axis?: number, keepdims = false): Tensor {
    return rd.argmax(this, axis, keepdims);
  }
  argmin(axis?: number, keepdims = false): Tensor {
    return rd.argmin(this, axis, keepdims);
  }
  logsumexp(axes?: number | readonly number[], keepdims = false): Tensor {
    return rd.logsumexp(this, axes, keepdims);
  }
  softmax(axis = -1): Tensor {
    return rd.softmax(this, axis);
  }
  logSoftmax(axis = -1): Tensor {
    return rd.logSoftmax(this, axis);
  }
  /** Sums a broadcast result back down to `shape` (the reverse of broadcasting). */
  sumToShape(shape: readonly number[]): Tensor {
    return rd.sumToShape(this, shape);
  }

  matmul(b: Tensor): Tensor {
    return matmul(this, b);
  }
}

// Set by wrap() for exactly one constructor call: lets the package's own ops skip argument
// validation (shapes and strides they computed themselves), which would otherwise be a large
// share of a small op's cost.
let trusted = false;

/**
 * Internal: builds a Tensor from arrays this package computed (they are kept, not copied,
 * so the caller must not mutate them afterwards). Not exported from the package.
 */
export function wrap(
  data: TypedArray,
  shape: readonly number[],
  strides?: readonly number[],
  offset = 0,
): Tensor {
  trusted = true;
  return new Tensor(data, shape, strides, offset);
}

function validateLayout(
  data: TypedArray,
  sh: number[],
  st: number[],
  offset: number,
  size: number,
): void {
  if (st.length !== sh.length || !st.every((s) => Number.isSafeInteger(s))) {
    throw new RangeError(
      `Tensor: strides ${fmtShape(st)} must be ${sh.length} integers to match shape ${fmtShape(sh)}`,
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`Tensor: offset must be a non-negative integer, got ${String(offset)}`);
  }
  if (size > 0) {
    let lo = offset,
      hi = offset;
    for (let i = 0; i < sh.length; i++) {
      const span = st[i]! * (sh[i]! - 1);
      if (span < 0) lo += span;
      else hi += span;
    }
    if (lo < 0 || hi >= data.length) {
      throw new RangeError(
        `Tensor: shape ${fmtShape(sh)}, strides ${fmtShape(st)} and offset ${offset} reach indices ${lo}..${hi}, outside data of length ${data.length}`,
      );
    }
  }
}

/** Resolves -1 in a requested shape and checks the size matches. */
function inferShape(
  fn: string,
  from: readonly number[],
  size: number,
  shape: readonly number[],
): number[] {
  if (!Array.isArray(shape)) {
    throw new RangeError(`${fn}: shape must be an array of integers, got ${String(shape)}`);
  }
  let infer = -1;
  let known = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as number;
    if (d === -1 && infer === -1) infer = i;
    else if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `${fn}: shape ${fmtShape(shape)} must hold non-negative integers and at most one -1`,
      );
    } else known *= d;
  }
  const out = shape.slice();
  if (infer >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new RangeError(
        `${fn}: cannot infer the -1 in ${fmtShape(shape)} for a tensor of shape ${fmtShape(from)} (size ${size})`,
      );
    }
    out[infer] = size / known;
  } else if (known !== size) {
    throw new RangeError(
      `${fn}: cannot reshape shape ${fmtShape(from)} (size ${size}) into ${fmtShape(shape)} (size ${known})`,
    );
  }
  return out;
}

/**
 * Strides that present `t`'s elements, in row-major order, with shape `target`, or null if
 * no such strides exist (NumPy's `_attempt_nocopy_reshape`): groups of old axes whose
 * product equals a group of new axes must be contiguous with each other.
 */
function viewStrides(t: Tensor, target: readonly number[]): number[] | null {
  if (t.isContiguous() || t.size === 0) return contiguousStrides(target);
  const od: number[] = [];
  const os: number[] = [];
  for (let i = 0; i < t.ndim; i++) {
    if (t.shape[i] !== 1) {
      od.push(t.shape[i]!);
      os.push(t.strides[i]!);
    }
  }
  const ns = new Array<number>(target.length).fill(0);
  let oi = 0,
    oj = 1,
    ni = 0,
    nj = 1;
  while (ni < target.length && oi < od.length) {
    let np = target[ni]!;
    let op = od[oi]!;
    while (np !== op) {
      if (np < op) np *= target[nj++]!;
      else op *= od[oj++]!;
    }
    for (let ok = oi; ok < oj - 1; ok++) {
      if (os[ok] !== od[ok + 1]! * os[ok + 1]!) return null;
    }
    ns[nj - 1] = os[oj - 1]!;
    for (let nk = nj - 1; nk > ni; nk--) ns[nk - 1] = ns[nk]! * target[nk]!;
    ni = nj++;
    oi = oj++;
  }
  const last = ni >= 1 ? ns[ni - 1]! : 1;
  for (let nk = ni; nk < target.length; nk++) ns[nk] = last;
  return ns;
}

/** A slice start/stop: negative counts from the end; the result must lie in lo..hi. */
function sliceBound(
  what: string,
  v: number,
  axis: number,
  d: number,
  lo: number,
  hi: number,
): number {
  const k = Number.isInteger(v) && v < 0 ? v + d : v;
  if (!Number.isInteger(v) || k < lo || k > hi) {
    throw new RangeError(
      `slice: ${what} ${String(v)} is out of range for axis ${axis} of size ${d}; allowed ${lo - d}..${hi}`,
    );
  }
  return k;
}
