// Inverted dropout: in training each element is zeroed with probability p and survivors are
// scaled by 1/(1-p), so evaluation needs no rescaling and is the identity. The mask is drawn
// from the caller's seeded Generator (one nextFloat32 per element, in row-major order), so
// the same generator state gives the same mask.
import { Generator } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { allocLike, denseFloat, freshGrad, wrap } from "../util.ts";

/**
 * Zeroes each element with probability p (and scales the rest by 1/(1-p)) when `training`;
 * returns x itself when not training or p = 0.
 */
export function dropout(x: Variable, p: number, generator: Generator, training: boolean): Variable {
  const fn = "dropout";
  checkVariable(fn, "x", x);
  if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
    throw new RangeError(`${fn}: p must be a probability in [0, 1], got ${String(p)}`);
  }
  if (typeof training !== "boolean") {
    throw new TypeError(`${fn}: training must be a boolean, got ${typeof training}`);
  }
  if (!training || p === 0) return x;
  if (!(generator instanceof Generator)) {
    throw new TypeError(`${fn}: generator must be a @tessera/tensor Generator when training`);
  }
  const X = denseFloat(x.data);
  const n = x.data.size;
  // mask holds the factor each element is multiplied by: 0 or 1/(1-p)
  const mask = allocLike(X, n);
  const keep = p === 1 ? 0 : 1 / (1 - p);
  for (let i = 0; i < n; i++) mask[i] = generator.nextFloat32() < p ? 0 : keep;
  const y = allocLike(X, n);
  for (let i = 0; i < n; i++) y[i] = X[i]! * mask[i]!;
  const shape = x.data.shape;
  return record(fn, wrap(y, shape), [x], (g) => {
    const G = denseFloat(g);
    const gx = allocLike(mask, n);
    for (let i = 0; i < n; i++) gx[i] = G[i]! * mask[i]!;
    return [freshGrad(gx, shape)];
  });
}
