// @tessera/autograd: reverse-mode automatic differentiation over @tessera/tensor.
// Every op lives in src/ops with its forward and backward side by side.
import "./methods.ts"; // installs Variable's method sugar (x.add(y), ...)
export { Variable } from "./variable.ts";
export type { BackwardFn, GradNode, VariableOptions } from "./variable.ts";
export { noGrad, enableGrad, isGradEnabled } from "./grad-mode.ts";
export { BufferArena } from "./arena.ts";
export type { BufferArenaOptions, BufferArenaStats } from "./arena.ts";
export { setMatrixPool, getMatrixPool } from "./matrix-pool.ts";
export { record, needsGraph, toVariable } from "./record.ts";
export type { Input } from "./record.ts";
export { add, sub, mul, div, pow } from "./ops/arith.ts";
export { neg, exp, log, sqrt, sigmoid, tanh } from "./ops/unary.ts";
export { relu, leakyRelu } from "./ops/relu.ts";
export { pointwise } from "./ops/pointwise.ts";
export type { ForwardLoop, BackwardLoop } from "./ops/pointwise.ts";
export { matmul } from "./ops/matmul.ts";
export { sum, mean, max, min } from "./ops/reduce.ts";
export type { Axes } from "./ops/reduce.ts";
export {
  reshape,
  flatten,
  transpose,
  permute,
  broadcastTo,
  unsqueeze,
  squeeze,
} from "./ops/shape.ts";
export { slice, concat, stack } from "./ops/slice.ts";
export { logSoftmax, softmax } from "./ops/softmax.ts";
export { softmaxCrossEntropy } from "./ops/cross-entropy.ts";
export type { CrossEntropyOptions, Labels } from "./ops/cross-entropy.ts";
export { linear } from "./ops/linear.ts";
export type { LinearOptions } from "./ops/linear.ts";
export { bsrLinear } from "./ops/bsr-linear.ts";
export { conv2d } from "./ops/conv2d.ts";
export type { Conv2dOptions } from "./ops/conv2d.ts";
export { maxPool2d, avgPool2d } from "./ops/pool.ts";
export type { Pool2dOptions } from "./ops/pool.ts";
export { dropout } from "./ops/dropout.ts";
export { batchNorm } from "./ops/batch-norm.ts";
export type { BatchNormOptions } from "./ops/batch-norm.ts";
export { gradcheck } from "./gradcheck.ts";
export type { GradcheckOptions, GradcheckResult } from "./gradcheck.ts";
export { kepConv2d } from "./ops/kep-conv2d.ts";
export type { KepConv2dOptions } from "./ops/kep-conv2d.ts";
