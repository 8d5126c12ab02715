// Joining tensors along an axis.

import { promoteTypes, allocate } from "./dtype.ts";
import type { DType } from "./dtype.ts";
import { fmtShape, normalizeAxis } from "./shape.ts";
import { Tensor, wrap } from "./tensor.ts";

function checkList(fn: string, tensors: readonly Tensor[]): void {
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new RangeError(`${fn}: expected a non-empty array of tensors`);
  }
  tensors.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new TypeError(`${fn}: element ${i} is not a Tensor`);
  });
}

/**
 * Joins tensors along an existing axis; all other dims must match. Result dtype is the
 * promotion of all inputs (as for add).
 */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  checkList("concat", tensors);
  const first = tensors[0]!;
  const nd = first.ndim;
  if (nd === 0) throw new RangeError("concat: cannot concatenate 0-d tensors; use stack");
  const ax = normalizeAxis("concat", axis, nd);
  let total = 0;
  let dtype = first.dtype;
  for (const t of tensors) {
    const same = t.ndim === nd && t.shape.every((d, i) => i === ax || d === first.shape[i]);
    if (!same) {
      throw new Error(
        `concat: shapes ${fmtShape(first.shape)} and ${fmtShape(t.shape)} differ outside axis ${ax}`,
      );
    }
    total += t.shape[ax]!;
    dtype = promoteTypes(dtype, t.dtype);
  }
  const shape = first.shape.slice();
  shape[ax] = total;
  const out = wrap(
    allocate(
      dtype,
      shape.reduce((a, b) => a * b, 1),
    ),
    shape,
  );
  let at = 0;
  for (const t of tensors) {
    const d = t.shape[ax]!;
    if (d > 0) {
      const spec: ([number, number] | null)[] = shape.map(() => null);
      spec[ax] = [at, at + d];
      out.slice(...spec).copyFrom(t);
    }
    at += d;
  }
  return out;
}

/** Joins same-shape tensors along a new axis (in -(ndim+1)..ndim). */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  checkList("stack", tensors);
  const first = tensors[0]!;
  for (const t of tensors) {
    if (t.ndim !== first.ndim || !t.shape.every((d, i) => d === first.shape[i])) {
      throw new Error(
        `stack: all tensors need the same shape; got ${fmtShape(first.shape)} and ${fmtShape(t.shape)}`,
      );
    }
  }
  const ax = normalizeAxis("stack", axis, first.ndim + 1);
  return concat(
    tensors.map((t) => t.unsqueeze(ax)),
    ax,
  );
}

/**
 * Pads with a constant: `widths[i] = [before, after]` for each leading axis (missing
 * trailing axes get no padding). Returns a new packed tensor.
 */
export function pad(t: Tensor, widths: readonly (readonly [number, number])[], value = 0): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError("pad: operand must be a Tensor");
  if (!Array.isArray(widths) || widths.length > t.ndim) {
    throw new RangeError(
      `pad: expected at most ${t.ndim} [before, after] pairs for shape ${fmtShape(t.shape)}`,
    );
  }
  const shape = t.shape.slice();
  const spec: ([number, number] | null)[] = shape.map(() => null);
  widths.forEach((w, i) => {
    const ok =
      Array.isArray(w) && w.length === 2 && w.every((v) => Number.isSafeInteger(v) && v >= 0);
    if (!ok) {
      throw new RangeError(
        `pad: widths[${i}] must be [before, after] with non-negative integers, got ${JSON.stringify(w)}`,
      );
    }
    spec[i] = [w[0], w[0] + shape[i]!];
    shape[i] = shape[i]! + w[0] + w[1];
  });
  const out = wrap(
    allocate(
      t.dtype,
      shape.reduce((a, b) => a * b, 1),
    ),
    shape,
  );
  if (value !== 0) out.fill(value);
  if (t.size > 0) out.slice(...spec).copyFrom(t);
  return out;
}

/**
 * One-hot rows: labels (integers, any shape) -> shape [...labels.shape, numClasses] with a 1
 * at each label. Labels outside 0..numClasses-1 throw.
 */
export function oneHot(labels: Tensor, numClasses: number, dtype: DType = "float32"): Tensor {
  if (!(labels instanceof Tensor)) throw new TypeError("oneHot: labels must be a Tensor");
  if (!Number.isSafeInteger(numClasses) || numClasses < 1) {
    throw new RangeError(
      `oneHot: numClasses must be a positive integer, got ${String(numClasses)}`,
    );
  }
  const flat = labels.reshape([-1]);
  const out = wrap(allocate(dtype, flat.size * numClasses), [...labels.shape, numClasses]);
  for (let i = 0; i < flat.size; i++) {
    const c = flat.get(i);
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw new RangeError(
        `oneHot: label ${c} at flat position ${i} is outside 0..${numClasses - 1}`,
      );
    }
    out.data[i * numClasses + c] = 1;
  }
  return out;
}
