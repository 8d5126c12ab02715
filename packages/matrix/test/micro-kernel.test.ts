import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createMicroKernel } from "../src/micro-kernel.ts";
import { rng } from "./helpers.ts";

describe("asm.js kernels", () => {
  it("V8 validates the GEMM and BSR kernels as asm.js (else products silently run 1.6-2.5x slower)", () => {
    const script = fileURLToPath(new URL("./fixtures/asm-validates.ts", import.meta.url));
    const run = (flags: string[]) =>
      spawnSync(process.execPath, [...flags, "--allow-natives-syntax", "--import", "tsx", script], {
        encoding: "utf8",
        timeout: 30_000,
      });
    const r = run([]);
    expect(r.stderr).not.toMatch(/asm\.js/); // V8 warns "Invalid asm.js: ..." when it refuses
    expect(r.stdout.trim()).toBe("gemm true spmm32 true spmm64 true tiles true");
    // The check itself can fail: with validation switched off the same probe says false.
    expect(run(["--no-validate-asm"]).stdout.trim()).toBe(
      "gemm false spmm32 false spmm64 false tiles false",
    );
  });
});

describe("GEMM micro-kernel", () => {
  it("stores the float64 block A·B of packed 2-row and 4-column panels", () => {
    const heap = new ArrayBuffer(1 << 16);
    const H = new Float64Array(heap);
    const kernel = createMicroKernel(heap);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer(),
        (pa, pb, kc, seed) => {
          const mr = 2 * pa;
          const nr = 4 * pb;
          const r = rng(seed);
          const A = Array.from({ length: mr * kc }, r); // logical A[i][p] = A[i*kc + p]
          const B = Array.from({ length: kc * nr }, r); // logical B[p][j] = B[p*nr + j]
          const aAt = 8;
          const bAt = aAt + mr * kc;
          const cAt = bAt + kc * nr + 3;
          H.fill(Number.NaN);
          for (let i = 0; i < mr; i++)
            for (let p = 0; p < kc; p++)
              H[aAt + (i >> 1) * 2 * kc + 2 * p + (i & 1)] = A[i * kc + p]!;
          for (let p = 0; p < kc; p++)
            for (let j = 0; j < nr; j++)
              H[bAt + (j >> 2) * 4 * kc + 4 * p + (j & 3)] = B[p * nr + j]!;
          kernel.block(8 * aAt, 8 * bAt, 8 * cAt, mr, nr, kc);
          for (let i = 0; i < mr; i++)
            for (let j = 0; j < nr; j++) {
              let s = 0;
              for (let p = 0; p < kc; p++) s += A[i * kc + p]! * B[p * nr + j]!;
              expect(H[cAt + i * nr + j]).toBe(s); // same k order in float64: exact
            }
          expect(H[cAt + mr * nr]).toBeNaN(); // nothing written past the block
        },
      ),
      { numRuns: 60 },
    );
  });
});
