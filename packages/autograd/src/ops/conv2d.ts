// 2-D convolution (cross-correlation, NCHW) as im2col + GEMM with @tessera/matrix.
//   cols = im2col(x)                       [N, K = C·kh·kw, P = outH·outW]
//   forward   y_i  = W [F,K] · cols_i [K,P]                   (per image, already NCHW)
//   backward  dW  += dy_i [F,P] · cols_iᵀ   (matmulTransB, cols_i read as "B stored [n,k]")
//             dcols_i = Wᵀ · dy_i           (matmulTransA, W read as "A stored [k,m]")
//             dx  = col2im(dcols)          (overlapping windows add up)
//             db  = Σ over images and positions of dy
// The patch matrix is kept for dW; dcols/col2im are skipped when x needs no gradient (the
// first layer).
import {
  col2im,
  conv2dGeometry,
  im2col,
  matmul as gemm,
  matmulTransA,
  matmulTransB,
} from "@tessera/matrix";
import type { Conv2dGeometry } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, denseFloat, fmt, freshGrad, pair, wrap } from "../util.ts";

export interface Conv2dOptions {
  /** Step between windows: one number or [h, w]. Default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding added on each side: one number or [h, w]. Default 0. */
  padding?: number | readonly [number, number];
  /** Spacing between kernel taps: one number or [h, w]. Default 1. */
  dilation?: number | readonly [number, number];
}

/**
 * Convolution of x [N, C, H, W] with weight [F, C, kh, kw] plus bias [F] (or null):
 * output [N, F, outH, outW], outH = floor((H + 2·padH - dilH·(kh-1) - 1) / strideH) + 1.
 */
export function conv2d(
  x: Variable,
  weight: Variable,
  bias: Variable | null = null,
  options: Conv2dOptions = {},
): Variable {
  const fn = "conv2d";
  checkVariable(fn, "x", x);
  checkVariable(fn, "weight", weight);
  if (bias !== null && bias !== undefined) checkVariable(fn, "bias", bias);
  const xs = x.data.shape;
  const ws = weight.data.shape;
  if (xs.length !== 4)
    throw new RangeError(`${fn}: x must be 4-d [N, C, H, W], got shape ${fmt(xs)}`);
  if (ws.length !== 4) {
    throw new RangeError(`${fn}: weight must be 4-d [F, C, kh, kw], got shape ${fmt(ws)}`);
  }
  const [n, c, h, w] = xs as [number, number, number, number];
  const [f, wc, kh, kw] = ws as [number, number, number, number];
  if (wc !== c) {
    throw new RangeError(
      `${fn}: x has ${c} channels (shape ${fmt(xs)}) but weight of shape ${fmt(ws)} expects ${wc} input channels`,
    );
  }
  if (bias && (bias.data.ndim !== 1 || bias.data.shape[0] !== f)) {
    throw new RangeError(
      `${fn}: bias must have shape [${f}] to match weight ${fmt(ws)}, got ${fmt(bias.data.shape)}`,
    );
  }
  const dtype = weight.data.dtype;
  if (dtype === "int32") throw new TypeError(`${fn}: weight must be float32 or float64, got int32`);
  for (const [name, v] of [
    ["x", x],
    ["bias", bias],
  ] as const) {
    if (v && v.data.dtype !== dtype) {
      throw new TypeError(
        `${fn}: ${name} is ${v.data.dtype} but weight is ${dtype}; convert with astype() first`,
      );
    }
  }
  const [strideH, strideW] = pair(fn, "stride", options.stride ?? 1, 1);
  const [padH, padW] = pair(fn, "padding", options.padding ?? 0, 0);
  const [dilationH, dilationW] = pair(fn, "dilation", options.dilation ?? 1, 1);
  const geom: Conv2dGeometry = {
    n,
    c,
    h,
    w,
    kh,
    kw,
    strideH,
    strideW,
    padH,
    padW,
    dilationH,
    dilationW,
  };
  const g0 = conv2dGeometry(fn, geom);
  const K = g0.patchSize;
  const P = g0.positions;
  const X = denseFloat(x.data);
  const W = denseFloat(weight.data);
  const opts = gemmOptions();
  const cols = im2col(X, geom, allocLike(X, n * K * P));
  const y = allocLike(W, n * f * P);
  if (K > 0) {
    for (let i = 0; i < n; i++) {
      gemm(
        W,
        cols.subarray(i * K * P, (i + 1) * K * P),
        f,
        K,
        P,
        y.subarray(i * f * P, (i + 1) * f * P),
        opts,
      );
    }
  }
  if (bias) {
    const b = denseFloat(bias.data);
    for (let i = 0, o = 0; i < n; i++) {
      for (let j = 0; j < f; j++) {
        const bj = b[j]!;
        for (let p = 0; p < P; p++, o++) y[o] = y[o]! + bj;
      }
    }
  }
  const parents = bias ? [x, weight, bias] : [x, weight];
  return record(fn, wrap(y, [n, f, g0.outH, g0.outW]), parents, (g) => {
    const G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    let gw = null;
    if (weight.requiresGrad) {
      const dW = allocLike(W, f * K);
      const tmp = allocLike(W, f * K);
      for (let i = 0; i < n && P > 0; i++) {
        matmulTransB(
          G.subarray(i * f * P, (i + 1) * f * P),
          cols.subarray(i * K * P, (i + 1) * K * P),
          f,
          P,
          K,
          tmp,
          opts,
        );
        for (let q = 0; q < f * K; q++) dW[q] = dW[q]! + tmp[q]!;
      }
      gw = freshGrad(dW, ws);
    }
    let gx = null;
    if (x.requiresGrad) {
      const dcols = allocLike(W, n * K * P);
      if (f > 0) {
        for (let i = 0; i < n; i++) {
          matmulTransA(
            W,
            G.subarray(i * f * P, (i + 1) * f * P),
            K,
            f,
            P,
            dcols.subarray(i * K * P, (i + 1) * K * P),
            opts,
          );
        }
      }
      gx = freshGrad(col2im(dcols, geom), xs);
    }
    let gb = null;
    if (bias?.requiresGrad) {
      const acc = new Float64Array(f);
      for (let i = 0, o = 0; i < n; i++) {
        for (let j = 0; j < f; j++) {
          let s = 0;
          for (let p = 0; p < P; p++, o++) s += G[o]!;
          acc[j] = acc[j]! + s;
        }
      }
      const b = allocLike(W, f);
      b.set(acc);
      gb = freshGrad(b, [f]);
    }
    return [gx, gw, gb];
  });
}
