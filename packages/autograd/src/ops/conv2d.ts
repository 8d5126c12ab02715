// 2-D convolution (cross-correlation, NCHW) as im2col + GEMM with @tessera/matrix, the whole
// batch in one product (K = C·kh·kw, P = outH·outW, images side by side in each patch row):
//   cols = im2col(x, "batched")            [K, N·P]
//   forward   Y  = W [F,K] · cols          [F, N·P], permuted to NCHW [N, F, P] (+ bias)
//   backward  G' = dy permuted to [F, N·P] (the composed products; the wasm ones read dy as is)
//             dW = G' · colsᵀ              (matmulTransB, cols read as "B stored [n,k]")
//             dcols = Wᵀ · G'              (matmulTransA, W read as "A stored [k,m]")
//             dx = col2im(dcols, "batched") (overlapping windows add up)
//             db = Σ over images and positions of dy
// One product per batch instead of one per image: the per-image products (50x500 by 500x64 in
// LeNet-5) were too small to split over a pool or to amortise packing. The patch matrix is kept
// for dW; dcols/col2im are skipped when x needs no gradient (the first layer).
// On the WebAssembly kernel path (float32) the three products are @tessera/matrix's
// conv2dForward / conv2dWeightGrad / conv2dInputGrad instead: they build no patch matrix (the
// kernels pack straight from the padded input; im2col and packing cols were most of a LeNet-5
// epoch) and give the same bits as the composed calls on that path, so only x is kept for dW;
// its 3x3 and 5x5 stride-1 layers with 8+ channels take Winograd F(2x2, r x r) there (float32
// roundoff apart; TESSERA_WINOGRAD=0 keeps the direct products). `relu: true` fuses a ReLU: the
// output is max(·, 0) (in the products' epilogue on the wasm path) and the backward gates dy by
// y > 0 first (with the bias gradient's sums in the same pass on the wasm path), bit for bit
// relu(conv2d(...)).
import {
  col2im,
  conv2dForward,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  im2col,
  kernelPath,
  matmul as gemm,
  matmulTransA,
  matmulTransB,
} from "@tessera/matrix";
import type { Conv2dGeometry } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, needsGraph, record } from "../record.ts";
import { saveForBackward, temporary } from "../shared-buffers.ts";
import { gemmOptions } from "../matrix-pool.ts";
import {
  allocLike,
  allocOutputLike,
  channelSums,
  denseFloat,
  fmt,
  freshGrad,
  pair,
  wrap,
} from "../util.ts";
import type { FloatArray } from "../util.ts";
import { fusedReluBackward, reluFwd } from "./relu.ts";

export interface Conv2dOptions {
  /** Step between windows: one number or [h, w]. Default 1. */
  stride?: number | readonly [number, number];
  /** Zero padding added on each side: one number or [h, w]. Default 0. */
  padding?: number | readonly [number, number];
  /** Spacing between kernel taps: one number or [h, w]. Default 1. */
  dilation?: number | readonly [number, number];
  /**
   * A ReLU fused into the convolution: max(·, 0) of the output, the values and gradients of
   * relu(conv2d(...)) bit for bit, without its pass over the output in the forward (on the wasm
   * path the products apply it where they add the bias). Default false.
   */
  relu?: boolean;
}

/** y[lo:hi] += v. */
function addConstant(y: FloatArray, lo: number, hi: number, v: number): void {
  for (let p = lo; p < hi; p++) y[p] = y[p]! + v;
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
  const implicit = X instanceof Float32Array && kernelPath(opts) === "wasm";
  const fusedRelu = options.relu === true;
  if (options.relu !== undefined && typeof options.relu !== "boolean")
    throw new TypeError(`${fn}: options.relu must be a boolean, got ${typeof options.relu}`);
  // With a pool set, the patch matrix and the temporaries live in reused shared memory, so the
  // pooled products need no staging copies (shared-buffers.ts). The patch matrix is kept for
  // dW until the backward has run.
  const saved =
    !implicit && needsGraph(...parents) ? saveForBackward(weight, X, K * NP) : undefined;
  const cols = implicit
    ? undefined
    : im2col(X, geom, saved?.data ?? temporary("conv2d.cols", X, K * NP), "batched", opts);
  const y = allocOutputLike(W, n * f * P); // every element written below
  const biasData = bias ? denseFloat(bias.data) : null;
  if (cols === undefined) {
    // The wasm products write NCHW directly (no [F, N, P] temporary, no permute) and add the
    // bias to each block in kernel memory (no pass over y; the same float32 adds).
    if (K > 0 && NP > 0)
      conv2dForward(X, W, f, geom, y, {
        ...opts,
        layout: "nchw",
        bias: biasData ?? undefined,
        relu: fusedRelu,
      });
    else {
      y.fill(0);
      if (biasData)
        for (let i = 0; i < n; i++)
          for (let j = 0; j < f; j++)
            addConstant(y, (i * f + j) * P, (i * f + j + 1) * P, biasData[j]!);
    }
  } else {
    const yFirst = temporary("conv2d.y", W, f * NP); // [F, N, P]
    if (K === 0 || NP === 0) yFirst.fill(0);
    else gemm(W, cols, f, K, NP, yFirst, opts);
    // A block copy per (image, filter), then the bias added in place on y alone: the same
    // float32 sums as adding while copying, with an element loop over one array only.
    for (let j = 0; j < f; j++) {
      for (let i = 0; i < n; i++) {
        const src = (j * n + i) * P;
        const dst = (i * f + j) * P;
        y.set(yFirst.subarray(src, src + P), dst);
        if (biasData) addConstant(y, dst, dst + P, biasData[j]!);
      }
    }
  }
  // The paths above that did not apply it in the product: relu's own loop, in place.
  if (fusedRelu && (cols !== undefined || !(K > 0 && NP > 0))) reluFwd(y, y, n * f * P);
  return record(fn, wrap(y, [n, f, g0.outH, g0.outW]), parents, (g) => {
    let G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    let gbData: FloatArray | null = null;
    if (fusedRelu) {
      // relu's backward first (gate y > 0), then the convolution's on the gated gradient; on the
      // wasm path the gate and the bias gradient's sums are one pass (the bits of the two)
      const r = fusedReluBackward(G, y, W, n, f, P, bias?.requiresGrad === true);
      G = r.gated;
      gbData = r.biasSums;
    }
    // The wasm kernels read dy [N, F, P] as it is; the composed products take it permuted to
    // [F, N, P] (that permute was ~6% of a two-thread LeNet-5 step on the wasm path).
    let gFirst = G;
    if (cols !== undefined) {
      gFirst = temporary("conv2d.g", W, f * NP);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < f; j++) {
          const src = (i * f + j) * P;
          gFirst.set(G.subarray(src, src + P), (j * n + i) * P);
        }
      }
    }
    const nchw = { ...opts, layout: "nchw" as const };
    let gw = null;
    if (weight.requiresGrad) {
      const dW = allocLike(W, f * K);
      if (NP > 0 && f > 0 && K > 0) {
        if (cols === undefined) conv2dWeightGrad(G, X, f, geom, dW, nchw);
        else matmulTransB(gFirst, cols, f, NP, K, dW, opts);
      }
      gw = freshGrad(dW, ws);
    }
    let gx = null;
    if (x.requiresGrad && cols === undefined) {
      // conv2dInputGrad and col2im write every element of dx (each image's planes zeroed first).
      gx = freshGrad(conv2dInputGrad(W, G, f, geom, allocOutputLike(W, n * c * h * w), nchw), xs);
    } else if (x.requiresGrad) {
      const dcols = temporary("conv2d.dcols", W, K * NP);
      if (f > 0 && K > 0 && NP > 0) matmulTransA(W, gFirst, K, f, NP, dcols, opts);
      else dcols.fill(0);
      gx = freshGrad(col2im(dcols, geom, allocOutputLike(W, n * c * h * w), "batched", opts), xs);
    }
    saved?.release(); // the engine runs a node's backward once, then frees the graph
    const gb = bias?.requiresGrad ? freshGrad(gbData ?? channelSums(G, n, f, P, W), [f]) : null;
    return [gx, gw, gb];
  });
}
