// im2col / col2im: lay out convolution patches so Conv2d becomes a dense GEMM.
//
// x is [N, C, H, W] row-major (NCHW). K = C*kh*kw, P = outH*outW. Patch row (ch*kh + u)*kw + v,
// position oy*outW + ox of image i holds input pixel
// (ch, oy*strideH - padH + u*dilationH, ox*strideW - padW + v*dilationW), or 0 in the padding.
// Two layouts of those rows:
//   "per-image" : cols [N, K, P]: image i's patch matrix starts at i*K*P, so each image's
//                 convolution y_i[Cout, P] = W[Cout, K] · cols_i is one GEMM, already NCHW.
//   "batched"   : cols [K, N*P]: the images sit side by side in every row, so the whole batch
//                 is one GEMM Y[Cout, N*P] = W · cols (a product big enough to split over a
//                 pool and to amortise packing); Y is [Cout, N, P] and needs one permute.
import type { DenseOptions } from "./dense.ts";
import type { FloatArray, SameFloat } from "./types.ts";
import type { PatchArgs } from "./im2col-kernel.ts";
import { runCol2im, runIm2col } from "./parallel.ts";
import { allocLike, checkDim, checkFloatArray, checkLength, checkSameType } from "./types.ts";

/** Shape of a 2-D convolution's input and window. Strides default to 1, padding to 0, dilation to 1. */
export interface Conv2dGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH?: number;
  strideW?: number;
  padH?: number;
  padW?: number;
  dilationH?: number;
  dilationW?: number;
}

/** Geometry with every default filled in and the output size computed. */
export interface ResolvedConv2d {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilationH: number;
  dilationW: number;
  outH: number;
  outW: number;
  /** Rows of one image's patch matrix: C*kh*kw. */
  patchSize: number;
  /** Columns of one image's patch matrix: outH*outW. */
  positions: number;
}

/** How im2col lays out patch rows (see the file header). */
export type Im2colLayout = "per-image" | "batched";

function checkLayout(fn: string, layout: unknown): Im2colLayout {
  if (layout !== "per-image" && layout !== "batched")
    throw new TypeError(`${fn}: layout must be "per-image" or "batched", got ${String(layout)}`);
  return layout;
}

/** The job arguments (everything but the arrays) of im2col-kernel.ts's range functions. */
function patchArgs(g: ResolvedConv2d, layout: Im2colLayout): Omit<PatchArgs, "x" | "cols"> {
  return { ...g, batched: layout === "batched" ? 1 : 0 };
}

function colsShape(g: ResolvedConv2d, layout: Im2colLayout): string {
  return layout === "per-image"
    ? `[N=${g.n}, C*kh*kw=${g.patchSize}, outH*outW=${g.positions}]`
    : `[C*kh*kw=${g.patchSize}, N*outH*outW=${g.n * g.positions}]`;
}

/** Validates a geometry and computes outH = floor((H + 2 padH - dilationH (kh-1) - 1) / strideH) + 1 (likewise W). */
export function conv2dGeometry(fn: string, g: Conv2dGeometry): ResolvedConv2d {
  if (typeof g !== "object" || g === null)
    throw new TypeError(`${fn}: geometry must be an object {n, c, h, w, kh, kw, ...}`);
  const r = {
    n: g.n,
    c: g.c,
    h: g.h,
    w: g.w,
    kh: g.kh,
    kw: g.kw,
    strideH: g.strideH ?? 1,
    strideW: g.strideW ?? 1,
    padH: g.padH ?? 0,
    padW: g.padW ?? 0,
    dilationH: g.dilationH ?? 1,
    dilationW: g.dilationW ?? 1,
  };
  for (const [key, v] of Object.entries(r)) checkDim(fn, key, v);
  for (const key of ["kh", "kw", "strideH", "strideW", "dilationH", "dilationW"] as const) {
    if (r[key] < 1) throw new RangeError(`${fn}: ${key} must be at least 1, got ${r[key]}`);
  }
  const effH = r.dilationH * (r.kh - 1) + 1;
  const effW = r.dilationW * (r.kw - 1) + 1;
  if (r.h + 2 * r.padH < effH || r.w + 2 * r.padW < effW) {
    throw new RangeError(
      `${fn}: kernel ${r.kh}x${r.kw} (dilated ${effH}x${effW}) does not fit input ${r.h}x${r.w} with padding ${r.padH},${r.padW}`,
    );
  }
  const outH = Math.floor((r.h + 2 * r.padH - effH) / r.strideH) + 1;
  const outW = Math.floor((r.w + 2 * r.padW - effW) / r.strideW) + 1;
  return { ...r, outH, outW, patchSize: r.c * r.kh * r.kw, positions: outH * outW };
}

/**
 * Copies convolution patches of `x` [N,C,H,W] into `out`: [N, C*kh*kw, outH*outW] in the
 * default "per-image" layout, [C*kh*kw, N*outH*outW] in the "batched" one (see file header).
 * Overwrites and returns `out` (allocated like `x` when omitted).
 */
export function im2col<T extends FloatArray>(
  x: T,
  geometry: Conv2dGeometry,
  out?: SameFloat<T>,
  layout: Im2colLayout = "per-image",
  options?: DenseOptions,
): SameFloat<T> {
  const fn = "im2col";
  const g = conv2dGeometry(fn, geometry);
  checkLayout(fn, layout);
  checkFloatArray(fn, "x", x);
  checkLength(fn, "x", x, g.n * g.c * g.h * g.w, `[N=${g.n}, C=${g.c}, H=${g.h}, W=${g.w}]`);
  const total = g.n * g.patchSize * g.positions;
  let cols: FloatArray;
  if (out === undefined) cols = allocLike(x, total);
  else {
    checkFloatArray(fn, "out", out);
    checkSameType(fn, "out", x, out);
    checkLength(fn, "out", out, total, colsShape(g, layout));
    cols = out;
  }
  runIm2col({ ...patchArgs(g, layout), x, cols }, options?.pool);
  return cols as SameFloat<T>;
}

/**
 * Inverse layout of im2col for gradients: sums every patch entry of `cols` (in the given layout,
 * "per-image" by default) back onto the input pixel it came from (overlapping windows add up;
 * padding entries are dropped). Overwrites and returns `out` [N,C,H,W] (allocated like `cols`
 * when omitted).
 */
export function col2im<T extends FloatArray>(
  cols: T,
  geometry: Conv2dGeometry,
  out?: SameFloat<T>,
  layout: Im2colLayout = "per-image",
  options?: DenseOptions,
): SameFloat<T> {
  const fn = "col2im";
  const g = conv2dGeometry(fn, geometry);
  checkLayout(fn, layout);
  checkFloatArray(fn, "cols", cols);
  checkLength(fn, "cols", cols, g.n * g.patchSize * g.positions, colsShape(g, layout));
  const total = g.n * g.c * g.h * g.w;
  let x: FloatArray;
  if (out === undefined) x = allocLike(cols, total);
  else {
    checkFloatArray(fn, "out", out);
    checkSameType(fn, "out", cols, out);
    checkLength(fn, "out", out, total, `[N=${g.n}, C=${g.c}, H=${g.h}, W=${g.w}]`);
    x = out;
  }
  runCol2im({ ...patchArgs(g, layout), x, cols }, options?.pool);
  return x as SameFloat<T>;
}
