// @tessera/matrix: dense GEMM, im2col/col2im, BSR and CSR products on plain typed arrays.
export type { FloatArray } from "./types.ts";
export { matmul, matmulPair, matmulTransA, matmulTransB } from "./dense.ts";
export { im2col, col2im, conv2dGeometry } from "./im2col.ts";
export type { Conv2dGeometry, Im2colLayout, ResolvedConv2d } from "./im2col.ts";
export { conv2dForward, conv2dWeightGrad, conv2dInputGrad, kernelPath } from "./conv.ts";
export type { ConvForwardOptions, ConvGradOptions } from "./conv.ts";
export { winogradApplies } from "./wasm-winograd.ts";
export { BsrMatrix, validatePattern } from "./bsr.ts";
export { BsrChain } from "./chain.ts";
export type { BsrChainLayer, BsrChainOptions } from "./chain.ts";
export type { BsrArrays, SparseProductOptions, SampledOptions } from "./bsr.ts";
export { sharedFloat32, sharedFloat64, sharedInt32, isShared, toShared } from "./shared.ts";
export { CsrMatrix } from "./csr.ts";
export type { CsrArrays } from "./csr.ts";
export type { DenseCall, DenseOptions, DenseProductOptions } from "./dense.ts";
export { createPool, MatrixPool } from "./pool.ts";
export type { PoolOptions } from "./pool.ts";
export { jobKindName } from "./jobs.ts";
export {
  KepLayout,
  kepPad,
  kepForward,
  kepBackwardInput,
  kepBackwardWeight,
  positionBits,
} from "./kep.ts";
export type { KepGeometry } from "./kep.ts";
export type { KernelPath } from "./kernels.ts";
export { kernelsFromEnv, wasmFmaFromEnv, winogradFromEnv } from "./kernels.ts";
export { hasWasmSimd, hasRelaxedSimd, enableRelaxedSimd } from "./wasm-builder.ts";
export { maxPool2dBackward, wasmMaxPool2d } from "./pool2d.ts";
export { channelSums } from "./channel-sums.ts";
export { adamUpdate } from "./adam.ts";
export type { AdamStep } from "./adam.ts";
export type { MaxPool2dGeometry } from "./wasm-pool2d.ts";
export { wasmRelu, wasmReluBackward, wasmReluBackwardChannelSums } from "./relu.ts";
