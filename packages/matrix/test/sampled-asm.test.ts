// The sampled product (BSR weight gradient) on its asm.js kernel (sampled-asm.ts): V8 must
// validate it, it must equal the float64 reference within float32 roundoff for every operand
// layout with k past the shapes of the small tests (a Linear layer's batch), write the padding
// of ragged edge blocks as 0, and give the same bits on 1, 2 and 3 threads.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { BsrMatrix, sharedFloat32 } from "../src/index.ts";
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

describe("sampled product asm.js kernel", () => {
  it("V8 validates it as asm.js (float32 and float64 builds)", () => {
    const script = fileURLToPath(new URL("./fixtures/sampled-asm-validates.ts", import.meta.url));
    const run = (flags: string[]) =>
      spawnSync(process.execPath, [...flags, "--allow-natives-syntax", "--import", "tsx", script], {
        encoding: "utf8",
        timeout: 30_000,
      });
    const r = run([]);
    expect(r.stderr).not.toMatch(/asm\.js/); // V8 warns "Invalid asm.js: ..." when it refuses
    expect(r.stdout.trim()).toBe("sampled32 true sampled64 true");
    // The probe can say no: with validation switched off it does.
    expect(run(["--no-validate-asm"]).stdout.trim()).toBe("sampled32 false sampled64 false");
  });

  it("equals the float64 reference at the stored blocks (padding 0) for every layout, bitwise on 1, 2 and 3 threads", () => {
    fc.assert(
      fc.property(
        fc.record({
          rows: fc.integer({ min: 1, max: 40 }),
          cols: fc.integer({ min: 1, max: 40 }),
          R: fc.integer({ min: 1, max: 9 }),
          C: fc.integer({ min: 1, max: 9 }),
          n: fc.constant(0),
          seed: fc.integer(),
          density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
        }),
        fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 100, max: 300 })),
        fc.boolean(),
        fc.boolean(),
        (c, k, f64, shared) => {
          if (c.R === 1 && c.C === 1) return; // 1x1 blocks are CSR: the JavaScript kernel
          const { dense, mask } = maskedDense(c);
          const d = f64 ? Float64Array.from(dense) : dense;
          const p = BsrMatrix.fromDense(d, c.rows, c.cols, [c.R, c.C], { mask });
          const A0 = randomArray(c.rows * k, c.seed + 3, f64); // [rows, k]
          const B0 = randomArray(k * c.cols, c.seed + 4, f64); // [k, cols]
          const A = shared && !f64 ? sharedFloat32(A0.length) : A0;
          const B = shared && !f64 ? sharedFloat32(B0.length) : B0;
          A.set(A0);
          B.set(B0);
          const want = refMatmulWithAbs(A, B, c.rows, k, c.cols);
          const bc = Math.ceil(c.cols / c.C);
          for (let i = 0; i < c.rows; i++)
            for (let j = 0; j < c.cols; j++)
              if (mask[Math.floor(i / c.R) * bc + Math.floor(j / c.C)] !== 1) {
                want.ref[i * c.cols + j] = 0;
                want.abs[i * c.cols + j] = 0;
              }
          const At = transpose(A, c.rows, k);
          const Bt = transpose(B, k, c.cols);
          for (const [a, b, transA, transB] of [
            [A, B, false, false],
            [At, B, true, false],
            [A, Bt, false, true],
            [At, Bt, true, true],
          ] as const) {
            const g = BsrMatrix.sampledMatmul(p, a as Float32Array, b as Float32Array, k, {
              transA,
              transB,
              kernels: "asm",
            });
            expectWithinRoundoff(g.toDense(), want, k, `sampled ${c.R}x${c.C} ${transA} ${transB}`);
            // Padding of ragged edge blocks is written 0: the dense form of the raw data
            // (padding included, as a whole-block matrix) holds nothing outside the logical shape.
            const R = c.R;
            const C = c.C;
            const whole = BsrMatrix.fromArrays({
              rows: p.blockRows * R,
              cols: p.blockCols * C,
              blockShape: [R, C],
              indptr: p.indptr,
              indices: p.indices,
              data: g.data,
            }).toDense();
            for (let i = 0; i < p.blockRows * R; i++)
              for (let j = 0; j < p.blockCols * C; j++)
                if (i >= c.rows || j >= c.cols) expect(whole[i * p.blockCols * C + j]).toBe(0);
            for (const pool of [pools.pool2(), pools.pool3()]) {
              const out = (
                f64 ? new Float64Array(g.data.length) : new Float32Array(g.data.length)
              ).fill(9);
              BsrMatrix.sampledMatmul(p, a as Float32Array, b as Float32Array, k, {
                transA,
                transB,
                pool,
                out: out as Float32Array,
              });
              expect(bits(out)).toEqual(bits(g.data));
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
