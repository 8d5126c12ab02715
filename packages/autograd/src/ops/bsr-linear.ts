// Affine layer y = x·Wᵀ + b whose weight W [out, in] is a @tessera/matrix BsrMatrix; the
// trainable values are W.data, the nnzBlocks R x C blocks, wrapped by the Variable `data`:
//   forward  y     = W.rmatmulTranspose(x [N,in], N, { bias: b, relu })  (the epilogue)
//   backward g     = dy, gated by y > 0 with `relu` (on the wasm path in one pass with db's sums)
//            dx    = W.rmatmul(g [N,out], N)                           (skipped when x needs none)
//            ddata = sampledMatmul(W, g, x, N, { transA }) = gᵀ·x at W's stored blocks only
//            db    = column sums of g
// The sampled product writes the padding of ragged edge blocks as 0, so an optimizer stepping
// on ddata never moves it, and pruned (unstored) blocks have no gradient to revive them.
import { BsrMatrix } from "@tessera/matrix";
import type { SparseProductOptions } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, channelSums, dense, denseFloat, fmt, freshGrad, wrap } from "../util.ts";
import type { FloatArray } from "../util.ts";
import type { LinearOptions } from "./linear.ts";
import { fusedReluBackward } from "./relu.ts";

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
 * or null. x, weight.data and bias share one float dtype. options.relu applies a ReLU to the
 * output as part of the op (in the product's epilogue): relu(bsrLinear(...)) bit for bit.
 */
export function bsrLinear(
  x: Variable,
  weight: BsrMatrix<FloatArray>,
  data: Variable,
  bias: Variable | null = null,
  options: LinearOptions = {},
): Variable {
  const fn = "bsrLinear";
  if (options.relu !== undefined && typeof options.relu !== "boolean")
    throw new TypeError(`${fn}: options.relu must be a boolean, got ${typeof options.relu}`);
  const fusedRelu = options.relu === true;
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
  // The bias and the ReLU are the product's epilogue (applied while each block row's outputs
  // are in cache, the same rounded sums and max(v, +0) as separate passes).
  const y = weight.rmatmulTranspose(X, rows, {
    ...productOptions(allocLike(W, rows * outF)),
    bias: bias ? denseFloat(bias.data) : null,
    relu: fusedRelu,
  });
  const outShape = [...xs.slice(0, -1), outF];
  const parents = bias ? [x, data, bias] : [x, data];
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
    const gb = bias?.requiresGrad
      ? freshGrad(gbData ?? channelSums(G, rows, outF, 1, G), [outF])
      : null;
    return [gx, gd, gb];
  });
}
