// Affine layer y = x·Wᵀ + b whose weight W [out, in] is a @tessera/matrix BsrMatrix; the
// trainable values are W.data, the nnzBlocks R x C blocks, wrapped by the Variable `data`:
//   forward  y     = W.rmatmulTranspose(x [N,in], N, { bias: b })      (b in the epilogue)
//   backward dx    = W.rmatmul(dy [N,out], N)                          (skipped when x needs none)
//            ddata = sampledMatmul(W, dy, x, N, { transA }) = dyᵀ·x at W's stored blocks only
//            db    = column sums of dy
// The sampled product writes the padding of ragged edge blocks as 0, so an optimizer stepping
// on ddata never moves it, and pruned (unstored) blocks have no gradient to revive them.
import { BsrMatrix } from "@tessera/matrix";
import type { SparseProductOptions } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, channelSums, dense, denseFloat, fmt, freshGrad, wrap } from "../util.ts";
import type { FloatArray } from "../util.ts";

/** Pool option for the sparse products plus an ordinary (non-shared) output buffer. */
function productOptions(out: FloatArray): SparseProductOptions<FloatArray> {
  const pool = gemmOptions()?.pool;
  // Outputs stay on ordinary memory (as in linear): fresh SharedArrayBuffers handed to the
  // workers every step would only be freed once a synchronous training loop yields.
  return pool === undefined ? { out } : { out, pool };
}

/**
 * y = x·weightᵀ + bias with weight a BsrMatrix [out, in]. `data` is the Variable whose tensor
 * wraps exactly `weight.data` (shape [nnzBlocks, R, C]; same array, so an optimizer updating
 * it updates the matrix). x: [N, in] (or any [..., in]; a 1-d x gives a 1-d y), bias: [out]
 * or null. x, weight.data and bias share one float dtype.
 */
export function bsrLinear(
  x: Variable,
  weight: BsrMatrix<FloatArray>,
  data: Variable,
  bias: Variable | null = null,
): Variable {
  const fn = "bsrLinear";
  checkVariable(fn, "x", x);
  checkVariable(fn, "data", data);
  if (bias !== null && bias !== undefined) checkVariable(fn, "bias", bias);
  if (!(weight instanceof BsrMatrix))
    throw new TypeError(`${fn}: weight must be a BsrMatrix from @tessera/matrix`);
  const outF = weight.rows;
  const inF = weight.cols;
  const [R, C] = weight.blockShape;
  const nnz = weight.nnzBlocks;
  const ds = data.data.shape;
  if (ds.length !== 3 || ds[0] !== nnz || ds[1] !== R || ds[2] !== C) {
    throw new RangeError(
      `${fn}: data must have shape [nnzBlocks, R, C] = [${nnz},${R},${C}] to match weight (${outF}x${inF} in ${R}x${C} blocks), got ${fmt(ds)}`,
    );
  }
  if (dense(data.data) !== weight.data) {
    // A copy would train values the matrix never sees.
    throw new Error(
      `${fn}: data must wrap weight.data itself (new Variable(new Tensor(weight.data, [nnz, R, C]))), not a copy`,
    );
  }
  const xs = x.data.shape;
  if (xs.length < 1)
    throw new RangeError(`${fn}: x must have at least 1 dimension [.., in], got a scalar`);
  if (xs[xs.length - 1] !== inF) {
    throw new RangeError(
      `${fn}: x has ${xs[xs.length - 1]} input features (shape ${fmt(xs)}) but weight of shape [${outF},${inF}] expects ${inF}`,
    );
  }
  if (bias) {
    const bs = bias.data.shape;
    if (bs.length !== 1 || bs[0] !== outF) {
      throw new RangeError(
        `${fn}: bias must have shape [${outF}] to match weight [${outF},${inF}], got ${fmt(bs)}`,
      );
    }
  }
  const dtype = data.data.dtype;
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
  let rows = 1;
  for (let i = 0; i < xs.length - 1; i++) rows *= xs[i]!;
  const W = weight.data;
  const X = denseFloat(x.data);
  // The bias is the product's epilogue (added while each block row's outputs are in cache, the
  // same rounded sums as a separate pass).
  const y = weight.rmatmulTranspose(X, rows, {
    ...productOptions(allocLike(W, rows * outF)),
    bias: bias ? denseFloat(bias.data) : null,
  });
  const outShape = [...xs.slice(0, -1), outF];
  const parents = bias ? [x, data, bias] : [x, data];
  return record(fn, wrap(y, outShape), parents, (g) => {
    const G = denseFloat(g.dtype === dtype ? g : g.astype(dtype));
    const gx = x.requiresGrad
      ? freshGrad(weight.rmatmul(G, rows, productOptions(allocLike(W, rows * inF))), xs)
      : null;
    const gd = data.requiresGrad
      ? freshGrad(
          BsrMatrix.sampledMatmul(weight, G, X, rows, {
            transA: true,
            ...productOptions(allocLike(W, nnz * R * C)),
          }).data,
          ds,
        )
      : null;
    const gb = bias?.requiresGrad ? freshGrad(channelSums(G, rows, outF, 1, G), [outF]) : null;
    return [gx, gd, gb];
  });
}
