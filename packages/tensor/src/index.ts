// @tessera/tensor: n-d tensors as strided views over typed arrays (the scijs ndarray
// layout), NumPy-style broadcasting ops and reductions, and seeded random generators.
export { Tensor } from "./tensor.ts";
export type { Operand, SliceArg } from "./tensor.ts";
export type { DType, TypedArray, ArrayFor } from "./dtype.ts";
export { DTYPES, isDType, promoteTypes, promoteWithScalar } from "./dtype.ts";
export type { NestedArray } from "./format.ts";
export { Generator, createGenerator, portableLog } from "./generator.ts";
export type { GeneratorState } from "./generator.ts";
export {
  broadcastShapes,
  contiguousStrides,
  shapeSize,
  normalizeAxis,
  normalizeAxes,
} from "./shape.ts";
export {
  zeros,
  ones,
  full,
  scalar,
  zerosLike,
  onesLike,
  fullLike,
  eye,
  arange,
  fromArray,
  rand,
  uniform,
  randn,
  randint,
} from "./creation.ts";
export {
  add,
  sub,
  mul,
  div,
  pow,
  maximum,
  minimum,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  neg,
  abs,
  sign,
  square,
  relu,
  exp,
  log,
  sqrt,
  sigmoid,
  tanh,
  reciprocal,
  clamp,
  where,
  addInPlace,
  subInPlace,
  mulInPlace,
  divInPlace,
  scaleInPlace,
  axpyInPlace,
  copyInto,
  equals,
  allClose,
} from "./elementwise.ts";
export {
  sum,
  mean,
  max,
  min,
  argmax,
  argmin,
  logsumexp,
  sumToShape,
  softmax,
  logSoftmax,
} from "./reduce.ts";
export { concat, stack, pad, oneHot } from "./join.ts";
export { matmul } from "./matmul.ts";
