// The WebAssembly path: the module builder, the generated GEMM kernel for several tiles, the
// dense products on it (serial and pooled), the sparse products (BSR / CSR, all four layouts,
// and the sampled product) against a float64 reference, and bitwise equality whatever the
// thread count.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import {
  BsrMatrix,
  CsrMatrix,
  createPool,
  hasWasmSimd,
  kernelsFromEnv,
  matmul,
  matmulTransA,
  matmulTransB,
  sharedFloat32,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import {
  I32,
  ModuleBuilder,
  compileModule,
  enableRelaxedSimd,
  sleb,
  uleb,
} from "../src/wasm-builder.ts";
import { MAX_PAGES, createKernelMemory, gemmKernelBytes } from "../src/wasm-gemm.ts";
import type { GemmTile } from "../src/wasm-gemm.ts";
import {
  KIND_WASM_GEMM,
  KIND_WASM_GEMM_PACKED,
  KIND_WASM_PACK,
  KIND_WASM_SAMPLED,
  KIND_WASM_SPMM,
} from "../src/jobs.ts";
import { sparseCase } from "./arbitraries.ts";
import {
  expectWithinRoundoff,
  maskedDense,
  randomArray,
  refMatmulWithAbs,
  repackingWasmPool,
  transpose,
  bits,
} from "./helpers.ts";

/** LEB128 decoders written from the spec's definition, to check the encoders against. */
function decodeU(bytes: number[]): number {
  let v = 0;
  bytes.forEach((b, i) => (v += (b & 0x7f) * 2 ** (7 * i)));
  return v;
}
function decodeS(bytes: number[]): number {
  const u = decodeU(bytes);
  const bits = 7 * bytes.length;
  return (bytes.at(-1)! & 0x40) !== 0 ? u - 2 ** bits : u;
}

describe("wasm module builder", () => {
  it("LEB128 encodes every 32-bit value minimally and decodes back", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        (u, s) => {
          const eu = uleb(u);
          expect(decodeU(eu)).toBe(u);
          expect(eu.slice(0, -1).every((b) => b >= 0x80) && eu.at(-1)! < 0x80).toBe(true);
          expect(eu.length).toBe(Math.max(1, Math.ceil(Math.log2(u + 1) / 7)));
          const es = sleb(s);
          expect(decodeS(es)).toBe(s);
          expect(es.length).toBeLessThanOrEqual(5);
        },
      ),
      { numRuns: 500 },
    );
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]); // the spec's example
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(() => uleb(-1)).toThrow(/uleb: -1 is not an unsigned 32-bit integer/);
  });

  it("the engine has WebAssembly SIMD (Node 20+), and builds a scalar module that runs", () => {
    expect(hasWasmSimd()).toBe(true);
    const bytes = new ModuleBuilder()
      .func("sum", [I32, I32], [I32], (c) => {
        const [a, b] = c.paramTuple(2);
        c.get(a).get(b).i32Add();
      })
      .build();
    const inst = new WebAssembly.Instance(compileModule("test", bytes));
    expect((inst.exports.sum as (a: number, b: number) => number)(40, 2)).toBe(42);
    // A kernel that destructures the wrong number of parameters is caught when it is generated.
    expect(() =>
      new ModuleBuilder().func("f", [I32, I32], [], (c) => void c.paramTuple(3)).build(),
    ).toThrow("Code.paramTuple: the function has 2 parameters, not 3");
  });

  it("i32x4Shuffle picks the named lanes of its two operands (every lane, both sides)", () => {
    fc.assert(
      fc.property(fc.tuple(fc.nat(7), fc.nat(7), fc.nat(7), fc.nat(7)), (lanes) => {
        const bytes = new ModuleBuilder()
          .importMemory({ module: "env", name: "memory", initial: 1, maximum: 1, shared: true })
          .func("shuffle", [], [], (c) => {
            c.i32Const(32).i32Const(0).v128Load().i32Const(0).v128Load(16);
            c.i32x4Shuffle(lanes).v128Store();
          })
          .build();
        const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
        const I = new Int32Array(memory.buffer);
        I.set([10, 11, 12, 13, 14, 15, 16, 17]);
        const inst = new WebAssembly.Instance(compileModule("test", bytes), { env: { memory } });
        (inst.exports.shuffle as () => void)();
        expect(Array.from(I.subarray(8, 12))).toEqual(lanes.map((l) => 10 + l));
      }),
      { numRuns: 40 },
    );
    expect(() =>
      new ModuleBuilder().func("f", [], [], (c) => void c.i32x4Shuffle([0, 1, 2, 8])).build(),
    ).toThrow("Code.i32x4Shuffle: lanes must be integers 0-7, got [0, 1, 2, 8]");
  });

  it("an invalid generated module fails with the engine's message, naming the kernel", () => {
    // A function declared to return an i32 whose body leaves nothing on the stack.
    const bad = new ModuleBuilder().func("f", [], [I32], () => undefined).build();
    expect(() => compileModule("matrix test kernel", bad)).toThrow(
      /matrix test kernel: the generated module is invalid: /,
    );
  });

  it("an engine without SIMD gets a clear error pointing at the asm.js kernels", () => {
    const spy = vi.spyOn(WebAssembly, "validate").mockReturnValue(false);
    try {
      expect(hasWasmSimd()).toBe(false);
      expect(() => compileModule("matrix wasm GEMM kernel", gemmKernelBytes())).toThrow(
        /matrix wasm GEMM kernel: this engine does not support WebAssembly SIMD \(v128\); use the asm.js kernels \(TESSERA_KERNELS=asm\)/,
      );
    } finally {
      spy.mockRestore();
    }
  });
});

describe("the generated GEMM block kernel", () => {
  /** Runs block() for `tile` on random panels and compares with the float64 product. */
  function checkTile(tile: GemmTile, pm: number, pn: number, kc: number, seed: number): void {
    const m = pm * tile.mr;
    const n = pn * tile.nr;
    const a = randomArray(m * kc, seed) as Float32Array; // logical [m, kc]
    const b = randomArray(kc * n, seed + 1) as Float32Array; // logical [kc, n]
    const memory = createKernelMemory(4 * (m * kc + kc * n + m * n) + 64);
    const inst = new WebAssembly.Instance(compileModule("tile test", gemmKernelBytes(tile)), {
      env: { memory },
    });
    const H = new Float32Array(memory.buffer);
    // Pack: A panel i holds rows i*mr.., element (p, l) at p*mr + l; B panel j likewise.
    const bAt = m * kc;
    for (let i = 0; i < m; i++)
      for (let p = 0; p < kc; p++) {
        const q = Math.floor(i / tile.mr);
        H[q * tile.mr * kc + p * tile.mr + (i % tile.mr)] = a[i * kc + p]!;
      }
    for (let j = 0; j < n; j++)
      for (let p = 0; p < kc; p++) {
        const q = Math.floor(j / tile.nr);
        H[bAt + q * tile.nr * kc + p * tile.nr + (j % tile.nr)] = b[p * n + j]!;
      }
    const cAt = bAt + kc * n;
    H.fill(Number.NaN, cAt, cAt + m * n); // stores, never adds: no NaN may survive
    (inst.exports.block as (...x: number[]) => void)(0, 4 * bAt, 4 * cAt, m, n, kc, 0);
    expectWithinRoundoff(
      H.subarray(cAt, cAt + m * n),
      refMatmulWithAbs(a, b, m, kc, n),
      kc,
      `tile ${tile.mr}x${tile.nr}${tile.fma === true ? " fma" : ""}`,
    );
  }

  it("is correct for every tile shape it is generated for (the tile is a parameter, not a constant)", () => {
    enableRelaxedSimd("tile test");
    const tile = fc.record({
      mr: fc.integer({ min: 1, max: 6 }),
      nr: fc.constantFrom(4, 8, 12, 16),
      fma: fc.boolean(),
    });
    fc.assert(
      fc.property(
        tile,
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer(),
        (t, pm, pn, kc, seed) => {
          checkTile(t, pm, pn, kc, seed);
        },
      ),
      { numRuns: 60 },
    );
    expect(() => gemmKernelBytes({ mr: 2, nr: 6 })).toThrow(/nr a positive multiple of 4, got 2x6/);
  });

  it("the memory cap is explicit", () => {
    expect(() => createKernelMemory(MAX_PAGES * 65536 + 1)).toThrow(/exceed the \d+-byte memory/);
  });
});

let pool: MatrixPool;
let pool3: MatrixPool;
const repacking = repackingWasmPool();
beforeAll(async () => {
  pool = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, kernels: "wasm" });
  pool3 = createPool({ threads: 3, minParallelFlops: 0, spin: 2000, kernels: "wasm" });
  await Promise.all([pool.ready(), pool3.ready()]);
});
afterAll(async () => {
  await Promise.all([pool.close(), pool3.close()]);
});

const wasm = { kernels: "wasm" } as const;

describe("dense products on the wasm kernel", () => {
  it("equal the float64 reference within float32 roundoff (ragged shapes, all three layouts)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 37 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 37 }),
        fc.integer(),
        (m, k, n, seed) => {
          const a = randomArray(m * k, seed) as Float32Array;
          const b = randomArray(k * n, seed + 1) as Float32Array;
          const want = refMatmulWithAbs(a, b, m, k, n);
          expectWithinRoundoff(matmul(a, b, m, k, n, undefined, wasm), want, k, "matmul");
          expectWithinRoundoff(
            matmulTransA(transpose(a, m, k), b, m, k, n, undefined, wasm),
            want,
            k,
            "matmulTransA",
          );
          expectWithinRoundoff(
            matmulTransB(a, transpose(b, k, n), m, k, n, undefined, wasm),
            want,
            k,
            "matmulTransB",
          );
        },
      ),
      { numRuns: 120 },
    );
  });

  it("are bitwise the same on 1, 2 and 3 threads, packed whole or per chunk, shared or not", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 140 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 0, max: 90 }),
        fc.integer(),
        fc.boolean(),
        (m, k, n, seed, shared) => {
          const a0 = randomArray(m * k, seed) as Float32Array;
          const b0 = randomArray(k * n, seed + 1) as Float32Array;
          const a = shared ? sharedFloat32(m * k) : a0;
          const b = shared ? sharedFloat32(k * n) : b0;
          a.set(a0);
          b.set(b0);
          for (const f of [matmul, matmulTransA, matmulTransB]) {
            const serial = f(a, b, m, k, n, undefined, wasm);
            for (const p of [pool, pool3, repacking()]) {
              const out = shared
                ? sharedFloat32(m * n + 3).fill(7)
                : new Float32Array(m * n + 3).fill(7);
              f(a, b, m, k, n, out, { pool: p });
              expect(bits(out.subarray(0, m * n))).toEqual(bits(serial));
              expect(Array.from(out.subarray(m * n))).toEqual([7, 7, 7]);
            }
          }
        },
      ),
      { numRuns: 20 },
    );
    // Both pooled paths ran on the workers.
    expect(pool.jobsByKind.get(KIND_WASM_PACK)).toBeGreaterThan(0);
    expect(pool.jobsByKind.get(KIND_WASM_GEMM_PACKED)).toBe(pool.jobsByKind.get(KIND_WASM_PACK));
    expect(repacking().jobsByKind.get(KIND_WASM_GEMM)).toBeGreaterThan(0);
    expect(pool.claimed).toBeGreaterThan(0);
  });

  it("a replaced worker gets the kernel memory again", async () => {
    const p = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, kernels: "wasm" });
    try {
      await p.ready();
      const a = randomArray(96 * 96, 3) as Float32Array;
      const want = bits(matmul(a, a, 96, 96, 96, undefined, wasm));
      expect(bits(matmul(a, a, 96, 96, 96, undefined, { pool: p }))).toEqual(want);
      const { KIND_EXIT_AFTER } = await import("../src/jobs.ts");
      p.run(KIND_EXIT_AFTER, {}, [[0, 0, 0, 0]], false);
      await vi.waitFor(() => expect(p.replacements).toBe(1), { timeout: 10_000 });
      await p.ready();
      const claimed = p.claimed;
      // The caller takes every chunk the worker has not claimed yet, so on a busy machine a
      // few products can pass without the new worker: keep multiplying until it joins in.
      await vi.waitFor(
        () => {
          expect(bits(matmul(a, a, 96, 96, 96, undefined, { pool: p }))).toEqual(want);
          expect(p.claimed).toBeGreaterThan(claimed);
        },
        { timeout: 10_000, interval: 5 },
      );
    } finally {
      await p.close();
    }
  });

  it("float64 operands take the asm.js kernel whatever the switch says", () => {
    const a = randomArray(9 * 300, 4, true) as Float64Array;
    const b = randomArray(300 * 7, 5, true) as Float64Array;
    expect(bits(matmul(a, b, 9, 300, 7, undefined, wasm))).toEqual(
      bits(matmul(a, b, 9, 300, 7, undefined, { kernels: "asm" })),
    );
  });

  it("the switch: option, pool default, TESSERA_KERNELS, with named errors", () => {
    expect(kernelsFromEnv({})).toBe("asm");
    expect(kernelsFromEnv({ TESSERA_KERNELS: "" })).toBe("asm");
    expect(kernelsFromEnv({ TESSERA_KERNELS: "wasm" })).toBe("wasm");
    expect(() => kernelsFromEnv({ TESSERA_KERNELS: "simd" })).toThrow(
      /TESSERA_KERNELS must be "asm" or "wasm", got "simd"/,
    );
    expect(pool.kernels).toBe("wasm");
    expect(() => createPool({ threads: 1, kernels: "gpu" as never })).toThrow(
      /createPool: kernels must be "asm" or "wasm", got "gpu"/,
    );
    const a = new Float32Array(4);
    expect(() => matmul(a, a, 2, 2, 2, undefined, { kernels: "fast" as never })).toThrow(
      /matmul: options.kernels must be "asm" or "wasm", got "fast"/,
    );
    // The two paths really differ (float32 against float64 sums), so the option is honoured.
    const x = randomArray(64 * 512, 6) as Float32Array;
    const y = randomArray(512 * 64, 7) as Float32Array;
    const viaWasm = matmul(x, y, 64, 512, 64, undefined, wasm);
    const viaAsm = matmul(x, y, 64, 512, 64, undefined, { kernels: "asm" });
    expect(bits(viaWasm)).not.toEqual(bits(viaAsm));
    expect(bits(matmul(x, y, 64, 512, 64, undefined, { pool }))).toEqual(bits(viaWasm));
  });
});

describe("sparse products on the wasm kernel", () => {
  it("BSR and CSR: all four products equal the reference, and are bitwise the same on 1, 2, 3 threads", () => {
    fc.assert(
      fc.property(sparseCase, (c) => {
        const { dense, mask } = maskedDense(c);
        const { rows, cols, n } = c;
        const mats = [
          BsrMatrix.fromDense(dense, rows, cols, [c.R, c.C], { mask }),
          CsrMatrix.fromDense(dense, rows, cols),
        ];
        const xc = randomArray(cols * n, c.seed + 1) as Float32Array;
        const xr = randomArray(rows * n, c.seed + 2) as Float32Array;
        const dt = transpose(dense, rows, cols);
        const xrT = transpose(xr, rows, n);
        const xcT = transpose(xc, cols, n);
        const refs = [
          refMatmulWithAbs(dense, xc, rows, cols, n),
          refMatmulWithAbs(dt, xr, cols, rows, n),
          refMatmulWithAbs(xrT, dense, n, rows, cols),
          refMatmulWithAbs(xcT, dt, n, cols, rows),
        ];
        for (const s of mats) {
          const calls = [
            (o: object) => s.matmul(xc, n, o),
            (o: object) => s.transposeMatmul(xr, n, o),
            (o: object) => s.rmatmul(xrT, n, o),
            (o: object) => s.rmatmulTranspose(xcT, n, o),
          ];
          calls.forEach((call, i) => {
            const serial = call(wasm);
            expectWithinRoundoff(serial, refs[i]!, Math.max(rows, cols), `product ${i}`);
            for (const p of [pool, pool3]) expect(bits(call({ pool: p }))).toEqual(bits(serial));
          });
        }
      }),
      { numRuns: 80 },
    );
    expect(pool.jobsByKind.get(KIND_WASM_SPMM)).toBeGreaterThan(0);
  });

  it("sampledMatmul: every operand layout equals the reference, padding is 0, bitwise on 1, 2, 3 threads", () => {
    // Half the cases have 4x4 / 8x8 blocks on matrices at least 8 wide: whole panels of 4 and 8
    // lines have their own copy loops, which the general cases reached too rarely to catch a
    // planted fault in every run.
    const wholePanels = fc.record({
      rows: fc.integer({ min: 8, max: 45 }),
      cols: fc.integer({ min: 8, max: 45 }),
      R: fc.constantFrom(4, 8),
      C: fc.constantFrom(4, 8),
      n: fc.constant(0),
      seed: fc.integer(),
      density: fc.double({ min: 0.3, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.oneof(sparseCase, wholePanels), fc.integer({ min: 0, max: 40 }), (c, k) => {
        const { dense, mask } = maskedDense(c);
        const { rows, cols, R, C } = c;
        const pattern = BsrMatrix.fromDense(dense, rows, cols, [R, C], { mask });
        const A = randomArray(rows * k, c.seed + 3) as Float32Array; // [rows, k]
        const B = randomArray(k * cols, c.seed + 4) as Float32Array; // [k, cols]
        const full = refMatmulWithAbs(A, B, rows, k, cols);
        const bc = Math.ceil(cols / C);
        for (let i = 0; i < rows; i++)
          for (let j = 0; j < cols; j++)
            if (mask[Math.floor(i / R) * bc + Math.floor(j / C)] !== 1) {
              full.ref[i * cols + j] = 0;
              full.abs[i * cols + j] = 0;
            }
        const At = transpose(A, rows, k);
        const Bt = transpose(B, k, cols);
        for (const [a, b, transA, transB] of [
          [A, B, false, false],
          [At, B, true, false],
          [A, Bt, false, true],
          [At, Bt, true, true],
        ] as const) {
          const g = BsrMatrix.sampledMatmul(pattern, a, b, k, { transA, transB, ...wasm });
          expectWithinRoundoff(g.toDense(), full, k, `sampled ${transA} ${transB}`);
          // Entries of ragged edge blocks outside the matrix are written as 0.
          for (let i = 0; i + 1 < pattern.indptr.length; i++)
            for (let q = pattern.indptr[i]!; q < pattern.indptr[i + 1]!; q++)
              for (let r = 0; r < R; r++)
                for (let cc = 0; cc < C; cc++)
                  if (i * R + r >= rows || pattern.indices[q]! * C + cc >= cols)
                    expect(g.data[(q * R + r) * C + cc]).toBe(0);
          for (const p of [pool, pool3]) {
            const out = new Float32Array(g.data.length).fill(Number.NaN);
            BsrMatrix.sampledMatmul(pattern, a, b, k, { transA, transB, pool: p, out });
            expect(bits(out)).toEqual(bits(g.data));
          }
        }
      }),
      { numRuns: 100 },
    );
    expect(pool.jobsByKind.get(KIND_WASM_SAMPLED)).toBeGreaterThan(0);
  });

  it("a provided out is overwritten only where the product writes, and padding never leaks", () => {
    const dense = randomArray(13 * 11, 9) as Float32Array;
    const a = BsrMatrix.fromDense(dense, 13, 11, [4, 3]);
    const x = randomArray(11 * 5, 10) as Float32Array;
    const out = new Float32Array(13 * 5 + 2).fill(Number.NaN);
    a.matmul(x, 5, { out, kernels: "wasm" });
    expectWithinRoundoff(out.subarray(0, 65), refMatmulWithAbs(dense, x, 13, 11, 5), 11, "matmul");
    expect(Number.isNaN(out[65]!) && Number.isNaN(out[66]!)).toBe(true);
  });

  it("a ragged product after one that left NaN in kernel memory reads zeros in its padded lines", () => {
    // Same staged layout (8 rows, 4x4 blocks, all 8 stored, n = 8), so the second product's X
    // panels lie where the first one's were: its padded inner lines 13..15 hold the first X's NaN
    // unless staging zeroes them (0 · NaN would be NaN in every output).
    const full = BsrMatrix.fromDense(randomArray(8 * 16, 11) as Float32Array, 8, 16, [4, 4]);
    full.matmul(new Float32Array(16 * 8).fill(Number.NaN), 8, wasm);
    const dense = randomArray(8 * 13, 12) as Float32Array;
    const ragged = BsrMatrix.fromDense(dense, 8, 13, [4, 4]);
    expect(ragged.data.length).toBe(full.data.length);
    const x = randomArray(13 * 8, 13) as Float32Array;
    expectWithinRoundoff(
      ragged.matmul(x, 8, wasm),
      refMatmulWithAbs(dense, x, 8, 13, 8),
      13,
      "ragged",
    );
    // The same through the batch-major staging (X transposed into panels): x·Wᵀ, x [8, 13].
    full.rmatmulTranspose(new Float32Array(8 * 16).fill(Number.NaN), 8, wasm);
    const xb = transpose(x, 13, 8);
    expectWithinRoundoff(
      ragged.rmatmulTranspose(xb, 8, wasm),
      refMatmulWithAbs(xb, transpose(dense, 8, 13), 8, 13, 8),
      13,
      "ragged batch-major",
    );
  });
});
