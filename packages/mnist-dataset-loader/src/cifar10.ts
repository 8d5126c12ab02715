import { formatError } from "./errors.ts";
import { readSource, type ReadOptions } from "./input.ts";

/** CIFAR-10 geometry: 32x32 RGB images stored channel-major (CHW: 1024 R, 1024 G, 1024 B). */
export const CIFAR10_CHANNELS = 3;
export const CIFAR10_ROWS = 32;
export const CIFAR10_COLS = 32;
export const CIFAR10_IMAGE_BYTES = CIFAR10_CHANNELS * CIFAR10_ROWS * CIFAR10_COLS;
/** One record: 1 label byte followed by 3072 pixel bytes. */
export const CIFAR10_RECORD_BYTES = 1 + CIFAR10_IMAGE_BYTES;
export const CIFAR10_CLASSES = 10;

/** Images and labels of one or more CIFAR-10 binary batches. */
export interface Cifar10Batch {
  /** count * 3072 bytes, each image CHW. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  channels: 3;
  rows: 32;
  cols: 32;
}

/**
 * Reads one CIFAR-10 binary batch (e.g. data_batch_1.bin): records of 1 label byte (0..9) and
 * 3072 pixel bytes. Gzip is detected from the bytes. An empty file, a length that is not a
 * whole number of records or a label above 9 throws, naming the file, the offset, expected
 * and found.
 */
export function readCifar10Batch(
  pathOrBytes: string | Uint8Array,
  options: ReadOptions = {},
): Cifar10Batch {
  const fn = "readCifar10Batch";
  // Gzip detection (1f 8b) cannot misfire on a raw batch: its first byte is a label, 0..9.
  const { bytes, source } = readSource(fn, pathOrBytes, options);
  // A file emptied by a failed copy or download must not pass as a batch of zero images.
  if (bytes.length === 0) {
    throw formatError(
      fn,
      source,
      0,
      `at least one ${CIFAR10_RECORD_BYTES}-byte record (an official batch holds 10000)`,
      "0 bytes (an empty file)",
    );
  }
  const whole = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
  const rest = bytes.length - whole * CIFAR10_RECORD_BYTES;
  if (rest !== 0) {
    throw formatError(
      fn,
      source,
      whole * CIFAR10_RECORD_BYTES,
      `a whole number of ${CIFAR10_RECORD_BYTES}-byte records (1 label + ${CIFAR10_IMAGE_BYTES} pixels), i.e. ${whole * CIFAR10_RECORD_BYTES} or ${(whole + 1) * CIFAR10_RECORD_BYTES} bytes`,
      `${bytes.length} bytes (${whole} whole records and ${rest} bytes of a partial record)`,
    );
  }
  const images = new Uint8Array(whole * CIFAR10_IMAGE_BYTES);
  const labels = new Uint8Array(whole);
  for (let r = 0; r < whole; r++) {
    const at = r * CIFAR10_RECORD_BYTES;
    const label = bytes[at] ?? 0;
    if (label >= CIFAR10_CLASSES) {
      throw formatError(
        fn,
        source,
        at,
        `a label byte in 0..${CIFAR10_CLASSES - 1} for record ${r}`,
        `${label}`,
      );
    }
    labels[r] = label;
    images.set(bytes.subarray(at + 1, at + CIFAR10_RECORD_BYTES), r * CIFAR10_IMAGE_BYTES);
  }
  return { images, labels, count: whole, channels: 3, rows: 32, cols: 32 };
}

/** Encodes images (count*3072 bytes, CHW) and labels (count bytes, 0..9) as a CIFAR-10 batch. */
export function writeCifar10Batch(batch: { images: Uint8Array; labels: Uint8Array }): Uint8Array {
  const fn = "writeCifar10Batch";
  const { images, labels } = batch;
  if (!(images instanceof Uint8Array) || !(labels instanceof Uint8Array)) {
    throw new TypeError(`${fn}: images and labels must be Uint8Arrays`);
  }
  const count = labels.length;
  if (count === 0) throw new RangeError(`${fn}: a batch needs at least one record, got 0 labels`);
  if (images.length !== count * CIFAR10_IMAGE_BYTES) {
    throw new RangeError(
      `${fn}: ${count} labels need ${count * CIFAR10_IMAGE_BYTES} image bytes (3072 each), got ${images.length}`,
    );
  }
  const out = new Uint8Array(count * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < count; r++) {
    const label = labels[r] ?? 0;
    if (label >= CIFAR10_CLASSES)
      throw new RangeError(`${fn}: label ${r} is ${label}, expected 0..9`);
    out[r * CIFAR10_RECORD_BYTES] = label;
    out.set(
      images.subarray(r * CIFAR10_IMAGE_BYTES, (r + 1) * CIFAR10_IMAGE_BYTES),
      r * CIFAR10_RECORD_BYTES + 1,
    );
  }
  return out;
}
