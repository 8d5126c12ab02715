// @tessera/matrix: dense GEMM, im2col/col2im, BSR and CSR products on plain typed arrays.
export type { FloatArray } from "./types.ts";
export { matmul, matmulTransA, matmulTransB } from "./dense.ts";
