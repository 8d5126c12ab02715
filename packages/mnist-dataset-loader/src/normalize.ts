/** Mean/std for `toFloat32`: one number for all pixels, or one per channel (CHW layout). */
export interface NormalizeOptions {
  /** Subtracted after scaling to [0,1]. Default 0. */
  mean?: number | readonly number[];
  /** Divided by after subtracting the mean. Default 1. */
  std?: number | readonly number[];
  /**
   * Pixels per channel (rows*cols) when mean/std are per channel; images are taken as
   * consecutive CHW blocks of channels*channelSize bytes. Required with per-channel arrays.
   */
  channelSize?: number;
}

/** Common choices: MNIST train statistics, and mean 0.5 / std 0.5 mapping [0,1] to [-1,1]. */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

/**
 * Converts bytes to float32: v/255, then (v/255 - mean)/std. With no options the result is in
 * [0,1]; with mean 0.5, std 0.5 it is in [-1,1]. Writes into `out` when given (same length).
 */
export function toFloat32(
  bytes: Uint8Array,
  options: NormalizeOptions = {},
  out: Float32Array = new Float32Array(bytes.length),
): Float32Array {
  const fn = "toFloat32";
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${fn}: expected a Uint8Array`);
  if (out.length !== bytes.length) {
    throw new RangeError(
      `${fn}: out has length ${out.length}, expected ${bytes.length} (same as input)`,
    );
  }
  const means = typeof options.mean === "object" ? [...options.mean] : [options.mean ?? 0];
  const stds = typeof options.std === "object" ? [...options.std] : [options.std ?? 1];
  const channels = Math.max(means.length, stds.length);
  for (const s of stds) {
    if (!Number.isFinite(s) || s === 0)
      throw new RangeError(`${fn}: std must be finite and non-zero, got ${s}`);
  }
  for (const m of means)
    if (!Number.isFinite(m)) throw new RangeError(`${fn}: mean must be finite, got ${m}`);
  if (channels === 1) {
    // A 256-entry table: exact same float32 for every equal byte, and faster than dividing.
    const table = lut(means[0] ?? 0, stds[0] ?? 1);
    for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i] ?? 0] ?? 0;
    return out;
  }
  if (
    (means.length !== 1 && means.length !== channels) ||
    (stds.length !== 1 && stds.length !== channels)
  ) {
    throw new RangeError(
      `${fn}: mean has ${means.length} and std has ${stds.length} entries; expected 1 or ${channels} each`,
    );
  }
  const cs = options.channelSize;
  if (
    cs === undefined ||
    !Number.isInteger(cs) ||
    cs <= 0 ||
    bytes.length % (cs * channels) !== 0
  ) {
    throw new RangeError(
      `${fn}: per-channel mean/std need channelSize (rows*cols) dividing the length ${bytes.length} into ${channels}-channel images, got ${cs}`,
    );
  }
  const tables = Array.from({ length: channels }, (_, c) =>
    lut(means[means.length === 1 ? 0 : c] ?? 0, stds[stds.length === 1 ? 0 : c] ?? 1),
  );
  for (let i = 0; i < bytes.length; i++) {
    const table = tables[Math.floor(i / cs) % channels] as Float32Array;
    out[i] = table[bytes[i] ?? 0] ?? 0;
  }
  return out;
}

function lut(mean: number, std: number): Float32Array {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean) / std;
  return t;
}
