// Joining tensors along an axis.

import { promoteTypes, allocate } from "./dtype.ts";
import { fmtShape, normalizeAxis } from "./shape.ts";
import { Tensor } from "./tensor.ts";

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
  const out = new Tensor(
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
