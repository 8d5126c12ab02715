// matmulPair: two independent products give the bits of the two calls, whether they ran as a
// pair (each whole on one thread of a pool, KIND_GEMM_PAIR) or one after the other; on both
// kernel paths, float32 and float64, shared or ordinary arrays (the pool stages those), and
// with the sizes that decide between the two routes.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { matmul, matmulPair, matmulTransA, matmulTransB, sharedFloat32 } from "../src/index.ts";
import type { DenseCall, FloatArray, KernelPath } from "../src/index.ts";
import { KIND_GEMM_PAIR } from "../src/jobs.ts";
import { PAIR_MAX_FLOPS } from "../src/parallel.ts";
import { bits, randomArray, testPools } from "./helpers.ts";

const asmPools = testPools("asm");
const wasmPools = testPools("wasm");
const products = { matmul, matmulTransA, matmulTransB } as const;
type Product = keyof typeof products;

/** A call of `product` on random operands of the layout it reads, out of the chosen kind. */
function call(
  product: Product,
  m: number,
  k: number,
  n: number,
  seed: number,
  f64: boolean,
  shared: boolean,
): DenseCall {
  const a = randomArray(m * k, seed, f64);
  const b = randomArray(k * n, seed + 1, f64);
  const out = f64
    ? new Float64Array(m * n)
    : shared
      ? sharedFloat32(m * n)
      : new Float32Array(m * n);
  if (shared && !f64) {
    const [sa, sb] = [sharedFloat32(m * k), sharedFloat32(k * n)];
    sa.set(a);
    sb.set(b);
    return { product, a: sa, b: sb, m, k, n, out };
  }
  return { product, a, b, m, k, n, out };
}

/** The product alone, into a fresh array, with the same path and pool. */
function alone(p: DenseCall, kernels: KernelPath, pool: unknown): FloatArray {
  const f = products[p.product] as (...args: unknown[]) => FloatArray;
  return f(p.a, p.b, p.m, p.k, p.n, undefined, { kernels, pool });
}

const productArb = fc.constantFrom<Product>("matmul", "matmulTransA", "matmulTransB");
const dim = fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 20, max: 90 }));

describe("matmulPair", () => {
  it("gives the two calls' bits on both paths, serial and on pools of 2 and 3 threads (paired or not)", () => {
    const paired = () =>
      [wasmPools, asmPools].reduce(
        (s, p) => s + (p.pool2().jobsByKind.get(KIND_GEMM_PAIR) ?? 0),
        0,
      );
    const before = paired();
    fc.assert(
      fc.property(
        fc.tuple(productArb, dim, dim, dim),
        fc.tuple(productArb, dim, dim, dim),
        fc.integer(),
        fc.boolean(),
        fc.boolean(),
        ([p0, m0, k0, n0], [p1, m1, k1, n1], seed, f64, shared) => {
          for (const kernels of (f64 ? ["asm"] : ["asm", "wasm"]) as KernelPath[]) {
            const pools = kernels === "asm" ? asmPools : wasmPools;
            for (const pool of [undefined, pools.pool2(), pools.pool3()]) {
              const c0 = call(p0, m0, k0, n0, seed, f64, shared);
              const c1 = call(p1, m1, k1, n1, seed + 7, f64, shared);
              const [y0, y1] = matmulPair(c0, c1, { kernels, pool });
              expect(y0).toBe(c0.out);
              expect(y1).toBe(c1.out);
              expect(bits(y0)).toEqual(bits(alone(c0, kernels, pool)));
              expect(bits(y1)).toEqual(bits(alone(c1, kernels, pool)));
            }
          }
        },
      ),
      { numRuns: 30 },
    );
    // Some of the cases ran as pairs (the pools' minParallelFlops is 0).
    expect(paired()).toBeGreaterThan(before);
  });

  it("pairs two small products of similar size and leaves the others to run one after the other", () => {
    const pool = wasmPools.pool2();
    const pairs = () => pool.jobsByKind.get(KIND_GEMM_PAIR) ?? 0;
    const run = (s0: number[], s1: number[]) => {
      const before = pairs();
      matmulPair(
        call("matmul", s0[0]!, s0[1]!, s0[2]!, 1, false, true),
        call("matmul", s1[0]!, s1[1]!, s1[2]!, 2, false, true),
        { pool },
      );
      return pairs() - before;
    };
    // LeNet-300-100's fc2 gradients: 7.7 MFLOP each
    expect(run([128, 100, 300], [100, 128, 300])).toBe(1);
    // one more than twice the other: one after the other
    expect(run([64, 64, 64], [64, 64, 129])).toBe(0);
    // past PAIR_MAX_FLOPS
    const side = Math.ceil(Math.cbrt(PAIR_MAX_FLOPS / 2)) + 1;
    expect(run([side, side, side], [side, side, side])).toBe(0);
  });

  it("names a bad product, mixed types and dependent products", () => {
    const a = new Float32Array(4);
    const ok: DenseCall = { product: "matmul", a, b: a, m: 2, k: 2, n: 2 };
    expect(() => matmulPair(ok, { ...ok, product: "toString" as never })).toThrow(
      /matmulPair: product 1 must be \{ product: "matmul" \| "matmulTransA" \| "matmulTransB"/,
    );
    expect(() => matmulPair(ok, { ...ok, b: new Float32Array(3) })).toThrow(
      /matmulPair \(second product, matmul\): b has 3 elements/,
    );
    expect(() =>
      matmulPair(ok, {
        product: "matmul",
        a: new Float64Array(4),
        b: new Float64Array(4),
        m: 2,
        k: 2,
        n: 2,
      } as never),
    ).toThrow(/matmulPair/);
    const out = new Float32Array(4);
    expect(() => matmulPair({ ...ok, out }, { ...ok, a: out })).toThrow(
      /matmulPair: the products must be independent/,
    );
  });
});
