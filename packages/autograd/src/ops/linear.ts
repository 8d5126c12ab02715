// Fused affine layer y = x·Wᵀ + b on packed typed arrays with @tessera/matrix's GEMMs:
//   forward  y  = matmulTransB(x [N,in], W [out,in])      (+ b on every row)
//   backward dx = matmul(dy [N,out], W [out,in])
//            dW = matmulTransA(dy stored [N,out], x [N,in]) = dyᵀ·x
//            db = column sums of dy
// No transpose is ever materialised, and dx is skipped when x needs no gradient (the input
// layer), which saves the largest product of an MLP's first layer.
import { matmul as gemm, matmulTransA, matmulTransB } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, channelSums, denseFloat, fmt, freshGrad, wrap } from "../util.ts";
import type { FloatArray } from "../util.ts";

/**
 * y = x·weightᵀ + bias. x: [N, in] (or any [..., in]; a 1-d x gives a 1-d y), weight:
 * [out, in], bias: [out] or null. All three must share one float dtype.
 */
export function linear(x: Variable, weight: Variable, bias: Variable | null = null): Variable {
  const fn = "linear";
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
  const y: FloatArray = matmulTransB(
    X,
    W,
    rows,
    inF,
    outF,
    allocLike(W, rows * outF),
    gemmOptions(),
  );
  if (bias) {
    const b = denseFloat(bias.data);
    for (let r = 0, o = 0; r < rows; r++) for (let j = 0; j < outF; j++, o++) y[o] = y[o]! + b[j]!;
  }
  const outShape = [...xs.slice(0, -1), outF];
  const parents = bias ? [x, weight, bias] : [x, weight];
  return record(fn, wrap(y, outShape), parents, (g) => {
    const G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    const gx = x.requiresGrad
      ? freshGrad(gemm(G, W, rows, outF, inF, allocLike(W, rows * inF), gemmOptions()), xs)
      : null;
    const gw = weight.requiresGrad
      ? freshGrad(matmulTransA(G, X, outF, rows, inF, allocLike(W, outF * inF), gemmOptions()), ws)
      : null;
    const gb = bias?.requiresGrad ? freshGrad(channelSums(G, rows, outF, 1, G), [outF]) : null;
    return [gx, gw, gb];
  });
}
