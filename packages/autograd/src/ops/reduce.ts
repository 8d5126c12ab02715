// Reductions over axes. The backward of each is a broadcast of the (kept-dims) output
// gradient back over the reduced axes: a stride-0 view for sum, scaled for mean, masked to
// the arg-extreme entries for max/min.
import type { Tensor } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { normAxes } from "../util.ts";

export type Axes = number | readonly number[] | undefined;

/** x's shape with the reduced axes set to 1 (the keepdims output shape). */
function kept(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Sum over `axes` (all when omitted); keepdims keeps reduced axes as size 1. */
export function sum(x: Variable, axes?: Axes, keepdims = false): Variable {
  checkVariable("sum", "x", x);
  const ax = normAxes("sum", axes, x.data.ndim);
  const shape = x.data.shape;
  return record("sum", x.data.sum(ax, keepdims), [x], (g) => [
    g.reshape(kept(shape, ax)).broadcastTo(shape),
  ]);
}

/** Mean over `axes` (all when omitted). Reducing a size-0 axis gives NaN. */
export function mean(x: Variable, axes?: Axes, keepdims = false): Variable {
  checkVariable("mean", "x", x);
  const ax = normAxes("mean", axes, x.data.ndim);
  const shape = x.data.shape;
  let count = 1;
  for (const a of ax) count *= shape[a]!;
  return record("mean", x.data.mean(ax, keepdims), [x], (g) => [
    g.reshape(kept(shape, ax)).div(count).broadcastTo(shape),
  ]);
}

/** Shared by max and min: the gradient is split evenly among tied extreme entries. */
function extreme(fn: "max" | "min", x: Variable, axes: Axes, keepdims: boolean): Variable {
  checkVariable(fn, "x", x);
  const ax = normAxes(fn, axes, x.data.ndim);
  const shape = x.data.shape;
  const out = fn === "max" ? x.data.max(ax, keepdims) : x.data.min(ax, keepdims);
  return record(fn, out, [x], (g: Tensor) => {
    const ks = kept(shape, ax);
    const mask = x.data.eq(out.reshape(ks)); // 1 where the entry equals its extreme
    const count = mask.sum(ax, true);
    return [g.reshape(ks).div(count).mul(mask)];
  });
}

/** Maximum over `axes`; ties share the gradient equally. Throws on a size-0 axis. */
export function max(x: Variable, axes?: Axes, keepdims = false): Variable {
  return extreme("max", x, axes, keepdims);
}

/** Minimum over `axes`; ties share the gradient equally. Throws on a size-0 axis. */
export function min(x: Variable, axes?: Axes, keepdims = false): Variable {
  return extreme("min", x, axes, keepdims);
}
