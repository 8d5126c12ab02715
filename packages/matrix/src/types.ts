// Shared argument types and validation helpers for every kernel in this package.

/** The element types the kernels accept. Float32 is the fast path; Float64 serves gradient checks. */
export type FloatArray = Float32Array<ArrayBufferLike> | Float64Array<ArrayBufferLike>;

/**
 * The array type of the same element kind as T, over any buffer (ArrayBuffer or
 * SharedArrayBuffer), so ordinary and shared arrays mix freely in one call.
 */
export type SameFloat<T extends FloatArray> =
  T extends Float32Array<ArrayBufferLike>
    ? Float32Array<ArrayBufferLike>
    : Float64Array<ArrayBufferLike>;

/** Throws unless `v` is a non-negative safe integer; names the calling function and argument. */
export function checkDim(fn: string, name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${fn}: ${name} must be a non-negative integer, got ${String(v)}`);
  }
}

/** Throws unless `arr` is a Float32Array or Float64Array. */
export function checkFloatArray(fn: string, name: string, arr: unknown): asserts arr is FloatArray {
  if (!(arr instanceof Float32Array) && !(arr instanceof Float64Array)) {
    const got =
      arr === null
        ? "null"
        : typeof arr === "object"
          ? (arr.constructor?.name ?? "object")
          : typeof arr;
    throw new TypeError(`${fn}: ${name} must be a Float32Array or Float64Array, got ${got}`);
  }
}

/** Throws unless `arr` holds at least `need` elements (shape given for the message). */
export function checkLength(
  fn: string,
  name: string,
  arr: FloatArray,
  need: number,
  shape: string,
): void {
  if (arr.length < need) {
    throw new RangeError(
      `${fn}: ${name} has ${arr.length} elements but shape ${shape} needs at least ${need}`,
    );
  }
}

/** Throws unless `b` has the same element type as `a` (kernels never mix precisions). */
export function checkSameType(fn: string, name: string, a: FloatArray, b: FloatArray): void {
  if (a.constructor !== b.constructor) {
    throw new TypeError(
      `${fn}: ${name} is a ${b.constructor.name} but the first operand is a ${a.constructor.name}; operands must share one element type`,
    );
  }
}

/** Allocates an array of the same element type as `like`. */
export function allocLike<T extends FloatArray>(like: T, n: number): T {
  return (like instanceof Float32Array ? new Float32Array(n) : new Float64Array(n)) as T;
}

/** Which operand of a dense product is stored transposed: 0 none, 1 A (stored [k,m]), 2 B (stored [n,k]). */
export type Trans = 0 | 1 | 2;
export const TRANS_NONE = 0;
export const TRANS_A = 1;
export const TRANS_B = 2;
