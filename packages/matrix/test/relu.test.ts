// The WebAssembly ReLU kernels against the definition, element by element, on random lengths
// (tails of 1-3 past a whole vector) and on the special values: ±0, ±Infinity, NaN, subnormals.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { sharedFloat32, wasmRelu, wasmReluBackward } from "../src/index.ts";
import { wasmTestPool } from "./helpers.ts";
import { RELU_BLOCK, reluKernelBytes } from "../src/wasm-relu.ts";

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
