// The pooled sparse products split by batch rows: batch-major operands (X [n, inner], out
// [n, outer], the Linear layer's forward and input gradient) with at least 8 rows per thread are
// cut into chunks of batch rows, each thread staging only its rows of X into its asm.js heap.
// Checked bitwise against the serial run on 2 and 3 threads (float32 and float64, ordinary and
// shared buffers, ragged blocks and batch sizes that are not multiples of the tile width), and
// within float32 roundoff of a float64 reference. The asm.js path throughout (pools and serial
// calls name it), whatever TESSERA_KERNELS says.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrMatrix, CsrMatrix, sharedFloat32, sharedFloat64 } from "../src/index.ts";
import { KIND_SPMM, runRange, spmmJob } from "../src/jobs.ts";
import { spmmChunks } from "../src/parallel.ts";
import { spmmStagings, type SpmmArgs } from "../src/spmm-kernel.ts";
import {
  expectWithinRoundoff,
  maskedDense,
  randomArray,
  refMatmulWithAbs,
  transpose,
  bits,
  asmTestPools,
} from "./helpers.ts";

const pools = asmTestPools();

const shape = fc.record({
  rows: fc.integer({ min: 1, max: 60 }),
  cols: fc.integer({ min: 1, max: 60 }),
  R: fc.integer({ min: 1, max: 9 }),
  C: fc.integer({ min: 1, max: 9 }),
  // Past 8 rows per thread (the split's threshold) and not only multiples of 4.
  n: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.constantFrom(16, 17, 23, 24, 25, 67)),
  seed: fc.integer(),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  f64: fc.boolean(),
  shared: fc.boolean(),
});

/** A copy of `a` on shared memory, or on ordinary memory. */
function place(a: Float32Array | Float64Array, shared: boolean): Float32Array | Float64Array {
  const out =
    a instanceof Float64Array
      ? shared
        ? sharedFloat64(a.length)
        : new Float64Array(a.length)
      : shared
        ? sharedFloat32(a.length)
        : new Float32Array(a.length);
  out.set(a);
  return out;
}

describe("pooled batch-major sparse products split by batch rows", () => {
  it("equal the serial run bit for bit on 2 and 3 threads, and the float64 reference within roundoff", () => {
    fc.assert(
      fc.property(shape, (c) => {
        const { dense, mask } = maskedDense(c);
        const d = c.f64 ? Float64Array.from(dense) : dense;
        const w = BsrMatrix.fromDense(d, c.rows, c.cols, [c.R, c.C], { mask });
        const mats: (BsrMatrix<Float32Array | Float64Array> | CsrMatrix<Float32Array>)[] = [w];
        if (!c.f64) mats.push(CsrMatrix.fromDense(dense, c.rows, c.cols));
        const { rows, cols, n } = c;
        const xb = place(randomArray(n * cols, c.seed + 1, c.f64), c.shared); // [n, cols]
        const gb = place(randomArray(n * rows, c.seed + 2, c.f64), c.shared); // [n, rows]
        const fwd = refMatmulWithAbs(xb, transpose(dense, rows, cols), n, cols, rows);
        const dx = refMatmulWithAbs(gb, dense, n, rows, cols);
        for (const m of mats) {
          const serialFwd = m.rmatmulTranspose(xb as never, n, { kernels: "asm" }) as
            Float32Array | Float64Array;
          const serialDx = m.rmatmul(gb as never, n, { kernels: "asm" }) as
            Float32Array | Float64Array;
          expectWithinRoundoff(serialFwd, fwd, cols, "serial rmatmulTranspose");
          expectWithinRoundoff(serialDx, dx, rows, "serial rmatmul");
          for (const pool of [pools.pool2(), pools.pool3()]) {
            // An output longer than the product: the entries past it must stay as they were.
            const out1 = place(new (c.f64 ? Float64Array : Float32Array)(n * rows + 3), c.shared);
            const out2 = place(new (c.f64 ? Float64Array : Float32Array)(n * cols + 3), c.shared);
            out1.fill(7);
            out2.fill(7);
            m.rmatmulTranspose(xb as never, n, { pool, out: out1 as never });
            m.rmatmul(gb as never, n, { pool, out: out2 as never });
            expect(bits(out1.subarray(0, n * rows))).toEqual(bits(serialFwd));
            expect(bits(out2.subarray(0, n * cols))).toEqual(bits(serialDx));
            expect(Array.from(out1.subarray(n * rows))).toEqual([7, 7, 7]);
            expect(Array.from(out2.subarray(n * cols))).toEqual([7, 7, 7]);
          }
        }
      }),
      { numRuns: 40 },
    );
    expect(pools.pool2().jobsByKind.get(KIND_SPMM)).toBeGreaterThan(0);
    expect(pools.pool3().jobsByKind.get(KIND_SPMM)).toBeGreaterThan(0);
  });

  it("chunks: batch rows in multiples of 4 covering [0, n) once for batch-major operands, else block lines with every column", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.constantFrom(pools.pool2(), pools.pool3()),
        (n, outerBlocks, batchMajor, pool) => {
          const ptr = new Int32Array(outerBlocks + 1);
          for (let o = 0; o < outerBlocks; o++) ptr[o + 1] = ptr[o]! + (o % 3);
          const args = {
            ptr,
            n,
            sxi: batchMajor ? 1 : n,
            soo: batchMajor ? 1 : n,
          } as unknown as SpmmArgs;
          const chunks = spmmChunks(args, outerBlocks, pool);
          if (batchMajor && n >= 8 * pool.threads) {
            let next = 0;
            for (const [o0, o1, j0, j1] of chunks) {
              expect([o0, o1]).toEqual([0, outerBlocks]);
              expect(j0).toBe(next);
              expect(j1).toBeGreaterThan(j0);
              if (j1 < n) expect(j1 % 4).toBe(0);
              next = j1;
            }
            expect(next).toBe(n);
          } else {
            let next = 0;
            for (const [o0, o1, j0, j1] of chunks) {
              expect([o0, j0, j1]).toEqual([next, 0, n]);
              next = o1;
            }
            expect(next).toBe(outerBlocks);
          }
        },
      ),
    );
  });

  it("workers alone compute a split product (the caller takes no chunk), and a planted fault is seen", () => {
    const [rows, cols, n] = [37, 45, 50];
    const c = { rows, cols, R: 4, C: 3, n, seed: 11, density: 0.4 };
    const { dense, mask } = maskedDense(c);
    const w = BsrMatrix.fromDense(dense, rows, cols, [4, 3], { mask });
    const x = randomArray(n * cols, 12) as Float32Array;
    const want = w.rmatmulTranspose(x, n, { kernels: "asm" });
    const ids = new Int32Array(w.nnzBlocks).map((_, i) => i);
    const job = (out: Float32Array, sxj: number): SpmmArgs => ({
      ptr: w.indptr,
      idx: w.indices,
      ids,
      data: w.data,
      bsz: 12,
      ob: 4,
      ib: 3,
      eos: 3,
      eis: 1,
      outerLimit: rows,
      innerLimit: cols,
      x,
      sxi: 1,
      sxj,
      out,
      soo: 1,
      soj: rows,
      n,
    });
    for (const pool of [pools.pool2(), pools.pool3()]) {
      const out = new Float32Array(n * rows);
      const args = job(out, cols);
      const chunks = spmmChunks(args, w.blockRows, pool);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks[0]![3]).toBeLessThan(n); // split by batch rows
      pool.run(KIND_SPMM, spmmJob(args) as unknown as Record<string, unknown>, chunks, false);
      expect(bits(out)).toEqual(bits(want));
      // Planted fault: X's row stride one short, so each batch row reads a shifted row of X.
      const bad = new Float32Array(n * rows);
      const badJob = spmmJob(job(bad, cols - 1));
      pool.run(KIND_SPMM, badJob as unknown as Record<string, unknown>, chunks, false);
      expect(bits(bad)).not.toEqual(bits(want));
    }
  });

  it("a job's chunks stage its blocks once per thread, with or without an epilogue", () => {
    // Each chunk of a job gets the same call object, so the asm.js kernel stages the blocks into
    // this thread's heap once per job; the epilogue's per-chunk call object once defeated that
    // cache (every chunk re-staged, 2T fc1 0.71 ms instead of 0.64 ms), which this test sees.
    const [rows, cols, n] = [21, 30, 40];
    const { dense, mask } = maskedDense({ rows, cols, R: 4, C: 4, n, seed: 5, density: 0.5 });
    const w = BsrMatrix.fromDense(dense, rows, cols, [4, 4], { mask });
    const x = randomArray(n * cols, 6) as Float32Array;
    const bias = randomArray(rows, 7) as Float32Array;
    const ids = new Int32Array(w.nnzBlocks).map((_, i) => i);
    for (const epilogue of [false, true]) {
      const want = w.rmatmulTranspose(x, n, {
        kernels: "asm",
        ...(epilogue ? { bias, relu: true } : {}),
      });
      const out = new Float32Array(n * rows);
      const job = spmmJob({
        ptr: w.indptr,
        idx: w.indices,
        ids,
        data: w.data,
        bsz: 16,
        ob: 4,
        ib: 4,
        eos: 4,
        eis: 1,
        outerLimit: rows,
        innerLimit: cols,
        x,
        sxi: 1,
        sxj: cols,
        out,
        soo: 1,
        soj: rows,
        n,
        ...(epilogue ? { bias, relu: true } : {}),
      });
      const before = spmmStagings();
      for (const [j0, j1] of [
        [0, 8],
        [8, 24],
        [24, 36],
        [36, 40],
      ] as const)
        runRange(KIND_SPMM, job as unknown as Record<string, unknown>, [0, w.blockRows, j0, j1]);
      expect(spmmStagings() - before).toBe(1);
      expect(bits(out)).toEqual(bits(want));
    }
  });
});
