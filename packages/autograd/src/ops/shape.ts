// View ops: the forward is a @tessera/tensor view (no copy where strides allow), the
// backward is the inverse view of the gradient (reshape back, inverse permutation, or
// summing a broadcast away).
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { fmt, normAxis } from "../util.ts";

/** Same elements in a new shape (one dim may be -1). */
export function reshape(x: Variable, shape: readonly number[]): Variable {
  checkVariable("reshape", "x", x);
  const from = x.data.shape;
  return record("reshape", x.data.reshape(shape), [x], (g) => [g.reshape(from)]);
}

/**
 * Merges axes startAxis..endAxis (inclusive, default all) into one, as torch.flatten:
 * flatten(x) gives 1-d, flatten(x, 1) turns [N, C, H, W] into [N, C*H*W].
 */
export function flatten(x: Variable, startAxis = 0, endAxis = -1): Variable {
  checkVariable("flatten", "x", x);
  const shape = x.data.shape;
  if (shape.length === 0) return reshape(x, [1]);
  const s = normAxis("flatten", startAxis, shape.length);
  const e = normAxis("flatten", endAxis, shape.length);
  if (s > e) {
    throw new RangeError(
      `flatten: startAxis ${startAxis} comes after endAxis ${endAxis} for shape ${fmt(shape)}`,
    );
  }
  let merged = 1;
  for (let i = s; i <= e; i++) merged *= shape[i]!;
  return reshape(x, [...shape.slice(0, s), merged, ...shape.slice(e + 1)]);
}

function inverse(perm: readonly number[], n: number): number[] {
  const inv = new Array<number>(n);
  perm.forEach((p, i) => {
    inv[p < 0 ? p + n : p] = i;
  });
  return inv;
}

/** Permutes axes: result axis i is input axis axes[i]. */
export function permute(x: Variable, axes: readonly number[]): Variable {
  checkVariable("permute", "x", x);
  const n = x.data.ndim;
  const out = x.data.permute(axes as number[]);
  return record("permute", out, [x], (g) => [g.permute(inverse(axes, n))]);
}

/** Reverses all axes when `axes` is omitted (x.T), otherwise the same as permute. */
export function transpose(x: Variable, axes?: readonly number[]): Variable {
  checkVariable("transpose", "x", x);
  const n = x.data.ndim;
  const perm = axes ?? Array.from({ length: n }, (_, i) => n - 1 - i);
  const out = x.data.transpose(perm);
  return record("transpose", out, [x], (g) => [g.permute(inverse(perm, n))]);
}

/** Broadcasts to `shape` (NumPy rules) as a stride-0 view; the backward sums it away. */
export function broadcastTo(x: Variable, shape: readonly number[]): Variable {
  checkVariable("broadcastTo", "x", x);
  const from = x.data.shape;
  return record("broadcastTo", x.data.broadcastTo(shape), [x], (g) => [g.sumToShape(from)]);
}

/** Inserts a size-1 axis at `axis`. */
export function unsqueeze(x: Variable, axis: number): Variable {
  checkVariable("unsqueeze", "x", x);
  const from = x.data.shape;
  return record("unsqueeze", x.data.unsqueeze(axis), [x], (g) => [g.reshape(from)]);
}

/** Removes the given size-1 axes (all size-1 axes when omitted). */
export function squeeze(x: Variable, axes?: number | readonly number[]): Variable {
  checkVariable("squeeze", "x", x);
  const from = x.data.shape;
  return record("squeeze", x.data.squeeze(axes), [x], (g) => [g.reshape(from)]);
}
