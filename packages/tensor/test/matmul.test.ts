import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "../src/index.ts";
import type { DType } from "../src/index.ts";
import { allIndices, arbView, refBroadcast } from "./helpers.ts";

/** NumPy matmul by a naive triple loop over nested reads (double precision). */
function naiveMatmul(a: T.Tensor, b: T.Tensor): { shape: number[]; at: (idx: number[]) => number } {
  const A = a.ndim === 1 ? a.unsqueeze(0) : a;
  const B = b.ndim === 1 ? b.unsqueeze(1) : b;
  const m = A.shape[A.ndim - 2]!;
  const k = A.shape[A.ndim - 1]!;
  const n = B.shape[B.ndim - 1]!;
  const batch = refBroadcast(A.shape.slice(0, -2), B.shape.slice(0, -2))!;
  const shape = [...batch, ...(a.ndim > 1 ? [m] : []), ...(b.ndim > 1 ? [n] : [])];
  const at = (idx: number[]): number => {
    const bi = idx.slice(0, batch.length);
    const i = a.ndim > 1 ? idx[batch.length]! : 0;
    const j = b.ndim > 1 ? idx[idx.length - 1]! : 0;
    const ab = bi.slice(bi.length - (A.ndim - 2)).map((v, d) => (A.shape[d] === 1 ? 0 : v));
    const bb = bi.slice(bi.length - (B.ndim - 2)).map((v, d) => (B.shape[d] === 1 ? 0 : v));
    let s = 0;
    for (let p = 0; p < k; p++) s += A.get(...ab, i, p) * B.get(...bb, p, j);
    return s;
  };
  return { shape, at };
}

/** Shapes for a random matmul: optional batch dims that broadcast, 1-d cases included. */
const arbMatmulShapes = fc
  .record({
    m: fc.integer({ min: 0, max: 7 }),
    k: fc.integer({ min: 0, max: 9 }),
    n: fc.integer({ min: 0, max: 7 }),
    batch: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
    dropA: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    dropB: fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    kind: fc.constantFrom("mm", "mm", "vec-left", "vec-right", "vec-vec"),
  })
  .map(({ m, k, n, batch, dropA, dropB, kind }) => {
    const ba = batch.map((d, i) => (dropA[i] ? 1 : d)).slice(dropA[1] ? 1 : 0);
    const bb = batch.map((d, i) => (dropB[i] ? 1 : d));
    const a = kind === "vec-left" || kind === "vec-vec" ? [k] : [...ba, m, k];
    const b = kind === "vec-right" || kind === "vec-vec" ? [k] : [...bb, k, n];
    return [a, b] as const;
  });

describe("matmul", () => {
  for (const dt of ["float64", "float32"] as DType[]) {
    it(`equals a naive triple loop on strided operands (${dt})`, () => {
      fc.assert(
        fc.property(
          arbMatmulShapes.chain(([sa, sb]) =>
            fc.tuple(arbView(fc.constant(sa)), arbView(fc.constant(sb))),
          ),
          ([va, vb]) => {
            const a = va.view.astype(dt);
            const b = vb.view.astype(dt);
            const got = T.matmul(a, b);
            const { shape, at } = naiveMatmul(a, b);
            expect(got.shape).toEqual(shape);
            expect(got.dtype).toBe(dt);
            const k = a.shape[a.ndim - 1]!;
            // float32: each product and partial sum rounds at 2^-24 relative; the inputs are
            // at most 4 in size, so the error is bounded by k * 16 * 2^-23
            const tol = dt === "float64" ? 1e-12 : (k + 1) * 16 * 2 ** -23;
            for (const idx of allIndices(shape)) {
              expect(Math.abs(got.get(...idx) - at(idx))).toBeLessThanOrEqual(tol);
            }
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it("float32 on random normals stays within k-scaled rounding of the float64 product", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 12 }),
        fc.nat(),
        (m, k, n, seed) => {
          const g = T.createGenerator(seed);
          const a = T.randn([m, k], g);
          const b = T.randn([k, n], g);
          const got = T.matmul(a, b);
          const exact = T.matmul(a.astype("float64"), b.astype("float64"));
          // |fl(sum) - sum| <= k * 2^-24 * sum |a_ip| |b_pj| (+ one final rounding)
          const bound = T.matmul(T.abs(a).astype("float64"), T.abs(b).astype("float64")).mul(
            (k + 1) * 2 ** -24,
          );
          for (const idx of allIndices([m, n])) {
            expect(Math.abs(got.get(...idx) - exact.get(...idx))).toBeLessThanOrEqual(
              bound.get(...idx),
            );
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it("reads transposed views without copying them first and matches the copied result", () => {
    const g = T.createGenerator(3);
    const a = T.randn([5, 4], g, "float64");
    const b = T.randn([6, 4], g, "float64");
    const c = T.randn([5, 6], g, "float64");
    const want = T.matmul(a, b.T.contiguous());
    expect(T.matmul(a, b.T).allClose(want, 1e-14, 1e-14)).toBe(true); // A·Bᵀ path
    expect(T.matmul(a.T.contiguous().T, b.T).allClose(want, 1e-14, 1e-14)).toBe(true);
    const want2 = T.matmul(a.T.contiguous(), c);
    expect(T.matmul(a.T, c).allClose(want2, 1e-14, 1e-14)).toBe(true); // Aᵀ·B path
    expect(T.matmul(a.T, c.T.contiguous().T).allClose(want2, 1e-14, 1e-14)).toBe(true); // both transposed
  });

  it("promotes int32 to float32 and mixes float32 with float64 as float64", () => {
    const a = T.arange(6, undefined, 1, "int32").reshape([2, 3]);
    expect(T.matmul(a, a.T).dtype).toBe("float32");
    expect(T.matmul(a, a.T).toArray()).toEqual([
      [5, 14],
      [14, 50],
    ]);
    expect(T.matmul(a.astype("float64"), a.T.astype("float32")).dtype).toBe("float64");
    expect(T.matmul(T.arange(3), T.arange(3)).shape).toEqual([]);
    expect(T.matmul(T.arange(3), T.arange(3)).item()).toBe(5);
  });

  it("rejects mismatched shapes naming both", () => {
    expect(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5]))).toThrow(
      /matmul: shapes \[2,3\] and \[4,5\] are not aligned: 3 \(last axis of the first\) != 4 \(second-to-last axis of the second\)/,
    );
    expect(() => T.matmul(T.zeros([3]), T.zeros([4]))).toThrow(
      /matmul: shapes \[3\] and \[4\] are not aligned/,
    );
    expect(() => T.matmul(T.zeros([2, 2, 3]), T.zeros([3, 3, 1]))).toThrow(
      /matmul: cannot broadcast batch shapes \[2\] and \[3\] \(operands \[2,2,3\] and \[3,3,1\]\)/,
    );
    expect(() => T.matmul(T.scalar(1), T.zeros([2]))).toThrow(
      /matmul: operands must have at least 1 dimension, got shapes \[\] and \[2\]/,
    );
  });
});
