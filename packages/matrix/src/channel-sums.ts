// Per-channel sums of an [n, c, p] array, accumulated in float64: a layer's bias gradient
// (@tessera/autograd's channelSums). Serial on the calling thread it was 3.0% of a two-thread
// smallCnn() step (docs/benchmarks/epoch-profile.md) while the worker waited; with a pool the
// channels are split over its threads, each channel summed whole by one thread in the serial
// order (positions first, then images), so the bits are the serial loop's.
import type { FloatArray } from "./types.ts";
import { checkDim, checkFloatArray } from "./types.ts";
import type { MatrixPool } from "./pool.ts";
import { runChannelSums } from "./parallel.ts";
import type { ChannelSumsArgs } from "./channel-sums-kernel.ts";

/**
 * acc[j] += the sum over images and positions of channel j of g [n, c, p] (positions summed
 * first, then images in order, in float64). With a pool, split over its threads by channels
 * when g and acc are both on shared memory and the work pays for it.
 */
export function channelSums(
  g: FloatArray,
  n: number,
  c: number,
  p: number,
  acc: Float64Array,
  options?: { pool?: MatrixPool },
): void {
  const fn = "channelSums";
  checkDim(fn, "n", n);
  checkDim(fn, "c", c);
  checkDim(fn, "p", p);
  checkFloatArray(fn, "g", g);
  if (!(acc instanceof Float64Array))
    throw new TypeError(`${fn}: acc must be a Float64Array of c = ${c} sums`);
  if (g.length < n * c * p)
    throw new RangeError(
      `${fn}: g has ${g.length} values, expected n*c*p = ${n}*${c}*${p} = ${n * c * p}`,
    );
  if (acc.length < c) throw new RangeError(`${fn}: acc has ${acc.length} values, expected ${c}`);
  const args: ChannelSumsArgs = { g, acc, n, c, p };
  const shared = [g, acc].every((a) => a.buffer instanceof SharedArrayBuffer);
  runChannelSums(args, n * c * p, shared ? options?.pool : undefined);
}
