// The three products of a 2-D convolution (batched layout: K = C·kh·kw patch rows, N·P
// positions), as one call each. On the asm.js path (and for float64) each is im2col / col2im
// plus a dense product, exactly as a caller would write them; on the WebAssembly path (float32)
// no patch matrix is built: wasm-conv.ts packs the product's panels straight from the padded
// input and sums the input gradient in kernel memory, with the same bits as the composed calls
// on that path; except that the input gradient of a stride-1 convolution padded at least to
// "same" size with 8 or more input channels is computed as the forward convolution of gy with
// the flipped filters (inputGradAsForward), with that convolution's bits. With layout "nchw",
// 3x3 and 5x5 stride-1 convolutions with even output sides and 8 or more input channels take
// Winograd F(2x2, r x r) instead (wasm-winograd.ts: the forward product, that forward route and
// the weight gradient; float32 roundoff apart from the direct bits) unless `winograd: false` or
// TESSERA_WINOGRAD=0. The forward's `relu` option applies max(·, +0) after the bias.
import type { DenseOptions } from "./dense.ts";
import { matmul, matmulTransA, matmulTransB } from "./dense.ts";
import { col2im, conv2dGeometry, im2col } from "./im2col.ts";
import type { Conv2dGeometry, ResolvedConv2d } from "./im2col.ts";
import { defaultWinograd, resolveKernels } from "./kernels.ts";
import type { KernelPath } from "./kernels.ts";
import {
  runWasmConvInput,
  runWasmConvProduct,
  runWasmWinograd,
  runWasmWinogradGrad,
} from "./parallel.ts";
import { winogradApplies, winogradGradApplies } from "./wasm-winograd.ts";
import { allocLike, checkDim, checkFloatArray, checkLength, checkSameType } from "./types.ts";
import type { FloatArray, SameFloat } from "./types.ts";

/** The kernel path a call with these options runs (its `kernels`, else the pool's, else TESSERA_KERNELS). */
export function kernelPath(options?: DenseOptions): KernelPath {
  return resolveKernels("kernelPath", options?.kernels, options?.pool);
}

interface Checked {
  g: ResolvedConv2d;
  K: number;
  NP: number;
  wasm: boolean;
}

function check(
  fn: string,
  arrays: [string, FloatArray, number, string][],
  filters: number,
  geometry: Conv2dGeometry,
  options: DenseOptions | undefined,
): Checked {
  const g = conv2dGeometry(fn, geometry);
  checkDim(fn, "filters", filters);
  const first = arrays[0]![1];
  for (const [name, arr, length, shape] of arrays) {
    checkFloatArray(fn, name, arr);
    checkSameType(fn, name, first, arr);
    checkLength(fn, name, arr, length, shape);
  }
  const path = resolveKernels(fn, options?.kernels, options?.pool);
  return {
    g,
    K: g.patchSize,
    NP: g.n * g.positions,
    wasm: path === "wasm" && first instanceof Float32Array,
  };
}

function output<T extends FloatArray>(
  fn: string,
  like: T,
  out: FloatArray | undefined,
  length: number,
  shape: string,
): T {
  if (out === undefined) return allocLike(like, length) as T;
  checkFloatArray(fn, "out", out);
  checkSameType(fn, "out", like, out);
  checkLength(fn, "out", out, length, shape);
  return out as T;
}

const xShape = (g: ResolvedConv2d) => `[N=${g.n}, C=${g.c}, H=${g.h}, W=${g.w}]`;

/**
 * The pool and kernels of a convolution's options, for its composed dense products: its bias
 * and relu are per filter and applied after them, not the products' per-column epilogue.
 */
function denseOnly(options: DenseOptions | undefined): DenseOptions {
  return { pool: options?.pool, kernels: options?.kernels };
}

/** Options of conv2dForward: the dense products' options plus the output layout. */
export interface ConvForwardOptions extends DenseOptions {
  /**
   * "batched" (default): y [F, N·P], element (j, i·P + p) is filter j, image i, position p;
   * "nchw": y [N, F, P], the convolution's output as is (no permute needed after the call).
   */
  layout?: "batched" | "nchw";
  /**
   * [F], same type as x: added to every output of filter f after its sum (one add per element,
   * the rounding of adding it afterwards). On the wasm path it is added to each block of the
   * product in kernel memory before the block is stored, which saves a pass over y.
   */
  bias?: FloatArray;
  /**
   * On the wasm path, whether a 3x3 or 5x5 stride-1 convolution with even output sides and at
   * least 8 input channels may run as Winograd F(2x2, r x r) (wasm-winograd.ts: 2.25x or 2.78x
   * fewer multiply-adds, outputs that differ from the direct product's by float32 roundoff).
   * Default true; false keeps the direct product, whose bits equal the composed im2col + matmul
   * calls'. Output "nchw" only. Unset: TESSERA_WINOGRAD ("0" turns the route off for the
   * process).
   */
  winograd?: boolean;
  /**
   * max(·, +0) on every output after the bias: a ReLU fused into the product (on the wasm path in
   * the epilogue that adds the bias, while the block is in cache; elsewhere a pass over y). The
   * values of a ReLU applied to the output afterwards (NaN stays NaN, -0 becomes +0).
   */
  relu?: boolean;
}

/** Options of conv2dWeightGrad and conv2dInputGrad: the dense products' options plus gy's layout. */
export interface ConvGradOptions extends DenseOptions {
  /**
   * Layout of gy: "batched" (default) [F, N·P], as conv2dForward's default output; "nchw"
   * [N, F, P], the gradient of an NCHW output as it is (no permute needed before the call). On
   * the wasm path the kernels read it in place (same values as permuting it first); elsewhere
   * it is permuted into a temporary.
   */
  layout?: "batched" | "nchw";
  /**
   * As ConvForwardOptions.winograd: the weight gradient with gy "nchw", and the input gradient's
   * forward route, take the Winograd route where the geometry qualifies (unset: TESSERA_WINOGRAD).
   */
  winograd?: boolean;
}

function gradLayout(fn: string, options: ConvGradOptions | undefined): boolean {
  const layout = options?.layout ?? "batched";
  if (layout !== "batched" && layout !== "nchw")
    throw new TypeError(
      `${fn}: options.layout must be "batched" or "nchw", got ${JSON.stringify(layout)}`,
    );
  return layout === "nchw";
}

/**
 * Input channels from which inputGradAsForward takes the forward route: dx's channels are that
 * product's rows, and with few of them its 4-row register tiles run partly empty. Batch 128, 3x3
 * padding 1, col2im route / forward route, one and two threads (bench/conv-input-routes.ts,
 * docs/benchmarks/epoch-profile.md section 11; two sittings): C = 3 (32x32 images, F = 32)
 * 0.82-0.87x, C = 4 0.99-1.10x, C = 6 0.95-1.00x, C = 8 1.13-1.20x, C = 16 1.47-1.59x, C = 32
 * 1.16-1.33x, C = 64 1.18-1.51x.
 */
export const AS_FORWARD_MIN_CHANNELS = 8;

/**
 * The forward convolution whose output is the input gradient of a convolution with this
 * geometry, where the WebAssembly path takes that route: at least AS_FORWARD_MIN_CHANNELS input
 * channels, stride 1, dilation 1 and k - 1 >= pad >= (k - 1) / 2 (output no smaller than the
 * input: "same" 3x3 convolutions with padding 1 among them). Then dx = the convolution of gy
 * (an image batch of F channels, padded by k - 1 - pad) with the filters flipped in both spatial
 * axes and transposed to [C, F·kh·kw] (flippedFilters), which multiplies no more than Wᵀ·gy does
 * and needs no col2im scatter after it: smallCnn()'s 3x3 layers at batch 128 (C = 32 and 64)
 * 1.16-1.33x faster on one thread and on two (docs/benchmarks/epoch-profile.md, section 11).
 * Elsewhere undefined: the transposed product and col2im (LeNet-5's unpadded 5x5 layers, where
 * the full correlation would multiply 2.25x as much).
 */
export function inputGradAsForward(
  g: ResolvedConv2d,
  filters: number,
): Required<Conv2dGeometry> | undefined {
  if (g.c < AS_FORWARD_MIN_CHANNELS) return undefined;
  return inputGradForwardGeometry(g, filters);
}

/**
 * inputGradAsForward without the channel threshold: the forward convolution's geometry wherever
 * the route is exact and multiplies no more than Wᵀ·gy (bench/conv-input-routes.ts times both
 * routes with it); undefined elsewhere.
 */
export function inputGradForwardGeometry(
  g: ResolvedConv2d,
  filters: number,
): Required<Conv2dGeometry> | undefined {
  if (filters === 0 || g.strideH !== 1 || g.strideW !== 1) return undefined;
  if (g.dilationH !== 1 || g.dilationW !== 1) return undefined;
  if (2 * g.padH < g.kh - 1 || 2 * g.padW < g.kw - 1) return undefined;
  if (g.padH > g.kh - 1 || g.padW > g.kw - 1) return undefined;
  return {
    n: g.n,
    c: filters,
    h: g.outH,
    w: g.outW,
    kh: g.kh,
    kw: g.kw,
    strideH: 1,
    strideW: 1,
    padH: g.kh - 1 - g.padH,
    padW: g.kw - 1 - g.padW,
    dilationH: 1,
    dilationW: 1,
  };
}

/** W [F, C·kh·kw] -> W' [C, F·kh·kw], W'[c, (f·kh + u)·kw + v] = W[f, (c·kh + kh-1-u)·kw + kw-1-v]. */
export function flippedFilters(w: Float32Array, filters: number, g: ResolvedConv2d): Float32Array {
  const { c, kh, kw } = g;
  const out = new Float32Array(filters * g.patchSize);
  for (let f = 0; f < filters; f++)
    for (let ch = 0; ch < c; ch++)
      for (let u = 0; u < kh; u++)
        for (let v = 0; v < kw; v++)
          out[((ch * filters + f) * kh + u) * kw + v] =
            w[((f * c + ch) * kh + (kh - 1 - u)) * kw + (kw - 1 - v)]!;
  return out;
}

/**
 * x [a, b, P] with its two leading axes swapped, [b, a, P], in a new array: gy [N, F, P] to the
 * batched [F, N·P] (a = N, b = F) and back (a = F, b = N).
 */
function swapLeadingAxes<T extends FloatArray>(x: T, a: number, b: number, P: number): T {
  const out = allocLike(x, a * b * P) as T;
  for (let i = 0; i < a; i++)
    for (let j = 0; j < b; j++)
      out.set(x.subarray((i * b + j) * P, (i * b + j + 1) * P) as never, (j * a + i) * P);
  return out;
}

const gyShape = (nchw: boolean, F: number, g: { n: number; positions: number }) =>
  nchw ? `[N=${g.n}, F=${F}, P=${g.positions}]` : `[F=${F}, N*P=${g.n * g.positions}]`;

/**
 * y = W [F, K] · im2col(x, "batched") (+ bias): the convolution of x [N, C, H, W] with F
 * filters, as [F, N·P] or, with layout "nchw", [N, F, P].
 */
export function conv2dForward<T extends FloatArray>(
  x: T,
  weight: SameFloat<T>,
  filters: number,
  geometry: Conv2dGeometry,
  out?: SameFloat<T>,
  options?: ConvForwardOptions,
): SameFloat<T> {
  const fn = "conv2dForward";
  const g0 = conv2dGeometry(fn, geometry);
  const { g, K, NP, wasm } = check(
    fn,
    [
      ["x", x, g0.n * g0.c * g0.h * g0.w, xShape(g0)],
      ["weight", weight, filters * g0.patchSize, `[F=${filters}, K=${g0.patchSize}]`],
      ...(options?.bias === undefined
        ? []
        : [
            ["bias", options.bias, filters, `[F=${filters}]`] as [
              string,
              FloatArray,
              number,
              string,
            ],
          ]),
    ],
    filters,
    geometry,
    options,
  );
  const bias = options?.bias;
  const layout = options?.layout ?? "batched";
  if (layout !== "batched" && layout !== "nchw")
    throw new TypeError(
      `${fn}: options.layout must be "batched" or "nchw", got ${JSON.stringify(layout)}`,
    );
  const nchw = layout === "nchw";
  const y = output<T>(
    fn,
    x,
    out,
    filters * NP,
    nchw ? `[N=${g.n}, F=${filters}, P=${g.positions}]` : `[F=${filters}, N*P=${NP}]`,
  );
  if (filters * NP === 0) return y as SameFloat<T>;
  if (wasm && nchw && (options?.winograd ?? defaultWinograd()) && winogradApplies(g, filters))
    runWasmWinograd(
      weight as Float32Array,
      x as Float32Array,
      y as Float32Array,
      g,
      filters,
      options?.pool,
      bias as Float32Array | undefined,
      options?.relu === true,
    );
  else if (wasm)
    runWasmConvProduct(
      "forward",
      weight as Float32Array,
      x as Float32Array,
      y as Float32Array,
      g,
      filters,
      options?.pool,
      nchw,
      bias as Float32Array | undefined,
      options?.relu === true,
    );
  else {
    const cols = im2col(x, g, undefined, "batched", options);
    const yb = nchw ? allocLike(x, filters * NP) : y;
    matmul<FloatArray>(weight, cols, filters, K, NP, yb, denseOnly(options));
    if (nchw) {
      const P = g.positions;
      for (let j = 0; j < filters; j++)
        for (let i = 0; i < g.n; i++)
          y.set(
            yb.subarray((j * g.n + i) * P, (j * g.n + i + 1) * P) as never,
            (i * filters + j) * P,
          );
    }
    if (bias !== undefined) {
      // Filter j's outputs: run (i, j) of P elements in NCHW, or row j of N·P when batched.
      const P = g.positions;
      const [runs, runLen] = nchw ? [g.n * filters, P] : [filters, NP];
      for (let r = 0; r < runs; r++) {
        const b = bias[nchw ? r % filters : r]!;
        for (let e = r * runLen; e < (r + 1) * runLen; e++) y[e] = y[e]! + b;
      }
    }
    if (options?.relu === true)
      for (let e = 0; e < filters * NP; e++) {
        const v = y[e]!;
        // +0 for v <= 0 (and -0), NaN kept: f32x4.max(v, +0) on the wasm path
        if (!(v > 0) && v === v) y[e] = 0;
      }
  }
  return y as SameFloat<T>;
}

/** dW [F, K] = gy [F, N·P] · im2col(x, "batched")ᵀ: the convolution's weight gradient. */
export function conv2dWeightGrad<T extends FloatArray>(
  gy: T,
  x: SameFloat<T>,
  filters: number,
  geometry: Conv2dGeometry,
  out?: SameFloat<T>,
  options?: ConvGradOptions,
): SameFloat<T> {
  const fn = "conv2dWeightGrad";
  const g0 = conv2dGeometry(fn, geometry);
  const NP0 = g0.n * g0.positions;
  const nchw = gradLayout(fn, options);
  const { g, K, NP, wasm } = check(
    fn,
    [
      ["gy", gy, filters * NP0, gyShape(nchw, filters, g0)],
      ["x", x, g0.n * g0.c * g0.h * g0.w, xShape(g0)],
    ],
    filters,
    geometry,
    options,
  );
  const dW = output<T>(fn, gy, out, filters * K, `[F=${filters}, K=${K}]`);
  if (filters * K === 0) return dW as SameFloat<T>;
  if (wasm && nchw && (options?.winograd ?? defaultWinograd()) && winogradGradApplies(g, filters))
    runWasmWinogradGrad(
      gy as Float32Array,
      x as Float32Array,
      dW as Float32Array,
      g,
      filters,
      options?.pool,
    );
  else if (wasm)
    runWasmConvProduct(
      "weight",
      gy as Float32Array,
      x as Float32Array,
      dW as Float32Array,
      g,
      filters,
      options?.pool,
      nchw,
    );
  else {
    const cols = im2col(x, g, undefined, "batched", options);
    const G = nchw ? swapLeadingAxes(gy, g.n, filters, g.positions) : gy;
    matmulTransB<FloatArray>(G, cols, filters, NP, K, dW, denseOnly(options));
  }
  return dW as SameFloat<T>;
}

/** dx [N, C, H, W] = col2im(Wᵀ · gy, "batched"): the convolution's input gradient. */
export function conv2dInputGrad<T extends FloatArray>(
  weight: T,
  gy: SameFloat<T>,
  filters: number,
  geometry: Conv2dGeometry,
  out?: SameFloat<T>,
  options?: ConvGradOptions,
): SameFloat<T> {
  const fn = "conv2dInputGrad";
  const g0 = conv2dGeometry(fn, geometry);
  const NP0 = g0.n * g0.positions;
  const nchw = gradLayout(fn, options);
  const { g, K, NP, wasm } = check(
    fn,
    [
      ["weight", weight, filters * g0.patchSize, `[F=${filters}, K=${g0.patchSize}]`],
      ["gy", gy, filters * NP0, gyShape(nchw, filters, g0)],
    ],
    filters,
    geometry,
    options,
  );
  const dx = output<T>(fn, weight, out, g.n * g.c * g.h * g.w, xShape(g));
  const asForward = wasm && K * NP > 0 ? inputGradAsForward(g, filters) : undefined;
  if (asForward !== undefined) {
    // gy read as an NCHW image batch of F channels (a batched gy permuted first, so both layouts
    // give the same bits), the filters flipped and transposed.
    const gyImages = nchw ? gy : swapLeadingAxes(gy, filters, g.n, g.positions);
    const fg = conv2dGeometry(fn, asForward);
    const flipped = flippedFilters(weight as Float32Array, filters, g);
    if ((options?.winograd ?? defaultWinograd()) && winogradApplies(fg, g.c))
      runWasmWinograd(
        flipped,
        gyImages as Float32Array,
        dx as Float32Array,
        fg,
        g.c,
        options?.pool,
      );
    else
      runWasmConvProduct(
        "forward",
        flipped,
        gyImages as Float32Array,
        dx as Float32Array,
        fg,
        g.c,
        options?.pool,
        true,
      );
  } else if (wasm && K * NP > 0)
    runWasmConvInput(
      weight as Float32Array,
      gy as Float32Array,
      dx as Float32Array,
      g,
      filters,
      options?.pool,
      nchw,
    );
  else {
    const dcols = allocLike(weight, K * NP);
    const G = nchw ? swapLeadingAxes(gy, g.n, filters, g.positions) : gy;
    if (K * NP > 0 && filters > 0)
      matmulTransA<FloatArray>(weight, G, K, filters, NP, dcols, denseOnly(options));
    col2im<FloatArray>(dcols, g, dx, "batched", options);
  }
  return dx as SameFloat<T>;
}
