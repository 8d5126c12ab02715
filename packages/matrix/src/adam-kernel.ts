// The kernel of adamUpdate (adam.ts): no imports beyond types, as the pool's workers load it.
import type { FloatArray } from "./types.ts";

/** The scalars' order in the job's `h` array (a job's numbers travel as integers). */
export const ADAM_FIELDS = [
  "beta1",
  "beta2",
  "eps",
  "stepSize",
  "bc2sqrt",
  "l2",
  "shrink",
] as const;

export interface AdamJobArgs {
  w: FloatArray;
  g: FloatArray;
  m: FloatArray;
  v: FloatArray;
  /** ADAM_FIELDS' values. */
  h: Float64Array;
}

/** Elements [k0, k1) of the update. */
export function adamRange(a: AdamJobArgs, k0: number, k1: number): void {
  const { w, g, m, v, h } = a;
  const b1 = h[0]!;
  const b2 = h[1]!;
  const eps = h[2]!;
  const stepSize = h[3]!;
  const bc2sqrt = h[4]!;
  const l2 = h[5]!;
  const shrink = h[6]!;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  if (l2 === 0 && shrink === 1) {
    // The common case (no weight decay) without the decay arithmetic: ~25% faster.
    for (let k = k0; k < k1; k++) {
      const gk = g[k]!;
      const mk = b1 * m[k]! + c1 * gk;
      const vk = b2 * v[k]! + c2 * gk * gk;
      m[k] = mk;
      v[k] = vk;
      w[k] = w[k]! - (stepSize * mk) / (Math.sqrt(vk) / bc2sqrt + eps);
    }
    return;
  }
  for (let k = k0; k < k1; k++) {
    const wk = w[k]! * shrink;
    const gk = g[k]! + l2 * w[k]!;
    const mk = b1 * m[k]! + c1 * gk;
    const vk = b2 * v[k]! + c2 * gk * gk;
    m[k] = mk;
    v[k] = vk;
    w[k] = wk - (stepSize * mk) / (Math.sqrt(vk) / bc2sqrt + eps);
  }
}
