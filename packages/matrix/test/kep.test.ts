// The KEP convolution kernels (forward, input gradient, weight gradient) against direct loops over
// the masked dense weight, and the layout's conversions (mask, gather/scatter, packed positions).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  KepLayout,
  conv2dGeometry,
  createPool,
  isShared,
  kepBackwardInput,
  kepBackwardWeight,
  kepForward,
  kepPad,
  positionBits,
} from "../src/index.ts";
import type { KepGeometry, MatrixPool } from "../src/index.ts";
import { KIND_KEP } from "../src/jobs.ts";
import { expectClose, randomArray, rng } from "./helpers.ts";

interface Case extends Required<KepGeometry> {
  f: number;
  /** Kept per plane: a number for every plane, or -1 for a random count per plane. */
  keep: number;
  seed: number;
}

/**
 * Geometries with empty batches, channels and filters, kernels up to 5x5, strides and padding
 * past the kernel, and masks from 0 to kh·kw kept per plane: filter lists of every length mod 4
 * (the kernels take kept elements four at a time).
 */
const kepCase: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 0, max: 3 }),
    c: fc.integer({ min: 0, max: 4 }),
    f: fc.integer({ min: 0, max: 4 }),
    h: fc.integer({ min: 1, max: 9 }),
    w: fc.integer({ min: 1, max: 11 }),
    kh: fc.integer({ min: 1, max: 5 }),
    kw: fc.integer({ min: 1, max: 5 }),
    strideH: fc.integer({ min: 1, max: 3 }),
    strideW: fc.integer({ min: 1, max: 3 }),
    padH: fc.integer({ min: 0, max: 3 }),
    padW: fc.integer({ min: 0, max: 3 }),
    keep: fc.integer({ min: -1, max: 25 }),
    seed: fc.integer(),
  })
  .filter((g) => g.h + 2 * g.padH >= g.kh && g.w + 2 * g.padW >= g.kw)
  .map((g) => ({ ...g, keep: Math.min(g.keep, g.kh * g.kw) }));

/** A 0/1 mask [F, C, kh, kw]: `keep` random positions per plane (a random count when -1). */
function randomMask(
  f: number,
  c: number,
  kh: number,
  kw: number,
  keep: number,
  seed: number,
): Float32Array {
  const r = rng(seed);
  const k2 = kh * kw;
  const mask = new Float32Array(f * c * k2);
  for (let p = 0; p < f * c; p++) {
    const n = keep >= 0 ? keep : Math.floor(((r() + 1) / 2) * (k2 + 1));
    const order = Array.from({ length: k2 }, (_, i) => i);
    for (let i = k2 - 1; i > 0; i--) {
      const j = Math.floor(((r() + 1) / 2) * (i + 1)) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    for (let i = 0; i < n; i++) mask[p * k2 + order[i]!] = 1;
  }
  return mask;
}

/** Input pixel read by output (oy, ox) at tap (u, v), or -1 in the padding. */
function tap(
  g: Case,
  img: number,
  ch: number,
  oy: number,
  ox: number,
  u: number,
  v: number,
): number {
  const yy = oy * g.strideH - g.padH + u;
  const xx = ox * g.strideW - g.padW + v;
  if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) return -1;
  return ((img * g.c + ch) * g.h + yy) * g.w + xx;
}

/** Direct convolution with the masked dense weight, its input gradient and its weight gradient. */
function reference(g: Case, x: ArrayLike<number>, wt: ArrayLike<number>, dy: ArrayLike<number>) {
  const r = conv2dGeometry("reference", g);
  const { outH, outW } = r;
  const y = new Float64Array(g.n * g.f * outH * outW);
  const dx = new Float64Array(g.n * g.c * g.h * g.w);
  const dw = new Float64Array(g.f * g.c * g.kh * g.kw);
  for (let i = 0; i < g.n; i++)
    for (let o = 0; o < g.f; o++)
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++) {
          const yi = ((i * g.f + o) * outH + oy) * outW + ox;
          for (let ch = 0; ch < g.c; ch++)
            for (let u = 0; u < g.kh; u++)
              for (let v = 0; v < g.kw; v++) {
                const xi = tap(g, i, ch, oy, ox, u, v);
                if (xi < 0) continue;
                const wi = ((o * g.c + ch) * g.kh + u) * g.kw + v;
                y[yi] = y[yi]! + x[xi]! * wt[wi]!;
                dx[xi] = dx[xi]! + dy[yi]! * wt[wi]!;
                dw[wi] = dw[wi]! + dy[yi]! * x[xi]!;
              }
        }
  return { y, dx, dw, outH, outW };
}

/** Runs the three kernels of one case in float32 or float64 (on `pool` when given). */
function run(g: Case, f64: boolean, pool?: MatrixPool) {
  const mask = randomMask(g.f, g.c, g.kh, g.kw, g.keep, g.seed);
  const layout = KepLayout.fromMask(mask, g.f, g.c, g.kh, g.kw);
  const x = randomArray(g.n * g.c * g.h * g.w, g.seed + 1, f64);
  const dense = randomArray(mask.length, g.seed + 2, f64);
  const masked = dense.map((v, i) => v * mask[i]!);
  const values = layout.gather(dense);
  const { outH, outW } = conv2dGeometry("test", g);
  const dy = randomArray(g.n * g.f * outH * outW, g.seed + 3, f64);
  const ref = reference(g, x, masked, dy);
  const opts = pool === undefined ? undefined : { pool };
  const xp = kepPad(x, g);
  const y = kepForward(xp, values, layout, g, undefined, opts);
  const dx = kepBackwardInput(dy, values, layout, g, undefined, opts);
  const dv = kepBackwardWeight(dy, xp, layout, g, undefined, opts);
  return { layout, mask, ref, xp, y, dx, dv };
}

describe("kepForward / kepBackwardInput / kepBackwardWeight", () => {
  for (const f64 of [false, true]) {
    it(`equal the masked dense convolution and its gradients (${f64 ? "float64" : "float32"})`, () => {
      fc.assert(
        fc.property(kepCase, (g) => {
          const { layout, mask, ref, y, dx, dv } = run(g, f64);
          expect(y.length).toBe(ref.y.length);
          expect(dx.length).toBe(ref.dx.length);
          expect(dv.length).toBe(layout.nnz);
          expect(y instanceof Float64Array).toBe(f64);
          const k = g.c * g.kh * g.kw;
          expectClose(y, ref.y, k, f64);
          expectClose(dx, ref.dx, g.f * g.kh * g.kw, f64);
          // The weight gradient exists only at kept positions, where it is the dense one.
          expectClose(
            layout.scatter(dv),
            ref.dw.map((v, i) => v * mask[i]!),
            g.n * ref.outH * ref.outW,
            f64,
          );
        }),
        { numRuns: 150 },
      );
    });
  }

  it("catch a kept element read at the wrong shift (the reference is sharp enough)", () => {
    // Planted fault: the layout says position 1 but the weight lives at position 0 of a 1x2
    // kernel. The comparison must fail wherever the input is not constant along a row.
    const g: Case = {
      n: 1,
      c: 1,
      f: 1,
      h: 2,
      w: 4,
      kh: 1,
      kw: 2,
      strideH: 1,
      strideW: 1,
      padH: 0,
      padW: 0,
      keep: 1,
      seed: 0,
    };
    const x = randomArray(8, 5);
    const wt = Float32Array.of(1, 0);
    const wrong = new KepLayout(1, 1, 1, 2, Int32Array.of(0, 1), Int32Array.of(1));
    const y = kepForward(kepPad(x, g), Float32Array.of(1), wrong, g);
    const ref = reference(g, x, wt, new Float32Array(6));
    expect(() => expectClose(y, ref.y, 2)).toThrow(/element/);
  });

  it("write only their outputs' first elements and reject mismatched shapes", () => {
    const layout = KepLayout.fromMask(new Float32Array(2 * 3 * 9).fill(1), 2, 3, 3, 3);
    const g = { n: 1, c: 3, h: 4, w: 4, kh: 3, kw: 3, padH: 1, padW: 1 };
    const values = new Float32Array(layout.nnz).fill(1);
    const xp = kepPad(new Float32Array(48).fill(1), g);
    const out = new Float32Array(2 * 16 + 3).fill(7);
    kepForward(xp, values, layout, g, out);
    expect(Array.from(out.subarray(32))).toEqual([7, 7, 7]);
    expect(out[5]).toBe(27); // an inside pixel sums 3 channels x 9 taps of ones
    expect(() => kepForward(xp, values, layout, { ...g, c: 2 })).toThrow(
      /kepForward: geometry has C=2, kernel 3x3 but the layout is for weight \[F=2, C=3, kh=3, kw=3\]/,
    );
    expect(() => kepForward(xp.subarray(1), values, layout, g)).toThrow(
      /kepForward: xp has 107 elements/,
    );
    expect(() =>
      kepForward(xp, new Float64Array(54) as unknown as Float32Array, layout, g as KepGeometry),
    ).toThrow(/values is a Float64Array/);
    expect(() =>
      kepBackwardWeight(new Float32Array(32), xp, layout, g, new Float32Array(3)),
    ).toThrow(/kepBackwardWeight: out has 3 elements but shape \[nnz=54\]/);
  });
});

describe("the KEP kernels on a pool", () => {
  let pool: MatrixPool;
  beforeAll(async () => {
    pool = createPool({ threads: 2, minParallelFlops: 0 });
    await pool.ready();
  });
  afterAll(() => pool.close());

  it("give bitwise the serial results (split by output planes, input planes and filters)", () => {
    const before = pool.jobsByKind.get(KIND_KEP) ?? 0;
    fc.assert(
      fc.property(kepCase, fc.boolean(), (g, f64) => {
        const serial = run(g, f64);
        const pooled = run(g, f64, pool);
        // Ordinary arrays, staged through the pool's reused scratch: a fresh shared buffer per
        // call is never given back by a synchronous loop (alloc in kep.ts).
        for (const key of ["xp", "y", "dx", "dv"] as const)
          expect(isShared(pooled[key])).toBe(false);
        for (const key of ["y", "dx", "dv"] as const)
          expect(Array.from(pooled[key])).toEqual(Array.from(serial[key]));
      }),
      { numRuns: 100 },
    );
    // Non-empty cases of two or more lines went to the pool (the split is exercised, not skipped).
    expect(pool.jobsByKind.get(KIND_KEP) ?? 0).toBeGreaterThan(before);
  });

  it("with the default threshold, small jobs stay on the calling thread (the same bits either way)", async () => {
    // minParallelFlops 300,000 and KEP's discount of 24: pooled from 7.2 MFLOP.
    const byDefault = createPool({ threads: 2 });
    try {
      const g = {
        n: 1,
        c: 32,
        h: 14,
        w: 14,
        kh: 3,
        kw: 3,
        strideH: 1,
        strideW: 1,
        padH: 1,
        padW: 1,
      };
      const layout = KepLayout.fromMask(randomMask(64, 32, 3, 3, 3, 5), 64, 32, 3, 3);
      const values = randomArray(layout.nnz, 6) as Float32Array;
      const jobs = () => byDefault.jobsByKind.get(KIND_KEP) ?? 0;
      for (const [n, pooled] of [
        [1, false], // 2 · 196 · 6,144 = 2.4 MFLOP
        [4, true], // 9.6 MFLOP
      ] as const) {
        const geom = { ...g, n };
        const xp = kepPad(randomArray(n * 32 * 196, 7) as Float32Array, geom);
        const before = jobs();
        const y = kepForward(xp, values, layout, geom, undefined, { pool: byDefault });
        expect(jobs() - before, `batch ${n}`).toBe(pooled ? 1 : 0);
        expect(Array.from(y)).toEqual(Array.from(kepForward(xp, values, layout, geom)));
      }
    } finally {
      await byDefault.close();
    }
  });

  it("write only the first elements of a longer caller-given output", () => {
    const g: Case = {
      n: 2,
      c: 3,
      f: 4,
      h: 5,
      w: 5,
      kh: 3,
      kw: 3,
      strideH: 1,
      strideW: 1,
      padH: 1,
      padW: 1,
      keep: 3,
      seed: 4,
    };
    const layout = KepLayout.fromMask(randomMask(4, 3, 3, 3, 3, 4), 4, 3, 3, 3);
    const xp = kepPad(randomArray(150, 1) as Float32Array, g);
    const values = randomArray(layout.nnz, 2) as Float32Array;
    const out = new Float32Array(2 * 4 * 25 + 5).fill(7);
    kepForward(xp, values, layout, g, out, { pool });
    expect(Array.from(out.subarray(200))).toEqual([7, 7, 7, 7, 7]);
    expect(Array.from(out.subarray(0, 200))).toEqual(Array.from(kepForward(xp, values, layout, g)));
  });
});

describe("KepLayout", () => {
  const layoutCase = fc.record({
    f: fc.integer({ min: 0, max: 5 }),
    c: fc.integer({ min: 0, max: 5 }),
    kh: fc.integer({ min: 1, max: 7 }),
    kw: fc.integer({ min: 1, max: 7 }),
    keep: fc.integer({ min: -1, max: 49 }),
    seed: fc.integer(),
  });

  it("round-trips masks, dense weights and bit-packed positions", () => {
    fc.assert(
      fc.property(layoutCase, ({ f, c, kh, kw, keep, seed }) => {
        const k2 = kh * kw;
        const n = Math.min(keep, k2);
        const mask = randomMask(f, c, kh, kw, n, seed);
        const layout = KepLayout.fromMask(mask, f, c, kh, kw);
        expect(Array.from(layout.toMask())).toEqual(Array.from(mask));
        const nnz = mask.reduce((s, v) => s + v, 0);
        expect(layout.nnz).toBe(nnz);
        const dense = randomArray(mask.length, seed + 1);
        const values = layout.gather(dense);
        expect(Array.from(layout.scatter(values))).toEqual(
          Array.from(dense.map((v, i) => (mask[i] ? v : 0))),
        );
        if (n >= 0) expect(layout.uniformCount).toBe(f * c === 0 ? 0 : n);
        const packed = layout.packPositions();
        const bits = positionBits(kh, kw);
        expect(packed.length).toBe(Math.ceil((nnz * bits) / 8));
        const counts = layout.uniformCount ?? layout.counts();
        const back = KepLayout.fromPacked(f, c, kh, kw, counts, packed);
        expect(Array.from(back.ptr)).toEqual(Array.from(layout.ptr));
        expect(Array.from(back.pos)).toEqual(Array.from(layout.pos));
        expect(layout.indexBytes()).toBe(
          packed.length + (layout.uniformCount === null ? f * c : 0),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("packs 3x3 positions in 4 bits and 5x5 positions in 5", () => {
    expect(positionBits(3, 3)).toBe(4);
    expect(positionBits(5, 5)).toBe(5);
    expect(positionBits(1, 1)).toBe(1);
    // 32x32 3x3 planes keeping 3 each: 3072 positions of 4 bits = 1536 bytes against 12288 value bytes.
    const mask = randomMask(32, 32, 3, 3, 3, 9);
    const layout = KepLayout.fromMask(mask, 32, 32, 3, 3);
    expect(layout.indexBytes()).toBe(1536);
    // Two positions of one plane: 8 = 0b1000 and 2 = 0b0010 share a byte, low nibble first.
    const two = new KepLayout(1, 1, 3, 3, Int32Array.of(0, 2), Int32Array.of(2, 8));
    expect(Array.from(two.packPositions())).toEqual([0x82]);
  });

  it("rejects malformed arrays, naming what was wrong", () => {
    expect(() => new KepLayout(1, 2, 3, 3, Int32Array.of(0, 1), Int32Array.of(0))).toThrow(
      /KepLayout: ptr must have F·C \+ 1 = 3 entries for weight \[F=1, C=2, kh=3, kw=3\], got 2/,
    );
    expect(() => new KepLayout(1, 1, 3, 3, Int32Array.of(0, 2), Int32Array.of(4, 4))).toThrow(
      /positions of plane 0 must be strictly ascending in 0..8, got 4,4/,
    );
    expect(() => new KepLayout(1, 1, 3, 3, Int32Array.of(0, 1), Int32Array.of(9))).toThrow(
      /ascending in 0..8, got 9/,
    );
    expect(() => new KepLayout(1, 1, 1, 1, Int32Array.of(0, 2), Int32Array.of(0, 0))).toThrow(
      /plane 0 \(f=0, c=0\) keeps 2 elements; expected 0..1/,
    );
    expect(() => KepLayout.fromMask(new Float32Array(8), 1, 1, 3, 3)).toThrow(
      /KepLayout.fromMask: mask must have 9 entries for weight \[F=1, C=1, kh=3, kw=3\], got 8/,
    );
    expect(() => KepLayout.fromPacked(1, 1, 3, 3, 2, new Uint8Array(2))).toThrow(
      /KepLayout.fromPacked: 2 positions of 4 bits need 1 packed bytes, got 2/,
    );
  });
});
