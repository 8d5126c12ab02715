// The generated pack kernels (wasm-pack.ts): the panels they write, float for float, against
// the panel layout written out from its definition and against pack.ts's JavaScript packer,
// for both source layouts (lines contiguous in k, lines adjacent in memory), every trans of the
// dense products, ragged panels, k past the k-block (WASM_KC) and past what one trip through
// the scratch region holds, and the images-first layout of a convolution's output gradient.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  SCRATCH_BYTES,
  WASM_KC,
  WASM_TILE,
  WasmThread,
  createKernelMemory,
  wasmPackImagesFirstA,
  wasmPackRange,
  wasmPackedBytes,
  wasmPanelCounts,
} from "../src/wasm-gemm.ts";
import { wasmPack } from "../src/wasm-pack.ts";
import { packerFor } from "../src/pack.ts";
import { TRANS_A, TRANS_B, TRANS_NONE } from "../src/types.ts";
import { randomArray } from "./helpers.ts";

const MR = WASM_TILE.mr;
const NR = WASM_TILE.nr;

/** A thread on a memory of its own with `bytes` free after its scratch region. */
function thread(bytes: number): WasmThread {
  return new WasmThread(createKernelMemory(SCRATCH_BYTES + bytes), 0);
}

/**
 * The panel layout of wasmPackRange from its definition: in the k-block at pc (kc long), element
 * (p, l) of panel q is line q·width + l at step pc + p (0 past `count`), at
 * pc·width·panels + q·width·kc + p·width + l.
 */
function refBlocks(
  at: (line: number, p: number) => number,
  count: number,
  k: number,
  width: number,
): Float32Array {
  const panels = Math.ceil(count / width);
  const out = new Float32Array(panels * width * k);
  for (let pc = 0; pc < k; pc += WASM_KC) {
    const kc = Math.min(WASM_KC, k - pc);
    for (let q = 0; q < panels; q++)
      for (let p = 0; p < kc; p++)
        for (let l = 0; l < width; l++) {
          const line = q * width + l;
          out[pc * width * panels + q * width * kc + p * width + l] =
            line < count ? at(line, pc + p) : 0;
        }
  }
  return out;
}

/** Element q·width·kc .. of each k-block: the part of refBlocks panels [q0, q1) occupy. */
function blockSlices(
  all: Float32Array,
  panels: number,
  width: number,
  k: number,
  q0: number,
  q1: number,
) {
  const out: number[] = [];
  for (let pc = 0; pc < k; pc += WASM_KC) {
    const kc = Math.min(WASM_KC, k - pc);
    const s = pc * width * panels;
    out.push(...all.subarray(s + q0 * width * kc, s + q1 * width * kc));
  }
  return out;
}

/**
 * The first index where got and want differ as floats (Object.is: NaN equals NaN, 0 differs from
 * -0) with both values, or "none": a cheap check that names the place (a failing toEqual on arrays
 * of a million floats took 100 s to print).
 */
function firstDifference(got: ArrayLike<number>, want: ArrayLike<number>): string {
  if (got.length !== want.length) return `length ${got.length} != ${want.length}`;
  for (let i = 0; i < want.length; i++)
    if (!Object.is(got[i], want[i])) return `element ${i}: ${got[i]} != ${want[i]}`;
  return "none";
}

describe("wasm pack kernels", () => {
  it("wasmPack writes pack.ts's panels, both source layouts, any width, ragged panels and strides", () => {
    const t = thread(4 << 20);
    fc.assert(
      fc.property(
        fc.record({
          width: fc.constantFrom(2, 4, 8, 12),
          count: fc.integer({ min: 1, max: 70 }),
          kc: fc.integer({ min: 1, max: 300 }),
          contiguous: fc.boolean(),
          extra: fc.integer({ min: 0, max: 3 }),
          off: fc.integer({ min: 0, max: 5 }),
          gap: fc.integer({ min: 0, max: 3 }),
          qs: fc.tuple(fc.nat(), fc.nat()),
          seed: fc.nat(),
        }),
        ({ width, count, kc, contiguous, extra, off, gap, qs, seed }) => {
          const lineStride = contiguous ? kc + extra : 1;
          const kStride = contiguous ? 1 : count + extra;
          const src = randomArray(
            off + (contiguous ? count * lineStride : kc * kStride),
            seed,
          ) as Float32Array;
          const panels = Math.ceil(count / width);
          const q0 = qs[0] % panels;
          const q1 = q0 + 1 + (qs[1] % (panels - q0));
          const panelStride = width * kc + gap;
          const len = (q1 - q0) * panelStride;
          const H = t.f32();
          const dOff = SCRATCH_BYTES >> 2;
          H.fill(NaN, dOff, dOff + len);
          wasmPack(t, src, off, lineStride, kStride, count, q0, q1, kc, width, dOff, panelStride);
          const want = new Float32Array(len).fill(NaN);
          packerFor(src, want)(
            src,
            off,
            lineStride,
            kStride,
            count,
            q0,
            q1,
            kc,
            width,
            want,
            0,
            panelStride,
          );
          expect(firstDifference(t.f32().subarray(dOff, dOff + len), want)).toBe("none");
        },
      ),
      { numRuns: 300 },
    );
  });

  it("wasmPackRange's panels are op(A)'s and op(B)'s, every trans, k past WASM_KC, any split", () => {
    fc.assert(
      fc.property(
        fc.record({
          trans: fc.constantFrom(TRANS_NONE, TRANS_A, TRANS_B),
          m: fc.integer({ min: 1, max: 40 }),
          k: fc.integer({ min: 1, max: 2 * WASM_KC + 40 }),
          n: fc.integer({ min: 1, max: 40 }),
          cut: fc.tuple(fc.nat(), fc.nat()),
          seed: fc.nat(),
        }),
        ({ trans, m, k, n, cut, seed }) => {
          const a = randomArray(m * k, seed) as Float32Array;
          const b = randomArray(k * n, seed + 1) as Float32Array;
          const [pa, pb] = wasmPanelCounts(m, n);
          const [la, lb] = wasmPackedBytes(m, k, n);
          const t = thread(la + lb);
          const u0 = cut[0] % (pa + pb);
          const u1 = u0 + 1 + (cut[1] % (pa + pb - u0));
          const H = t.f32();
          H.fill(NaN, SCRATCH_BYTES >> 2, (SCRATCH_BYTES + la + lb) >> 2);
          wasmPackRange(t, trans, a, b, SCRATCH_BYTES, SCRATCH_BYTES + la, m, k, n, u0, u1);
          const opA = (i: number, p: number) => (trans === TRANS_A ? a[p * m + i]! : a[i * k + p]!);
          const opB = (j: number, p: number) => (trans === TRANS_B ? b[j * k + p]! : b[p * n + j]!);
          const H2 = t.f32();
          if (u0 < pa) {
            const q1 = Math.min(u1, pa);
            const got = blockSlices(H2.subarray(SCRATCH_BYTES >> 2), pa, MR, k, u0, q1);
            expect(
              firstDifference(got, blockSlices(refBlocks(opA, m, k, MR), pa, MR, k, u0, q1)),
            ).toBe("none");
          }
          if (u1 > pa) {
            const q0 = Math.max(u0, pa) - pa;
            const got = blockSlices(H2.subarray((SCRATCH_BYTES + la) >> 2), pb, NR, k, q0, u1 - pa);
            expect(
              firstDifference(got, blockSlices(refBlocks(opB, n, k, NR), pb, NR, k, q0, u1 - pa)),
            ).toBe("none");
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("k too long for one trip through the scratch region is packed k-block by k-block", () => {
    // NR·k floats exceed the scratch region, so each k-block is copied and packed on its own.
    const k = Math.ceil(SCRATCH_BYTES / 4 / NR) + 300;
    const [m, n] = [5, 11];
    const a = randomArray(m * k, 3) as Float32Array;
    const b = randomArray(k * n, 4) as Float32Array;
    for (const trans of [TRANS_NONE, TRANS_B] as const) {
      const [pa, pb] = wasmPanelCounts(m, n);
      const [la, lb] = wasmPackedBytes(m, k, n);
      const t = thread(la + lb);
      wasmPackRange(t, trans, a, b, SCRATCH_BYTES, SCRATCH_BYTES + la, m, k, n, 0, pa + pb);
      const opB = (j: number, p: number) => (trans === TRANS_B ? b[j * k + p]! : b[p * n + j]!);
      const got = t.f32().subarray((SCRATCH_BYTES + la) >> 2, (SCRATCH_BYTES + la + lb) >> 2);
      expect(firstDifference(got.subarray(0, pb * NR * k), refBlocks(opB, n, k, NR))).toBe("none");
      const gotA = t.f32().subarray(SCRATCH_BYTES >> 2, (SCRATCH_BYTES >> 2) + pa * MR * k);
      expect(
        firstDifference(
          gotA,
          refBlocks((i, p) => a[i * k + p]!, m, k, MR),
        ),
      ).toBe("none");
    }
  });

  it("images-first A panels: line r, step i·P + p read at a[(i·m + r)·P + p], any P and split", () => {
    fc.assert(
      fc.property(
        fc.record({
          m: fc.integer({ min: 1, max: 24 }),
          P: fc.oneof(
            fc.integer({ min: 1, max: 40 }),
            fc.integer({ min: WASM_KC - 5, max: 2 * WASM_KC + 9 }),
          ),
          images: fc.integer({ min: 1, max: 6 }),
          cut: fc.tuple(fc.nat(), fc.nat()),
          seed: fc.nat(),
        }),
        ({ m, P, images, cut, seed }) => {
          const k = images * P;
          const a = randomArray(m * k, seed) as Float32Array;
          const [pa] = wasmPanelCounts(m, 1);
          const [la] = wasmPackedBytes(m, k, 1);
          const t = thread(la);
          const u0 = cut[0] % pa;
          const u1 = u0 + 1 + (cut[1] % (pa - u0));
          t.f32().fill(NaN, SCRATCH_BYTES >> 2, (SCRATCH_BYTES + la) >> 2);
          wasmPackImagesFirstA(t, a, SCRATCH_BYTES, m, k, P, u0, u1);
          const at = (r: number, s: number) => a[(Math.floor(s / P) * m + r) * P + (s % P)]!;
          const got = blockSlices(t.f32().subarray(SCRATCH_BYTES >> 2), pa, MR, k, u0, u1);
          expect(
            firstDifference(got, blockSlices(refBlocks(at, m, k, MR), pa, MR, k, u0, u1)),
          ).toBe("none");
        },
      ),
      { numRuns: 120 },
    );
  });

  it("images-first planes too large for the scratch region take the per-run packing, same panels", () => {
    const P = Math.ceil(SCRATCH_BYTES / 4 / MR) + 7; // one panel's image block does not fit
    const [m, images] = [6, 2];
    const k = images * P;
    const a = randomArray(m * k, 9) as Float32Array;
    const [pa] = wasmPanelCounts(m, 1);
    const [la] = wasmPackedBytes(m, k, 1);
    const t = thread(la);
    wasmPackImagesFirstA(t, a, SCRATCH_BYTES, m, k, P, 0, pa);
    const at = (r: number, s: number) => a[(Math.floor(s / P) * m + r) * P + (s % P)]!;
    const got = t.f32().subarray(SCRATCH_BYTES >> 2, (SCRATCH_BYTES >> 2) + pa * MR * k);
    expect(firstDifference(got, refBlocks(at, m, k, MR))).toBe("none");
  });
});
