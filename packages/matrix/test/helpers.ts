// Reference implementations and random data shared by the test files.
import { afterAll, beforeAll, expect } from "vitest";
import { BsrMatrix, createPool } from "../src/index.ts";
import type { FloatArray, KernelPath, MatrixPool } from "../src/index.ts";

/** Deterministic uniform [-1, 1) numbers from a 32-bit seed (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function randomArray(n: number, seed: number, f64 = false): Float32Array | Float64Array {
  const r = rng(seed);
  const out = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r();
  return out;
}

/** Plain triple loop in float64: the reference every kernel is compared with. */
export function refMatmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
      c[i * n + j] = s;
    }
  return c;
}

/** Row-major [r,c] -> [c,r], same element type. */
export function transpose<T extends FloatArray>(x: T, r: number, c: number): T {
  const out = (x instanceof Float32Array ? new Float32Array(r * c) : new Float64Array(r * c)) as T;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x[i * c + j]!;
  return out;
}

/** Compares within a tolerance that grows with the summation length k (inputs are in [-1, 1]). */
export function expectClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  k: number,
  f64 = false,
): void {
  expect(got.length).toBeGreaterThanOrEqual(want.length);
  const tol = (f64 ? 1e-12 : 4e-6) * Math.max(1, k);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= tol))
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]} (|diff| ${d} > tol ${tol})`);
  }
}

/** A random block-sparse case: logical shape (ragged allowed), block shape, n, and a block mask. */
export interface SparseCase {
  rows: number;
  cols: number;
  R: number;
  C: number;
  n: number;
  seed: number;
  /** Keep probability per block: 0, 1 or a random density. */
  density: number;
}

/** Dense rows x cols float32 matrix whose kept blocks (mask) hold random values, others zero. */
export function maskedDense(c: SparseCase): { dense: Float32Array; mask: Uint8Array } {
  const br = Math.ceil(c.rows / c.R);
  const bc = Math.ceil(c.cols / c.C);
  const r = rng(c.seed);
  const mask = new Uint8Array(br * bc);
  for (let i = 0; i < mask.length; i++) mask[i] = (r() + 1) / 2 < c.density ? 1 : 0;
  const dense = new Float32Array(c.rows * c.cols);
  for (let i = 0; i < c.rows; i++)
    for (let j = 0; j < c.cols; j++)
      if (mask[Math.floor(i / c.R) * bc + Math.floor(j / c.C)] === 1) dense[i * c.cols + j] = r();
  return { dense, mask };
}

/** The four products of a BsrMatrix with a dense matrix. */
export type SparseProduct = "matmul" | "transposeMatmul" | "rmatmul" | "rmatmulTranspose";
export const SPARSE_PRODUCTS: SparseProduct[] = [
  "matmul",
  "transposeMatmul",
  "rmatmul",
  "rmatmulTranspose",
];

/**
 * A random product case: the masked BSR matrix (float64 data when `f64`), X for `product` and
 * a bias over its output lines (or null), and `run(options)` calling the product on them.
 */
export function sparseProductCase(
  c: SparseCase & { f64: boolean; product: SparseProduct; withBias: boolean },
): {
  a: BsrMatrix<FloatArray>;
  x: FloatArray;
  bias: FloatArray | null;
  lines: number;
  run: (options: object) => FloatArray;
} {
  const { dense, mask } = maskedDense(c);
  const d = c.f64 ? Float64Array.from(dense) : dense;
  const a = BsrMatrix.fromDense<FloatArray>(d, c.rows, c.cols, [c.R, c.C], { mask });
  const viaColumns = c.product === "transposeMatmul" || c.product === "rmatmul";
  const inner = viaColumns ? c.rows : c.cols;
  const lines = viaColumns ? c.cols : c.rows;
  const x = randomArray(inner * c.n, c.seed + 1, c.f64);
  const bias = c.withBias ? randomArray(lines, c.seed + 2, c.f64) : null;
  const product = a[c.product] as (x: FloatArray, n: number, o: object) => FloatArray;
  return { a, x, bias, lines, run: (options) => product.call(a, x, c.n, options) };
}

/**
 * The float64 product C = A·B and the float64 sums of |a||b| (the classical bound of float
 * roundoff in a dot product is proportional to the latter, not to |C|, which may cancel to 0).
 */
export function refMatmulWithAbs(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
): { ref: Float64Array; abs: Float64Array } {
  const ref = new Float64Array(m * n);
  const abs = new Float64Array(m * n);
  const row = new Float64Array(n);
  const rowAbs = new Float64Array(n);
  // i-p-j order reads B along rows: fast enough for the shapes past the blocking constants.
  for (let i = 0; i < m; i++) {
    row.fill(0);
    rowAbs.fill(0);
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]!;
      const ax = Math.abs(x);
      const o = p * n;
      for (let j = 0; j < n; j++) {
        const y = b[o + j]!;
        row[j]! += x * y;
        rowAbs[j]! += ax * Math.abs(y);
      }
    }
    ref.set(row, i * n);
    abs.set(rowAbs, i * n);
  }
  return { ref, abs };
}

/**
 * Checks a float32 product against the float64 reference within the worst-case roundoff of a
 * float32 dot product of length k, |got - ref| <= (k + 2)·2⁻²⁴·Σ|a||b| (Higham, eq. 3.5, plus
 * the final rounding): every kernel, float32- or float64-accumulating, must meet it, while a
 * missing or doubled term is orders of magnitude outside it.
 */
export function expectWithinRoundoff(
  got: ArrayLike<number>,
  want: { ref: Float64Array; abs: Float64Array },
  k: number,
  what: string,
): void {
  const u = 2 ** -24;
  const { ref, abs } = want;
  expect(got.length).toBeGreaterThanOrEqual(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    const tol = (k + 2) * u * abs[i]! + 1e-30;
    if (!(d <= tol))
      throw new Error(
        `${what}: element ${i}: got ${got[i]}, want ${ref[i]} (|diff| ${d} > bound ${tol}, k ${k})`,
      );
  }
}

/** The bytes of a float array, for bitwise comparisons (toEqual on two of them). */
export const bits = (x: Float32Array | Float64Array): Uint8Array =>
  new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

/**
 * Pools of 2 and 3 threads on the asm.js path, opened before the calling file's tests and closed
 * after them (call at the top level of a test file). minParallelFlops 0 sends every product
 * through the pool; a short spin keeps three busy-waiting threads from starving each other on
 * 2 cores.
 */
export function asmTestPools(): { pool2: () => MatrixPool; pool3: () => MatrixPool } {
  return testPools("asm");
}

/** asmTestPools' pools on either kernel path. */
export function testPools(kernels: KernelPath): {
  pool2: () => MatrixPool;
  pool3: () => MatrixPool;
} {
  let pool2: MatrixPool | undefined;
  let pool3: MatrixPool | undefined;
  beforeAll(async () => {
    pool2 = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, kernels });
    pool3 = createPool({ threads: 3, minParallelFlops: 0, spin: 2000, kernels });
    await Promise.all([pool2.ready(), pool3.ready()]);
  });
  afterAll(async () => {
    await Promise.all([pool2?.close(), pool3?.close()]);
  });
  return { pool2: () => pool2!, pool3: () => pool3! };
}

/**
 * A two-thread pool on the WebAssembly path with minParallelFlops 0 (every job that can be split
 * is), opened before the calling file's tests and closed after them.
 */
export function wasmTestPool(): () => MatrixPool {
  let pool: MatrixPool | undefined;
  beforeAll(async () => {
    pool = createPool({ threads: 2, minParallelFlops: 0, kernels: "wasm" });
    await pool.ready();
  });
  afterAll(async () => {
    await pool?.close();
  });
  return () => pool!;
}

/**
 * A two-thread pool on the WebAssembly path whose products never fit its packed-panel budget
 * (maxPackedBytes 0), so every pooled product takes the route where each chunk packs its own
 * blocks; opened before the calling file's tests and closed after them.
 */
export function repackingWasmPool(): () => MatrixPool {
  let pool: MatrixPool | undefined;
  beforeAll(async () => {
    pool = createPool({
      threads: 2,
      minParallelFlops: 0,
      spin: 2000,
      maxPackedBytes: 0,
      kernels: "wasm",
    });
    await pool.ready();
  });
  afterAll(async () => {
    await pool?.close();
  });
  return () => pool!;
}
