// The Winograd F(2x2, 3x3) route of the wasm path's convolutions (wasm-winograd.ts): the forward
// product, the input gradient's forward route and the weight gradient within the roundoff bound of the algorithm
// (worked out from a float64 run on absolute values) of a float64 direct convolution, for
// geometries with ragged tile rows, padding 0-2 and sizes past the blocking constants (F > MC,
// C > KC, more tile rows than a block holds); the same bits on 1, 2 and 3 threads; exactly the
// geometries winogradApplies names take the route, `winograd: false` keeps the direct product;
// and a wrong transform (the kernels transposed) fails the bound.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  conv2dForward,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  winogradFromEnv,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import { flippedFilters } from "../src/conv.ts";
import {
  WINOGRAD_GRAD_CHUNKS,
  WINOGRAD_MIN_CHANNELS,
  transformFilters,
  winogradApplies,
  winogradFilterFloats,
  winogradGradApplies,
  winogradGradRowsPerBlock,
  winogradKernelBytes,
  winogradRowsPerBlock,
} from "../src/wasm-winograd.ts";
import { bits, randomArray, testPools } from "./helpers.ts";

interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  f: number;
  pad: number;
  seed: number;
}

const geometry = (g: Geo) => ({
  n: g.n,
  c: g.c,
  h: g.h,
  w: g.w,
  kh: 3,
  kw: 3,
  padH: g.pad,
  padW: g.pad,
});

/** y = conv(x, w) + bias in float64, from the definition (zero outside the input). */
function refConv(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, g: Geo) {
  const oh = g.h + 2 * g.pad - 2;
  const ow = g.w + 2 * g.pad - 2;
  const y = new Float64Array(g.n * g.f * oh * ow);
  for (let i = 0; i < g.n; i++)
    for (let f = 0; f < g.f; f++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = bias[f]!;
          for (let c = 0; c < g.c; c++)
            for (let u = 0; u < 3; u++)
              for (let v = 0; v < 3; v++) {
                const yy = oy + u - g.pad;
                const xx = ox + v - g.pad;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                s +=
                  w[((f * g.c + c) * 3 + u) * 3 + v]! * x[((i * g.c + c) * g.h + yy) * g.w + xx]!;
              }
          y[((i * g.f + f) * oh + oy) * ow + ox] = s;
        }
  return y;
}

/** |Bᵀ|, |G| and |A| (the transforms' matrices with their signs dropped), for the bounds. */
const BT_ABS = [
  [1, 0, 1, 0],
  [0, 1, 1, 0],
  [0, 1, 1, 0],
  [0, 1, 0, 1],
];
const G_ABS = [
  [1, 0, 0],
  [0.5, 0.5, 0.5],
  [0.5, 0.5, 0.5],
  [0, 0, 1],
];
const A_ABS = [
  [1, 0],
  [1, 1],
  [1, 1],
  [0, 1],
];

/**
 * The algorithm run on absolute values in float64: |Aᵀ| (Σ_c (|G| |g| |G|ᵀ) ⊙ (|B|ᵀ |d| |B|)) |A|
 * + |bias| per output. Every intermediate of the float32 run is a sum of at most C + 3 rounded
 * terms of these magnitudes, so (C + 16)·2⁻²⁴ times it bounds its error (Higham 3.5, with room
 * for the transforms' few additions), while a wrong coefficient is off by the size of the output.
 */
function winogradAbs(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, g: Geo) {
  const oh = g.h + 2 * g.pad - 2;
  const ow = g.w + 2 * g.pad - 2;
  const abs = new Float64Array(g.n * g.f * oh * ow);
  const at = (i: number, c: number, yy: number, xx: number) =>
    yy < 0 || yy >= g.h || xx < 0 || xx >= g.w
      ? 0
      : Math.abs(x[((i * g.c + c) * g.h + yy) * g.w + xx]!);
  for (let i = 0; i < g.n; i++)
    for (let ty = 0; ty < oh / 2; ty++)
      for (let tx = 0; tx < ow / 2; tx++)
        for (let f = 0; f < g.f; f++) {
          const m = new Float64Array(16);
          for (let c = 0; c < g.c; c++) {
            for (let a = 0; a < 4; a++)
              for (let b = 0; b < 4; b++) {
                let v = 0;
                for (let r = 0; r < 4; r++)
                  for (let s = 0; s < 4; s++)
                    v +=
                      BT_ABS[a]![r]! *
                      at(i, c, 2 * ty + r - g.pad, 2 * tx + s - g.pad) *
                      BT_ABS[b]![s]!;
                let u = 0;
                for (let r = 0; r < 3; r++)
                  for (let s = 0; s < 3; s++)
                    u +=
                      G_ABS[a]![r]! * Math.abs(w[((f * g.c + c) * 3 + r) * 3 + s]!) * G_ABS[b]![s]!;
                m[4 * a + b] = m[4 * a + b]! + u * v;
              }
          }
          for (let p = 0; p < 2; p++)
            for (let q = 0; q < 2; q++) {
              let s = Math.abs(bias[f]!);
              for (let a = 0; a < 4; a++)
                for (let b = 0; b < 4; b++) s += A_ABS[a]![p]! * m[4 * a + b]! * A_ABS[b]![q]!;
              abs[((i * g.f + f) * oh + 2 * ty + p) * ow + 2 * tx + q] = s;
            }
        }
  return abs;
}

/** dW [F, C, 3, 3] = Σ over images and outputs of gy · the input under the tap, in float64. */
function refWeightGrad(x: ArrayLike<number>, gy: ArrayLike<number>, g: Geo) {
  const oh = g.h + 2 * g.pad - 2;
  const ow = g.w + 2 * g.pad - 2;
  const dW = new Float64Array(g.f * g.c * 9);
  for (let f = 0; f < g.f; f++)
    for (let c = 0; c < g.c; c++)
      for (let u = 0; u < 3; u++)
        for (let v = 0; v < 3; v++) {
          let s = 0;
          for (let i = 0; i < g.n; i++)
            for (let oy = 0; oy < oh; oy++)
              for (let ox = 0; ox < ow; ox++) {
                const yy = oy + u - g.pad;
                const xx = ox + v - g.pad;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                s +=
                  gy[((i * g.f + f) * oh + oy) * ow + ox]! *
                  x[((i * g.c + c) * g.h + yy) * g.w + xx]!;
              }
          dW[((f * g.c + c) * 3 + u) * 3 + v] = s;
        }
  return dW;
}

/**
 * The weight gradient's algorithm on absolute values: |G|ᵀ (Σ over tiles of (|A| |dY| |A|ᵀ) ⊙
 * (|B|ᵀ |d| |B|)) |G| per (filter, channel); its float32 sums run over a chunk's tiles.
 */
function winogradGradAbs(x: ArrayLike<number>, gy: ArrayLike<number>, g: Geo) {
  const oh = g.h + 2 * g.pad - 2;
  const ow = g.w + 2 * g.pad - 2;
  const at = (i: number, c: number, yy: number, xx: number) =>
    yy < 0 || yy >= g.h || xx < 0 || xx >= g.w
      ? 0
      : Math.abs(x[((i * g.c + c) * g.h + yy) * g.w + xx]!);
  const S = new Float64Array(g.f * g.c * 16);
  for (let i = 0; i < g.n; i++)
    for (let ty = 0; ty < oh / 2; ty++)
      for (let tx = 0; tx < ow / 2; tx++) {
        const V = new Float64Array(g.c * 16);
        for (let c = 0; c < g.c; c++)
          for (let a = 0; a < 4; a++)
            for (let b = 0; b < 4; b++) {
              let v = 0;
              for (let r = 0; r < 4; r++)
                for (let q = 0; q < 4; q++)
                  v +=
                    BT_ABS[a]![r]! *
                    at(i, c, 2 * ty + r - g.pad, 2 * tx + q - g.pad) *
                    BT_ABS[b]![q]!;
              V[c * 16 + 4 * a + b] = v;
            }
        for (let f = 0; f < g.f; f++)
          for (let a = 0; a < 4; a++)
            for (let b = 0; b < 4; b++) {
              let m = 0;
              for (let r = 0; r < 2; r++)
                for (let q = 0; q < 2; q++)
                  m +=
                    A_ABS[a]![r]! *
                    Math.abs(gy[((i * g.f + f) * oh + 2 * ty + r) * ow + 2 * tx + q]!) *
                    A_ABS[b]![q]!;
              for (let c = 0; c < g.c; c++) {
                const e = (f * g.c + c) * 16 + 4 * a + b;
                S[e] = S[e]! + m * V[c * 16 + 4 * a + b]!;
              }
            }
      }
  const abs = new Float64Array(g.f * g.c * 9);
  for (let p = 0; p < g.f * g.c; p++)
    for (let u = 0; u < 3; u++)
      for (let v = 0; v < 3; v++) {
        let s = 0;
        for (let a = 0; a < 4; a++)
          for (let b = 0; b < 4; b++) s += G_ABS[a]![u]! * S[p * 16 + 4 * a + b]! * G_ABS[b]![v]!;
        abs[p * 9 + 3 * u + v] = s;
      }
  return abs;
}

function expectWithinBound(
  got: ArrayLike<number>,
  ref: Float64Array,
  abs: Float64Array,
  k: number,
  what: string,
) {
  const u = 2 ** -24;
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    const tol = (k + 16) * u * abs[i]! + 1e-30;
    if (!(d <= tol))
      throw new Error(
        `${what}: element ${i}: got ${got[i]}, want ${ref[i]} (|diff| ${d} > bound ${tol})`,
      );
  }
}

/** Geometries the route takes: even output sides (ragged tile rows: outW/2 not a multiple of 4). */
const geoArb: fc.Arbitrary<Geo> = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: WINOGRAD_MIN_CHANNELS, max: WINOGRAD_MIN_CHANNELS + 8 }),
    f: fc.integer({ min: 1, max: 9 }),
    th: fc.integer({ min: 1, max: 6 }),
    tw: fc.integer({ min: 1, max: 9 }),
    pad: fc.integer({ min: 0, max: 2 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .filter((r) => 2 * r.th + 2 - 2 * r.pad >= 1 && 2 * r.tw + 2 - 2 * r.pad >= 1)
  .map((r) => ({
    n: r.n,
    c: r.c,
    f: r.f,
    pad: r.pad,
    seed: r.seed,
    h: 2 * r.th + 2 - 2 * r.pad,
    w: 2 * r.tw + 2 - 2 * r.pad,
  }));

/** Past MC (F = 70 > 64), with 7 tiles a row (ragged) and more tile rows than one block holds. */
const wide: Geo = { n: 3, c: 20, h: 14, w: 14, f: 70, pad: 1, seed: 7 };
/** Past KC (C = 300 > 256): one product's k is every channel. */
const deep: Geo = { n: 2, c: 300, h: 6, w: 8, f: 5, pad: 1, seed: 9 };

function data(g: Geo) {
  const oh = g.h + 2 * g.pad - 2;
  const ow = g.w + 2 * g.pad - 2;
  return {
    x: randomArray(g.n * g.c * g.h * g.w, g.seed) as Float32Array,
    w: randomArray(g.f * g.c * 9, g.seed + 1) as Float32Array,
    bias: randomArray(g.f, g.seed + 2) as Float32Array,
    gy: randomArray(g.n * g.f * oh * ow, g.seed + 3) as Float32Array,
  };
}

const forward = (
  g: Geo,
  x: Float32Array,
  w: Float32Array,
  bias?: Float32Array,
  pool?: MatrixPool,
) =>
  conv2dForward(x, w, g.f, geometry(g), undefined, { kernels: "wasm", layout: "nchw", bias, pool });

function checkForward(g: Geo, pool?: MatrixPool): void {
  const { x, w, bias } = data(g);
  expect(winogradApplies(conv2dGeometry("test", geometry(g)), g.f)).toBe(true);
  expectWithinBound(
    forward(g, x, w, bias, pool),
    refConv(x, w, bias, g),
    winogradAbs(x, w, bias, g),
    g.c,
    "forward",
  );
}

/**
 * The input gradient of a "same" 3x3 convolution (pad 1) or a "full" one (pad 2, dx smaller
 * than gy... the forward route's geometry: gy padded by 2 - pad): the forward convolution of gy
 * with the flipped filters, checked against that convolution in float64.
 */
function checkInputGrad(g: Geo, pool?: MatrixPool): void {
  const { w, gy } = data(g);
  const geo = conv2dGeometry("test", geometry(g));
  const dx = conv2dInputGrad(w, gy, g.f, geometry(g), undefined, {
    kernels: "wasm",
    layout: "nchw",
    pool,
  });
  const route: Geo = { n: g.n, c: g.f, h: geo.outH, w: geo.outW, f: g.c, pad: 2 - g.pad, seed: 0 };
  const wf = flippedFilters(w, g.f, geo);
  const zero = new Float64Array(g.c);
  expectWithinBound(
    dx,
    refConv(gy, wf, zero, route),
    winogradAbs(gy, wf, zero, route),
    g.f,
    "input gradient",
  );
}

/** The weight gradient against the float64 direct sum, within the bound of the chunks' sums. */
function checkWeightGrad(g: Geo, pool?: MatrixPool): void {
  const { x, gy } = data(g);
  const geo = conv2dGeometry("test", geometry(g));
  expect(winogradGradApplies(geo, g.f)).toBe(true);
  const dW = conv2dWeightGrad(gy, x, g.f, geometry(g), undefined, {
    kernels: "wasm",
    layout: "nchw",
    pool,
  });
  const tilesPerChunk = Math.ceil(g.n / WINOGRAD_GRAD_CHUNKS) * (geo.outH / 2) * (geo.outW / 2);
  expectWithinBound(
    dW,
    refWeightGrad(x, gy, g),
    winogradGradAbs(x, gy, g),
    tilesPerChunk,
    "weight gradient",
  );
}

describe("Winograd F(2x2, 3x3) convolutions (wasm path)", () => {
  const pools = testPools("wasm");

  it("the forward product stays within the algorithm's roundoff bound of a float64 direct convolution", () => {
    fc.assert(
      fc.property(geoArb, (g) => checkForward(g)),
      { numRuns: 40 },
    );
    checkForward(wide);
    checkForward(deep);
    // more tile rows than a block holds, so blocks span images and images span blocks
    const g = conv2dGeometry("test", geometry(wide));
    expect(winogradRowsPerBlock(g, wide.f)).toBeLessThan(wide.n * 7);
  });

  it("the input gradient's forward route takes it where the filters number at least 8, within the bound", () => {
    const sameArb = geoArb.map((g) => ({ ...g, f: g.f + WINOGRAD_MIN_CHANNELS - 1, pad: 1 }));
    fc.assert(
      fc.property(sameArb, (g) => {
        // pad 1 keeps the output size: h, w as drawn (even output = even input)
        const even = { ...g, h: g.h + (g.h % 2), w: g.w + (g.w % 2) };
        checkInputGrad(even);
      }),
      { numRuns: 25 },
    );
    checkInputGrad({ ...wide, c: 9, f: 70 });
    checkInputGrad({ n: 2, c: 12, h: 6, w: 10, f: 9, pad: 2, seed: 3 });
  });

  it("the weight gradient (gy as [N, F, P]) stays within the bound of its chunked sums", () => {
    fc.assert(
      fc.property(geoArb, (g) => checkWeightGrad(g)),
      { numRuns: 30 },
    );
    // more images than chunks, more tile rows than a block holds, F > MC
    checkWeightGrad({ ...wide, n: 11 });
    const g = conv2dGeometry("test", geometry(wide));
    expect(winogradGradRowsPerBlock(g, wide.f)).toBeLessThan(11 * 7);
    checkWeightGrad(deep);
  });

  it("gives the same bits on 1, 2 and 3 threads (forward and both gradients)", () => {
    fc.assert(
      fc.property(geoArb, fc.constantFrom(2, 3), (g, threads) => {
        const { x, w, bias } = data(g);
        const pool = threads === 2 ? pools.pool2() : pools.pool3();
        expect(bits(forward(g, x, w, bias, pool))).toEqual(bits(forward(g, x, w, bias)));
      }),
      { numRuns: 20 },
    );
    for (const g of [wide, { ...wide, c: 70, f: 20, n: 11 }]) {
      const { x, w, bias, gy } = data(g);
      const serial = forward(g, x, w, bias);
      const opts = { kernels: "wasm" as const, layout: "nchw" as const };
      const dx = conv2dInputGrad(w, gy, g.f, geometry(g), undefined, opts);
      const dW = conv2dWeightGrad(gy, x, g.f, geometry(g), undefined, opts);
      for (const pool of [pools.pool2(), pools.pool3()]) {
        const o = { ...opts, pool };
        expect(bits(forward(g, x, w, bias, pool))).toEqual(bits(serial));
        expect(bits(conv2dInputGrad(w, gy, g.f, geometry(g), undefined, o))).toEqual(bits(dx));
        expect(bits(conv2dWeightGrad(gy, x, g.f, geometry(g), undefined, o))).toEqual(bits(dW));
      }
    }
  });

  it("applies exactly to 3x3, stride 1, dilation 1, even output sides and >= 8 channels; winograd: false keeps the direct product", () => {
    const base = { n: 2, c: 8, h: 6, w: 6, kh: 3, kw: 3, padH: 1, padW: 1 };
    const applies = (geo: object, f = 4) =>
      winogradApplies(conv2dGeometry("test", { ...base, ...geo }), f);
    expect(applies({})).toBe(true);
    expect(applies({ h: 5 })).toBe(false); // odd output height
    expect(applies({ w: 7, padW: 0 })).toBe(false); // output width 5
    expect(applies({ w: 8, padW: 0 })).toBe(true);
    expect(applies({ c: WINOGRAD_MIN_CHANNELS - 1 })).toBe(false);
    expect(applies({ kh: 5, padH: 2 })).toBe(false);
    expect(applies({ strideW: 2, w: 12 })).toBe(false);
    expect(applies({ dilationH: 2, padH: 2 })).toBe(false);
    expect(applies({}, 0)).toBe(false);
    // a tile row whose block cannot fit a thread's scratch region falls back
    expect(applies({ c: 4000, w: 4000 })).toBe(false);
    // winograd: false gives the direct product's bits (the batched layout, permuted)
    const g: Geo = { n: 2, c: 9, h: 6, w: 6, f: 3, pad: 1, seed: 4 };
    const { x, w } = data(g);
    const direct = conv2dForward(x, w, g.f, geometry(g), undefined, {
      kernels: "wasm",
      layout: "nchw",
      winograd: false,
    });
    const batched = conv2dForward(x, w, g.f, geometry(g), undefined, { kernels: "wasm" });
    const P = 36;
    for (let i = 0; i < g.n; i++)
      for (let f = 0; f < g.f; f++)
        expect(bits(direct.subarray((i * g.f + f) * P, (i * g.f + f + 1) * P))).toEqual(
          bits(batched.subarray((f * g.n + i) * P, (f * g.n + i + 1) * P)),
        );
    expect(bits(forward(g, x, w))).not.toEqual(bits(direct));
  });

  it("a NaN or an infinity in x reaches exactly the outputs it reaches in the direct product", () => {
    fc.assert(
      fc.property(geoArb, fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity), (g, at, bad) => {
        const { x, w } = data(g);
        x[at % x.length] = bad;
        const opts = { kernels: "wasm" as const, layout: "nchw" as const };
        const direct = conv2dForward(x, w, g.f, geometry(g), undefined, {
          ...opts,
          winograd: false,
        });
        const ours = forward(g, x, w);
        expect(Array.from(ours, Number.isFinite)).toEqual(Array.from(direct, Number.isFinite));
        expect(direct.some((v) => !Number.isFinite(v))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("TESSERA_WINOGRAD: 1, empty or unset on, 0 off, anything else a named error", () => {
    expect(winogradFromEnv({})).toBe(true);
    expect(winogradFromEnv({ TESSERA_WINOGRAD: "" })).toBe(true);
    expect(winogradFromEnv({ TESSERA_WINOGRAD: "1" })).toBe(true);
    expect(winogradFromEnv({ TESSERA_WINOGRAD: "0" })).toBe(false);
    expect(() => winogradFromEnv({ TESSERA_WINOGRAD: "yes" })).toThrow(
      /TESSERA_WINOGRAD must be "1" or "0", got "yes"/,
    );
  });

  it("transformFilters writes G·g·Gᵀ as 16 packed operands; the module validates", () => {
    const F = 5;
    const C = 2;
    const w = randomArray(F * C * 9, 12) as Float32Array;
    const H = new Float32Array(winogradFilterFloats(C, F) + 8).fill(NaN);
    transformFilters(H, 4, w, F, C);
    const G = [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ];
    const fr = 8; // F rounded up to the register tile's 4 rows
    for (let f = 0; f < F; f++)
      for (let c = 0; c < C; c++)
        for (let a = 0; a < 4; a++)
          for (let b = 0; b < 4; b++) {
            let u = 0;
            for (let r = 0; r < 3; r++)
              for (let s = 0; s < 3; s++)
                u += G[a]![r]! * w[((f * C + c) * 3 + r) * 3 + s]! * G[b]![s]!;
            const at = 4 + (4 * a + b) * fr * C + Math.floor(f / 4) * C * 4 + c * 4 + (f % 4);
            expect(H[at]).toBeCloseTo(u, 5);
          }
    // rows past F are zero, and nothing outside the range is written
    expect(H[4 + 0 * fr * C + 1 * C * 4 + 0 * 4 + 1]).toBe(0);
    expect(H[3]).toBeNaN();
    expect(H[4 + winogradFilterFloats(C, F)]).toBeNaN();
    expect(WebAssembly.validate(winogradKernelBytes())).toBe(true);
  });

  it("fails the bound when the transform is wrong (the 3x3 kernels transposed): the check can fail", () => {
    const g = wide;
    const { x, w, bias } = data(g);
    const transposed = new Float32Array(w.length);
    for (let p = 0; p < g.f * g.c; p++)
      for (let u = 0; u < 3; u++)
        for (let v = 0; v < 3; v++) transposed[p * 9 + v * 3 + u] = w[p * 9 + u * 3 + v]!;
    expect(() =>
      expectWithinBound(
        forward(g, x, transposed, bias),
        refConv(x, w, bias, g),
        winogradAbs(x, w, bias, g),
        g.c,
        "transposed",
      ),
    ).toThrow(/forward|transposed/);
    // the weight gradient from gy with each 2x2 output tile transposed
    const { gy } = data(g);
    const flipped = new Float32Array(gy.length);
    const ow = 14;
    for (let p = 0; p < gy.length; p += 2 * ow)
      for (let x0 = 0; x0 < ow; x0 += 2) {
        flipped[p + x0] = gy[p + x0]!;
        flipped[p + x0 + 1] = gy[p + ow + x0]!;
        flipped[p + ow + x0] = gy[p + x0 + 1]!;
        flipped[p + ow + x0 + 1] = gy[p + ow + x0 + 1]!;
      }
    const dW = conv2dWeightGrad(flipped, x, g.f, geometry(g), undefined, {
      kernels: "wasm",
      layout: "nchw",
    });
    expect(() =>
      expectWithinBound(
        dW,
        refWeightGrad(x, gy, g),
        winogradGradAbs(x, gy, g),
        200,
        "tiles transposed",
      ),
    ).toThrow(/tiles transposed/);
  });
});
