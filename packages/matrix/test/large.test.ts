// Products on shapes past every blocking constant (dense: KC = 256, MC = 64, NC = 512; sparse:
// 4-line tiles over many block lines) against a float64 reference, serial and on pools (whole-
// operand packing and per-chunk packing). The pool tests elsewhere compare pool against serial,
// which a bug shared by both would pass; these compare with the reference itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  BsrMatrix,
  CsrMatrix,
  createPool,
  matmul,
  matmulTransA,
  matmulTransB,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import {
  expectWithinRoundoff,
  maskedDense,
  randomArray,
  refMatmulWithAbs,
  transpose,
} from "./helpers.ts";

let pool: MatrixPool;
let repacking: MatrixPool;
beforeAll(async () => {
  pool = createPool({ threads: 2, minParallelFlops: 0, spin: 2000 });
  repacking = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, maxPackedBytes: 0 });
  await Promise.all([pool.ready(), repacking.ready()]);
});
afterAll(async () => {
  await Promise.all([pool.close(), repacking.close()]);
});

/**
 * Dense shapes crossing the blocks: either many rows (m > MC, several k-blocks) or many columns
 * (n > NC), each with ragged remainders against the 2x4 tile and the 256-long k-blocks.
 */
const denseShape = fc.oneof(
  fc.record({
    m: fc.integer({ min: 65, max: 150 }),
    k: fc.integer({ min: 257, max: 600 }),
    n: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    m: fc.integer({ min: 1, max: 9 }),
    k: fc.integer({ min: 200, max: 530 }),
    n: fc.integer({ min: 513, max: 560 }),
  }),
);

describe("dense products past the blocking constants equal the float64 reference", () => {
  it("matmul, matmulTransA, matmulTransB on both kernels: serial, pooled, pooled with per-chunk packing", () => {
    fc.assert(
      fc.property(denseShape, fc.integer(), ({ m, k, n }, seed) => {
        const a = randomArray(m * k, seed) as Float32Array;
        const b = randomArray(k * n, seed + 1) as Float32Array;
        const want = refMatmulWithAbs(a, b, m, k, n);
        const at = transpose(a, m, k);
        const bt = transpose(b, k, n);
        for (const kernels of ["asm", "wasm"] as const)
          for (const p of [undefined, pool, repacking]) {
            const opts = { pool: p, kernels };
            const where = `${kernels} ${p === undefined ? "serial" : p === pool ? "pool" : "repacking pool"}`;
            expectWithinRoundoff(
              matmul(a, b, m, k, n, undefined, opts),
              want,
              k,
              `matmul ${where}`,
            );
            expectWithinRoundoff(
              matmulTransA(at, b, m, k, n, undefined, opts),
              want,
              k,
              `matmulTransA ${where}`,
            );
            expectWithinRoundoff(
              matmulTransB(a, bt, m, k, n, undefined, opts),
              want,
              k,
              `matmulTransB ${where}`,
            );
          }
      }),
      { numRuns: 12 },
    );
  });

  it("the bound catches a product missing one term (a planted fault)", () => {
    const [m, k, n] = [70, 300, 9];
    const a = randomArray(m * k, 11) as Float32Array;
    const b = randomArray(k * n, 12) as Float32Array;
    const want = refMatmulWithAbs(a, b, m, k, n);
    // Drop the last k step: A[:, :k-1]·B[:k-1, :] is the same product missing one term.
    const a1 = new Float32Array(m * (k - 1));
    for (let i = 0; i < m; i++) a1.set(a.subarray(i * k, i * k + k - 1), i * (k - 1));
    for (const kernels of ["asm", "wasm"] as const) {
      expectWithinRoundoff(matmul(a, b, m, k, n, undefined, { kernels }), want, k, "matmul");
      expect(() =>
        expectWithinRoundoff(
          matmul(a1, b, m, k - 1, n, undefined, { kernels }),
          want,
          k,
          "broken matmul",
        ),
      ).toThrow(/broken matmul: element \d+/);
    }
  });
});

describe("sparse products on large shapes equal the float64 reference", () => {
  const sparseShape = fc.record({
    rows: fc.integer({ min: 65, max: 300 }),
    cols: fc.integer({ min: 257, max: 600 }),
    R: fc.constantFrom(1, 2, 3, 4, 8),
    C: fc.constantFrom(1, 2, 4, 5, 8),
    n: fc.integer({ min: 1, max: 70 }),
    k: fc.integer({ min: 1, max: 300 }),
    seed: fc.integer(),
    density: fc.double({ min: 0.05, max: 0.6, noNaN: true }),
  });

  it("BSR (and CSR for 1x1) matmul, transposeMatmul, rmatmul, rmatmulTranspose, sampledMatmul", () => {
    fc.assert(
      fc.property(sparseShape, (c) => {
        const { dense, mask } = maskedDense(c);
        const { rows, cols, n, k } = c;
        const w = BsrMatrix.fromDense(dense, rows, cols, [c.R, c.C], { mask });
        const mats: (BsrMatrix<Float32Array> | CsrMatrix<Float32Array>)[] = [w];
        if (c.R === 1 && c.C === 1) mats.push(CsrMatrix.fromDense(dense, rows, cols, { mask }));
        const xc = randomArray(cols * n, c.seed + 1) as Float32Array; // [cols, n]
        const xr = randomArray(rows * n, c.seed + 2) as Float32Array; // [rows, n]
        const dt = transpose(dense, rows, cols);
        const xrT = transpose(xr, rows, n);
        const xcT = transpose(xc, cols, n);
        const fwd = refMatmulWithAbs(dense, xc, rows, cols, n);
        const tr = refMatmulWithAbs(dt, xr, cols, rows, n);
        const rm = refMatmulWithAbs(xrT, dense, n, rows, cols);
        const rmt = refMatmulWithAbs(xcT, dt, n, cols, rows);
        // The sampled product: (A·B) at the stored blocks of w, zero elsewhere.
        const A = randomArray(rows * k, c.seed + 3) as Float32Array;
        const B = randomArray(k * cols, c.seed + 4) as Float32Array;
        const full = refMatmulWithAbs(A, B, rows, k, cols);
        const bc = Math.ceil(cols / c.C);
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < cols; j++)
            if (mask[Math.floor(i / c.R) * bc + Math.floor(j / c.C)] !== 1) {
              full.ref[i * cols + j] = 0;
              full.abs[i * cols + j] = 0;
            }
        for (const kernels of ["asm", "wasm"] as const)
          for (const p of [undefined, pool]) {
            const opts = { pool: p, kernels };
            for (const s of mats) {
              const name = `${s instanceof CsrMatrix ? "CSR" : `BSR ${c.R}x${c.C}`} ${kernels} ${p ? "pool" : "serial"}`;
              expectWithinRoundoff(s.matmul(xc, n, opts), fwd, cols, `${name} matmul`);
              expectWithinRoundoff(
                s.transposeMatmul(xr, n, opts),
                tr,
                rows,
                `${name} transposeMatmul`,
              );
              expectWithinRoundoff(s.rmatmul(xrT, n, opts), rm, rows, `${name} rmatmul`);
              expectWithinRoundoff(
                s.rmatmulTranspose(xcT, n, opts),
                rmt,
                cols,
                `${name} rmatmulTranspose`,
              );
            }
            const g = BsrMatrix.sampledMatmul(w, A, B, k, opts);
            expectWithinRoundoff(g.toDense(), full, k, `sampledMatmul ${p ? "pool" : "serial"}`);
            const gt = BsrMatrix.sampledMatmul(w, transpose(A, rows, k), transpose(B, k, cols), k, {
              ...opts,
              transA: true,
              transB: true,
            });
            expectWithinRoundoff(gt.toDense(), full, k, "sampledMatmul transA transB");
          }
      }),
      { numRuns: 12 },
    );
  });
});
