// The fused GEMM micro-kernel (TESSERA_WASM_FMA=1): relaxed SIMD switched on in Node 20, the
// kernel's rounding checked bitwise against a float32 emulation of each variant, the switch's
// parsing and errors, and the fused products bitwise the same on 1, 2 and 3 threads.
//
// This file sets TESSERA_WASM_FMA=1 before any kernel runs (the default is read once per
// thread, and pool workers inherit the environment), so its pools run the fused kernel.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { conv2dForward, createPool, matmul, matmulTransA, matmulTransB } from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import { defaultWasmFma, wasmFmaFromEnv } from "../src/kernels.ts";
import { enableRelaxedSimd, hasRelaxedSimd } from "../src/wasm-builder.ts";
import {
  SCRATCH_BYTES,
  WASM_KC,
  WasmThread,
  createKernelMemory,
  wasmGemmRange,
} from "../src/wasm-gemm.ts";
import { bits, expectWithinRoundoff, randomArray, refMatmulWithAbs } from "./helpers.ts";

const savedEnv = process.env.TESSERA_WASM_FMA;
process.env.TESSERA_WASM_FMA = "1";

/** Float32 fma(a, b, c) = round32(a·b + c) with one rounding (a, b, c float32). */
function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: two 24-bit significands fit in float64's 53
  const hi = p + c;
  // TwoSum: lo is hi's rounding error, so a·b + c = hi + lo exactly.
  const bb = hi - p;
  const lo = p - (hi - bb) + (c - bb);
  const r = Math.fround(hi);
  if (lo === 0 || r === hi) return r;
  // Rounding hi to float32 can differ from rounding hi + lo only when hi is exactly halfway
  // between two float32 values: then lo decides.
  const d = hi - r;
  const other = r + 2 * d;
  if (Math.fround(other) !== other) return r;
  return lo > 0 === d > 0 ? other : r;
}

/**
 * C = A·B [m,k]x[k,n] as the wasm kernel sums it: per element, a float32 chain over p within
 * each k-block of WASM_KC, the block sums added into C in float32; `fused` says whether each
 * step is one fma or a rounded product then a rounded add.
 */
function emulate(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  fused: boolean,
): Float32Array {
  const c = new Float32Array(m * n);
  const f = Math.fround;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let pc = 0; pc < k; pc += WASM_KC) {
        let s = 0;
        for (let p = pc; p < Math.min(k, pc + WASM_KC); p++) {
          const x = a[i * k + p]!;
          const y = b[p * n + j]!;
          s = fused ? fmaF32(x, y, s) : f(s + f(x * y));
        }
        acc = pc === 0 ? s : f(acc + s);
      }
      c[i * n + j] = acc;
    }
  return c;
}

let pool2: MatrixPool;
let pool3: MatrixPool;
beforeAll(async () => {
  pool2 = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, kernels: "wasm" });
  pool3 = createPool({ threads: 3, minParallelFlops: 0, spin: 2000, kernels: "wasm" });
  await Promise.all([pool2.ready(), pool3.ready()]);
});
afterAll(async () => {
  await Promise.all([pool2.close(), pool3.close()]);
  if (savedEnv === undefined) delete process.env.TESSERA_WASM_FMA;
  else process.env.TESSERA_WASM_FMA = savedEnv;
});

describe("relaxed SIMD's fused multiply-add on the wasm GEMM kernel", () => {
  it("the float32 fma emulation rounds once (checked on cases where a rounded product differs)", () => {
    const a = 1 + 2 ** -23;
    const b = 1 - 2 ** -23;
    expect(fmaF32(a, b, -1)).toBe(-(2 ** -46));
    expect(Math.fround(Math.fround(a * b) - 1)).toBe(0);
    // A tie of hi decided by lo: 1 + 2^-24 (a float32 midpoint) plus a tiny positive part.
    expect(fmaF32(1 + 2 ** -23, 1, 2 ** -24 + 2 ** -60)).toBe(1 + 2 ** -22);
  });

  it("enableRelaxedSimd switches it on (process-wide) and reports whether it fuses", () => {
    const fused = enableRelaxedSimd("test");
    expect(hasRelaxedSimd()).toBe(true);
    expect(typeof fused).toBe("boolean");
  });

  it("each variant rounds exactly as emulated, bitwise (ragged shapes, k past the k-block)", () => {
    const fused = enableRelaxedSimd("test");
    const threads = [false, true].map(
      (fma) => new WasmThread(createKernelMemory(SCRATCH_BYTES), 0, fma),
    );
    let differed = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 11 }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 21 }),
        fc.integer(),
        (m, k, n, seed) => {
          const a = randomArray(m * k, seed) as Float32Array;
          const b = randomArray(k * n, seed + 1) as Float32Array;
          const got = threads.map((t) => {
            const c = new Float32Array(m * n);
            wasmGemmRange(t, 0, a, b, c, m, k, n, 0, m, 0, n);
            return c;
          });
          expect(bits(got[0]!)).toEqual(bits(emulate(a, b, m, k, n, false)));
          expect(bits(got[1]!)).toEqual(bits(emulate(a, b, m, k, n, fused)));
          expectWithinRoundoff(got[1]!, refMatmulWithAbs(a, b, m, k, n), k, "fused");
          if (bits(got[0]!).some((x, i) => x !== bits(got[1]!)[i])) differed++;
        },
      ),
      { numRuns: 40 },
    );
    // The emulations tell the variants apart (so the bitwise checks above can fail): where the
    // engine fuses, most products differ in some element.
    if (fused) expect(differed).toBeGreaterThan(20);
  });

  it("TESSERA_WASM_FMA: 1 or 0 (or unset), with a named error; this file's default is on", () => {
    expect(wasmFmaFromEnv({})).toBe(false);
    expect(wasmFmaFromEnv({ TESSERA_WASM_FMA: "" })).toBe(false);
    expect(wasmFmaFromEnv({ TESSERA_WASM_FMA: "0" })).toBe(false);
    expect(wasmFmaFromEnv({ TESSERA_WASM_FMA: "1" })).toBe(true);
    expect(() => wasmFmaFromEnv({ TESSERA_WASM_FMA: "yes" })).toThrow(
      /TESSERA_WASM_FMA must be "1" or "0", got "yes"/,
    );
    expect(defaultWasmFma()).toBe(true);
  });

  it("with it on, the products are the fused kernel's and bitwise the same on 1, 2 and 3 threads", () => {
    const fusedThread = new WasmThread(createKernelMemory(SCRATCH_BYTES), 0, true);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 90 }),
        fc.integer(),
        (m, k, n, seed) => {
          const a = randomArray(m * k, seed) as Float32Array;
          const b = randomArray(k * n, seed + 1) as Float32Array;
          const serial = matmul(a, b, m, k, n, undefined, { kernels: "wasm" });
          const direct = new Float32Array(m * n);
          wasmGemmRange(fusedThread, 0, a, b, direct, m, k, n, 0, m, 0, n);
          expect(bits(serial)).toEqual(bits(direct));
          for (const pool of [pool2, pool3]) {
            expect(bits(matmul(a, b, m, k, n, undefined, { pool }))).toEqual(bits(serial));
            expect(bits(matmulTransA(a, b, m, k, n, undefined, { pool }))).toEqual(
              bits(matmulTransA(a, b, m, k, n, undefined, { kernels: "wasm" })),
            );
            expect(bits(matmulTransB(a, b, m, k, n, undefined, { pool }))).toEqual(
              bits(matmulTransB(a, b, m, k, n, undefined, { kernels: "wasm" })),
            );
          }
        },
      ),
      { numRuns: 15 },
    );
    // A convolution product (gathered panels on the same kernel) on 1, 2 and 3 threads.
    const geometry = { n: 5, c: 3, h: 13, w: 11, kh: 5, kw: 5, padH: 1, padW: 2 };
    const x = randomArray(5 * 3 * 13 * 11, 8) as Float32Array;
    const w = randomArray(7 * 3 * 25, 9) as Float32Array;
    const y1 = conv2dForward(x, w, 7, geometry, undefined, { kernels: "wasm" });
    for (const pool of [pool2, pool3])
      expect(bits(conv2dForward(x, w, 7, geometry, undefined, { pool }))).toEqual(bits(y1));
    expect(pool2.claimed + pool3.claimed).toBeGreaterThan(0);
  });

  it("an engine without relaxed SIMD gets a clear error naming the switch", () => {
    const spy = vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    try {
      expect(hasRelaxedSimd()).toBe(false);
      expect(() => new WasmThread(createKernelMemory(SCRATCH_BYTES), 0, true)).toThrow(
        /matrix wasm GEMM kernel \(TESSERA_WASM_FMA\): this engine does not support WebAssembly relaxed SIMD \(f32x4.relaxed_madd\), even with --experimental-wasm-relaxed-simd; unset TESSERA_WASM_FMA/,
      );
    } finally {
      spy.mockRestore();
    }
  });
});
