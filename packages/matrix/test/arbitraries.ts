// fast-check generators shared by the dense, BSR, CSR and pool tests.
import fc from "fast-check";
import type { SparseCase } from "./helpers.ts";

/** Shapes with 0- and 1-size dims, ragged edges, block shapes 1..16, densities 0, 1 and random. */
export const sparseCase: fc.Arbitrary<SparseCase> = fc.record({
  rows: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 45 })),
  cols: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 45 })),
  R: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 16 })),
  C: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 16 })),
  n: fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 13 })),
  seed: fc.integer(),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
});
