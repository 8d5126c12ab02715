// Public dense products: validate, then hand to the kernels in gemm.ts.
import { allocLike, checkDim, checkFloatArray, checkLength, checkSameType } from "./types.ts";
import type { FloatArray, SameFloat, Trans } from "./types.ts";
import { TRANS_A, TRANS_B, TRANS_NONE } from "./types.ts";
import { runGemm, runGemmPair } from "./parallel.ts";
import type { GemmEpilogue } from "./parallel.ts";
import type { GemmArgs } from "./jobs.ts";
import type { MatrixPool } from "./pool.ts";
import { resolveKernels } from "./kernels.ts";
import type { KernelPath } from "./kernels.ts";

/** Options of the dense products. */
export interface DenseOptions {
  /** Split the rows (or columns) of C over this pool's threads. */
  pool?: MatrixPool;
  /**
   * "asm" (asm.js kernel, float64 sums) or "wasm" (WebAssembly SIMD kernel, float32 sums) for
   * float32 operands; default: the pool's `kernels`, else TESSERA_KERNELS, else "asm".
   * Float64 operands always take the asm.js kernel.
   */
  kernels?: KernelPath;
}

/**
 * Options of the three products: DenseOptions plus an epilogue on C, applied while each block
 * of C is in kernel memory on the WebAssembly path (one pass over C after the product on the
 * asm.js path), so a Linear layer's bias and a following ReLU cost no pass of their own:
 *   C[i, j] = relu?(C[i, j] + bias[j])
 * The sum is rounded to C's type before the ReLU: the values of the product followed by a
 * separate bias add and max(v, +0).
 */
export interface DenseProductOptions<T extends FloatArray = FloatArray> extends DenseOptions {
  /** n values, the same float type as the operands (bias[j] is added to column j), or null. */
  bias?: T | null;
  /** max(v, +0) after the bias: +0 for -0 and -Infinity, NaN kept (autograd's relu). */
  relu?: boolean;
}

/** The checked epilogue of a product's options (undefined when it asks for none). */
function epilogueOf(
  fn: string,
  a: FloatArray,
  n: number,
  options: DenseProductOptions | undefined,
): GemmEpilogue | undefined {
  const bias = options?.bias ?? null;
  const relu = options?.relu;
  if (relu !== undefined && typeof relu !== "boolean")
    throw new TypeError(`${fn}: options.relu must be a boolean, got ${typeof relu}`);
  if (bias !== null) {
    checkFloatArray(fn, "options.bias", bias);
    checkSameType(fn, "options.bias", a, bias);
    if (bias.length !== n)
      throw new RangeError(
        `${fn}: options.bias has ${bias.length} values, expected n = ${n} (one per column of C)`,
      );
  }
  return bias === null && relu !== true ? undefined : { bias, relu: relu === true };
}

function kernelsFor(fn: string, options: DenseOptions | undefined): KernelPath {
  return resolveKernels(fn, options?.kernels, options?.pool);
}

function prepare<T extends FloatArray>(
  fn: string,
  trans: Trans,
  a: T,
  b: T,
  m: number,
  k: number,
  n: number,
  out: T | undefined,
): T {
  checkDim(fn, "m", m);
  checkDim(fn, "k", k);
  checkDim(fn, "n", n);
  checkFloatArray(fn, "a", a);
  checkFloatArray(fn, "b", b);
  checkSameType(fn, "b", a, b);
  checkLength(fn, "a", a, m * k, trans === TRANS_A ? `[k=${k}, m=${m}]` : `[m=${m}, k=${k}]`);
  checkLength(fn, "b", b, k * n, trans === TRANS_B ? `[n=${n}, k=${k}]` : `[k=${k}, n=${n}]`);
  if (out === undefined) return allocLike(a, m * n);
  checkFloatArray(fn, "out", out);
  checkSameType(fn, "out", a, out);
  checkLength(fn, "out", out, m * n, `[m=${m}, n=${n}]`);
  return out;
}

/** One of the three products: checked, run, its epilogue applied; returns C. */
function product(
  fn: string,
  trans: Trans,
  a: FloatArray,
  b: FloatArray,
  m: number,
  k: number,
  n: number,
  out: FloatArray | undefined,
  options: DenseProductOptions | undefined,
): FloatArray {
  const c = prepare(fn, trans, a, b, m, k, n, out);
  const epi = epilogueOf(fn, a, n, options);
  runGemm({ trans, a, b, c, m, k, n }, options?.pool, kernelsFor(fn, options), epi);
  return c;
}

/**
 * C[m,n] = A[m,k]·B[k,n], all row-major, then options' epilogue (bias, relu). Overwrites and
 * returns `out` (allocated like `a` when omitted).
 */
export function matmul<T extends FloatArray>(
  a: T,
  b: SameFloat<T>,
  m: number,
  k: number,
  n: number,
  out?: SameFloat<T>,
  options?: DenseProductOptions<SameFloat<T>>,
): SameFloat<T> {
  return product("matmul", TRANS_NONE, a, b, m, k, n, out, options) as SameFloat<T>;
}

/**
 * C[m,n] = Aᵀ·B where A is stored row-major as [k,m] and B as [k,n] (no transpose is
 * materialised), then options' epilogue.
 */
export function matmulTransA<T extends FloatArray>(
  a: T,
  b: SameFloat<T>,
  m: number,
  k: number,
  n: number,
  out?: SameFloat<T>,
  options?: DenseProductOptions<SameFloat<T>>,
): SameFloat<T> {
  return product("matmulTransA", TRANS_A, a, b, m, k, n, out, options) as SameFloat<T>;
}

/**
 * C[m,n] = A·Bᵀ where A is stored row-major as [m,k] and B as [n,k] (no transpose is
 * materialised), then options' epilogue: with bias and relu, a Linear layer and its ReLU
 * (x [m,k] by weight [n,k]).
 */
export function matmulTransB<T extends FloatArray>(
  a: T,
  b: SameFloat<T>,
  m: number,
  k: number,
  n: number,
  out?: SameFloat<T>,
  options?: DenseProductOptions<SameFloat<T>>,
): SameFloat<T> {
  return product("matmulTransB", TRANS_B, a, b, m, k, n, out, options) as SameFloat<T>;
}

/** One product of matmulPair: which of the three, its operands and sizes, and optionally `out`. */
export interface DenseCall<T extends FloatArray = FloatArray> {
  product: "matmul" | "matmulTransA" | "matmulTransB";
  a: T;
  b: SameFloat<T>;
  m: number;
  k: number;
  n: number;
  out?: SameFloat<T>;
}

const TRANS_OF = { matmul: TRANS_NONE, matmulTransA: TRANS_A, matmulTransB: TRANS_B } as const;

/**
 * Two independent products (neither's output is an operand of the other), with the values of
 * the two calls one after the other; returns both outputs. With a pool of two or more threads,
 * two small products of similar size (each at most PAIR_MAX_FLOPS, 32 MFLOP) run at the same
 * time, each whole on one thread, where splitting each over the threads gains little: a Linear
 * layer's input and weight gradients (autograd's linear does this). Otherwise as the two calls.
 */
export function matmulPair<T extends FloatArray>(
  p0: DenseCall<T>,
  p1: DenseCall<T>,
  options?: DenseOptions,
): [SameFloat<T>, SameFloat<T>] {
  const fn = "matmulPair";
  const calls = [p0, p1].map((p, i) => {
    const name = `${fn} (${i === 0 ? "first" : "second"} product, ${String(p?.product)})`;
    if (p === null || typeof p !== "object" || !Object.hasOwn(TRANS_OF, p.product))
      throw new TypeError(
        `${fn}: product ${i} must be { product: "matmul" | "matmulTransA" | "matmulTransB", a, b, m, k, n, out? }`,
      );
    const trans = TRANS_OF[p.product];
    const c = prepare<FloatArray>(name, trans, p.a, p.b, p.m, p.k, p.n, p.out);
    return { trans, a: p.a as FloatArray, b: p.b as FloatArray, c, m: p.m, k: p.k, n: p.n };
  }) as [GemmArgs, GemmArgs];
  const [g0, g1] = calls;
  checkSameType(fn, "the second product's a", g0.a, g1.a);
  for (const [x, y] of [
    [g0, g1],
    [g1, g0],
  ] as const)
    if (x.c === y.a || x.c === y.b || x.c === y.c)
      throw new RangeError(
        `${fn}: the products must be independent, but one's output is an operand or the output of the other`,
      );
  runGemmPair(g0, g1, options?.pool, kernelsFor(fn, options));
  return [g0.c as SameFloat<T>, g1.c as SameFloat<T>];
}
