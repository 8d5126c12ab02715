import { epochGenerator, randomBelow } from "./prng.ts";

export function checkUint32(fn: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${fn}: ${name} must be an integer in [0, 2^32-1], got ${v}`);
  }
}

/**
 * The order of items 0..count-1 for one epoch: a Fisher-Yates shuffle driven by
 * `epochGenerator(seed, epoch)`. Same (count, seed, epoch) gives the same permutation on
 * every platform; any epoch can be recomputed on its own (no state carried between epochs).
 */
export function epochPermutation(count: number, seed: number, epoch: number): Uint32Array {
  const fn = "epochPermutation";
  checkUint32(fn, "count", count);
  checkUint32(fn, "seed", seed);
  checkUint32(fn, "epoch", epoch);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  const next = epochGenerator(seed, epoch);
  for (let i = count - 1; i > 0; i--) {
    const j = randomBelow(next, i + 1);
    const t = order[i] ?? 0;
    order[i] = order[j] ?? 0;
    order[j] = t;
  }
  return order;
}
