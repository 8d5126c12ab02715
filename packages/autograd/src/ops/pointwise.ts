// The shared shape of every one-input element-wise op: the forward loop and the backward
// loop are plain functions over packed arrays (one call per op, no per-element callbacks),
// written next to each other in the op's own file.
import type { Tensor } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { record, checkVariable } from "../record.ts";
import { allocOutputLike, denseFloat, freshGrad, wrap } from "../util.ts";
import type { FloatArray } from "../util.ts";

/** y[i] = f(x[i]) for every i < n (y is not zeroed first); `p` is the op's scalar parameter (e.g. a slope). */
export type ForwardLoop = (x: FloatArray, y: FloatArray, n: number, p: number) => void;
/** gx[i] = g[i] * f'(x[i]) for every i < n (gx is not zeroed first); may read the input x or the output y. */
export type BackwardLoop = (
  g: FloatArray,
  x: FloatArray,
  y: FloatArray,
  gx: FloatArray,
  n: number,
  p: number,
) => void;

/** Runs a pointwise op: packs the input, applies `fwd`, records `bwd`. */
export function pointwise(
  op: string,
  xv: Variable,
  fwd: ForwardLoop,
  bwd: BackwardLoop,
  p = 0,
): Variable {
  checkVariable(op, "x", xv);
  const x = denseFloat(xv.data);
  const n = xv.data.size;
  const y = allocOutputLike(x, n);
  fwd(x, y, n, p);
  const out = wrap(y, xv.data.shape);
  return record(op, out, [xv], (g: Tensor) => {
    const gd = denseFloat(g.dtype === out.dtype ? g : g.astype(out.dtype));
    const gx = allocOutputLike(x, n);
    bwd(gd, x, y, gx, n, p);
    return [freshGrad(gx, xv.data.shape)];
  });
}
