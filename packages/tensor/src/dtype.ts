// Element types and the rules that decide an operation's result type.
//
// float32 is the working dtype (what training uses); float64 exists so finite-difference
// gradient checks have enough precision; int32 holds indices, labels and 0/1 masks.

export type DType = "float32" | "float64" | "int32";

/** The typed arrays a tensor can view. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

/** Maps a dtype name to its typed array type. */
export type ArrayFor<D extends DType> = D extends "float32"
  ? Float32Array
  : D extends "float64"
    ? Float64Array
    : Int32Array;

export const DTYPES: readonly DType[] = ["float32", "float64", "int32"];

export function isDType(x: unknown): x is DType {
  return x === "float32" || x === "float64" || x === "int32";
}

/** Throws a RangeError naming `fn` unless `dtype` is one of the supported names. */
export function checkDType(fn: string, dtype: unknown): DType {
  if (!isDType(dtype)) {
    throw new RangeError(
      `${fn}: unknown dtype ${JSON.stringify(dtype)}; expected one of "float32", "float64", "int32"`,
    );
  }
  return dtype;
}

/** A zero-filled typed array of `dtype` with `n` elements. */
export function allocate(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(n);
    case "float64":
      return new Float64Array(n);
    case "int32":
      return new Int32Array(n);
  }
}

/** The dtype of a typed array, or undefined for other array kinds. */
export function dtypeOfArray(a: unknown): DType | undefined {
  if (a instanceof Float32Array) return "float32";
  if (a instanceof Float64Array) return "float64";
  if (a instanceof Int32Array) return "int32";
  return undefined;
}

export function isFloat(dtype: DType): boolean {
  return dtype !== "int32";
}

/**
 * Result dtype of a binary op on two tensors: float64 if either is float64, else float32
 * if either is float32, else int32.
 */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === "float64" || b === "float64") return "float64";
  if (a === "float32" || b === "float32") return "float32";
  return "int32";
}

/**
 * Result dtype of a binary op between a tensor and a JS number: the tensor's dtype, except
 * that an int32 tensor meeting a non-integer number becomes float32 (numbers are "weak",
 * as in NumPy 2 and PyTorch, so `x.mul(0.5)` keeps float32 x in float32).
 */
export function promoteWithScalar(t: DType, s: number): DType {
  if (t === "int32" && !Number.isInteger(s)) return "float32";
  return t;
}

/** The float dtype an op with a non-integral result gives: int32 becomes float32. */
export function toFloat(dtype: DType): DType {
  return dtype === "int32" ? "float32" : dtype;
}
