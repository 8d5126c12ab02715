import { toFloat32, type NormalizeOptions } from "./normalize.ts";
import { checkUint32, epochPermutation } from "./shuffle.ts";

/** Anything with `count` samples of equal size laid end to end in `images`. */
export interface BatchSource {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface BatchOptions {
  batchSize: number;
  /** PRNG seed, integer in [0, 2^32). Default 0. */
  seed?: number;
  /** Epoch number: each epoch has its own order, recomputable alone. Default 0. */
  epoch?: number;
  /** false keeps the stored order 0..count-1. Default true. */
  shuffle?: boolean;
  /** Drop the last batch when it has fewer than batchSize samples. Default false (kept). */
  dropLast?: boolean;
  /**
   * Gather every batch into the same buffers (the previous batch is overwritten when the
   * iterator advances; the short last batch is a prefix view). Default false: fresh buffers.
   */
  reuseBuffers?: boolean;
}

export interface Batch<I extends Uint8Array | Float32Array = Uint8Array> {
  /** size * sampleSize values, sample after sample. */
  images: I;
  labels: Uint8Array;
  /** Which dataset samples are in this batch, in order. */
  indices: Uint32Array;
  /** Number of samples (batchSize except possibly the last batch). */
  size: number;
  /** Position of this batch in the epoch, from 0. */
  index: number;
}

/** Number of batches one epoch yields. */
export function batchCount(count: number, batchSize: number, dropLast = false): number {
  checkUint32("batchCount", "count", count);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchCount: batchSize must be a positive integer, got ${batchSize}`);
  }
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

function sampleSizeOf(fn: string, ds: BatchSource): number {
  if (!(ds.images instanceof Uint8Array) || !(ds.labels instanceof Uint8Array)) {
    throw new TypeError(`${fn}: dataset images and labels must be Uint8Arrays`);
  }
  checkUint32(fn, "dataset count", ds.count);
  if (ds.labels.length !== ds.count) {
    throw new RangeError(`${fn}: dataset has count ${ds.count} but ${ds.labels.length} labels`);
  }
  if (ds.count === 0) return 0;
  const size = ds.images.length / ds.count;
  if (!Number.isInteger(size)) {
    throw new RangeError(
      `${fn}: ${ds.images.length} image bytes do not split into ${ds.count} equal samples`,
    );
  }
  return size;
}

/**
 * Iterates one epoch in mini-batches. The dataset is never copied: the epoch's order is a
 * permutation of indices (`epochPermutation(count, seed, epoch)`), and each batch gathers its
 * samples into a fresh buffer, or into one reused buffer when `reuseBuffers` is set.
 */
export function batches(ds: BatchSource, options: BatchOptions): Generator<Batch<Uint8Array>> {
  // Validate now, not at the first next(): a generator body would defer every error.
  const fn = "batches";
  const sampleSize = sampleSizeOf(fn, ds);
  const {
    batchSize,
    seed = 0,
    epoch = 0,
    shuffle = true,
    dropLast = false,
    reuseBuffers = false,
  } = options;
  const nBatches = batchCount(ds.count, batchSize, dropLast);
  checkUint32(fn, "seed", seed);
  checkUint32(fn, "epoch", epoch);
  return gather(ds, sampleSize, nBatches, { batchSize, seed, epoch, shuffle, reuseBuffers });
}

function* gather(
  ds: BatchSource,
  sampleSize: number,
  nBatches: number,
  o: Required<Omit<BatchOptions, "dropLast">>,
): Generator<Batch<Uint8Array>> {
  const { batchSize, seed, epoch, shuffle, reuseBuffers } = o;
  let order: Uint32Array;
  if (shuffle) order = epochPermutation(ds.count, seed, epoch);
  else {
    order = new Uint32Array(ds.count);
    for (let i = 0; i < ds.count; i++) order[i] = i;
  }
  const cap = Math.min(batchSize, ds.count);
  const imagesBuf = reuseBuffers ? new Uint8Array(cap * sampleSize) : undefined;
  const labelsBuf = reuseBuffers ? new Uint8Array(cap) : undefined;
  for (let b = 0; b < nBatches; b++) {
    const start = b * batchSize;
    const size = Math.min(batchSize, ds.count - start);
    const images = imagesBuf
      ? imagesBuf.subarray(0, size * sampleSize)
      : new Uint8Array(size * sampleSize);
    const labels = labelsBuf ? labelsBuf.subarray(0, size) : new Uint8Array(size);
    const indices = order.slice(start, start + size);
    for (let k = 0; k < size; k++) {
      const i = indices[k] ?? 0;
      labels[k] = ds.labels[i] ?? 0;
      images.set(ds.images.subarray(i * sampleSize, (i + 1) * sampleSize), k * sampleSize);
    }
    yield { images, labels, indices, size, index: b };
  }
}

/**
 * Like `batches`, but images come as float32: v/255, then (v/255 - mean)/std (see
 * `toFloat32`). With `reuseBuffers` the float buffer is reused as well.
 */
export function floatBatches(
  ds: BatchSource,
  options: BatchOptions & { normalize?: NormalizeOptions },
): Generator<Batch<Float32Array>> {
  const sampleSize = sampleSizeOf("floatBatches", ds);
  const normalize = options.normalize ?? {};
  toFloat32(new Uint8Array(0), normalize); // validates mean/std now
  const inner = batches(ds, options);
  const floatBuf =
    options.reuseBuffers === true
      ? new Float32Array(Math.min(options.batchSize, ds.count) * sampleSize)
      : undefined;
  return (function* () {
    for (const b of inner) {
      const out = floatBuf
        ? floatBuf.subarray(0, b.images.length)
        : new Float32Array(b.images.length);
      yield { ...b, images: toFloat32(b.images, normalize, out) };
    }
  })();
}
