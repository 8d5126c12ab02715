import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { matmul, matmulTransA, matmulTransB, sharedFloat32 } from "../src/index.ts";
import type { FloatArray } from "../src/index.ts";
import { refMatmul, randomArray, transpose, expectClose } from "./helpers.ts";

const dims = fc.record({
  m: fc.integer({ min: 0, max: 37 }),
  k: fc.integer({ min: 0, max: 41 }),
  n: fc.integer({ min: 0, max: 37 }),
  seed: fc.integer(),
});

describe("dense products", () => {
  it("matmul, matmulTransA and matmulTransB equal the reference (float32 and float64)", () => {
    fc.assert(
      fc.property(dims, fc.boolean(), ({ m, k, n, seed }, f64) => {
        const a = randomArray(m * k, seed, f64);
        const b = randomArray(k * n, seed + 1, f64);
        const ref = refMatmul(a, b, m, k, n);
        expectClose(matmul(a, b, m, k, n), ref, k, f64);
        expectClose(matmulTransA(transpose(a, m, k), b, m, k, n), ref, k, f64);
        expectClose(matmulTransB(a, transpose(b, k, n), m, k, n), ref, k, f64);
      }),
      { numRuns: 150 },
    );
  });

  it("overwrites a provided out buffer and returns it", () => {
    const a = Float32Array.of(1, 2, 3, 4);
    const b = Float32Array.of(5, 6, 7, 8);
    const out = new Float32Array(4).fill(99);
    expect(matmul(a, b, 2, 2, 2, out)).toBe(out);
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
    const o64 = matmul(Float64Array.of(1, 2), Float64Array.of(3, 4), 1, 2, 1);
    expect(o64).toBeInstanceOf(Float64Array);
    expect(o64[0]).toBe(11);
  });

  it("mixes ordinary and shared arrays, and accepts the FloatArray union", () => {
    const a = Float32Array.of(1, 2, 3, 4);
    const b = sharedFloat32(4);
    b.set([5, 6, 7, 8]);
    const out: Float32Array = matmul(a, b, 2, 2, 2, sharedFloat32(4));
    expect(Array.from(out)).toEqual([19, 22, 43, 50]);
    const u: FloatArray = a;
    expect(Array.from(matmul(u, u, 2, 2, 2))).toEqual([7, 10, 15, 22]);
  });

  it("rejects short operands, mixed types and bad dims with named errors", () => {
    const a = new Float32Array(6);
    expect(() => matmul(a, new Float32Array(5), 2, 3, 2)).toThrow(
      /matmul: b has 5 elements but shape \[k=3, n=2\] needs at least 6/,
    );
    expect(() => matmulTransA(new Float32Array(5), a, 2, 3, 2)).toThrow(
      /matmulTransA: a has 5 elements/,
    );
    expect(() => matmulTransB(a, new Float32Array(6), 2, 3, 2, new Float32Array(3))).toThrow(
      /matmulTransB: out has 3 elements/,
    );
    expect(() => matmul(a, new Float64Array(6) as unknown as Float32Array, 2, 3, 2)).toThrow(
      /share one element type/,
    );
    expect(() => matmul(a, a, -1, 3, 2)).toThrow(/matmul: m must be a non-negative integer/);
    expect(() => matmul(a, a, 2, 1.5, 2)).toThrow(/k must be a non-negative integer/);
    expect(() => matmul([1] as unknown as Float32Array, a, 1, 1, 1)).toThrow(
      /a must be a Float32Array or Float64Array, got Array/,
    );
  });
});
