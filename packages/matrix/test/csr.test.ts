import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrMatrix, CsrMatrix } from "../src/index.ts";
import { sparseCase } from "./arbitraries.ts";
import { maskedDense, randomArray } from "./helpers.ts";

describe("CsrMatrix", () => {
  it("agrees with 1x1 BSR on every product and round-trips exactly", () => {
    fc.assert(
      fc.property(sparseCase, fc.integer({ min: 0, max: 9 }), (c0, k) => {
        const c = { ...c0, R: 1, C: 1 };
        const { dense, mask } = maskedDense(c);
        const s = CsrMatrix.fromDense(dense, c.rows, c.cols);
        const b = BsrMatrix.fromDense(dense, c.rows, c.cols, [1, 1]);
        expect(s.toDense()).toEqual(dense);
        expect(s.nnz).toBe(b.nnzBlocks);
        expect(s.indptr).toEqual(b.indptr);
        expect(s.indices).toEqual(b.indices);
        const xc = randomArray(c.cols * c.n, c.seed + 1) as Float32Array;
        const xr = randomArray(c.rows * c.n, c.seed + 2) as Float32Array;
        expect(s.matmul(xc, c.n)).toEqual(b.matmul(xc, c.n));
        expect(s.transposeMatmul(xr, c.n)).toEqual(b.transposeMatmul(xr, c.n));
        expect(s.rmatmul(xr, c.n)).toEqual(b.rmatmul(xr, c.n));
        expect(s.rmatmulTranspose(xc, c.n)).toEqual(b.rmatmulTranspose(xc, c.n));
        const m = CsrMatrix.fromDense(dense, c.rows, c.cols, { mask });
        const A = randomArray(c.rows * k, c.seed + 3) as Float32Array;
        const B = randomArray(k * c.cols, c.seed + 4) as Float32Array;
        const bm = BsrMatrix.fromDense(dense, c.rows, c.cols, [1, 1], { mask });
        expect(CsrMatrix.sampledMatmul(m, A, B, k).data).toEqual(
          BsrMatrix.sampledMatmul(bm, A, B, k).data,
        );
      }),
      { numRuns: 150 },
    );
  });

  it("fromArrays validates like scipy and names the violation", () => {
    const good = {
      rows: 2,
      cols: 3,
      indptr: Int32Array.of(0, 1, 3),
      indices: Int32Array.of(2, 0, 1),
      data: Float32Array.of(1, 2, 3),
    };
    expect(Array.from(CsrMatrix.fromArrays(good).toDense())).toEqual([0, 0, 1, 2, 3, 0]);
    expect(() => CsrMatrix.fromArrays({ ...good, indices: Int32Array.of(2, 1, 0) })).toThrow(
      /unsorted indices in block row 1/,
    );
    expect(() => CsrMatrix.fromArrays({ ...good, indices: Int32Array.of(3, 0, 1) })).toThrow(
      /indices\[0\] = 3 is out of range \[0, 3\)/,
    );
    expect(() => CsrMatrix.fromArrays({ ...good, data: Float32Array.of(1, 2) })).toThrow(
      /data has 2 values/,
    );
  });
});
