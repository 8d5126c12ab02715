// The dense products' epilogue (options.bias / options.relu): C[i, j] = relu?(C[i, j] + bias[j])
// with the sum rounded to C's type first. Checked bit for bit against the product without
// epilogue followed by the obvious loop, for all three products, float32 and float64, on the
// asm.js and WebAssembly paths, serial and on pools of 2 and 3 threads: on the wasm path the
// pooled and serial products run it on each C block in kernel memory (past NC columns, the
// bias of a later column block), products packed per chunk run it after, as the asm.js path.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { matmul, matmulTransA, matmulTransB, sharedFloat32 } from "../src/index.ts";
import type { FloatArray, KernelPath, MatrixPool } from "../src/index.ts";
import { WASM_NC } from "../src/wasm-gemm.ts";
import { KIND_WASM_GEMM_PACKED } from "../src/jobs.ts";
import { randomArray, repackingWasmPool, testPools, transpose } from "./helpers.ts";

const asmPools = testPools("asm");
const wasmPools = testPools("wasm");
const repacking = repackingWasmPool();

/** The obvious epilogue over a row-major [m, n] C. */
function referenceEpilogue(
  c: FloatArray,
  m: number,
  n: number,
  bias: FloatArray | null,
  relu: boolean,
): FloatArray {
  const out = c.slice();
  const round = c instanceof Float32Array ? Math.fround : (v: number) => v;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let v = bias === null ? out[i * n + j]! : round(out[i * n + j]! + bias[j]!);
      if (relu) v = v > 0 ? v : v === v ? 0 : v;
      out[i * n + j] = v;
    }
  return out;
}

const same = (got: FloatArray, want: FloatArray): boolean =>
  got.length === want.length && got.every((v, i) => Object.is(v, want[i]));

const products = { matmul, matmulTransA, matmulTransB } as const;
type Product = keyof typeof products;

/** A and B laid out for `product` from row-major A [m, k] and B [k, n]. */
function operands<T extends FloatArray>(p: Product, a: T, b: T, m: number, k: number, n: number) {
  return p === "matmulTransA"
    ? [transpose(a, m, k), b]
    : p === "matmulTransB"
      ? [a, transpose(b, k, n)]
      : [a, b];
}

// Small shapes with ragged edges and empty dimensions, and a few wider than one NC column block
// (so a block's bias columns start past 0).
const shape = fc.oneof(
  fc.record({
    m: fc.integer({ min: 0, max: 70 }),
    k: fc.integer({ min: 0, max: 300 }),
    n: fc.integer({ min: 0, max: 45 }),
  }),
  fc.record({
    m: fc.integer({ min: 1, max: 9 }),
    k: fc.integer({ min: 1, max: 24 }),
    n: fc.integer({ min: WASM_NC - 3, max: WASM_NC + 40 }),
  }),
);
// Biases with the values a ReLU treats specially now and then.
const special = [Number.NaN, -Infinity, Infinity, -0, 0];

describe("dense products' epilogue (bias per column, ReLU)", () => {
  it("equals the product followed by the obvious loop, bit for bit, on every path and pool", () => {
    fc.assert(
      fc.property(
        shape,
        fc.integer(),
        fc.constantFrom<Product>("matmul", "matmulTransA", "matmulTransB"),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        ({ m, k, n }, seed, p, withBias, relu, f64, shared) => {
          const a0 = randomArray(m * k, seed, f64);
          const b0 = randomArray(k * n, seed + 1, f64);
          const [a, b] = operands(p, a0, b0, m, k, n);
          let bias: FloatArray | null = null;
          if (withBias) {
            bias = randomArray(n, seed + 2, f64);
            for (let j = 0; j < n; j += 7) bias[j] = special[(seed >>> 0) % special.length]!;
          }
          const paths: KernelPath[] = f64 ? ["asm"] : ["asm", "wasm"];
          for (const kernels of paths) {
            const pools = kernels === "asm" ? asmPools : wasmPools;
            const runs: (MatrixPool | undefined)[] = [undefined, pools.pool2(), pools.pool3()];
            if (kernels === "wasm") runs.push(repacking());
            for (const pool of runs) {
              const f = products[p] as (...args: unknown[]) => FloatArray;
              const plain = f(a, b, m, k, n, undefined, { kernels, pool });
              const want = referenceEpilogue(plain, m, n, bias, relu);
              const out = f64 ? new Float64Array(m * n) : shared ? sharedFloat32(m * n) : undefined;
              const got = f(a, b, m, k, n, out, { kernels, pool, bias, relu });
              if (!same(got, want))
                throw new Error(
                  `${p} ${m}x${k}x${n} ${kernels} pool ${pool?.threads ?? 1} bias ${withBias} relu ${relu}: differs`,
                );
            }
          }
        },
      ),
      { numRuns: 60 },
    );
    // The wasm pools ran the epilogue inside the packed product's job.
    expect(wasmPools.pool2().jobsByKind.get(KIND_WASM_GEMM_PACKED)).toBeGreaterThan(0);
  });

  it("applies the bias once on a pooled product, and the check sees a bias applied twice", () => {
    const [m, k, n] = [40, 50, 600];
    const a = randomArray(m * k, 1) as Float32Array;
    const b = randomArray(n * k, 2) as Float32Array;
    const bias = randomArray(n, 3) as Float32Array;
    for (const kernels of ["asm", "wasm"] as const) {
      const pool = (kernels === "asm" ? asmPools : wasmPools).pool2();
      const plain = matmulTransB(a, b, m, k, n, undefined, { kernels, pool });
      const got = matmulTransB(a, b, m, k, n, undefined, { kernels, pool, bias });
      expect(same(got, referenceEpilogue(plain, m, n, bias, false))).toBe(true);
      // a fault the check sees: the bias added twice
      const twice = referenceEpilogue(
        referenceEpilogue(plain, m, n, bias, false),
        m,
        n,
        bias,
        false,
      );
      expect(same(got, twice)).toBe(false);
    }
  });

  it("names a wrong bias or relu", () => {
    const a = new Float32Array(6);
    expect(() => matmulTransB(a, a, 2, 3, 2, undefined, { bias: new Float32Array(3) })).toThrow(
      /matmulTransB: options.bias has 3 values, expected n = 2 \(one per column of C\)/,
    );
    expect(() => matmul(a, a, 2, 3, 2, undefined, { bias: new Float64Array(2) as never })).toThrow(
      /matmul: options.bias/,
    );
    expect(() =>
      matmulTransA(a, a, 2, 3, 2, undefined, { relu: "yes" as unknown as boolean }),
    ).toThrow(/matmulTransA: options.relu must be a boolean, got string/);
  });
});
