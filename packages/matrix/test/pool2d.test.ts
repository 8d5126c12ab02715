// The WebAssembly max-pooling kernel against a plain loop: the first maximum of each window in
// row-major order (ties and NaN included) and its flat index; ragged sizes, strides larger or
// smaller than the window, and windows unrolled (up to 16 taps) or not.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { wasmMaxPool2d } from "../src/index.ts";
import type { MaxPool2dGeometry } from "../src/index.ts";
import { maxPoolKernelBytes, planesPerBlock } from "../src/wasm-pool2d.ts";
import { rng, bits, wasmTestPool } from "./helpers.ts";

/** y, arg by the definition: a later element replaces the maximum only when strictly greater. */
function refPool(x: Float32Array, g: MaxPool2dGeometry): { y: Float32Array; arg: Int32Array } {
  const oh = Math.floor((g.h - g.kh) / g.strideH) + 1;
  const ow = Math.floor((g.w - g.kw) / g.strideW) + 1;
  const y = new Float32Array(g.n * g.c * oh * ow);
  const arg = new Int32Array(y.length);
  let o = 0;
  for (let pl = 0; pl < g.n * g.c; pl++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++, o++) {
        let best = -1;
        for (let u = 0; u < g.kh; u++)
          for (let v = 0; v < g.kw; v++) {
            const i = (pl * g.h + oy * g.strideH + u) * g.w + ox * g.strideW + v;
            if (best < 0 || x[i]! > x[best]!) best = i;
          }
        y[o] = x[best]!;
        arg[o] = best;
      }
  return { y, arg };
}

const caseArb = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 3 }),
    // Up to 6x6: windows of more than UNROLL_TAPS (16) taps take the generic loop.
    kh: fc.integer({ min: 1, max: 6 }),
    kw: fc.integer({ min: 1, max: 6 }),
    strideH: fc.integer({ min: 1, max: 5 }),
    strideW: fc.integer({ min: 1, max: 5 }),
    eh: fc.integer({ min: 0, max: 9 }),
    ew: fc.integer({ min: 0, max: 9 }),
    levels: fc.integer({ min: 2, max: 1000 }),
    nans: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r) => ({ ...r, h: r.kh + r.eh, w: r.kw + r.ew }));

/** Float32 and Int32 arrays of `n` elements on one SharedArrayBuffer each (or ordinary ones). */
const f32 = (n: number, shared: boolean) =>
  new Float32Array(shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));
const i32 = (n: number, shared: boolean) =>
  new Int32Array(shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));

describe("wasm max pooling", () => {
  // minParallelFlops 0: every call that can be split is.
  const wasmPool = wasmTestPool();

  it("gives the same values and indices through blocks of planes, on a pool, and for planes past the scratch region", () => {
    // [geometry, planes per block expected]: 1200 planes of 20x20, several blocks per thread;
    // ragged strides; one 400x400 plane that does not fit a thread's scratch region (the
    // whole-array path).
    const cases: [MaxPool2dGeometry, (per: number, planes: number) => boolean][] = [
      [
        { n: 40, c: 30, h: 20, w: 20, kh: 2, kw: 2, strideH: 2, strideW: 2 },
        (per, planes) => per > 0 && 2 * per < planes,
      ],
      [{ n: 7, c: 13, h: 23, w: 17, kh: 3, kw: 2, strideH: 2, strideW: 3 }, (per) => per > 0],
      [{ n: 2, c: 1, h: 400, w: 400, kh: 2, kw: 2, strideH: 2, strideW: 2 }, (per) => per === 0],
    ];
    // Byte comparison: deep-comparing these arrays element by element took seconds.
    const same = (a: Float32Array | Int32Array, b: Float32Array | Int32Array) =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
        Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      );
    for (const [g, blocks] of cases) {
      const oh = Math.floor((g.h - g.kh) / g.strideH) + 1;
      const ow = Math.floor((g.w - g.kw) / g.strideW) + 1;
      expect(blocks(planesPerBlock({ h: g.h, w: g.w, oh, ow }), g.n * g.c)).toBe(true);
      const r = rng(g.n * 1000 + g.h);
      for (const shared of [false, true]) {
        const x = f32(g.n * g.c * g.h * g.w, shared);
        for (let i = 0; i < x.length; i++) x[i] = Math.round(r() * 50) / 50;
        const want = refPool(x, g);
        for (const p of [undefined, wasmPool()]) {
          const y = f32(want.y.length, shared);
          const arg = i32(want.arg.length, shared);
          wasmMaxPool2d(x, g, y, arg, { pool: p });
          expect(same(arg, want.arg)).toBe(true);
          expect(same(y, want.y)).toBe(true);
        }
      }
    }
  });

  it("equals the window loop (first maximum, ties, NaN)", () => {
    fc.assert(
      fc.property(caseArb, (g) => {
        const r = rng(g.seed);
        const size = g.n * g.c * g.h * g.w;
        // Few levels: many ties. NaN never replaces a maximum, and a leading NaN is never replaced.
        const x = Float32Array.from({ length: size }, () =>
          g.nans && r() > 0.8 ? NaN : Math.round(((r() + 1) / 2) * g.levels) / g.levels,
        );
        const want = refPool(x, g);
        const y = new Float32Array(want.y.length);
        const arg = new Int32Array(want.arg.length);
        wasmMaxPool2d(x, g, y, arg);
        expect(Array.from(arg)).toEqual(Array.from(want.arg));
        expect(bits(y)).toEqual(bits(want.y));
      }),
      { numRuns: 120 },
    );
  });

  it("validates its module and names bad arguments", () => {
    expect(WebAssembly.validate(maxPoolKernelBytes())).toBe(true);
    expect(WebAssembly.validate(maxPoolKernelBytes({ kh: 4, kw: 4 }))).toBe(true);
    expect(() => maxPoolKernelBytes({ kh: 3, kw: 6 })).toThrow(
      "maxPoolKernelBytes: an unrolled window needs 1 to 16 taps, got 3x6",
    );
    const g = { n: 1, c: 1, h: 4, w: 4, kh: 2, kw: 2, strideH: 2, strideW: 2 };
    expect(() =>
      wasmMaxPool2d(new Float32Array(15), g, new Float32Array(4), new Int32Array(4)),
    ).toThrow("wasmMaxPool2d: x has 15 elements, need 16 for [1, 1, 4, 4]");
    expect(() =>
      wasmMaxPool2d(new Float32Array(16), { ...g, kh: 5 }, new Float32Array(4), new Int32Array(4)),
    ).toThrow("wasmMaxPool2d: window 5x2 does not fit input 4x4");
  });
});
