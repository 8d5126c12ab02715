// Fused affine layer y = x·Wᵀ + b (and, with `relu`, max(y, 0)) on packed typed arrays with
// @tessera/matrix's GEMMs:
//   forward  y  = matmulTransB(x [N,in], W [out,in]) with the product's epilogue: + b on every
//                 row, then the ReLU (on the wasm path inside the product, on each block of y
//                 while it is in kernel memory; one pass after it elsewhere)
//   backward g  = dy, gated by y > 0 with `relu` (on the wasm path in one pass with db's sums)
//            dx = matmul(g [N,out], W [out,in])           } one matmulPair: on a pool, two small
//            dW = matmulTransA(g stored [N,out], x [N,in]) } ones at once, one per thread
//               = gᵀ·x
//            db = column sums of g
// No transpose is ever materialised, and dx is skipped when x needs no gradient (the input
// layer), which saves the largest product of an MLP's first layer.
import { matmul as gemm, matmulPair, matmulTransA, matmulTransB } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocOutputLike, channelSums, denseFloat, fmt, freshGrad, wrap } from "../util.ts";
import type { FloatArray } from "../util.ts";
import { fusedReluBackward } from "./relu.ts";

/** Options of linear. */
export interface LinearOptions {
  /**
   * Apply a ReLU to the output as part of the op: the values and gradients of
   * relu(linear(x, weight, bias)) bit for bit, without the ReLU's own pass over the output
   * (nn's Sequential runs a Linear followed by a ReLU this way).
   */
  relu?: boolean;
}

/**
 * y = x·weightᵀ + bias (then max(y, 0) with options.relu). x: [N, in] (or any [..., in]; a 1-d
 * x gives a 1-d y), weight: [out, in], bias: [out] or null. All three must share one float dtype.
 */
export function linear(
  x: Variable,
  weight: Variable,
  bias: Variable | null = null,
  options: LinearOptions = {},
): Variable {
  const fn = "linear";
  if (options.relu !== undefined && typeof options.relu !== "boolean")
    throw new TypeError(`${fn}: options.relu must be a boolean, got ${typeof options.relu}`);
  const fusedRelu = options.relu === true;
  checkVariable(fn, "x", x);
  checkVariable(fn, "weight", weight);
  if (bias !== null && bias !== undefined) checkVariable(fn, "bias", bias);
  const ws = weight.data.shape;
  if (ws.length !== 2)
    throw new RangeError(`${fn}: weight must be 2-d [out, in], got shape ${fmt(ws)}`);
  const outF = ws[0]!;
  const inF = ws[1]!;
  const xs = x.data.shape;
  if (xs.length < 1)
    throw new RangeError(`${fn}: x must have at least 1 dimension [.., in], got a scalar`);
  if (xs[xs.length - 1] !== inF) {
    throw new RangeError(
      `${fn}: x has ${xs[xs.length - 1]} input features (shape ${fmt(xs)}) but weight of shape ${fmt(ws)} expects ${inF}`,
    );
  }
  if (bias) {
    const bs = bias.data.shape;
    if (bs.length !== 1 || bs[0] !== outF) {
      throw new RangeError(
        `${fn}: bias must have shape [${outF}] to match weight ${fmt(ws)}, got ${fmt(bs)}`,
      );
    }
  }
  const dtype = weight.data.dtype;
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
  if (dtype === "int32") throw new TypeError(`${fn}: weight must be float32 or float64, got int32`);
  let rows = 1;
  for (let i = 0; i < xs.length - 1; i++) rows *= xs[i]!;
  const X = denseFloat(x.data);
  const W = denseFloat(weight.data);
  // Every element of the products' outputs is written: no zero fill inside an arena's step.
  const y: FloatArray = matmulTransB(X, W, rows, inF, outF, allocOutputLike(W, rows * outF), {
    ...gemmOptions(),
    bias: bias ? denseFloat(bias.data) : null,
    relu: fusedRelu,
  });
  const outShape = [...xs.slice(0, -1), outF];
  const parents = bias ? [x, weight, bias] : [x, weight];
  return record(fn, wrap(y, outShape), parents, (g) => {
    let G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    let gbData: FloatArray | null = null;
    if (fusedRelu) {
      // relu's backward first (gate y > 0), then the layer's on the gated gradient; on the wasm
      // path the gate and the bias gradient's column sums are one pass (the bits of the two)
      const r = fusedReluBackward(G, y, W, rows, outF, 1, bias?.requiresGrad === true);
      G = r.gated;
      gbData = r.biasSums;
    }
    let gx: ReturnType<typeof freshGrad> | null = null;
    let gw: ReturnType<typeof freshGrad> | null = null;
    if (x.requiresGrad && weight.requiresGrad) {
      // Independent products: with a pool, small ones run at the same time, each whole on one
      // thread (LeNet-300-100's fc2: docs/benchmarks/epoch-profile.md section 14)
      const [dx, dw] = matmulPair(
        {
          product: "matmul",
          a: G,
          b: W,
          m: rows,
          k: outF,
          n: inF,
          out: allocOutputLike(W, rows * inF),
        },
        {
          product: "matmulTransA",
          a: G,
          b: X,
          m: outF,
          k: rows,
          n: inF,
          out: allocOutputLike(W, outF * inF),
        },
        gemmOptions(),
      );
      gx = freshGrad(dx, xs);
      gw = freshGrad(dw, ws);
    } else {
      if (x.requiresGrad)
        gx = freshGrad(
          gemm(G, W, rows, outF, inF, allocOutputLike(W, rows * inF), gemmOptions()),
          xs,
        );
      if (weight.requiresGrad)
        gw = freshGrad(
          matmulTransA(G, X, outF, rows, inF, allocOutputLike(W, outF * inF), gemmOptions()),
          ws,
        );
    }
    const gb = bias?.requiresGrad
      ? freshGrad(gbData ?? channelSums(G, rows, outF, 1, G), [outF])
      : null;
    return [gx, gw, gb];
  });
}
