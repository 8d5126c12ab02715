// The WebAssembly ReLU kernels against the definition, element by element, on random lengths
// (tails of 1-3 past a whole vector) and on the special values: ±0, ±Infinity, NaN, subnormals.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  channelSums,
  sharedFloat32,
  wasmRelu,
  wasmReluBackward,
  wasmReluBackwardChannelSums,
} from "../src/index.ts";
import { bits, wasmTestPool } from "./helpers.ts";
import { RELU_BLOCK, reluKernelBytes } from "../src/wasm-relu.ts";
import { KIND_WASM_RELU_BACKWARD_COLUMNS } from "../src/jobs.ts";

const specials = [0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45, 3.5, -2.25];
const value = fc.oneof(fc.constantFrom(...specials), fc.float({ noNaN: false }));

/** Same value, +0 and -0 told apart, every NaN alike. */
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe("wasm ReLU", () => {
  // minParallelFlops 0: every call that can be split is.
  const wasmPool = wasmTestPool();

  it("gives the definition's values past RELU_BLOCK and on a pool, with shared or ordinary arrays", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 * RELU_BLOCK + 7 }),
        fc.integer(),
        fc.boolean(),
        fc.boolean(),
        (n, seed, pooled, shared) => {
          const arr = (len: number) => (shared ? sharedFloat32(len) : new Float32Array(len));
          const x = arr(n);
          const g = arr(n);
          let r = seed | 0;
          const next = () => ((r = (Math.imul(r, 1103515245) + 12345) | 0) >> 8) / (1 << 22);
          for (let i = 0; i < n; i++) {
            x[i] = i % 97 === 0 ? specials[i % specials.length]! : next();
            g[i] = next();
          }
          const p = pooled ? wasmPool() : undefined;
          const y = arr(n);
          wasmRelu(x, y, n, { pool: p });
          const gx = arr(n);
          wasmReluBackward(g, y, gx, n, { pool: p });
          for (let i = 0; i < n; i++) {
            const v = x[i]!;
            if (!same(y[i]!, Number.isNaN(v) ? NaN : v > 0 ? v : 0)) expect([i, y[i]]).toBe(v);
            if (!same(gx[i]!, y[i]! > 0 ? g[i]! + 0 : 0)) expect([i, gx[i]]).toBe(g[i]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("forward is max(x, +0) and backward passes g + 0 where y > 0, else +0", () => {
    fc.assert(
      fc.property(
        fc.array(value, { maxLength: 41 }),
        fc.array(value, { maxLength: 41 }),
        (xs, gs) => {
          const n = Math.min(xs.length, gs.length);
          const x = Float32Array.from(xs.slice(0, n));
          const y = new Float32Array(n + 2).fill(9); // entries past n stay untouched
          wasmRelu(x, y, n);
          for (let i = 0; i < n; i++) {
            const v = x[i]!;
            expect(same(y[i]!, Number.isNaN(v) ? NaN : v > 0 ? v : 0)).toBe(true);
          }
          expect(Array.from(y.subarray(n))).toEqual([9, 9]);
          const g = Float32Array.from(gs.slice(0, n));
          const gx = new Float32Array(n);
          wasmReluBackward(g, y, gx, n);
          for (let i = 0; i < n; i++) expect(same(gx[i]!, y[i]! > 0 ? g[i]! + 0 : 0)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("wasmReluBackwardChannelSums: the bits of wasmReluBackward then channelSums (tails, special values, planes past the scratch region, pools)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(784, 196, 70_000)),
        fc.array(value, { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        (n, c, p, vals, pooled) => {
          const len = n * c * p;
          const g = sharedFloat32(len);
          const y = sharedFloat32(len);
          for (let i = 0; i < len; i++) {
            g[i] = vals[i % vals.length]!;
            y[i] = vals[(i * 7 + 3) % vals.length]!;
          }
          const pool = pooled ? wasmPool() : undefined;
          const gx = sharedFloat32(len);
          const acc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
          wasmReluBackwardChannelSums(g, y, gx, n, c, p, acc, { pool });
          const want = sharedFloat32(len);
          wasmReluBackward(g, y, want, len);
          const wantAcc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
          channelSums(want, n, c, p, wantAcc);
          // Buffer.equals: toEqual on megabytes of bytes takes minutes
          expect(Buffer.from(bits(gx)).equals(Buffer.from(bits(want)))).toBe(true);
          expect(bits(acc)).toEqual(bits(wantAcc));
        },
      ),
      { numRuns: 60 },
    );
    // a fault the check sees: the sums of the ungated gradient
    const g = Float32Array.from([1, 2, 3, 4, 5]);
    const y = Float32Array.from([1, -1, 1, -1, 1]);
    const acc = new Float64Array(1);
    wasmReluBackwardChannelSums(g, y, new Float32Array(5), 1, 1, 5, acc);
    expect(acc[0]).toBe(9);
    expect(() =>
      wasmReluBackwardChannelSums(g, y, new Float32Array(4), 1, 1, 5, new Float64Array(1)),
    ).toThrow("wasmReluBackwardChannelSums: gx has 4 elements, need 5");
    expect(() => wasmReluBackwardChannelSums(g, y, g, 1, 2, 2, new Float64Array(1))).toThrow(
      "wasmReluBackwardChannelSums: acc must be a Float64Array of at least c = 2 sums",
    );
  });

  it("wasmReluBackwardChannelSums with p = 1 (a Linear layer's [rows, features]) sums column by column to the same bits (features past a column block, rows past a trip, pools, ordinary arrays)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 150, max: 260 })),
        fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1020, max: 1100 })),
        fc.array(value, { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        fc.boolean(),
        (n, c, vals, pooled, shared) => {
          const len = n * c;
          const arr = () => (shared ? sharedFloat32(len) : new Float32Array(len));
          const g = arr();
          const y = arr();
          for (let i = 0; i < len; i++) {
            g[i] = vals[i % vals.length]!;
            y[i] = vals[(i * 7 + 3) % vals.length]!;
          }
          const pool = pooled ? wasmPool() : undefined;
          const gx = arr();
          const acc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
          wasmReluBackwardChannelSums(g, y, gx, n, c, 1, acc, { pool });
          const want = new Float32Array(len);
          wasmReluBackward(g, y, want, len);
          const wantAcc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
          channelSums(want, n, c, 1, wantAcc);
          expect(Buffer.from(bits(gx)).equals(Buffer.from(bits(want)))).toBe(true);
          // The same bits, a NaN sum told only as NaN: neither JavaScript nor WebAssembly fixes
          // a NaN's bits, and an Infinity - Infinity column came out -NaN here, +NaN there.
          for (let j = 0; j < c; j++)
            if (!same(acc[j]!, wantAcc[j]!)) expect([j, acc[j]]).toEqual([j, wantAcc[j]]);
        },
      ),
      { numRuns: 40 },
    );
    expect(wasmPool().jobsByKind.get(KIND_WASM_RELU_BACKWARD_COLUMNS)).toBeGreaterThan(0);
    // The case that found the NaN sign (CI, 2026-12-03): 9 rows of 1025 features, +-Infinity,
    // NaN and subnormals in both arrays; every column the two-pass value, NaN as NaN.
    {
      const vals = [1e-45, 0, 0, Infinity, 1e-45, 0, -Infinity, NaN, 0, Infinity, 0, 0];
      const [n, c] = [9, 1025];
      const g = Float32Array.from({ length: n * c }, (_, i) => vals[i % vals.length]!);
      const y = Float32Array.from({ length: n * c }, (_, i) => vals[(i * 7 + 3) % vals.length]!);
      const acc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
      wasmReluBackwardChannelSums(g, y, new Float32Array(n * c), n, c, 1, acc);
      const want = new Float32Array(n * c);
      wasmReluBackward(g, y, want, n * c);
      const wantAcc = Float64Array.from({ length: c }, (_, j) => j - 0.5);
      channelSums(want, n, c, 1, wantAcc);
      expect(Array.from(acc).every((v, j) => same(v, wantAcc[j]!))).toBe(true);
      expect(Array.from(acc).some((v) => Number.isNaN(v))).toBe(true);
    }
    // a fault the check sees: a column summed bottom-up (1e20 - 1e20 + 1 = 1, but 1 - 1e20 +
    // 1e20 = 0 in float64)
    const g = Float32Array.from([1e20, -1e20, 1]);
    const y = Float32Array.from([1, 1, 1]);
    const acc = new Float64Array(1);
    wasmReluBackwardChannelSums(g, y, new Float32Array(3), 3, 1, 1, acc);
    const bottomUp = new Float64Array(1);
    channelSums(Float32Array.from([1, -1e20, 1e20]), 3, 1, 1, bottomUp);
    expect([acc[0], bottomUp[0]]).toEqual([1, 0]);
  });

  it("validates its module and names short arrays", () => {
    expect(WebAssembly.validate(reluKernelBytes())).toBe(true);
    expect(() => wasmRelu(new Float32Array(3), new Float32Array(2), 3)).toThrow(
      "wasmRelu: y has 2 elements, need 3",
    );
    expect(() =>
      wasmReluBackward(new Float32Array(3), new Float32Array(3), new Float32Array(3), -1),
    ).toThrow("wasmReluBackward: n must be a non-negative integer, got -1");
  });
});
