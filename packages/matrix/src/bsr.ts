// Block Sparse Row matrices in scipy's layout, and their products with dense matrices.
import type { FloatArray, SameFloat } from "./types.ts";
import { allocLike, checkDim, checkFloatArray, checkLength, checkSameType } from "./types.ts";
import { sharedInt32, sharedLike } from "./shared.ts";
import type { SpmmCall } from "./spmm-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { runSampled, runSpmm } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import { resolveKernels } from "./kernels.ts";
import type { KernelPath } from "./kernels.ts";

/** Options of the sparse products: an output buffer to overwrite and a pool to split the work over. */
export interface SparseProductOptions<T extends FloatArray = FloatArray> {
  out?: T;
  pool?: MatrixPool;
  /**
   * Kernels of the products (the four products and sampledMatmul) on float32 data: "asm" or
   * "wasm" (see DenseOptions.kernels; default: the pool's, else TESSERA_KERNELS, else "asm").
   * Float64 data always runs the JavaScript/asm.js kernels.
   */
  kernels?: KernelPath;
}

/**
 * Options of the four products: SparseProductOptions plus an epilogue on the output, applied
 * while the output lines are in cache (inside the asm.js kernel when it runs serially), so a
 * Linear layer's bias and a following ReLU cost no pass of their own:
 *   out[line, j] = relu?(out[line, j] + bias[line])
 * where a line is an output feature (a row of A for matmul / rmatmulTranspose, a column of A
 * for transposeMatmul / rmatmul). The sum is rounded to the output's type before the ReLU,
 * i.e. the values of the product followed by a separate bias add and max(v, +0).
 */
export interface ProductOptions<T extends FloatArray = FloatArray> extends SparseProductOptions<T> {
  /** One value per output line (same float type as the data), or null. */
  bias?: T | null;
  /** max(v, +0) after the bias (NaN stays NaN). */
  relu?: boolean;
}

/** Options of the sampled product (which operand is stored transposed). */
export interface SampledOptions<T extends FloatArray = FloatArray> extends SparseProductOptions<T> {
  /** A is stored [k, rows] instead of [rows, k] (e.g. dY [batch, out] of a batch-major Linear). */
  transA?: boolean;
  /** B is stored [cols, k] instead of [k, cols] (e.g. xᵀ [in, batch] of a feature-major Linear). */
  transB?: boolean;
}

/** The fields of a BSR matrix exactly as scipy.sparse.bsr_matrix holds them (plus the logical shape). */
export interface BsrArrays<T extends FloatArray = Float32Array> {
  rows: number;
  cols: number;
  blockShape: readonly [number, number];
  indptr: Int32Array;
  indices: Int32Array;
  data: T;
}

/** Identity slot -> block map shared by every matrix (grown on demand). */
let identity = sharedInt32(0);
/** @internal At least n entries of the identity slot -> block map (0, 1, 2, ...). */
export function identityOf(n: number): Int32Array {
  if (identity.length < n) {
    identity = sharedInt32(Math.max(n, 2 * identity.length));
    for (let i = 0; i < identity.length; i++) identity[i] = i;
  }
  return identity;
}

function checkBlockShape(fn: string, blockShape: unknown): [number, number] {
  if (!Array.isArray(blockShape) || blockShape.length !== 2) {
    throw new TypeError(`${fn}: blockShape must be [R, C], got ${JSON.stringify(blockShape)}`);
  }
  const [R, C] = blockShape as [number, number];
  if (!Number.isSafeInteger(R) || R < 1 || !Number.isSafeInteger(C) || C < 1) {
    throw new RangeError(
      `${fn}: blockShape must hold two positive integers, got [${String(R)}, ${String(C)}]`,
    );
  }
  return [R, C];
}

/**
 * A rows x cols matrix stored as R x C blocks: block row i holds blocks indptr[i]..indptr[i+1]-1,
 * whose block columns are indices[...] (sorted, unique) and whose values are data[slot*R*C ...]
 * (row-major inside a block). rows/cols need not be multiples of R/C: edge blocks are stored
 * zero-padded and every product is exact for the logical shape.
 */
export class BsrMatrix<T extends FloatArray = Float32Array> {
  readonly rows: number;
  readonly cols: number;
  readonly blockShape: readonly [number, number];
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  /** Block values; may be updated in place (e.g. by an optimizer) — the pattern may not. */
  readonly data: T;
  private transposed: { ptr: Int32Array; idx: Int32Array; ids: Int32Array } | undefined;

  private constructor(a: BsrArrays<T>) {
    this.rows = a.rows;
    this.cols = a.cols;
    this.blockShape = [a.blockShape[0], a.blockShape[1]];
    this.indptr = a.indptr;
    this.indices = a.indices;
    this.data = a.data;
  }

  get blockRows(): number {
    return Math.ceil(this.rows / this.blockShape[0]);
  }
  get blockCols(): number {
    return Math.ceil(this.cols / this.blockShape[1]);
  }
  /** Number of stored blocks. */
  get nnzBlocks(): number {
    return this.indptr[this.indptr.length - 1]!;
  }
  /** Stored blocks over all blocks of the block grid (1 when the grid is empty). */
  get density(): number {
    const total = this.blockRows * this.blockCols;
    return total === 0 ? 1 : this.nnzBlocks / total;
  }
  /** Bytes held by indptr, indices and the used part of data. */
  get byteSize(): number {
    const [R, C] = this.blockShape;
    return (
      this.indptr.byteLength +
      this.nnzBlocks * 4 +
      this.nnzBlocks * R * C * this.data.BYTES_PER_ELEMENT
    );
  }

  /**
   * Builds a BSR matrix from a row-major dense rows x cols array. Without a mask, keeps every
   * block holding a nonzero; with `mask` (Uint8Array of blockRows*blockCols, row-major), keeps
   * exactly the blocks whose mask entry is nonzero (even all-zero ones). Arrays are allocated
   * on SharedArrayBuffer so a pool can use them without copying.
   */
  static fromDense<T extends FloatArray>(
    dense: T,
    rows: number,
    cols: number,
    blockShape: readonly [number, number],
    options?: { mask?: Uint8Array },
  ): BsrMatrix<SameFloat<T>> {
    const fn = "BsrMatrix.fromDense";
    checkDim(fn, "rows", rows);
    checkDim(fn, "cols", cols);
    const [R, C] = checkBlockShape(fn, blockShape);
    checkFloatArray(fn, "dense", dense);
    checkLength(fn, "dense", dense, rows * cols, `[rows=${rows}, cols=${cols}]`);
    const br = Math.ceil(rows / R);
    const bc = Math.ceil(cols / C);
    const mask = options?.mask;
    if (mask !== undefined) {
      if (!(mask instanceof Uint8Array))
        throw new TypeError(
          `${fn}: mask must be a Uint8Array of blockRows*blockCols = ${br * bc} entries`,
        );
      if (mask.length !== br * bc)
        throw new RangeError(
          `${fn}: mask has ${mask.length} entries, expected blockRows*blockCols = ${br}*${bc} = ${br * bc}`,
        );
    }
    const keep = new Uint8Array(br * bc);
    let nnz = 0;
    for (let i = 0; i < br; i++)
      for (let j = 0; j < bc; j++) {
        let k: boolean;
        if (mask !== undefined) k = mask[i * bc + j]! !== 0;
        else {
          k = false;
          const rEnd = Math.min(R, rows - i * R);
          const cEnd = Math.min(C, cols - j * C);
          for (let r = 0; r < rEnd && !k; r++) {
            const o = (i * R + r) * cols + j * C;
            for (let c = 0; c < cEnd; c++)
              if (dense[o + c] !== 0) {
                k = true;
                break;
              }
          }
        }
        if (k) {
          keep[i * bc + j] = 1;
          nnz++;
        }
      }
    const indptr = sharedInt32(br + 1);
    const indices = sharedInt32(nnz);
    const data = sharedLike(dense, nnz * R * C);
    let p = 0;
    for (let i = 0; i < br; i++) {
      for (let j = 0; j < bc; j++) {
        if (keep[i * bc + j] === 0) continue;
        indices[p] = j;
        const rEnd = Math.min(R, rows - i * R);
        const cEnd = Math.min(C, cols - j * C);
        for (let r = 0; r < rEnd; r++) {
          const src = (i * R + r) * cols + j * C;
          const dst = (p * R + r) * C;
          for (let c = 0; c < cEnd; c++) data[dst + c] = dense[src + c]!;
        }
        p++;
      }
      indptr[i + 1] = p;
    }
    return new BsrMatrix<SameFloat<T>>({
      rows,
      cols,
      blockShape: [R, C],
      indptr,
      indices,
      data: data as SameFloat<T>,
    });
  }

  /**
   * Wraps scipy-layout arrays (no copy) after the checks of scipy's check_format; throws an
   * Error naming the first violation.
   */
  static fromArrays<T extends FloatArray>(arrays: BsrArrays<T>): BsrMatrix<SameFloat<T>> {
    const fn = "BsrMatrix.fromArrays";
    if (typeof arrays !== "object" || arrays === null)
      throw new TypeError(`${fn}: expected {rows, cols, blockShape, indptr, indices, data}`);
    const { rows, cols, indptr, indices, data } = arrays;
    checkDim(fn, "rows", rows);
    checkDim(fn, "cols", cols);
    const [R, C] = checkBlockShape(fn, arrays.blockShape);
    validatePattern(fn, rows, cols, R, C, indptr, indices);
    checkFloatArray(fn, "data", data);
    const nnz = indptr[indptr.length - 1]!;
    if (data.length !== nnz * R * C) {
      throw new RangeError(
        `${fn}: data has ${data.length} values, expected nnzBlocks*R*C = ${nnz}*${R}*${C} = ${nnz * R * C}`,
      );
    }
    return new BsrMatrix<SameFloat<T>>({
      rows,
      cols,
      blockShape: [R, C],
      indptr,
      indices,
      data: data as SameFloat<T>,
    });
  }

  /** The dense row-major rows x cols matrix (padding of edge blocks dropped). Overwrites `out`. */
  toDense(out?: T): T {
    const fn = "BsrMatrix.toDense";
    const { rows, cols, indptr, indices, data } = this;
    const [R, C] = this.blockShape;
    let d: T;
    if (out === undefined) d = allocLike(data, rows * cols);
    else {
      checkFloatArray(fn, "out", out);
      checkSameType(fn, "out", data, out);
      checkLength(fn, "out", out, rows * cols, `[rows=${rows}, cols=${cols}]`);
      d = out;
      d.fill(0, 0, rows * cols);
    }
    for (let i = 0; i < this.blockRows; i++) {
      const rEnd = Math.min(R, rows - i * R);
      for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
        const j = indices[p]!;
        const cEnd = Math.min(C, cols - j * C);
        for (let r = 0; r < rEnd; r++) {
          const dst = (i * R + r) * cols + j * C;
          const src = (p * R + r) * C;
          for (let c = 0; c < cEnd; c++) d[dst + c] = data[src + c]!;
        }
      }
    }
    return d;
  }

  /** A·X: X is [cols, n] row-major; returns [rows, n]. */
  matmul(x: T, n: number, options?: ProductOptions<T>): T {
    return this.product("matmul", false, false, x, n, options);
  }

  /** Aᵀ·X: X is [rows, n] row-major; returns [cols, n]. */
  transposeMatmul(x: T, n: number, options?: ProductOptions<T>): T {
    return this.product("transposeMatmul", true, false, x, n, options);
  }

  /** X·A: X is [n, rows] row-major; returns [n, cols] (the input gradient of a batch-major Linear). */
  rmatmul(x: T, n: number, options?: ProductOptions<T>): T {
    return this.product("rmatmul", true, true, x, n, options);
  }

  /** X·Aᵀ: X is [n, cols] row-major; returns [n, rows] (the forward pass of a batch-major Linear). */
  rmatmulTranspose(x: T, n: number, options?: ProductOptions<T>): T {
    return this.product("rmatmulTranspose", false, true, x, n, options);
  }

  /**
   * Computes (A·B) only at the stored blocks of `pattern` and returns a BsrMatrix sharing
   * pattern's indptr/indices (or writes into `options.out`, a data array of nnzBlocks*R*C).
   * A is [rows, k] (or [k, rows] with transA), B is [k, cols] (or [cols, k] with transB),
   * row-major. Padding entries of edge blocks are written as 0.
   */
  static sampledMatmul<T extends FloatArray>(
    pattern: BsrMatrix<FloatArray>,
    a: T,
    b: SameFloat<T>,
    k: number,
    options?: SampledOptions<SameFloat<T>>,
  ): BsrMatrix<SameFloat<T>> {
    const fn = "BsrMatrix.sampledMatmul";
    if (!(pattern instanceof BsrMatrix)) throw new TypeError(`${fn}: pattern must be a BsrMatrix`);
    checkDim(fn, "k", k);
    checkFloatArray(fn, "a", a);
    checkFloatArray(fn, "b", b);
    checkSameType(fn, "b", a, b);
    const { rows, cols } = pattern;
    const [R, C] = pattern.blockShape;
    const transA = options?.transA === true;
    const transB = options?.transB === true;
    checkLength(fn, "a", a, rows * k, transA ? `[k=${k}, rows=${rows}]` : `[rows=${rows}, k=${k}]`);
    checkLength(fn, "b", b, k * cols, transB ? `[cols=${cols}, k=${k}]` : `[k=${k}, cols=${cols}]`);
    const nnz = pattern.nnzBlocks;
    const given = options?.out;
    if (given !== undefined) {
      const out = given;
      checkFloatArray(fn, "out", out);
      checkSameType(fn, "out", a, out);
      if (out.length !== nnz * R * C)
        throw new RangeError(
          `${fn}: out has ${out.length} values, expected nnzBlocks*R*C = ${nnz * R * C}`,
        );
    }
    const out = (given ?? sharedLike<FloatArray>(a, nnz * R * C)) as SameFloat<T>;
    const args: SampledArgs = {
      indptr: pattern.indptr,
      indices: pattern.indices,
      R,
      C,
      rows,
      cols,
      a,
      sai: transA ? 1 : k,
      sap: transA ? rows : 1,
      b,
      sbp: transB ? 1 : cols,
      sbj: transB ? k : 1,
      k,
      out,
    };
    runSampled(args, nnz, options?.pool, resolveKernels(fn, options?.kernels, options?.pool));
    return new BsrMatrix<SameFloat<T>>({
      rows,
      cols,
      blockShape: [R, C],
      indptr: pattern.indptr,
      indices: pattern.indices,
      data: out,
    });
  }

  /** Slots grouped by block column (CSC order), computed once: serves Aᵀ·X and X·A. */
  private transposedIndex(): { ptr: Int32Array; idx: Int32Array; ids: Int32Array } {
    if (this.transposed !== undefined) return this.transposed;
    const bc = this.blockCols;
    const nnz = this.nnzBlocks;
    const ptr = sharedInt32(bc + 1);
    const idx = sharedInt32(nnz);
    const ids = sharedInt32(nnz);
    for (let p = 0; p < nnz; p++) ptr[this.indices[p]! + 1]!++;
    for (let j = 0; j < bc; j++) ptr[j + 1]! += ptr[j]!;
    const next = ptr.slice(0, bc);
    for (let i = 0; i < this.blockRows; i++)
      for (let p = this.indptr[i]!; p < this.indptr[i + 1]!; p++) {
        const q = next[this.indices[p]!]!++;
        idx[q] = i;
        ids[q] = p;
      }
    this.transposed = { ptr, idx, ids };
    return this.transposed;
  }

  /**
   * Shared driver of the four products. `viaColumns`: walk block columns (output lines are
   * A's columns). `batchMajor`: X and the output are [n, ·] instead of [·, n].
   */
  private product(
    name: string,
    viaColumns: boolean,
    batchMajor: boolean,
    x: T,
    n: number,
    options?: ProductOptions<T>,
  ): T {
    const fn = `BsrMatrix.${name}`;
    checkDim(fn, "n", n);
    checkFloatArray(fn, "x", x);
    checkSameType(fn, "x", this.data, x);
    const [R, C] = this.blockShape;
    const inner = viaColumns ? this.rows : this.cols;
    const outer = viaColumns ? this.cols : this.rows;
    checkLength(fn, "x", x, inner * n, batchMajor ? `[n=${n}, ${inner}]` : `[${inner}, n=${n}]`);
    const given = options?.out;
    if (given !== undefined) {
      const out = given;
      checkFloatArray(fn, "out", out);
      checkSameType(fn, "out", x, out);
      checkLength(
        fn,
        "out",
        out,
        outer * n,
        batchMajor ? `[n=${n}, ${outer}]` : `[${outer}, n=${n}]`,
      );
    }
    const out: T = given ?? allocLike(x, outer * n);
    const bias = options?.bias ?? null;
    if (bias !== null) {
      checkFloatArray(fn, "options.bias", bias);
      checkSameType(fn, "options.bias", this.data, bias);
      if (bias.length !== outer)
        throw new RangeError(
          `${fn}: options.bias has ${bias.length} values, expected one per output line = ${outer}`,
        );
    }
    const relu = options?.relu;
    if (relu !== undefined && typeof relu !== "boolean")
      throw new TypeError(`${fn}: options.relu must be a boolean, got ${typeof relu}`);
    const t = viaColumns ? this.transposedIndex() : undefined;
    const args: SpmmCall = {
      ptr: t?.ptr ?? this.indptr,
      idx: t?.idx ?? this.indices,
      ids: t?.ids ?? identityOf(this.nnzBlocks),
      data: this.data,
      bsz: R * C,
      ob: viaColumns ? C : R,
      ib: viaColumns ? R : C,
      eos: viaColumns ? 1 : C,
      eis: viaColumns ? C : 1,
      outerLimit: outer,
      innerLimit: inner,
      x,
      sxi: batchMajor ? 1 : n,
      sxj: batchMajor ? inner : 1,
      out,
      soo: batchMajor ? 1 : n,
      soj: batchMajor ? outer : 1,
      n,
      bias,
      relu: relu === true,
    };
    const path = resolveKernels(fn, options?.kernels, options?.pool);
    runSpmm(args, viaColumns ? this.blockCols : this.blockRows, options?.pool, path);
    return out;
  }
}

/** scipy check_format for the index arrays; throws naming the first violation. */
export function validatePattern(
  fn: string,
  rows: number,
  cols: number,
  R: number,
  C: number,
  indptr: unknown,
  indices: unknown,
): void {
  const br = Math.ceil(rows / R);
  const bc = Math.ceil(cols / C);
  if (!(indptr instanceof Int32Array)) throw new TypeError(`${fn}: indptr must be an Int32Array`);
  if (!(indices instanceof Int32Array)) throw new TypeError(`${fn}: indices must be an Int32Array`);
  if (indptr.length !== br + 1)
    throw new RangeError(
      `${fn}: indptr has length ${indptr.length}, expected blockRows+1 = ${br + 1}`,
    );
  if (indptr[0] !== 0) throw new RangeError(`${fn}: indptr[0] is ${indptr[0]}, expected 0`);
  for (let i = 0; i < br; i++) {
    if (indptr[i + 1]! < indptr[i]!)
      throw new RangeError(
        `${fn}: indptr is not monotone: indptr[${i + 1}] = ${indptr[i + 1]} < indptr[${i}] = ${indptr[i]}`,
      );
  }
  const nnz = indptr[br]!;
  if (indices.length !== nnz)
    throw new RangeError(
      `${fn}: indices has length ${indices.length}, expected indptr[last] = ${nnz}`,
    );
  for (let i = 0; i < br; i++) {
    for (let p = indptr[i]!; p < indptr[i + 1]!; p++) {
      const j = indices[p]!;
      if (j < 0 || j >= bc)
        throw new RangeError(
          `${fn}: indices[${p}] = ${j} is out of range [0, ${bc}) (block row ${i})`,
        );
      if (p > indptr[i]! && j <= indices[p - 1]!) {
        const what = j === indices[p - 1]! ? "duplicate" : "unsorted";
        throw new RangeError(
          `${fn}: ${what} indices in block row ${i}: indices[${p - 1}] = ${indices[p - 1]}, indices[${p}] = ${j}`,
        );
      }
    }
  }
}
