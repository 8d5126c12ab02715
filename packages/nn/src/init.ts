// Weight initialisers (He et al. 2015; Glorot & Bengio 2010), drawing from an explicit seeded
// Generator so the same seed gives the same weights everywhere. They fill typed arrays in
// place; the layers call them on their parameters' storage.

/** What the initialisers draw from: @tessera/tensor's seeded Generator satisfies it. */
export interface RandomSource {
  nextFloat(): number;
  normal(mean?: number, std?: number): number;
}

import type { FloatArray } from "./types.ts";

export type Nonlinearity = "linear" | "relu" | "leaky_relu" | "tanh" | "sigmoid";

/** fan_in and fan_out of a weight of shape [out, in, ...receptive field], as PyTorch computes them. */
export function computeFans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new RangeError(
      `computeFans: need a weight with at least 2 dims [out, in, ...], got [${shape.join(",")}]`,
    );
  }
  let receptive = 1;
  for (let i = 2; i < shape.length; i++) receptive *= shape[i]!;
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const a = param ?? 0.01;
      return Math.sqrt(2 / (1 + a * a));
    }
    default:
      throw new Error(`calculateGain: unknown nonlinearity ${String(nonlinearity)}`);
  }
}

function checkArray(fn: string, data: unknown): asserts data is FloatArray {
  if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
    throw new Error(`${fn}: data must be a Float32Array or Float64Array`);
  }
}

function checkFan(fn: string, fan: number, what: string): void {
  if (!Number.isFinite(fan) || fan <= 0) {
    throw new RangeError(
      `${fn}: ${what} must be > 0 (a weight with a zero dimension has no fan), got ${fan}`,
    );
  }
}

/** Fills `data` with U(low, high). */
export function uniformFill(
  data: FloatArray,
  low: number,
  high: number,
  generator: RandomSource,
): FloatArray {
  checkArray("uniformFill", data);
  if (!(high >= low))
    throw new RangeError(`uniformFill: need low <= high, got low=${low}, high=${high}`);
  const w = high - low;
  for (let i = 0; i < data.length; i++) data[i] = low + w * generator.nextFloat();
  return data;
}

/** Fills `data` with N(mean, std^2). */
export function normalFill(
  data: FloatArray,
  mean: number,
  std: number,
  generator: RandomSource,
): FloatArray {
  checkArray("normalFill", data);
  if (!(std >= 0)) throw new RangeError(`normalFill: std must be >= 0, got ${std}`);
  for (let i = 0; i < data.length; i++) data[i] = generator.normal(mean, std);
  return data;
}

export interface KaimingOptions {
  /** Negative slope for leaky_relu (PyTorch's `a`); default 0. */
  a?: number;
  mode?: "fanIn" | "fanOut";
  nonlinearity?: Nonlinearity;
}

function kaimingStd(fn: string, shape: readonly number[], o: KaimingOptions): number {
  const { fanIn, fanOut } = computeFans(shape);
  const fan = (o.mode ?? "fanIn") === "fanIn" ? fanIn : fanOut;
  checkFan(fn, fan, o.mode ?? "fanIn");
  const gain = calculateGain(o.nonlinearity ?? "leaky_relu", o.a ?? 0);
  return gain / Math.sqrt(fan);
}

/** He uniform: U(-b, b) with b = gain * sqrt(3 / fan). */
export function kaimingUniform(
  data: FloatArray,
  shape: readonly number[],
  generator: RandomSource,
  options: KaimingOptions = {},
): FloatArray {
  const bound = Math.sqrt(3) * kaimingStd("kaimingUniform", shape, options);
  return uniformFill(data, -bound, bound, generator);
}

/** He normal: N(0, (gain / sqrt(fan))^2). */
export function kaimingNormal(
  data: FloatArray,
  shape: readonly number[],
  generator: RandomSource,
  options: KaimingOptions = {},
): FloatArray {
  return normalFill(data, 0, kaimingStd("kaimingNormal", shape, options), generator);
}

/** Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(
  data: FloatArray,
  shape: readonly number[],
  generator: RandomSource,
  gain = 1,
): FloatArray {
  const { fanIn, fanOut } = computeFans(shape);
  checkFan("xavierUniform", fanIn + fanOut, "fan_in + fan_out");
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniformFill(data, -bound, bound, generator);
}

/** Glorot normal: N(0, gain^2 * 2 / (fan_in + fan_out)). */
export function xavierNormal(
  data: FloatArray,
  shape: readonly number[],
  generator: RandomSource,
  gain = 1,
): FloatArray {
  const { fanIn, fanOut } = computeFans(shape);
  checkFan("xavierNormal", fanIn + fanOut, "fan_in + fan_out");
  return normalFill(data, 0, gain * Math.sqrt(2 / (fanIn + fanOut)), generator);
}

/**
 * PyTorch's default for Linear and Conv2d: weight ~ kaiming_uniform(a = sqrt(5)), which works
 * out to U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too.
 */
export function defaultLayerInit(
  weight: FloatArray,
  weightShape: readonly number[],
  bias: FloatArray | null,
  generator: RandomSource,
): void {
  const { fanIn } = computeFans(weightShape);
  if (fanIn === 0) return; // nothing to draw for an empty layer (PyTorch warns and skips too)
  kaimingUniform(weight, weightShape, generator, { a: Math.sqrt(5), nonlinearity: "leaky_relu" });
  if (bias !== null) {
    const b = 1 / Math.sqrt(fanIn);
    uniformFill(bias, -b, b, generator);
  }
}
