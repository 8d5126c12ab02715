// Kernel-element-pruned convolution (KEP, NCHW): a conv weight [F, C, kh, kw] of which only the
// positions in `layout` are kept, stored as their values [nnz] (@tessera/matrix's KepLayout).
// Each kept element is one shifted multiply-accumulate sweep of an input channel into an output
// channel, so the cost follows the kept count instead of kh·kw:
//   xp = x with its zero padding (kept for the weight gradient)
//   forward   y  = Σ over kept (f, c, u, v) of w · xp[c] shifted by (u, v)    (+ bias)
//   backward  dx = the same shifts run backwards from dy
//             dValues = dot products of dy with the shifted xp, at kept positions only
//             db = Σ over images and positions of dy
// Equal to conv2d with the masked dense weight; no dilation.
import {
  kepBackwardInput,
  kepBackwardWeight,
  kepForward,
  kepPad,
  KepLayout,
} from "@tessera/matrix";
import type { KepGeometry } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, channelSums, denseFloat, fmt, freshGrad, pair, wrap } from "../util.ts";

export interface KepConv2dOptions {
  /** Step between windows: one number or [h, w]. Default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding added on each side: one number or [h, w]. Default 0. */
  padding?: number | readonly [number, number];
}

/**
 * Convolution of x [N, C, H, W] with the kept weights `values` [nnz] at `layout`'s positions of
 * a [F, C, kh, kw] weight, plus bias [F] (or null): output [N, F, outH, outW] with
 * outH = floor((H + 2·padH - kh) / strideH) + 1. Gradients reach x, values and bias.
 */
export function kepConv2d(
  x: Variable,
  values: Variable,
  layout: KepLayout,
  bias: Variable | null = null,
  options: KepConv2dOptions = {},
): Variable {
  const fn = "kepConv2d";
  checkVariable(fn, "x", x);
  checkVariable(fn, "values", values);
  if (bias !== null && bias !== undefined) checkVariable(fn, "bias", bias);
  if (!(layout instanceof KepLayout)) {
    throw new TypeError(
      `${fn}: layout must be a KepLayout from @tessera/matrix, got ${layout === null ? "null" : typeof layout}`,
    );
  }
  const xs = x.data.shape;
  if (xs.length !== 4)
    throw new RangeError(`${fn}: x must be 4-d [N, C, H, W], got shape ${fmt(xs)}`);
  const { f, c: lc, kh, kw, nnz } = layout;
  const [n, c, h, w] = xs as [number, number, number, number];
  if (c !== lc) {
    throw new RangeError(
      `${fn}: x has ${c} channels (shape ${fmt(xs)}) but the layout is for a weight [${f},${lc},${kh},${kw}]`,
    );
  }
  if (values.data.ndim !== 1 || values.data.shape[0] !== nnz) {
    throw new RangeError(
      `${fn}: values must have shape [${nnz}] (the layout's kept elements), got ${fmt(values.data.shape)}`,
    );
  }
  if (bias && (bias.data.ndim !== 1 || bias.data.shape[0] !== f)) {
    throw new RangeError(
      `${fn}: bias must have shape [${f}] to match the layout's ${f} filters, got ${fmt(bias.data.shape)}`,
    );
  }
  const dtype = values.data.dtype;
  if (dtype === "int32") throw new TypeError(`${fn}: values must be float32 or float64, got int32`);
  for (const [name, v] of [
    ["x", x],
    ["bias", bias],
  ] as const) {
    if (v && v.data.dtype !== dtype) {
      throw new TypeError(
        `${fn}: ${name} is ${v.data.dtype} but values is ${dtype}; convert with astype() first`,
      );
    }
  }
  const [strideH, strideW] = pair(fn, "stride", options.stride ?? 1, 1);
  const [padH, padW] = pair(fn, "padding", options.padding ?? 0, 0);
  const geom: KepGeometry = { n, c, h, w, kh, kw, strideH, strideW, padH, padW };
  const V = denseFloat(values.data);
  const opts = gemmOptions();
  const outH = Math.floor((h + 2 * padH - kh) / strideH) + 1;
  const outW = Math.floor((w + 2 * padW - kw) / strideW) + 1;
  const P = outH * outW;
  // The padded input and every output from allocLike: ordinary arrays (a pool stages them
  // through its reused shared scratch), recycled by a BufferArena when one is active.
  const X = denseFloat(x.data);
  const xp = kepPad(X, geom, allocLike(X, n * c * (h + 2 * padH) * (w + 2 * padW)));
  const y = kepForward(xp, V, layout, geom, allocLike(X, n * f * P), opts);
  const biasData = bias ? denseFloat(bias.data) : null;
  if (biasData) {
    for (let i = 0, o = 0; i < n; i++) {
      for (let j = 0; j < f; j++) {
        const bj = biasData[j]!;
        for (let p = 0; p < P; p++, o++) y[o] = y[o]! + bj;
      }
    }
  }
  const parents = bias ? [x, values, bias] : [x, values];
  return record(fn, wrap(y, [n, f, outH, outW]), parents, (g) => {
    const G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    const gx = x.requiresGrad
      ? freshGrad(kepBackwardInput(G, V, layout, geom, allocLike(G, n * c * h * w), opts), xs)
      : null;
    const gv = values.requiresGrad
      ? freshGrad(kepBackwardWeight(G, xp, layout, geom, allocLike(G, nnz), opts), [nnz])
      : null;
    const gb = bias?.requiresGrad ? freshGrad(channelSums(G, n, f, P, V), [f]) : null;
    return [gx, gv, gb];
  });
}
