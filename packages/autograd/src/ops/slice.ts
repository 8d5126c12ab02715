// slice and concat: each is the other's backward. slice's gradient is a zero tensor with
// the output gradient written into the sliced window; concat's gradient for each input is
// the slice of the output gradient that input filled.
import { concat as concatTensors, zeros } from "@tessera/tensor";
import type { SliceArg } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { fmt, normAxis, sameShape } from "../util.ts";
import { unsqueeze } from "./shape.ts";

/**
 * Basic slicing with @tessera/tensor's rules, one argument per leading axis: an index
 * (drops the axis), a range `[start, stop, step]` / `{start, stop, step}`, or null (whole
 * axis).
 */
export function slice(x: Variable, ...specs: SliceArg[]): Variable {
  checkVariable("slice", "x", x);
  const out = x.data.slice(...specs);
  return record("slice", out, [x], (g) => {
    const gx = zeros(x.data.shape, x.data.dtype);
    gx.slice(...specs).copyFrom(g);
    return [gx];
  });
}

/** Joins Variables along an existing axis; all other dims must match. */
export function concat(xs: readonly Variable[], axis = 0): Variable {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new RangeError("concat: expected a non-empty array of Variables");
  }
  xs.forEach((x, i) => checkVariable("concat", `element ${i}`, x));
  const out = concatTensors(
    xs.map((x) => x.data),
    axis,
  );
  const ax = normAxis("concat", axis, out.ndim);
  return record("concat", out, xs, (g) => {
    let at = 0;
    return xs.map((x) => {
      const d = x.data.shape[ax]!;
      const spec: ([number, number] | null)[] = out.shape.map(() => null);
      spec[ax] = [at, at + d];
      at += d;
      return x.requiresGrad ? g.slice(...spec) : null;
    });
  });
}

/** Joins same-shape Variables along a new axis. */
export function stack(xs: readonly Variable[], axis = 0): Variable {
  if (!Array.isArray(xs) || xs.length === 0) {
    throw new RangeError("stack: expected a non-empty array of Variables");
  }
  xs.forEach((x, i) => checkVariable("stack", `element ${i}`, x));
  const first = xs[0]!.data.shape;
  for (const x of xs) {
    if (!sameShape(x.data.shape, first)) {
      throw new Error(`stack: all shapes must match, got ${fmt(first)} and ${fmt(x.data.shape)}`);
    }
  }
  const n = first.length;
  const ax = normAxis("stack", axis, n + 1);
  return concat(
    xs.map((x) => unsqueeze(x, ax)),
    ax,
  );
}
