import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  BsrMatrix,
  CsrMatrix,
  createPool,
  jobKindName,
  matmul,
  matmulTransA,
  matmulTransB,
  sharedFloat32,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import {
  KIND_EXIT,
  KIND_EXIT_AFTER,
  KIND_GEMM,
  KIND_GEMM_PACKED,
  KIND_PACK,
  KIND_THROW,
  KIND_WASM_GEMM,
  KIND_WASM_GEMM_PACKED,
  KIND_WASM_PACK,
} from "../src/jobs.ts";
import { weightedChunks } from "../src/parallel.ts";
import { sparseCase } from "./arbitraries.ts";
import { maskedDense, randomArray, bits } from "./helpers.ts";

// One pool per file (workers take ~0.3 s to start). minParallelFlops 0 forces even tiny
// products through the workers so the split logic is exercised on every random case.
let pool: MatrixPool;
let pool3: MatrixPool;
/** Packs no product whole: every chunk packs its own cache blocks (the path of huge products). */
let repacking: MatrixPool;
beforeAll(async () => {
  // A short spin keeps three busy-waiting workers from starving each other on 2 cores.
  pool = createPool({ threads: 2, minParallelFlops: 0, spin: 2000 });
  pool3 = createPool({ threads: 3, minParallelFlops: 0, spin: 2000 });
  repacking = createPool({ threads: 2, minParallelFlops: 0, spin: 2000, maxPackedBytes: 0 });
  await Promise.all([pool.ready(), pool3.ready(), repacking.ready()]);
});
afterAll(async () => {
  await Promise.all([pool.close(), pool3.close(), repacking.close()]);
});

describe("pool products are bitwise equal to the serial run", () => {
  it("dense matmul, matmulTransA, matmulTransB (ordinary and shared buffers)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 70 }),
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 70 }),
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
            const serial = f(a, b, m, k, n);
            for (const p of [pool, pool3, repacking]) {
              const out = shared
                ? sharedFloat32(m * n + 3).fill(7)
                : new Float32Array(m * n + 3).fill(7);
              f(a, b, m, k, n, out, { pool: p });
              expect(bits(out.subarray(0, m * n))).toEqual(bits(serial));
              expect(Array.from(out.subarray(m * n))).toEqual([7, 7, 7]); // beyond m*n untouched
            }
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it("a large dense product crossing the cache blocks", () => {
    const [m, k, n] = [133, 600, 300];
    const a = randomArray(m * k, 1) as Float32Array;
    const b = randomArray(k * n, 2) as Float32Array;
    expect(bits(matmul(a, b, m, k, n, undefined, { pool }))).toEqual(bits(matmul(a, b, m, k, n)));
    expect(bits(matmulTransB(a, b, 61, k, 70, undefined, { pool: pool3 }))).toEqual(
      bits(matmulTransB(a, b, 61, k, 70)),
    );
  });

  it("BSR and CSR products, including the sampled product", () => {
    fc.assert(
      fc.property(sparseCase, fc.integer({ min: 0, max: 9 }), (c, k) => {
        const { dense, mask } = maskedDense(c);
        const a = BsrMatrix.fromDense(dense, c.rows, c.cols, [c.R, c.C], { mask });
        const s = CsrMatrix.fromDense(dense, c.rows, c.cols);
        const xc = randomArray(c.cols * c.n, c.seed + 1) as Float32Array;
        const xr = randomArray(c.rows * c.n, c.seed + 2) as Float32Array;
        const A = randomArray(c.rows * k, c.seed + 3) as Float32Array;
        const B = randomArray(k * c.cols, c.seed + 4) as Float32Array;
        for (const p of [pool, pool3]) {
          for (const m of [a, s]) {
            expect(bits(m.matmul(xc, c.n, { pool: p }))).toEqual(bits(m.matmul(xc, c.n)));
            expect(bits(m.transposeMatmul(xr, c.n, { pool: p }))).toEqual(
              bits(m.transposeMatmul(xr, c.n)),
            );
            expect(bits(m.rmatmul(xr, c.n, { pool: p }))).toEqual(bits(m.rmatmul(xr, c.n)));
            expect(bits(m.rmatmulTranspose(xc, c.n, { pool: p }))).toEqual(
              bits(m.rmatmulTranspose(xc, c.n)),
            );
          }
          const g1 = BsrMatrix.sampledMatmul(a, A, B, k, { pool: p });
          expect(bits(g1.data)).toEqual(bits(BsrMatrix.sampledMatmul(a, A, B, k).data));
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe("work split", () => {
  it("splits block lines by stored-block count, so skewed patterns stay balanced", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 300 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 16 }),
        (counts, parts) => {
          const ptr = new Int32Array(counts.length + 1);
          counts.forEach((c, i) => (ptr[i + 1] = ptr[i]! + c));
          const chunks = weightedChunks(ptr, counts.length, parts);
          // Contiguous cover of every line.
          expect(chunks[0]?.[0] ?? 0).toBe(0);
          for (let i = 1; i < chunks.length; i++) expect(chunks[i]![0]).toBe(chunks[i - 1]![1]);
          expect(chunks.at(-1)![1]).toBe(counts.length);
          // No chunk exceeds the ideal share by more than one line's weight.
          const w = (a: number, b: number) => ptr[b]! - ptr[a]! + (b - a);
          const ideal = w(0, counts.length) / parts;
          const heaviest = Math.max(...counts) + 1;
          for (const [a, b] of chunks) expect(w(a, b)).toBeLessThanOrEqual(ideal + heaviest);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("pool failures", () => {
  it("the tests above really ran on the workers", () => {
    expect(pool.claimed).toBeGreaterThan(0);
    expect(pool3.claimed).toBeGreaterThan(0);
    expect(repacking.claimed).toBeGreaterThan(0);
    // Both dense paths ran: whole-operand packing, and per-chunk packing when it is capped (on
    // the kernels TESSERA_KERNELS selects: CI runs this file once per path).
    const [pack, packed, perChunk] =
      pool.kernels === "wasm"
        ? [KIND_WASM_PACK, KIND_WASM_GEMM_PACKED, KIND_WASM_GEMM]
        : [KIND_PACK, KIND_GEMM_PACKED, KIND_GEMM];
    expect(pool.jobsByKind.get(pack)).toBeGreaterThan(0);
    expect(pool.jobsByKind.get(packed)).toBe(pool.jobsByKind.get(pack));
    expect(pool.jobsByKind.get(perChunk)).toBeUndefined();
    expect(repacking.jobsByKind.get(perChunk)).toBeGreaterThan(0);
    // The pool's clock saw the same kinds, each wait inside its time in run().
    expect([...pool.msByKind.keys()].sort()).toEqual([...pool.jobsByKind.keys()].sort());
    for (const t of pool.msByKind.values()) {
      expect(t.run).toBeGreaterThanOrEqual(0); // a clock reading, never a speed: no lower bound
      expect(t.waiting).toBeGreaterThanOrEqual(0);
      expect(t.waiting).toBeLessThanOrEqual(t.run);
    }
  });

  it("jobKindName names a kind by its KIND_ constant, and an unknown one by its number", () => {
    expect(jobKindName(KIND_WASM_GEMM_PACKED)).toBe("wasm_gemm_packed");
    expect(jobKindName(KIND_PACK)).toBe("pack");
    expect(jobKindName(KIND_THROW)).toBe("throw");
    expect(jobKindName(12345)).toBe("12345");
  });

  it("a job failing inside a worker throws a clear error and the pool keeps working", () => {
    expect(() => pool.run(KIND_THROW, {}, [[0, 0, 0, 0]], false)).toThrow(
      /matrix pool: worker 0 failed: .*test hook: job failed inside the worker/s,
    );
    const a = randomArray(40 * 50, 5) as Float32Array;
    expect(bits(matmul(a, a, 40, 50, 40, undefined, { pool }))).toEqual(
      bits(matmul(a, a, 40, 50, 40)),
    );
  });

  it("a crashed worker fails the call, is replaced, and the pool stays usable", async () => {
    const before = pool.replacements;
    expect(() => pool.run(KIND_EXIT, {}, [[0, 0, 0, 0]], false)).toThrow(
      /matrix pool: worker 0 exited during a job \(code .*\); it has been replaced/,
    );
    expect(pool.replacements).toBe(before + 1);
    const a = randomArray(64 * 64, 6) as Float32Array;
    const want = bits(matmul(a, a, 64, 64, 64));
    // Right away (the replacement may still be starting: the caller computes its share)...
    expect(bits(matmul(a, a, 64, 64, 64, undefined, { pool }))).toEqual(want);
    // ...and once the replacement runs.
    await pool.ready();
    expect(bits(matmul(a, a, 64, 64, 64, undefined, { pool }))).toEqual(want);
  });

  it("a worker that dies between jobs is replaced and counted, and later products use it again", async () => {
    const p = createPool({ threads: 2, minParallelFlops: 0, spin: 2000 });
    try {
      await p.ready();
      // The job itself succeeds; the worker exits right after reporting it done.
      p.run(KIND_EXIT_AFTER, {}, [[0, 0, 0, 0]], false);
      await vi.waitFor(() => expect(p.replacements).toBe(1), { timeout: 10_000 });
      expect(p.lostBetweenJobs).toBe(1);
      await p.ready();
      const a = randomArray(64 * 64, 8) as Float32Array;
      const posted = p.posted;
      expect(bits(matmul(a, a, 64, 64, 64, undefined, { pool: p }))).toEqual(
        bits(matmul(a, a, 64, 64, 64)),
      );
      // Before the fix the dead slot was skipped forever: nothing was posted to a worker again.
      expect(p.posted).toBeGreaterThan(posted);
    } finally {
      await p.close();
    }
  });

  it("a closed pool refuses work; threads must be positive", async () => {
    const p = createPool({ threads: 2, minParallelFlops: 0 });
    await p.close();
    const a = new Float32Array(4);
    expect(() => matmul(a, a, 2, 2, 2, undefined, { pool: p })).toThrow(/the pool is closed/);
    expect(() => createPool({ threads: 0 })).toThrow(
      /createPool: threads must be a positive integer/,
    );
    expect(() => createPool({ threads: 1, maxPackedBytes: -1 })).toThrow(
      /createPool: maxPackedBytes must be a finite number >= 0, got -1/,
    );
  });

  it("an idle pool never keeps a script alive", () => {
    const script = fileURLToPath(new URL("./fixtures/idle-pool.ts", import.meta.url));
    const r = spawnSync(process.execPath, ["--import", "tsx", script], {
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe("ok true");
    expect(r.status).toBe(0);
  });
});
