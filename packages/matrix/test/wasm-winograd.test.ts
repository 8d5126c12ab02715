// The Winograd F(2x2, r x r) route of the wasm path's convolutions (wasm-winograd.ts; 3x3 and
// 5x5): the algorithm's matrices against the definition of a correlation; the forward product,
// the input gradient's forward route and the weight gradient within the roundoff bound of the
// algorithm (worked out from a float64 run on absolute values) of a float64 direct convolution,
// for geometries with ragged tile rows, every padding the kernel allows and sizes past the
// blocking constants (F > MC, C > KC, more tile rows than a block holds); the same bits on 1, 2
// and 3 threads; exactly the geometries winogradApplies names take the route, `winograd: false`
// keeps the direct product; NaN and infinities reach the direct product's outputs; and wrong
// transforms (the kernels transposed, gy's tiles transposed) fail the bound.
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
  WINOGRAD_MAX_STAGED_BYTES,
  WINOGRAD_MIN_CHANNELS,
  WINOGRAD_SIZES,
  transformFilters,
  winogradApplies,
  winogradFilterFloats,
  winogradGradApplies,
  winogradGradRowsPerBlock,
  winogradKernelBytes,
  winogradMatrices,
  winogradRowsPerBlock,
  winogradStagedBytes,
} from "../src/wasm-winograd.ts";
import { bits, randomArray, testPools } from "./helpers.ts";

interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  f: number;
  /** Kernel size (square). */
  k: number;
  pad: number;
  seed: number;
}

const geometry = (g: Geo) => ({
  n: g.n,
  c: g.c,
  h: g.h,
  w: g.w,
  kh: g.k,
  kw: g.k,
  padH: g.pad,
  padW: g.pad,
});
const outSides = (g: Geo) => [g.h + 2 * g.pad - g.k + 1, g.w + 2 * g.pad - g.k + 1] as const;

/** y = conv(x, w) + bias in float64, from the definition (zero outside the input). */
function refConv(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, g: Geo) {
  const [oh, ow] = outSides(g);
  const { k } = g;
  const y = new Float64Array(g.n * g.f * oh * ow);
  for (let i = 0; i < g.n; i++)
    for (let f = 0; f < g.f; f++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = bias[f]!;
          for (let c = 0; c < g.c; c++)
            for (let u = 0; u < k; u++)
              for (let v = 0; v < k; v++) {
                const yy = oy + u - g.pad;
                const xx = ox + v - g.pad;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                s +=
                  w[((f * g.c + c) * k + u) * k + v]! * x[((i * g.c + c) * g.h + yy) * g.w + xx]!;
              }
          y[((i * g.f + f) * oh + oy) * ow + ox] = s;
        }
  return y;
}

/** dW [F, C, k, k] = Σ over images and outputs of gy · the input under the tap, in float64. */
function refWeightGrad(x: ArrayLike<number>, gy: ArrayLike<number>, g: Geo) {
  const [oh, ow] = outSides(g);
  const { k } = g;
  const dW = new Float64Array(g.f * g.c * k * k);
  for (let f = 0; f < g.f; f++)
    for (let c = 0; c < g.c; c++)
      for (let u = 0; u < k; u++)
        for (let v = 0; v < k; v++) {
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
          dW[((f * g.c + c) * k + u) * k + v] = s;
        }
  return dW;
}

/** |Bᵀ|, |G| and |Aᵀ| of F(2, k): the transforms' matrices with their signs dropped. */
function absMatrices(k: number) {
  const { n, AT, G, BT } = winogradMatrices(k);
  const abs = (m: number[][]) => m.map((row) => row.map(Math.abs));
  return { n, AT: abs(AT), G: abs(G), BT: abs(BT) };
}

/** |x| of channel c, image i at (yy, xx), 0 outside. */
const absAt = (x: ArrayLike<number>, g: Geo, i: number, c: number, yy: number, xx: number) =>
  yy < 0 || yy >= g.h || xx < 0 || xx >= g.w
    ? 0
    : Math.abs(x[((i * g.c + c) * g.h + yy) * g.w + xx]!);

/** |Bᵀ| |d| |B| of the patch of tile (ty, tx) of channel c, image i (n x n, row-major). */
function absV(x: ArrayLike<number>, g: Geo, i: number, c: number, ty: number, tx: number) {
  const { n, BT } = absMatrices(g.k);
  const V = new Float64Array(n * n);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++) {
      let v = 0;
      for (let r = 0; r < n; r++)
        for (let s = 0; s < n; s++)
          v += BT[a]![r]! * absAt(x, g, i, c, 2 * ty + r - g.pad, 2 * tx + s - g.pad) * BT[b]![s]!;
      V[n * a + b] = v;
    }
  return V;
}

/**
 * The algorithm run on absolute values in float64: |Aᵀ| (Σ_c (|G| |g| |G|ᵀ) ⊙ (|B|ᵀ |d| |B|)) |A|
 * + |bias| per output. Every intermediate of the float32 run is a sum of at most C + n rounded
 * terms of these magnitudes, so (C + 16)·2⁻²⁴ times it bounds its error (Higham 3.5, with room
 * for the transforms' few additions), while a wrong coefficient is off by the size of the output.
 */
function winogradAbs(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number>, g: Geo) {
  const [oh, ow] = outSides(g);
  const { n, AT, G } = absMatrices(g.k);
  const { k } = g;
  const abs = new Float64Array(g.n * g.f * oh * ow);
  const U = new Float64Array(g.f * g.c * n * n);
  for (let p = 0; p < g.f * g.c; p++)
    for (let a = 0; a < n; a++)
      for (let b = 0; b < n; b++) {
        let u = 0;
        for (let r = 0; r < k; r++)
          for (let s = 0; s < k; s++)
            u += G[a]![r]! * Math.abs(w[p * k * k + r * k + s]!) * G[b]![s]!;
        U[p * n * n + n * a + b] = u;
      }
  for (let i = 0; i < g.n; i++)
    for (let ty = 0; ty < oh / 2; ty++)
      for (let tx = 0; tx < ow / 2; tx++) {
        const V = Array.from({ length: g.c }, (_, c) => absV(x, g, i, c, ty, tx));
        for (let f = 0; f < g.f; f++) {
          const m = new Float64Array(n * n);
          for (let c = 0; c < g.c; c++)
            for (let e = 0; e < n * n; e++)
              m[e] = m[e]! + U[(f * g.c + c) * n * n + e]! * V[c]![e]!;
          for (let p = 0; p < 2; p++)
            for (let q = 0; q < 2; q++) {
              let s = Math.abs(bias[f]!);
              for (let a = 0; a < n; a++)
                for (let b = 0; b < n; b++) s += AT[p]![a]! * m[n * a + b]! * AT[q]![b]!;
              abs[((i * g.f + f) * oh + 2 * ty + p) * ow + 2 * tx + q] = s;
            }
        }
      }
  return abs;
}

/**
 * The weight gradient's algorithm on absolute values: |G|ᵀ (Σ over tiles of (|A| |dY| |A|ᵀ) ⊙
 * (|B|ᵀ |d| |B|)) |G| per (filter, channel); its float32 sums run over a chunk's tiles.
 */
function winogradGradAbs(x: ArrayLike<number>, gy: ArrayLike<number>, g: Geo) {
  const [oh, ow] = outSides(g);
  const { n, AT, G } = absMatrices(g.k);
  const { k } = g;
  const S = new Float64Array(g.f * g.c * n * n);
  for (let i = 0; i < g.n; i++)
    for (let ty = 0; ty < oh / 2; ty++)
      for (let tx = 0; tx < ow / 2; tx++) {
        const V = Array.from({ length: g.c }, (_, c) => absV(x, g, i, c, ty, tx));
        for (let f = 0; f < g.f; f++)
          for (let a = 0; a < n; a++)
            for (let b = 0; b < n; b++) {
              let m = 0;
              for (let r = 0; r < 2; r++)
                for (let q = 0; q < 2; q++)
                  m +=
                    AT[r]![a]! *
                    Math.abs(gy[((i * g.f + f) * oh + 2 * ty + r) * ow + 2 * tx + q]!) *
                    AT[q]![b]!;
              for (let c = 0; c < g.c; c++) {
                const e = (f * g.c + c) * n * n + n * a + b;
                S[e] = S[e]! + m * V[c]![n * a + b]!;
              }
            }
      }
  const abs = new Float64Array(g.f * g.c * k * k);
  for (let p = 0; p < g.f * g.c; p++)
    for (let u = 0; u < k; u++)
      for (let v = 0; v < k; v++) {
        let s = 0;
        for (let a = 0; a < n; a++)
          for (let b = 0; b < n; b++) s += G[a]![u]! * S[p * n * n + n * a + b]! * G[b]![v]!;
        abs[p * k * k + k * u + v] = s;
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

/**
 * Geometries the route takes: 3x3 or 5x5, padding 0 to k - 1, even output sides (ragged tile
 * rows: outW/2 not a multiple of 4).
 */
const geoArb: fc.Arbitrary<Geo> = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: WINOGRAD_MIN_CHANNELS, max: WINOGRAD_MIN_CHANNELS + 8 }),
    f: fc.integer({ min: 1, max: 9 }),
    k: fc.constantFrom(...WINOGRAD_SIZES),
    th: fc.integer({ min: 1, max: 6 }),
    tw: fc.integer({ min: 1, max: 9 }),
    pad: fc.integer({ min: 0, max: 4 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r) => ({ ...r, pad: r.pad % r.k }))
  .filter((r) => 2 * r.th + r.k - 1 - 2 * r.pad >= 1 && 2 * r.tw + r.k - 1 - 2 * r.pad >= 1)
  .map((r) => ({
    n: r.n,
    c: r.c,
    f: r.f,
    k: r.k,
    pad: r.pad,
    seed: r.seed,
    h: 2 * r.th + r.k - 1 - 2 * r.pad,
    w: 2 * r.tw + r.k - 1 - 2 * r.pad,
  }));

/** Past MC (F = 70 > 64), with 7 tiles a row (ragged) and more tile rows than one block holds. */
const wide: Geo = { n: 3, c: 20, h: 14, w: 14, f: 70, k: 3, pad: 1, seed: 7 };
/** Past KC (C = 300 > 256): one product's k is every channel. */
const deep: Geo = { n: 2, c: 300, h: 6, w: 8, f: 5, k: 3, pad: 1, seed: 9 };
/** LeNet-5's conv2 (20 -> 50, 5x5, unpadded 12x12 -> 8x8), F past MC. */
const lenet5: Geo = { n: 3, c: 20, h: 12, w: 12, f: 70, k: 5, pad: 0, seed: 5 };

function data(g: Geo) {
  const [oh, ow] = outSides(g);
  return {
    x: randomArray(g.n * g.c * g.h * g.w, g.seed) as Float32Array,
    w: randomArray(g.f * g.c * g.k * g.k, g.seed + 1) as Float32Array,
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
 * The input gradient where its forward route applies (padding at least (k - 1) / 2): the forward
 * convolution of gy, padded by k - 1 - pad, with the flipped filters, checked against that
 * convolution in float64.
 */
function checkInputGrad(g: Geo, pool?: MatrixPool): void {
  const { w, gy } = data(g);
  const geo = conv2dGeometry("test", geometry(g));
  const dx = conv2dInputGrad(w, gy, g.f, geometry(g), undefined, {
    kernels: "wasm",
    layout: "nchw",
    pool,
  });
  const route: Geo = {
    n: g.n,
    c: g.f,
    h: geo.outH,
    w: geo.outW,
    f: g.c,
    k: g.k,
    pad: g.k - 1 - g.pad,
    seed: 0,
  };
  expect(winogradApplies(conv2dGeometry("test", geometry(route)), g.c)).toBe(true);
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

describe("Winograd F(2x2, r x r) convolutions (wasm path)", () => {
  const pools = testPools("wasm");

  it("winogradMatrices(r) computes a correlation: Aᵀ[(G g) ⊙ (Bᵀ d)] = Σ_k g_k d_{i+k}", () => {
    for (const r of WINOGRAD_SIZES) {
      const { n, AT, G, BT } = winogradMatrices(r);
      expect([AT.length, AT[0]!.length, G.length, G[0]!.length, BT.length]).toEqual([
        2,
        n,
        n,
        r,
        n,
      ]);
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: -9, max: 9 }), { minLength: r, maxLength: r }),
          fc.array(fc.integer({ min: -9, max: 9 }), { minLength: n, maxLength: n }),
          (g, d) => {
            const gg = G.map((row) => row.reduce((s, v, k) => s + v * g[k]!, 0));
            const bd = BT.map((row) => row.reduce((s, v, t) => s + v * d[t]!, 0));
            for (let i = 0; i < 2; i++) {
              const y = AT[i]!.reduce((s, v, j) => s + v * gg[j]! * bd[j]!, 0);
              const want = g.reduce((s, gk, k) => s + gk * d[i + k]!, 0);
              expect(Math.abs(y - want)).toBeLessThan(1e-9);
            }
          },
        ),
        { numRuns: 50 },
      );
    }
    expect(() => winogradMatrices(4)).toThrow(/winogradMatrices: r must be one of 3, 5, got 4/);
  });

  it("the forward product stays within the algorithm's roundoff bound of a float64 direct convolution", () => {
    fc.assert(
      fc.property(geoArb, (g) => checkForward(g)),
      { numRuns: 40 },
    );
    checkForward(wide);
    checkForward(deep);
    checkForward(lenet5);
    // more tile rows than a block holds, so blocks span images and images span blocks
    const g = conv2dGeometry("test", geometry(wide));
    expect(winogradRowsPerBlock(g, wide.f)).toBeLessThan(wide.n * 7);
  });

  it("the input gradient's forward route takes it where the filters number at least 8, within the bound", () => {
    const sameArb = geoArb.map((g) => ({
      ...g,
      f: g.f + WINOGRAD_MIN_CHANNELS - 1,
      // (k - 1) / 2 keeps the size ("same"), k - 1 is a "full" convolution's
      pad: g.pad < (g.k - 1) / 2 ? (g.k - 1) / 2 : g.pad,
    }));
    fc.assert(
      fc.property(sameArb, (g) => {
        // even output sides
        const [oh, ow] = outSides(g);
        checkInputGrad({ ...g, h: g.h + (oh % 2), w: g.w + (ow % 2) });
      }),
      { numRuns: 25 },
    );
    checkInputGrad({ ...wide, c: 9, f: 70 });
    checkInputGrad({ n: 2, c: 12, h: 6, w: 10, f: 9, k: 3, pad: 2, seed: 3 });
    checkInputGrad({ n: 2, c: 10, h: 8, w: 6, f: 12, k: 5, pad: 2, seed: 4 });
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
    checkWeightGrad({ ...lenet5, n: 11 });
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
    for (const g of [wide, { ...wide, c: 70, f: 20, n: 11 }, { ...lenet5, n: 11, pad: 2 }]) {
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

  it("applies exactly to 3x3 and 5x5, stride 1, dilation 1, even output sides and >= 8 channels; winograd: false keeps the direct product", () => {
    const base = { n: 2, c: 8, h: 6, w: 6, kh: 3, kw: 3, padH: 1, padW: 1 };
    const applies = (geo: object, f = 4) =>
      winogradApplies(conv2dGeometry("test", { ...base, ...geo }), f);
    expect(applies({})).toBe(true);
    expect(applies({ h: 5 })).toBe(false); // odd output height
    expect(applies({ w: 7, padW: 0 })).toBe(false); // output width 5
    expect(applies({ w: 8, padW: 0 })).toBe(true);
    expect(applies({ c: WINOGRAD_MIN_CHANNELS - 1 })).toBe(false);
    expect(applies({ kh: 5, kw: 5, padH: 2, padW: 2 })).toBe(true);
    expect(applies({ kh: 5, padH: 2 })).toBe(false); // 5x3: not square
    expect(applies({ kh: 7, kw: 7, padH: 3, padW: 3 })).toBe(false);
    expect(applies({ kh: 2, kw: 2, h: 7, w: 7, padH: 0, padW: 0 })).toBe(false);
    expect(applies({ strideW: 2, w: 12 })).toBe(false);
    expect(applies({ dilationH: 2, padH: 2 })).toBe(false);
    expect(applies({}, 0)).toBe(false);
    // a tile row whose block cannot fit a thread's scratch region falls back
    expect(applies({ c: 4000, w: 4000 })).toBe(false);
    // as does a batch whose staged input and output would pass 512 MiB (the memory holds 1 GiB)
    const big = { n: 1024, c: 64, h: 64, w: 64 };
    expect(winogradStagedBytes(conv2dGeometry("test", { ...base, ...big }), 64)).toBeGreaterThan(
      WINOGRAD_MAX_STAGED_BYTES,
    );
    expect(applies(big, 64)).toBe(false);
    expect(applies({ ...big, n: 128 }, 64)).toBe(true);
    // winograd: false gives the direct product's bits (the batched layout, permuted)
    const g: Geo = { n: 2, c: 9, h: 6, w: 6, f: 3, k: 3, pad: 1, seed: 4 };
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

  it("transformFilters writes G·g·Gᵀ as n² packed operands; the modules validate", () => {
    for (const r of WINOGRAD_SIZES) {
      const { n, G } = winogradMatrices(r);
      const F = 5;
      const C = 2;
      const w = randomArray(F * C * r * r, 12) as Float32Array;
      const H = new Float32Array(winogradFilterFloats(r, C, F) + 8).fill(NaN);
      transformFilters(H, 4, w, F, C, r);
      const fr = 8; // F rounded up to the register tile's 4 rows
      for (let f = 0; f < F; f++)
        for (let c = 0; c < C; c++)
          for (let a = 0; a < n; a++)
            for (let b = 0; b < n; b++) {
              let u = 0;
              for (let k = 0; k < r; k++)
                for (let l = 0; l < r; l++)
                  u += G[a]![k]! * w[((f * C + c) * r + k) * r + l]! * G[b]![l]!;
              const at = 4 + (n * a + b) * fr * C + Math.floor(f / 4) * C * 4 + c * 4 + (f % 4);
              expect(H[at]).toBeCloseTo(u, 5);
            }
      // rows past F are zero, and nothing outside the range is written
      expect(H[4 + 0 * fr * C + 1 * C * 4 + 0 * 4 + 1]).toBe(0);
      expect(H[3]).toBeNaN();
      expect(H[4 + winogradFilterFloats(r, C, F)]).toBeNaN();
      expect(WebAssembly.validate(winogradKernelBytes(r))).toBe(true);
    }
  });

  it("fails the bound when the transform is wrong (the kernels transposed, gy's tiles transposed): the check can fail", () => {
    for (const g of [wide, lenet5]) {
      const { x, w, bias, gy } = data(g);
      const { k } = g;
      const transposed = new Float32Array(w.length);
      for (let p = 0; p < g.f * g.c; p++)
        for (let u = 0; u < k; u++)
          for (let v = 0; v < k; v++) transposed[p * k * k + v * k + u] = w[p * k * k + u * k + v]!;
      expect(() =>
        expectWithinBound(
          forward(g, x, transposed, bias),
          refConv(x, w, bias, g),
          winogradAbs(x, w, bias, g),
          g.c,
          "transposed",
        ),
      ).toThrow(/transposed/);
      // the weight gradient from gy with each 2x2 output tile transposed
      const [, ow] = outSides(g);
      const flipped = new Float32Array(gy.length);
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
    }
  });
});
