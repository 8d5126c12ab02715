// Every CsrMatrix error names the CsrMatrix entry point that was called and CSR's own counts
// (rows+1, nnz), never the BSR entry point underneath (BsrMatrix.fromArrays).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CsrMatrix } from "../src/index.ts";

/** A valid random CSR matrix's arrays. */
const validCsr = fc
  .record({
    rows: fc.integer({ min: 1, max: 9 }),
    cols: fc.integer({ min: 1, max: 9 }),
    seed: fc.array(fc.boolean(), { minLength: 81, maxLength: 81 }),
  })
  .map(({ rows, cols, seed }) => {
    const indptr = new Int32Array(rows + 1);
    const idx: number[] = [];
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) if (seed[i * 9 + j]) idx.push(j);
      indptr[i + 1] = idx.length;
    }
    const indices = Int32Array.from(idx);
    return { rows, cols, indptr, indices, data: new Float32Array(idx.length).fill(1) };
  });

type Arrays = ReturnType<typeof validCsr.generate>["value"];

// Each corruption breaks one scipy check_format rule (or returns null where it cannot apply).
const corruptions: [string, (a: Arrays) => unknown][] = [
  ["indptr too long", (a) => ({ ...a, indptr: Int32Array.from([...a.indptr, a.indices.length]) })],
  ["indptr[0] not 0", (a) => ({ ...a, indptr: a.indptr.map((v, i) => (i === 0 ? -1 : v)) })],
  ["indptr not Int32Array", (a) => ({ ...a, indptr: Array.from(a.indptr) })],
  [
    "index out of range",
    (a) => (a.indices.length === 0 ? null : { ...a, indices: a.indices.map(() => a.cols) }),
  ],
  [
    "duplicate index",
    (a) => {
      const row = [...a.indptr].findIndex((v, i) => i > 0 && v - a.indptr[i - 1]! >= 2);
      if (row < 1) return null;
      const indices = a.indices.slice();
      indices[a.indptr[row - 1]! + 1] = indices[a.indptr[row - 1]!]!;
      return { ...a, indices };
    },
  ],
  ["data too short", (a) => ({ ...a, data: new Float32Array(a.indices.length + 1) })],
  ["data not a float array", (a) => ({ ...a, data: Array.from(a.data) })],
  ["rows not an integer", (a) => ({ ...a, rows: 1.5 })],
];

describe("CsrMatrix errors", () => {
  it("fromArrays: every violation is reported as CsrMatrix.fromArrays in CSR terms (property)", () => {
    fc.assert(
      fc.property(validCsr, fc.constantFrom(...corruptions), (a, [, corrupt]) => {
        expect(() => CsrMatrix.fromArrays(a)).not.toThrow();
        const bad = corrupt(a);
        if (bad === null) return;
        let message = "";
        try {
          CsrMatrix.fromArrays(bad as Arrays);
        } catch (e) {
          message = (e as Error).message;
        }
        expect(message).toMatch(/^CsrMatrix\.fromArrays: /);
        expect(message).not.toMatch(/Bsr|blockRows|nnzBlocks|blockShape/);
      }),
    );
  });

  it("names rows+1 and nnz where BSR would say blockRows+1 and nnzBlocks*R*C", () => {
    const base = { rows: 2, cols: 3, indices: Int32Array.of(0, 2), data: Float32Array.of(1, 2) };
    expect(() => CsrMatrix.fromArrays({ ...base, indptr: Int32Array.of(0, 2) })).toThrow(
      "CsrMatrix.fromArrays: indptr has length 2, expected rows+1 = 3",
    );
    expect(() =>
      CsrMatrix.fromArrays({ ...base, indptr: Int32Array.of(0, 1, 2), data: Float32Array.of(1) }),
    ).toThrow("CsrMatrix.fromArrays: data has 1 values, expected nnz = 2");
    expect(() =>
      CsrMatrix.fromArrays({
        ...base,
        indptr: Int32Array.of(0, 2, 2),
        indices: Int32Array.of(2, 0),
      }),
    ).toThrow(
      "CsrMatrix.fromArrays: unsorted indices in block row 0: indices[0] = 2, indices[1] = 0",
    );
  });

  it("other entry points name themselves too", () => {
    const m = CsrMatrix.fromDense(Float32Array.of(1, 0, 0, 2), 2, 2);
    expect(() => CsrMatrix.fromDense(Float32Array.of(1, 2, 3), 2, 2)).toThrow(
      /^CsrMatrix\.fromDense: /,
    );
    expect(() => m.matmul(new Float32Array(1), 1)).toThrow(/^CsrMatrix\.matmul: /);
    expect(() => m.transposeMatmul(new Float32Array(1), 1)).toThrow(
      /^CsrMatrix\.transposeMatmul: /,
    );
    expect(() => m.rmatmul(new Float32Array(1), 1)).toThrow(/^CsrMatrix\.rmatmul: /);
    expect(() => m.rmatmulTranspose(new Float32Array(1), 1)).toThrow(
      /^CsrMatrix\.rmatmulTranspose: /,
    );
    expect(() => m.toDense(new Float32Array(1))).toThrow(/^CsrMatrix\.toDense: /);
    expect(() => CsrMatrix.sampledMatmul(m, new Float32Array(1), new Float32Array(4), 2)).toThrow(
      /^CsrMatrix\.sampledMatmul: /,
    );
    expect(() => m.matmul(Float32Array.of(1, 2), 1)).not.toThrow();
  });
});
