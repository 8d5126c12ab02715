// Functions that make new tensors: constants, ranges, from JS data, and random draws.
// Every random function takes an explicit Generator: there is no hidden global stream.

import { allocate, checkDType, dtypeOfArray } from "./dtype.ts";
import type { DType, TypedArray } from "./dtype.ts";
import { Generator } from "./generator.ts";
import { checkShape, fmtShape, shapeSize } from "./shape.ts";
import type { Tensor } from "./tensor.ts";
import { wrap } from "./tensor.ts";
import type { NestedArray } from "./format.ts";

export function zeros(shape: readonly number[], dtype: DType = "float32"): Tensor {
  const sh = checkShape("zeros", shape);
  return wrap(allocate(checkDType("zeros", dtype), shapeSize(sh)), sh);
}

export function ones(shape: readonly number[], dtype: DType = "float32"): Tensor {
  return fullNamed("ones", shape, 1, dtype);
}

export function full(shape: readonly number[], value: number, dtype: DType = "float32"): Tensor {
  return fullNamed("full", shape, value, dtype);
}

function fullNamed(fn: string, shape: readonly number[], value: number, dtype: DType): Tensor {
  const sh = checkShape(fn, shape);
  if (typeof value !== "number") {
    throw new TypeError(`${fn}: value must be a number, got ${typeof value}`);
  }
  const data = allocate(checkDType(fn, dtype), shapeSize(sh));
  data.fill(value);
  return wrap(data, sh);
}

/** A 0-d tensor holding `value`. */
export function scalar(value: number, dtype: DType = "float32"): Tensor {
  return fullNamed("scalar", [], value, dtype);
}

export function zerosLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  return zeros(t.shape, dtype);
}

export function onesLike(t: Tensor, dtype: DType = t.dtype): Tensor {
  return fullNamed("onesLike", t.shape, 1, dtype);
}

export function fullLike(t: Tensor, value: number, dtype: DType = t.dtype): Tensor {
  return fullNamed("fullLike", t.shape, value, dtype);
}

/** The n x m identity (m defaults to n). */
export function eye(n: number, m: number = n, dtype: DType = "float32"): Tensor {
  const t = zeros([n, m], dtype);
  const k = Math.min(n, m);
  for (let i = 0; i < k; i++) t.data[i * m + i] = 1;
  return t;
}

/**
 * Values start, start+step, ... below stop (above it for a negative step), as NumPy:
 * `arange(stop)` or `arange(start, stop, step = 1, dtype = "float32")`. The length is
 * ceil((stop - start) / step) and element i is start + i * step.
 */
export function arange(start: number, stop?: number, step = 1, dtype: DType = "float32"): Tensor {
  let a = start,
    b = stop;
  if (b === undefined) {
    b = a;
    a = 0;
  }
  checkDType("arange", dtype);
  if (![a, b, step].every((v) => typeof v === "number" && Number.isFinite(v)) || step === 0) {
    throw new RangeError(
      `arange: start, stop and step must be finite numbers with step != 0, got start=${String(a)}, stop=${String(b)}, step=${String(step)}`,
    );
  }
  const n = Math.max(0, Math.ceil((b - a) / step));
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = a + i * step;
  return wrap(data, [n]);
}

function isTypedArrayLike(
  x: unknown,
): x is TypedArray | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array {
  return ArrayBuffer.isView(x) && !(x instanceof DataView);
}

/**
 * Builds a tensor from JS data:
 * - `fromArray(nested, dtype?)`: a number or (possibly nested) array of numbers; every
 *   sub-array at one depth must have the same length. dtype defaults to float32.
 * - `fromArray(flat, shape, dtype?)`: a typed array or number[] of exactly
 *   product(shape) elements. A Float32Array/Float64Array/Int32Array whose type is the
 *   requested dtype (the default when dtype is omitted) is wrapped WITHOUT copying (the
 *   tensor views it); anything else is converted into a new array.
 */
export function fromArray(
  data: NestedArray | TypedArray | ArrayLike<number>,
  shapeOrDType?: readonly number[] | DType,
  dtypeArg?: DType,
): Tensor {
  if (Array.isArray(shapeOrDType)) {
    const shape = checkShape("fromArray", shapeOrDType);
    const n = shapeSize(shape);
    if (!isTypedArrayLike(data) && !Array.isArray(data)) {
      throw new TypeError(
        "fromArray: with a shape, data must be a typed array or a flat array of numbers",
      );
    }
    const flat = data as ArrayLike<number>;
    if (flat.length !== n) {
      throw new RangeError(
        `fromArray: data has ${flat.length} elements but shape ${fmtShape(shape)} needs ${n}`,
      );
    }
    const own = dtypeOfArray(flat);
    const dtype = checkDType("fromArray", dtypeArg ?? own ?? "float32");
    if (own === dtype) return wrap(flat as TypedArray, shape);
    const out = allocate(dtype, n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== "number")
        throw new TypeError(`fromArray: element ${i} is ${typeof v}, expected a number`);
      out[i] = v;
    }
    return wrap(out, shape);
  }
  if (isTypedArrayLike(data)) {
    // a typed array without a shape is 1-d
    return fromArray(
      data as TypedArray,
      [(data as TypedArray).length],
      shapeOrDType as DType | undefined,
    );
  }
  const dtype = checkDType("fromArray", shapeOrDType ?? "float32");
  // infer the shape from the first element at each depth, then check every element
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const out = allocate(dtype, shapeSize(shape));
  let w = 0;
  const walk = (x: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof x !== "number") {
        throw new TypeError(
          `fromArray: element at ${path || "[]"} is ${Array.isArray(x) ? "an array" : typeof x}, expected a number (ragged nesting?)`,
        );
      }
      out[w++] = x;
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) {
      throw new RangeError(
        `fromArray: ragged nested array: ${path || "the top level"} has ${Array.isArray(x) ? `length ${x.length}` : "a number"} where length ${shape[depth]} was expected (shape ${fmtShape(shape)})`,
      );
    }
    for (let i = 0; i < x.length; i++) walk(x[i], depth + 1, `${path}[${i}]`);
  };
  walk(data, 0, "");
  return wrap(out, shape);
}

function checkGen(fn: string, gen: unknown): Generator {
  if (!(gen instanceof Generator)) {
    throw new TypeError(`${fn}: expected a Generator (createGenerator(seed)) as the random source`);
  }
  return gen;
}

/**
 * Uniform values in [0, 1). float32 uses one 24-bit draw per element (exactly
 * representable, never 1); float64 uses nextFloat() (53 bits, two draws).
 */
export function rand(shape: readonly number[], gen: Generator, dtype: DType = "float32"): Tensor {
  return uniformNamed("rand", shape, 0, 1, gen, dtype);
}

/**
 * Uniform values in [low, high) (for float32 the rounding of low + (high-low)*u may reach
 * high when the interval is tiny relative to its magnitude).
 */
export function uniform(
  shape: readonly number[],
  low: number,
  high: number,
  gen: Generator,
  dtype: DType = "float32",
): Tensor {
  return uniformNamed("uniform", shape, low, high, gen, dtype);
}

function uniformNamed(
  fn: string,
  shape: readonly number[],
  low: number,
  high: number,
  gen: Generator,
  dtype: DType,
): Tensor {
  const sh = checkShape(fn, shape);
  checkGen(fn, gen);
  checkDType(fn, dtype);
  if (dtype === "int32") {
    throw new RangeError(`${fn}: dtype must be "float32" or "float64"; use randint for integers`);
  }
  if (!Number.isFinite(low) || !Number.isFinite(high) || !(low <= high)) {
    throw new RangeError(
      `${fn}: need finite low <= high, got low=${String(low)}, high=${String(high)}`,
    );
  }
  const n = shapeSize(sh);
  const data = allocate(dtype, n);
  const w = high - low;
  if (dtype === "float32") for (let i = 0; i < n; i++) data[i] = low + w * gen.nextFloat32();
  else for (let i = 0; i < n; i++) data[i] = low + w * gen.nextFloat();
  return wrap(data, sh);
}

/** Normal values N(mean, std^2) (Marsaglia polar method, see Generator.normal). */
export function randn(
  shape: readonly number[],
  gen: Generator,
  dtype: DType = "float32",
  mean = 0,
  std = 1,
): Tensor {
  const sh = checkShape("randn", shape);
  checkGen("randn", gen);
  checkDType("randn", dtype);
  if (dtype === "int32") throw new RangeError('randn: dtype must be "float32" or "float64"');
  if (!Number.isFinite(mean) || !Number.isFinite(std) || std < 0) {
    throw new RangeError(
      `randn: need finite mean and std >= 0, got mean=${String(mean)}, std=${String(std)}`,
    );
  }
  const n = shapeSize(sh);
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = gen.normal(mean, std);
  return wrap(data, sh);
}

/** Uniform integers in [low, high) (unbiased), int32 by default. */
export function randint(
  low: number,
  high: number,
  shape: readonly number[],
  gen: Generator,
  dtype: DType = "int32",
): Tensor {
  const sh = checkShape("randint", shape);
  checkGen("randint", gen);
  checkDType("randint", dtype);
  if (
    !Number.isSafeInteger(low) ||
    !Number.isSafeInteger(high) ||
    low >= high ||
    low < -2147483648 ||
    high > 2147483648
  ) {
    throw new RangeError(
      `randint: need integers -2^31 <= low < high <= 2^31, got low=${String(low)}, high=${String(high)}`,
    );
  }
  const n = shapeSize(sh);
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = gen.int(low, high);
  return wrap(data, sh);
}
