// The asm.js sparse kernel's tiles come from one generator (spmm-asm.ts tileText, widths in
// SPMM_TILE_WIDTHS). Whatever the widths, each output element is the same float64 sum in
// stored-block order, so every tile set must give the default kernel's bits: checked for all
// four products, with and without the epilogue, float32 and float64, ragged blocks and batches
// that leave every kind of remainder (full wide tiles, narrower tiles, single columns).
import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrMatrix } from "../src/index.ts";
import { SPMM_TILE_WIDTHS, compileSpmmModules } from "../src/spmm-asm.ts";
import { useSpmmModules } from "../src/spmm-kernel.ts";
import {
  SPARSE_PRODUCTS,
  bits,
  maskedDense,
  randomArray,
  refMatmul,
  sparseProductCase,
} from "./helpers.ts";

const TILE_SETS = [[4], [1], [3], [6, 2], [16, 8, 4, 2]].map((w) => ({
  widths: w,
  modules: compileSpmmModules(w),
}));

afterEach(() => useSpmmModules(undefined));

const caseArb = fc.record({
  rows: fc.integer({ min: 1, max: 30 }),
  cols: fc.integer({ min: 1, max: 30 }),
  R: fc.integer({ min: 2, max: 6 }),
  C: fc.integer({ min: 1, max: 6 }),
  n: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(7, 8, 12, 15, 16, 31, 33)),
  seed: fc.integer(),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  f64: fc.boolean(),
  product: fc.constantFrom(...SPARSE_PRODUCTS),
  withBias: fc.boolean(),
  relu: fc.boolean(),
  tiles: fc.integer({ min: 0, max: TILE_SETS.length - 1 }),
});

describe("asm.js sparse kernel tiles", () => {
  it(`default widths [${SPMM_TILE_WIDTHS.join(", ")}]: other tile widths give the same bits`, () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { bias, run: product } = sparseProductCase(c);
        const run = () => product({ kernels: "asm", bias, relu: c.relu });
        useSpmmModules(undefined);
        const expected = run();
        useSpmmModules(TILE_SETS[c.tiles]!.modules);
        expect(bits(run())).toEqual(bits(expected));
      }),
      { numRuns: 300 },
    );
  });

  it("every tile set is within float64 roundoff of a plain triple loop", () => {
    // The bits above are compared with the default kernel; this ties them to a reference too.
    const [rows, cols, n] = [13, 22, 37];
    const { dense, mask } = maskedDense({ rows, cols, R: 3, C: 4, n, seed: 5, density: 0.6 });
    const a = BsrMatrix.fromDense(Float64Array.from(dense), rows, cols, [3, 4], { mask });
    const x = randomArray(cols * n, 6, true) as Float64Array;
    const ref = refMatmul(a.toDense(), x, rows, cols, n);
    for (const t of TILE_SETS) {
      useSpmmModules(t.modules);
      const y = a.matmul(x, n, { kernels: "asm" });
      for (let i = 0; i < ref.length; i++) expect(Math.abs(y[i]! - ref[i]!)).toBeLessThan(1e-12);
    }
  });

  it("rejects widths that are not distinct positive integers, widest first", () => {
    expect(() => compileSpmmModules([4, 8])).toThrow(
      /compileSpmmModules: widths must be distinct positive integers, widest first; got \[4, 8\]/,
    );
    expect(() => compileSpmmModules([])).toThrow(/got \[\]/);
    expect(() => compileSpmmModules([4, 0])).toThrow(/got \[4, 0\]/);
    expect(() => compileSpmmModules([2.5])).toThrow(/got \[2.5\]/);
  });
});
