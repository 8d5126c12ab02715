// 2-D convolution (cross-correlation, NCHW) as im2col + GEMM with @tessera/matrix, the whole
// batch in one product (K = C·kh·kw, P = outH·outW, images side by side in each patch row):
//   cols = im2col(x, "batched")            [K, N·P]
//   forward   Y  = W [F,K] · cols          [F, N·P], permuted to NCHW [N, F, P] (+ bias)
//   backward  G' = dy permuted to [F, N·P]
//             dW = G' · colsᵀ              (matmulTransB, cols read as "B stored [n,k]")
//             dcols = Wᵀ · G'              (matmulTransA, W read as "A stored [k,m]")
//             dx = col2im(dcols, "batched") (overlapping windows add up)
//             db = Σ over images and positions of dy
// One product per batch instead of one per image: the per-image products (50x500 by 500x64 in
// LeNet-5) were too small to split over a pool or to amortise packing. The patch matrix is kept
// for dW; dcols/col2im are skipped when x needs no gradient (the first layer).
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
import { checkVariable, needsGraph, record } from "../record.ts";
import { saveForBackward, temporary } from "../shared-buffers.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, channelSums, denseFloat, fmt, freshGrad, pair, wrap } from "../util.ts";

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
  const NP = n * P;
  const parents = bias ? [x, weight, bias] : [x, weight];
  // With a pool set, the patch matrix and the temporaries live in reused shared memory, so the
  // pooled products need no staging copies (shared-buffers.ts). The patch matrix is kept for
  // dW until the backward has run.
  const saved = needsGraph(...parents) ? saveForBackward(weight, X, K * NP) : undefined;
  const cols = im2col(X, geom, saved?.data ?? temporary("conv2d.cols", X, K * NP), "batched", opts);
  const yFirst = temporary("conv2d.y", W, f * NP); // [F, N, P]
  if (K > 0 && NP > 0) gemm(W, cols, f, K, NP, yFirst, opts);
  else yFirst.fill(0);
  const y = allocLike(W, n * f * P);
  const biasData = bias ? denseFloat(bias.data) : null;
  for (let j = 0; j < f; j++) {
    const bj = biasData ? biasData[j]! : 0;
    for (let i = 0; i < n; i++) {
      const src = (j * n + i) * P;
      const dst = (i * f + j) * P;
      if (biasData) for (let p = 0; p < P; p++) y[dst + p] = yFirst[src + p]! + bj;
      else y.set(yFirst.subarray(src, src + P), dst);
    }
  }
  return record(fn, wrap(y, [n, f, g0.outH, g0.outW]), parents, (g) => {
    const G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    // dy [N, F, P] -> [F, N, P], the layout the batched products take.
    const gFirst = temporary("conv2d.g", W, f * NP);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < f; j++) {
        const src = (i * f + j) * P;
        gFirst.set(G.subarray(src, src + P), (j * n + i) * P);
      }
    }
    let gw = null;
    if (weight.requiresGrad) {
      const dW = allocLike(W, f * K);
      if (NP > 0 && f > 0 && K > 0) matmulTransB(gFirst, cols, f, NP, K, dW, opts);
      gw = freshGrad(dW, ws);
    }
    let gx = null;
    if (x.requiresGrad) {
      const dcols = temporary("conv2d.dcols", W, K * NP);
      if (f > 0 && K > 0 && NP > 0) matmulTransA(W, gFirst, K, f, NP, dcols, opts);
      else dcols.fill(0);
      gx = freshGrad(col2im(dcols, geom, allocLike(W, n * c * h * w), "batched", opts), xs);
    }
    saved?.release(); // the engine runs a node's backward once, then frees the graph
    const gb = bias?.requiresGrad ? freshGrad(channelSums(G, n, f, P, W), [f]) : null;
    return [gx, gw, gb];
  });
}
