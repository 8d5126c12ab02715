// Compressed Sparse Row matrices (scipy's csr_matrix layout) for element-level sparsity.
// A CSR matrix is a BSR matrix with 1x1 blocks, so it shares the BSR kernels, products and
// validation; this class only presents scipy's CSR field names.
import type { FloatArray, SameFloat } from "./types.ts";
import { BsrMatrix } from "./bsr.ts";
import type { SampledOptions, SparseProductOptions } from "./bsr.ts";

export interface CsrArrays<T extends FloatArray = Float32Array> {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  data: T;
}

/**
 * Runs a BSR call on behalf of `CsrMatrix.<method>`, so that its errors name the entry point
 * the user called (a CSR user never called BsrMatrix.fromArrays), with rows+1 and nnz for
 * BSR's blockRows+1 and nnzBlocks*R*C (a "block row" is a row: blocks are 1x1 here).
 */
function asCsr<R>(method: string, run: () => R): R {
  try {
    return run();
  } catch (e) {
    if (e instanceof Error && e.message.startsWith("BsrMatrix.")) {
      e.message = e.message
        .replace(/^BsrMatrix\.[A-Za-z]+: /, `CsrMatrix.${method}: `)
        .replace(/blockRows\+1/g, "rows+1")
        .replace(/nnzBlocks\*R\*C = (\d+)\*1\*1 = \d+/g, "nnz = $1");
    }
    throw e;
  }
}

export class CsrMatrix<T extends FloatArray = Float32Array> {
  /** The same arrays viewed as 1x1-block BSR (no copy). */
  readonly bsr: BsrMatrix<T>;

  private constructor(bsr: BsrMatrix<T>) {
    this.bsr = bsr;
  }

  get rows(): number {
    return this.bsr.rows;
  }
  get cols(): number {
    return this.bsr.cols;
  }
  get indptr(): Int32Array {
    return this.bsr.indptr;
  }
  get indices(): Int32Array {
    return this.bsr.indices;
  }
  get data(): T {
    return this.bsr.data;
  }
  /** Stored entries. */
  get nnz(): number {
    return this.bsr.nnzBlocks;
  }
  /** Stored entries over rows*cols (1 for an empty shape). */
  get density(): number {
    return this.bsr.density;
  }
  get byteSize(): number {
    return this.bsr.byteSize;
  }

  /** Keeps the nonzeros of a row-major dense array, or exactly the entries a rows*cols mask keeps. */
  static fromDense<T extends FloatArray>(
    dense: T,
    rows: number,
    cols: number,
    options?: { mask?: Uint8Array },
  ): CsrMatrix<SameFloat<T>> {
    return new CsrMatrix(
      asCsr("fromDense", () => BsrMatrix.fromDense(dense, rows, cols, [1, 1], options)),
    );
  }

  /** Wraps scipy-layout arrays (no copy) after scipy's check_format checks. */
  static fromArrays<T extends FloatArray>(a: CsrArrays<T>): CsrMatrix<SameFloat<T>> {
    if (typeof a !== "object" || a === null)
      throw new TypeError("CsrMatrix.fromArrays: expected {rows, cols, indptr, indices, data}");
    return new CsrMatrix(
      asCsr("fromArrays", () => BsrMatrix.fromArrays({ ...a, blockShape: [1, 1] })),
    );
  }

  toDense(out?: T): T {
    return asCsr("toDense", () => this.bsr.toDense(out));
  }
  /** A·X, X [cols, n] -> [rows, n]. */
  matmul(x: T, n: number, options?: SparseProductOptions<T>): T {
    return asCsr("matmul", () => this.bsr.matmul(x, n, options));
  }
  /** Aᵀ·X, X [rows, n] -> [cols, n]. */
  transposeMatmul(x: T, n: number, options?: SparseProductOptions<T>): T {
    return asCsr("transposeMatmul", () => this.bsr.transposeMatmul(x, n, options));
  }
  /** X·A, X [n, rows] -> [n, cols]. */
  rmatmul(x: T, n: number, options?: SparseProductOptions<T>): T {
    return asCsr("rmatmul", () => this.bsr.rmatmul(x, n, options));
  }
  /** X·Aᵀ, X [n, cols] -> [n, rows]. */
  rmatmulTranspose(x: T, n: number, options?: SparseProductOptions<T>): T {
    return asCsr("rmatmulTranspose", () => this.bsr.rmatmulTranspose(x, n, options));
  }
  /** (A·B) at the stored entries of `pattern`; same operand layouts as BsrMatrix.sampledMatmul. */
  static sampledMatmul<T extends FloatArray>(
    pattern: CsrMatrix<FloatArray>,
    a: T,
    b: SameFloat<T>,
    k: number,
    options?: SampledOptions<SameFloat<T>>,
  ): CsrMatrix<SameFloat<T>> {
    if (!(pattern instanceof CsrMatrix))
      throw new TypeError("CsrMatrix.sampledMatmul: pattern must be a CsrMatrix");
    return new CsrMatrix(
      asCsr("sampledMatmul", () => BsrMatrix.sampledMatmul(pattern.bsr, a, b, k, options)),
    );
  }
}
