// The products' epilogue (options.bias / options.relu): out[line, j] = relu?(out[line, j] +
// bias[line]) with the sum rounded to the output type first. Checked bit for bit against the
// product without epilogue followed by the obvious loop, for all four products, float32 and
// float64, the asm.js and WebAssembly paths, CSR (1x1) and ragged blocks, serial and on pools
// of 2 and 3 threads (each chunk runs the epilogue on its own outputs on the asm.js path and on
// the wasm path's batch-major products, whose epilogue is an f32x4 loop in kernel memory; the
// caller runs it after the wasm path's other products).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrMatrix, createPool } from "../src/index.ts";
import type { FloatArray, KernelPath } from "../src/index.ts";
import {
  SPARSE_PRODUCTS,
  asmTestPools,
  bits,
  maskedDense,
  randomArray,
  sparseProductCase,
} from "./helpers.ts";
import type { SparseProduct } from "./helpers.ts";

const pools = asmTestPools();

/** The obvious epilogue: out lines are A's rows (matmul, rmatmulTranspose) or columns. */
function referenceEpilogue(
  y: FloatArray,
  product: SparseProduct,
  lines: number,
  n: number,
  bias: FloatArray | null,
  relu: boolean,
): FloatArray {
  const out = y.slice();
  const batchMajor = product === "rmatmul" || product === "rmatmulTranspose";
  const round = y instanceof Float32Array ? Math.fround : (v: number) => v;
  for (let l = 0; l < lines; l++)
    for (let j = 0; j < n; j++) {
      const o = batchMajor ? j * lines + l : l * n + j;
      let v = bias === null ? out[o]! : round(out[o]! + bias[l]!);
      if (relu) v = v > 0 ? v : v === v ? 0 : v;
      out[o] = v;
    }
  return out;
}

const caseArb = fc.record({
  rows: fc.integer({ min: 1, max: 40 }),
  cols: fc.integer({ min: 1, max: 40 }),
  R: fc.integer({ min: 1, max: 6 }),
  C: fc.integer({ min: 1, max: 6 }),
  n: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(16, 17, 33)),
  seed: fc.integer(),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  f64: fc.boolean(),
  product: fc.constantFrom(...SPARSE_PRODUCTS),
  withBias: fc.boolean(),
  relu: fc.boolean(),
  path: fc.constantFrom<KernelPath>("asm", "wasm"),
  threads: fc.constantFrom(1, 2, 3),
});

describe("sparse products with an epilogue (bias, ReLU)", () => {
  it("equal the product followed by the obvious bias + ReLU loop, bit for bit, on every path", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { bias, lines, run } = sparseProductCase(c);
        const pool = c.threads === 2 ? pools.pool2() : c.threads === 3 ? pools.pool3() : undefined;
        const options = { pool, kernels: c.path };
        const plain = run(options);
        const fused = run({ ...options, bias, relu: c.relu });
        const want = referenceEpilogue(plain, c.product, lines, c.n, bias, c.relu);
        expect(bits(fused as Float32Array)).toEqual(bits(want as Float32Array));
      }),
      { numRuns: 300 },
    );
  });

  it("handles -0, infinities, NaN and float32 overflow as max(fround(y + b), +0)", () => {
    // A 1x1-block identity-like matrix passes chosen values through to the epilogue.
    const values = [0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 1.5, -2];
    const biases = [0, -0, -1e-45, 3.4e38, -Infinity, NaN, 0.25];
    const rows = biases.length;
    const n = values.length;
    for (const R of [1, 3]) {
      const eye = new Float32Array(rows * rows);
      for (let i = 0; i < rows; i++) eye[i * rows + i] = 1;
      const a = BsrMatrix.fromDense(eye, rows, rows, [R, R]);
      // X [rows, n]: row l holds the values, so A·X's line l is exactly them.
      const x = new Float32Array(rows * n);
      for (let l = 0; l < rows; l++) x.set(values, l * n);
      const bias = Float32Array.from(biases);
      // And batch-major, x·Aᵀ with x [n, rows]: row j holds the values.
      const xb = new Float32Array(n * rows);
      for (let j = 0; j < n; j++) xb.fill(values[j]!, j * rows, (j + 1) * rows);
      for (const relu of [false, true]) {
        const y = a.matmul(x, n, { kernels: "asm", bias, relu });
        const want = referenceEpilogue(a.matmul(x, n), "matmul", rows, n, bias, relu);
        for (let i = 0; i < y.length; i++) expect(Object.is(y[i], want[i])).toBe(true);
        for (const kernels of ["asm", "wasm"] as const) {
          const yb = a.rmatmulTranspose(xb, n, { kernels, bias, relu });
          const plain = a.rmatmulTranspose(xb, n, { kernels });
          const wantB = referenceEpilogue(plain, "rmatmulTranspose", rows, n, bias, relu);
          for (let i = 0; i < yb.length; i++) expect(Object.is(yb[i], wantB[i])).toBe(true);
        }
      }
    }
  });

  it("names a wrong bias", () => {
    const a = BsrMatrix.fromDense(new Float32Array(12).fill(1), 3, 4, [2, 2]);
    const x = new Float32Array(8);
    expect(() => a.rmatmulTranspose(x, 2, { bias: new Float32Array(4) })).toThrow(
      /BsrMatrix.rmatmulTranspose: options.bias has 4 values, expected one per output line = 3/,
    );
    expect(() => a.rmatmul(new Float32Array(6), 2, { bias: new Float32Array(3) })).toThrow(
      /options.bias has 3 values, expected one per output line = 4/,
    );
    expect(() => a.matmul(new Float32Array(8), 2, { bias: new Float64Array(3) as never })).toThrow(
      /BsrMatrix.matmul/,
    );
  });

  it("runs the epilogue once on a pooled product (the caller's own chunks would otherwise get it twice)", async () => {
    // A bias, not a ReLU: applied twice, a bias shows (a ReLU would not).
    const pool = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, kernels: "asm" });
    try {
      await pool.ready();
      const { dense, mask } = maskedDense({
        rows: 20,
        cols: 24,
        R: 4,
        C: 4,
        n: 32,
        seed: 3,
        density: 0.5,
      });
      const a = BsrMatrix.fromDense(dense, 20, 24, [4, 4], { mask });
      const x = randomArray(32 * 24, 4) as Float32Array;
      const bias = randomArray(20, 5) as Float32Array;
      const y = a.rmatmulTranspose(x, 32, { pool, bias });
      // The reference on the pool's path: under TESSERA_KERNELS=wasm the default would differ.
      const want = referenceEpilogue(
        a.rmatmulTranspose(x, 32, { kernels: "asm" }),
        "rmatmulTranspose",
        20,
        32,
        bias,
        false,
      );
      expect(bits(y)).toEqual(bits(want as Float32Array));
    } finally {
      await pool.close();
    }
  });
});
