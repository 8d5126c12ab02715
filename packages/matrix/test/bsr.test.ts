import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrMatrix, matmul, matmulTransA, matmulTransB } from "../src/index.ts";
import { sparseCase } from "./arbitraries.ts";
import { expectClose, maskedDense, randomArray, refMatmul, transpose } from "./helpers.ts";
import type { SparseCase } from "./helpers.ts";

describe("BsrMatrix conversions", () => {
  it("toDense(fromDense(x)) is exact, with and without a block mask", () => {
    fc.assert(
      fc.property(sparseCase, (c) => {
        const { dense, mask } = maskedDense(c);
        const a = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C]);
        expect(a.toDense()).toEqual(dense);
        const m = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C], { mask });
        expect(m.toDense()).toEqual(dense);
        expect(m.nnzBlocks).toBe(mask.reduce((s, v) => s + v, 0));
        expect(a.nnzBlocks).toBeLessThanOrEqual(m.nnzBlocks);
        expect(m.indptr.length).toBe(Math.ceil(c.rows / c.R) + 1);
        expect(m.data.length).toBe(m.nnzBlocks * c.R * c.C);
        // Round trip through scipy-layout arrays keeps everything.
        const again = BsrMatrix.fromArrays({
          rows: m.rows,
          cols: m.cols,
          blockShape: m.blockShape,
          indptr: m.indptr,
          indices: m.indices,
          data: m.data,
        });
        expect(again.toDense()).toEqual(dense);
      }),
      { numRuns: 200 },
    );
  });

  it("reports nnzBlocks, density and byteSize", () => {
    const dense = new Float32Array(5 * 7);
    dense[0] = 1; // block (0,0)
    dense[4 * 7 + 6] = 2; // ragged corner block (2,2)
    const a = BsrMatrix.fromDense(dense, 5, 7, [2, 3]);
    expect([a.blockRows, a.blockCols, a.nnzBlocks]).toEqual([3, 3, 2]);
    expect(a.density).toBeCloseTo(2 / 9);
    expect(a.byteSize).toBe(4 * 4 + 2 * 4 + 2 * 6 * 4);
    expect(Array.from(a.indptr)).toEqual([0, 1, 1, 2]);
    expect(Array.from(a.indices)).toEqual([0, 2]);
    // The corner block is zero-padded: only (0,0) of it is inside the 5x7 matrix.
    expect(Array.from(a.data.subarray(6))).toEqual([2, 0, 0, 0, 0, 0]);
  });
});

/** A case's masked dense matrix, its BSR form, and operands for the four products. */
function productCase(c: SparseCase) {
  const { dense } = maskedDense(c);
  const a = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C]);
  const xc = randomArray(c.cols * c.n, c.seed + 1) as Float32Array; // [cols, n]
  const xr = randomArray(c.rows * c.n, c.seed + 2) as Float32Array; // [rows, n]
  const at = transpose(dense, c.rows, c.cols);
  const xrT = transpose(xr, c.rows, c.n); // [n, rows]
  const xcT = transpose(xc, c.cols, c.n); // [n, cols]
  return { dense, a, xc, xr, at, xrT, xcT };
}

describe("BsrMatrix products equal the dense reference", () => {
  it("matmul, transposeMatmul, rmatmul, rmatmulTranspose (and dense GEMM on the same case)", () => {
    fc.assert(
      fc.property(sparseCase, (c) => {
        const { dense, a, xc, xr, at, xrT, xcT } = productCase(c);
        const { rows, cols, n } = c;
        const ref1 = refMatmul(dense, xc, rows, cols, n);
        expectClose(a.matmul(xc, n), ref1, cols);
        expectClose(matmul(dense, xc, rows, cols, n), ref1, cols);
        const ref2 = refMatmul(at, xr, cols, rows, n);
        expectClose(a.transposeMatmul(xr, n), ref2, rows);
        expectClose(matmulTransA(dense, xr, cols, rows, n), ref2, rows);
        const ref3 = refMatmul(xrT, dense, n, rows, cols);
        expectClose(a.rmatmul(xrT, n), ref3, rows);
        const ref4 = refMatmul(xcT, at, n, cols, rows);
        expectClose(a.rmatmulTranspose(xcT, n), ref4, cols);
        expectClose(matmulTransB(xcT, dense, n, cols, rows), ref4, cols);
        // A provided out buffer is overwritten (stale values must not leak through).
        const out = new Float32Array(rows * n).fill(123);
        expect(a.matmul(xc, n, { out })).toBe(out);
        expectClose(out, ref1, cols);
      }),
      { numRuns: 200 },
    );
  });

  it("asm.js: the four products are one float64 sum in k order, rounded once to float32 (bit for bit)", () => {
    // The kernels sum every output element in double over the stored blocks in order (spmm-asm.ts
    // stages float32 operands as float64 for that), which is the dense float64 sum in k order
    // with the zero blocks' +-0 terms left out: the same double, so the same float32. A kernel
    // that summed or multiplied in float32 passes expectClose above but not this.
    const bits = (v: ArrayLike<number>) => new Uint8Array(Float32Array.from(v).buffer);
    fc.assert(
      fc.property(sparseCase, (c) => {
        const { dense, a, xc, xr, at, xrT, xcT } = productCase(c);
        const { rows, cols, n } = c;
        const o = { kernels: "asm" } as const; // the wasm path sums in float32 (its own tests)
        expect(bits(a.matmul(xc, n, o))).toEqual(bits(refMatmul(dense, xc, rows, cols, n)));
        expect(bits(a.transposeMatmul(xr, n, o))).toEqual(bits(refMatmul(at, xr, cols, rows, n)));
        expect(bits(a.rmatmul(xrT, n, o))).toEqual(bits(refMatmul(xrT, dense, n, rows, cols)));
        expect(bits(a.rmatmulTranspose(xcT, n, o))).toEqual(
          bits(refMatmul(xcT, at, n, cols, rows)),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("sampledMatmul equals the dense product at the stored blocks, for every operand layout", () => {
    fc.assert(
      fc.property(sparseCase, fc.integer({ min: 0, max: 11 }), (c, k) => {
        const { dense, mask } = maskedDense(c);
        const p = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C], { mask });
        const A = randomArray(c.rows * k, c.seed + 3) as Float32Array; // [rows, k]
        const B = randomArray(k * c.cols, c.seed + 4) as Float32Array; // [k, cols]
        const full = refMatmul(A, B, c.rows, k, c.cols);
        const bc = Math.ceil(c.cols / c.C);
        const want = new Float64Array(c.rows * c.cols);
        for (let i = 0; i < c.rows; i++)
          for (let j = 0; j < c.cols; j++)
            if (mask[Math.floor(i / c.R) * bc + Math.floor(j / c.C)] === 1)
              want[i * c.cols + j] = full[i * c.cols + j]!;
        const At = transpose(A, c.rows, k);
        const Bt = transpose(B, k, c.cols);
        for (const [a, b, transA, transB] of [
          [A, B, false, false],
          [At, B, true, false],
          [A, Bt, false, true],
          [At, Bt, true, true],
        ] as const) {
          const g = BsrMatrix.sampledMatmul(p, a, b, k, { transA, transB });
          expect(g.indptr).toBe(p.indptr);
          expectClose(g.toDense(), want, k);
          // Padding of ragged edge blocks stays zero.
          const padded = BsrMatrix.fromArrays({ ...g, data: g.data.slice() });
          expectClose(padded.toDense(), want, k);
          const full2 = new Float32Array(g.data.length).fill(9);
          BsrMatrix.sampledMatmul(p, a, b, k, { transA, transB, out: full2 });
          expect(full2).toEqual(g.data);
        }
      }),
      { numRuns: 120 },
    );
  });

  it("float64 operands take the same paths", () => {
    const d = randomArray(6 * 5, 3, true) as Float64Array;
    const a = BsrMatrix.fromDense(d, 6, 5, [4, 2]);
    expect(a.data).toBeInstanceOf(Float64Array);
    const x = randomArray(5 * 3, 4, true) as Float64Array;
    expectClose(a.matmul(x, 3), refMatmul(d, x, 6, 5, 3), 5, true);
  });

  it("float64: all four products on random patterns (the float64 kernel build)", () => {
    fc.assert(
      fc.property(sparseCase, (c) => {
        const dense = Float64Array.from(maskedDense(c).dense);
        const a = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C]);
        const { rows, cols, n } = c;
        const xc = randomArray(cols * n, c.seed + 1, true) as Float64Array;
        const xr = randomArray(rows * n, c.seed + 2, true) as Float64Array;
        const at = transpose(dense, rows, cols);
        expectClose(a.matmul(xc, n), refMatmul(dense, xc, rows, cols, n), cols, true);
        expectClose(a.transposeMatmul(xr, n), refMatmul(at, xr, cols, rows, n), rows, true);
        const xrT = transpose(xr, rows, n);
        expectClose(a.rmatmul(xrT, n), refMatmul(xrT, dense, n, rows, cols), rows, true);
        const xcT = transpose(xc, cols, n);
        expectClose(a.rmatmulTranspose(xcT, n), refMatmul(xcT, at, n, cols, rows), cols, true);
      }),
      { numRuns: 60 },
    );
  });
});

describe("BsrMatrix.fromArrays rejects malformed input like scipy's check_format", () => {
  interface Arrays {
    rows: number;
    cols: number;
    blockShape: [number, number];
    indptr: Int32Array;
    indices: Int32Array;
    data: Float32Array;
  }
  const ok = (): Arrays => ({
    rows: 4,
    cols: 6,
    blockShape: [2, 3] as [number, number],
    indptr: Int32Array.of(0, 2, 3),
    indices: Int32Array.of(0, 1, 1),
    data: new Float32Array(18),
  });
  const cases: [string, (v: Arrays) => unknown, RegExp][] = [
    [
      "indptr type",
      (v) => (v.indptr = [0, 2, 3] as unknown as Int32Array),
      /indptr must be an Int32Array/,
    ],
    [
      "indices type",
      (v) => (v.indices = new Float32Array(3) as unknown as Int32Array),
      /indices must be an Int32Array/,
    ],
    [
      "indptr length",
      (v) => (v.indptr = Int32Array.of(0, 3)),
      /indptr has length 2, expected blockRows\+1 = 3/,
    ],
    ["indptr[0]", (v) => (v.indptr = Int32Array.of(1, 2, 3)), /indptr\[0\] is 1, expected 0/],
    [
      "monotone",
      (v) => (v.indptr = Int32Array.of(0, 3, 2)),
      /indptr is not monotone: indptr\[2\] = 2 < indptr\[1\] = 3/,
    ],
    [
      "indices length",
      (v) => (v.indices = Int32Array.of(0, 1)),
      /indices has length 2, expected indptr\[last\] = 3/,
    ],
    [
      "range",
      (v) => (v.indices = Int32Array.of(0, 2, 1)),
      /indices\[1\] = 2 is out of range \[0, 2\)/,
    ],
    ["negative", (v) => (v.indices = Int32Array.of(0, 1, -1)), /indices\[2\] = -1 is out of range/],
    ["unsorted", (v) => (v.indices = Int32Array.of(1, 0, 1)), /unsorted indices in block row 0/],
    ["duplicate", (v) => (v.indices = Int32Array.of(1, 1, 1)), /duplicate indices in block row 0/],
    [
      "data length",
      (v) => (v.data = new Float32Array(17)),
      /data has 17 values, expected nnzBlocks\*R\*C = 3\*2\*3 = 18/,
    ],
    [
      "data type",
      (v) => (v.data = new Int32Array(18) as unknown as Float32Array),
      /data must be a Float32Array or Float64Array/,
    ],
    ["blockShape", (v) => (v.blockShape = [0, 3]), /blockShape must hold two positive integers/],
    ["rows", (v) => (v.rows = -1), /rows must be a non-negative integer/],
  ];
  for (const [name, spoil, msg] of cases) {
    it(`rejects bad ${name}`, () => {
      const v = ok();
      expect(() => BsrMatrix.fromArrays(v)).not.toThrow();
      spoil(v);
      expect(() => BsrMatrix.fromArrays(v)).toThrow(msg);
    });
  }
  it("rejects bad product operands", () => {
    const a = BsrMatrix.fromArrays(ok());
    expect(() => a.matmul(new Float32Array(5), 1)).toThrow(
      /BsrMatrix.matmul: x has 5 elements but shape \[6, n=1\] needs at least 6/,
    );
    expect(() => a.transposeMatmul(new Float32Array(4), 1, { out: new Float32Array(5) })).toThrow(
      /transposeMatmul: out has 5 elements/,
    );
    expect(() => a.matmul(new Float64Array(6) as unknown as Float32Array, 1)).toThrow(
      /share one element type/,
    );
    expect(() => BsrMatrix.sampledMatmul(a, new Float32Array(3), new Float32Array(6), 1)).toThrow(
      /sampledMatmul: a has 3 elements/,
    );
    expect(() =>
      BsrMatrix.fromDense(new Float32Array(24), 4, 6, [2, 3], { mask: new Uint8Array(3) }),
    ).toThrow(/mask has 3 entries, expected blockRows\*blockCols = 2\*2 = 4/);
  });
});
