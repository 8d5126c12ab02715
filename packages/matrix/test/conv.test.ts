// conv2dForward / conv2dWeightGrad / conv2dInputGrad on both kernel paths: within the float32
// roundoff bound of a float64 reference built from the definition of the patch matrix, bitwise
// equal on the WebAssembly path to the composed im2col/col2im + dense calls, and bitwise the
// same on 1, 2 and 3 threads; geometries with stride, padding, dilation and ragged sizes, and
// shapes past the kernel's blocking constants (K > 256, N·P > 512, F > 64). These are the direct
// products (winograd: false); the Winograd F(2x2, 3x3) route is wasm-winograd.test.ts's.
import { beforeEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  col2im,
  conv2dForward,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  im2col,
  kernelPath,
  matmul,
  matmulTransA,
  matmulTransB,
} from "../src/index.ts";
import type { Conv2dGeometry, KernelPath, MatrixPool } from "../src/index.ts";
import { convKernelBytes, convTables, stagePlanes } from "../src/wasm-conv.ts";
import { WasmThread, createKernelMemory } from "../src/wasm-gemm.ts";
import { AS_FORWARD_MIN_CHANNELS, flippedFilters, inputGradAsForward } from "../src/conv.ts";
import {
  bits,
  expectWithinRoundoff,
  randomArray,
  refMatmulWithAbs,
  testPools,
  transpose,
} from "./helpers.ts";

interface Case {
  g: Required<Conv2dGeometry>;
  f: number;
  seed: number;
}

/** The patch matrix [K, N·P] in float64, straight from its definition (0 in the padding). */
function refCols(x: ArrayLike<number>, geometry: Required<Conv2dGeometry>): Float64Array {
  const g = conv2dGeometry("refCols", geometry);
  const K = g.patchSize;
  const NP = g.n * g.positions;
  const cols = new Float64Array(K * NP);
  for (let ch = 0; ch < g.c; ch++)
    for (let u = 0; u < g.kh; u++)
      for (let v = 0; v < g.kw; v++) {
        const r = (ch * g.kh + u) * g.kw + v;
        for (let i = 0; i < g.n; i++)
          for (let oy = 0; oy < g.outH; oy++)
            for (let ox = 0; ox < g.outW; ox++) {
              const yy = oy * g.strideH - g.padH + u * g.dilationH;
              const xx = ox * g.strideW - g.padW + v * g.dilationW;
              const inside = yy >= 0 && yy < g.h && xx >= 0 && xx < g.w;
              cols[r * NP + (i * g.outH + oy) * g.outW + ox] = inside
                ? x[((i * g.c + ch) * g.h + yy) * g.w + xx]!
                : 0;
            }
      }
  return cols;
}

/** dx of the reference: dcols = Wᵀ·G in float64, each entry added onto the pixel it came from. */
function refInputGrad(
  w: ArrayLike<number>,
  gy: ArrayLike<number>,
  c: Case,
): { ref: Float64Array; abs: Float64Array } {
  const g = conv2dGeometry("refInputGrad", c.g);
  const K = g.patchSize;
  const NP = g.n * g.positions;
  const d = refMatmulWithAbs(transpose(Float64Array.from(w), c.f, K), gy, K, c.f, NP);
  const ref = new Float64Array(g.n * g.c * g.h * g.w);
  const abs = new Float64Array(ref.length);
  for (let ch = 0; ch < g.c; ch++)
    for (let u = 0; u < g.kh; u++)
      for (let v = 0; v < g.kw; v++) {
        const r = (ch * g.kh + u) * g.kw + v;
        for (let i = 0; i < g.n; i++)
          for (let oy = 0; oy < g.outH; oy++)
            for (let ox = 0; ox < g.outW; ox++) {
              const yy = oy * g.strideH - g.padH + u * g.dilationH;
              const xx = ox * g.strideW - g.padW + v * g.dilationW;
              if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
              const q = r * NP + (i * g.outH + oy) * g.outW + ox;
              const p = ((i * g.c + ch) * g.h + yy) * g.w + xx;
              ref[p]! += d.ref[q]!;
              abs[p]! += d.abs[q]!;
            }
      }
  return { ref, abs };
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: 1, max: 3 }),
    f: fc.integer({ min: 1, max: 9 }),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    extraH: fc.integer({ min: 0, max: 9 }),
    extraW: fc.integer({ min: 0, max: 11 }),
    strideH: fc.integer({ min: 1, max: 2 }),
    strideW: fc.integer({ min: 1, max: 3 }),
    padH: fc.integer({ min: 0, max: 2 }),
    padW: fc.integer({ min: 0, max: 2 }),
    dilationH: fc.integer({ min: 1, max: 2 }),
    dilationW: fc.integer({ min: 1, max: 2 }),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r) => ({
    f: r.f,
    seed: r.seed,
    g: {
      n: r.n,
      c: r.c,
      kh: r.kh,
      kw: r.kw,
      strideH: r.strideH,
      strideW: r.strideW,
      padH: r.padH,
      padW: r.padW,
      dilationH: r.dilationH,
      dilationW: r.dilationW,
      // big enough for the dilated kernel
      h: Math.max(1, r.dilationH * (r.kh - 1) + 1 - 2 * r.padH) + r.extraH,
      w: Math.max(1, r.dilationW * (r.kw - 1) + 1 - 2 * r.padW) + r.extraW,
    },
  }));

/**
 * Geometries whose input gradient the wasm path computes as a forward convolution
 * (inputGradAsForward): AS_FORWARD_MIN_CHANNELS to 4 more input channels, stride 1, dilation 1, k - 1 >= pad >= (k - 1) / 2.
 */
const sameArb: fc.Arbitrary<Case> = fc
  .record({
    n: fc.integer({ min: 1, max: 3 }),
    c: fc.integer({ min: AS_FORWARD_MIN_CHANNELS, max: AS_FORWARD_MIN_CHANNELS + 4 }),
    f: fc.integer({ min: 1, max: 9 }),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    h: fc.integer({ min: 1, max: 9 }),
    w: fc.integer({ min: 1, max: 11 }),
    morePadH: fc.boolean(),
    morePadW: fc.boolean(),
    seed: fc.integer({ min: 1, max: 1 << 30 }),
  })
  .map((r) => ({
    f: r.f,
    seed: r.seed,
    g: {
      n: r.n,
      c: r.c,
      h: r.h,
      w: r.w,
      kh: r.kh,
      kw: r.kw,
      strideH: 1,
      strideW: 1,
      // (k - 1) / 2 rounded up, or k - 1
      padH: r.morePadH ? r.kh - 1 : Math.ceil((r.kh - 1) / 2),
      padW: r.morePadW ? r.kw - 1 : Math.ceil((r.kw - 1) / 2),
      dilationH: 1,
      dilationW: 1,
    },
  }));

/** Past MC (F = 70 > 64), KC (K = 3·10·9 = 270 > 256) and NC (N·P = 2·17·17 > 512). */
const large: Case = {
  f: 70,
  seed: 5,
  g: {
    n: 2,
    c: 3,
    h: 19,
    w: 19,
    kh: 10,
    kw: 9,
    strideH: 1,
    strideW: 1,
    padH: 4,
    padW: 3,
    dilationH: 1,
    dilationW: 1,
  },
};

/** The forward-route case past the blocking constants: C = 70 > MC, F·9 = 270 > KC, N·P = 578 > NC. */
const sameLarge: Case = {
  f: 30,
  seed: 11,
  g: { ...large.g, c: 70, h: 17, w: 17, kh: 3, kw: 3, padH: 1, padW: 1 },
};

function data(c: Case) {
  const g = conv2dGeometry("data", c.g);
  const K = g.patchSize;
  const NP = g.n * g.positions;
  return {
    K,
    NP,
    x: randomArray(c.g.n * c.g.c * c.g.h * c.g.w, c.seed) as Float32Array,
    w: randomArray(c.f * K, c.seed + 1) as Float32Array,
    gy: randomArray(c.f * NP, c.seed + 2) as Float32Array,
  };
}

function checkAgainstReference(c: Case, kernels: KernelPath, pool?: MatrixPool): void {
  const { K, NP, x, w, gy } = data(c);
  // the direct products (the Winograd route has its own bound: wasm-winograd.test.ts)
  const opts = { kernels, pool, winograd: false };
  const cols = refCols(x, c.g);
  expectWithinRoundoff(
    conv2dForward(x, w, c.f, c.g, undefined, opts),
    refMatmulWithAbs(w, cols, c.f, K, NP),
    K,
    `forward (${kernels})`,
  );
  expectWithinRoundoff(
    conv2dWeightGrad(gy, x, c.f, c.g, undefined, opts),
    refMatmulWithAbs(gy, transpose(cols, K, NP), c.f, NP, K),
    NP,
    `weight gradient (${kernels})`,
  );
  expectWithinRoundoff(
    conv2dInputGrad(w, gy, c.f, c.g, undefined, opts),
    refInputGrad(w, gy, c),
    // the forward route sums F·kh·kw products per pixel
    c.f + K + c.f * c.g.kh * c.g.kw,
    `input gradient (${kernels})`,
  );
}

/** Batched gy [F, N·P] permuted to [N, F, P]. */
function nchwOf(gy: Float32Array, c: Case): Float32Array {
  const g = conv2dGeometry("nchwOf", c.g);
  const P = g.positions;
  const out = new Float32Array(gy.length);
  for (let j = 0; j < c.f; j++)
    for (let i = 0; i < g.n; i++)
      for (let p = 0; p < P; p++) out[(i * c.f + j) * P + p] = gy[(j * g.n + i) * P + p]!;
  return out;
}

/**
 * The wasm path's input gradient composed from the calls it stands for: col2im of Wᵀ·gy, or
 * where inputGradAsForward gives a geometry, the forward convolution of gy (as images) with the
 * flipped filters.
 */
function composedInputGrad(w: Float32Array, gy: Float32Array, c: Case, pool?: MatrixPool) {
  const g = conv2dGeometry("composedInputGrad", c.g);
  const opts = { kernels: "wasm" as const, pool, winograd: false };
  const asForward = inputGradAsForward(g, c.f);
  if (asForward !== undefined)
    return conv2dForward(nchwOf(gy, c), flippedFilters(w, c.f, g), g.c, asForward, undefined, {
      ...opts,
      layout: "nchw",
    });
  const NP = g.n * g.positions;
  return col2im(
    matmulTransA(w, gy, g.patchSize, c.f, NP, undefined, opts),
    c.g,
    undefined,
    "batched",
  );
}

/** The three results on the wasm path, and the composed im2col/col2im + dense calls on it. */
function bothWays(c: Case, pool?: MatrixPool) {
  const { K, NP, x, w, gy } = data(c);
  const opts = { kernels: "wasm" as const, pool, winograd: false };
  const cols = im2col(x, c.g, undefined, "batched");
  return {
    fused: [
      conv2dForward(x, w, c.f, c.g, undefined, opts),
      conv2dWeightGrad(gy, x, c.f, c.g, undefined, opts),
      conv2dInputGrad(w, gy, c.f, c.g, undefined, opts),
    ],
    composed: [
      matmul(w, cols, c.f, K, NP, undefined, opts),
      matmulTransB(gy, cols, c.f, NP, K, undefined, opts),
      composedInputGrad(w, gy, c, pool),
    ],
  };
}

describe("convolution products", () => {
  const pools = testPools("wasm");
  // minParallelFlops 0: even the small property cases are split over the threads (read per
  // test: the pools open in beforeAll)
  let pool2: MatrixPool;
  let pool3: MatrixPool;
  beforeEach(() => {
    pool2 = pools.pool2();
    pool3 = pools.pool3();
  });

  for (const kernels of ["asm", "wasm"] as const) {
    it(`stay within float32 roundoff of the float64 reference (${kernels})`, () => {
      fc.assert(
        fc.property(caseArb, (c) => checkAgainstReference(c, kernels)),
        { numRuns: 40 },
      );
      fc.assert(
        fc.property(sameArb, (c) => checkAgainstReference(c, kernels)),
        { numRuns: 15 },
      );
      checkAgainstReference(large, kernels);
      checkAgainstReference(sameLarge, kernels);
    });
  }

  it("on the wasm path equal the composed im2col/col2im and dense products bitwise (or the flipped-filter forward convolution)", () => {
    fc.assert(
      fc.property(fc.oneof(caseArb, sameArb), (c) => {
        const { fused, composed } = bothWays(c);
        for (let i = 0; i < 3; i++) expect(bits(fused[i]!)).toEqual(bits(composed[i]!));
      }),
      { numRuns: 40 },
    );
    for (const c of [large, sameLarge]) {
      const { fused, composed } = bothWays(c);
      for (let i = 0; i < 3; i++) expect(bits(fused[i]!)).toEqual(bits(composed[i]!));
    }
  });

  it("take the forward route for the input gradient exactly where inputGradAsForward says, with the geometry of dx", () => {
    const route = (geo: Conv2dGeometry, f: number) =>
      inputGradAsForward(conv2dGeometry("test", geo), f);
    const same3 = { n: 128, c: 32, h: 28, w: 28, kh: 3, kw: 3, padH: 1, padW: 1 };
    // smallCnn()'s layers but the first (one input channel) take it ...
    expect(route(same3, 32)).toEqual({
      ...same3,
      c: 32,
      strideH: 1,
      strideW: 1,
      dilationH: 1,
      dilationW: 1,
    });
    expect(route({ ...same3, c: 64, h: 14, w: 14 }, 64)?.h).toBe(14);
    // ... padding k - 1 (a "full" convolution, dx from an unpadded gy) ...
    expect(route({ ...same3, padH: 2, padW: 2 }, 8)).toMatchObject({
      h: 30,
      w: 30,
      padH: 0,
      padW: 0,
    });
    // ... and nothing else: too few channels, LeNet-5's unpadded 5x5, stride, dilation, pad > k - 1
    expect(route({ ...same3, c: AS_FORWARD_MIN_CHANNELS - 1 }, 32)).toBeUndefined();
    expect(route({ n: 128, c: 20, h: 12, w: 12, kh: 5, kw: 5 }, 50)).toBeUndefined();
    expect(route({ ...same3, strideW: 2 }, 32)).toBeUndefined();
    expect(route({ ...same3, dilationH: 2, padH: 2 }, 32)).toBeUndefined();
    expect(route({ ...same3, padH: 3 }, 32)).toBeUndefined();
    expect(route(same3, 0)).toBeUndefined();
    // flippedFilters: element (c, f, u, v) of W' is (f, c, kh-1-u, kw-1-v) of W
    const g = conv2dGeometry("test", { n: 1, c: 2, h: 3, w: 3, kh: 2, kw: 3 });
    const w = Float32Array.from({ length: 3 * 12 }, (_, i) => i);
    const wf = flippedFilters(w, 3, g);
    expect(wf[((1 * 3 + 2) * 2 + 0) * 3 + 2]).toBe(w[((2 * 2 + 1) * 2 + 1) * 3 + 0]);
    expect(Array.from(wf).sort((a, b) => a - b)).toEqual(Array.from(w));
  });

  it("a wrong flip of the filters fails the reference check (the route's test can fail)", () => {
    const c = sameLarge;
    const { w, gy } = data(c);
    const g = conv2dGeometry("test", c.g);
    const asForward = inputGradAsForward(g, c.f)!;
    // W transposed to [C, F·kh·kw] without the spatial flip
    const unflipped = new Float32Array(w.length);
    for (let f = 0; f < c.f; f++)
      for (let ch = 0; ch < g.c; ch++)
        for (let t = 0; t < 9; t++) unflipped[(ch * c.f + f) * 9 + t] = w[(f * g.c + ch) * 9 + t]!;
    const wrong = conv2dForward(nchwOf(gy, c), unflipped, g.c, asForward, undefined, {
      kernels: "wasm",
      layout: "nchw",
    });
    expect(() =>
      expectWithinRoundoff(wrong, refInputGrad(w, gy, c), c.f + g.patchSize + c.f * 9, "unflipped"),
    ).toThrow();
  });

  it('write layout "nchw" as the batched result permuted to [N, F, P], on both paths and any thread count', () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom(undefined, 2, 3), (c, threads) => {
        const { x, w } = data(c);
        const g = conv2dGeometry("test", c.g);
        const P = g.positions;
        for (const kernels of ["asm", "wasm"] as const) {
          const pool = threads === 2 ? pool2 : threads === 3 ? pool3 : undefined;
          const batched = conv2dForward(x, w, c.f, c.g, undefined, { kernels, pool });
          const nchw = conv2dForward(x, w, c.f, c.g, undefined, { kernels, pool, layout: "nchw" });
          const want = new Float32Array(batched.length);
          for (let j = 0; j < c.f; j++)
            for (let i = 0; i < g.n; i++)
              for (let p = 0; p < P; p++)
                want[(i * c.f + j) * P + p] = batched[(j * g.n + i) * P + p]!;
          expect(bits(nchw)).toEqual(bits(want));
        }
      }),
      { numRuns: 30 },
    );
    expect(() =>
      conv2dForward(
        new Float32Array(4),
        new Float32Array(1),
        1,
        { n: 1, c: 1, h: 2, w: 2, kh: 1, kw: 1 },
        undefined,
        {
          layout: "nhwc" as "nchw",
        },
      ),
    ).toThrow('conv2dForward: options.layout must be "batched" or "nchw", got "nhwc"');
  });

  it('read gy in layout "nchw" as the batched gy permuted, in both gradients (both paths, 1-3 threads, past MC/KC/NC)', () => {
    const check = (c: Case, threads: number | undefined) => {
      const { x, w, gy } = data(c);
      const g = conv2dGeometry("test", c.g);
      const P = g.positions;
      // gy as [N, F, P]: the same values as the batched gy [F, N·P].
      const nchw = new Float32Array(gy.length);
      for (let j = 0; j < c.f; j++)
        for (let i = 0; i < g.n; i++)
          for (let p = 0; p < P; p++) nchw[(i * c.f + j) * P + p] = gy[(j * g.n + i) * P + p]!;
      const pool = threads === 2 ? pool2 : threads === 3 ? pool3 : undefined;
      for (const kernels of ["asm", "wasm"] as const) {
        // the direct products (gy "nchw" would send the weight gradient to Winograd's route)
        const o = { kernels, pool, winograd: false };
        const on = { ...o, layout: "nchw" as const };
        const dW = conv2dWeightGrad(gy, x, c.f, c.g, undefined, o);
        expect(bits(conv2dWeightGrad(nchw, x, c.f, c.g, undefined, on))).toEqual(bits(dW));
        const dx = conv2dInputGrad(w, gy, c.f, c.g, undefined, o);
        expect(bits(conv2dInputGrad(w, nchw, c.f, c.g, undefined, on))).toEqual(bits(dx));
      }
    };
    fc.assert(fc.property(caseArb, fc.constantFrom(undefined, 2, 3), check), { numRuns: 30 });
    fc.assert(fc.property(sameArb, fc.constantFrom(undefined, 2, 3), check), { numRuns: 10 });
    // P = 64, a multiple of the panel width: the input gradient's column blocks cross images
    // (12 images, N·P = 768 past NC); and P = 36, not a multiple: blocks end with their image.
    const across: Case = {
      f: 9,
      seed: 7,
      g: { ...large.g, n: 12, c: 2, h: 10, w: 10, kh: 3, kw: 3, padH: 0, padW: 0 },
    };
    const ragged: Case = { f: 9, seed: 8, g: { ...across.g, h: 8, w: 8 } };
    for (const threads of [undefined, 2, 3])
      for (const c of [large, across, ragged, sameLarge]) check(c, threads);
    expect(() =>
      conv2dInputGrad(
        new Float32Array(1),
        new Float32Array(3),
        1,
        { n: 1, c: 1, h: 2, w: 2, kh: 1, kw: 1 },
        undefined,
        { layout: "nchw" },
      ),
    ).toThrow("conv2dInputGrad: gy has 3 elements but shape [N=1, F=1, P=4] needs at least 4");
  });

  it("add options.bias to every output of its filter after the sum (both layouts, paths, 1-3 threads)", () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom(undefined, 2, 3), (c, threads) => {
        const { x, w } = data(c);
        const g = conv2dGeometry("test", c.g);
        const P = g.positions;
        const bias = randomArray(c.f, c.seed + 7) as Float32Array;
        const pool = threads === 2 ? pool2 : threads === 3 ? pool3 : undefined;
        for (const kernels of ["asm", "wasm"] as const)
          for (const layout of ["batched", "nchw"] as const) {
            const plain = conv2dForward(x, w, c.f, c.g, undefined, { kernels, pool, layout });
            const want = plain.map((v, e) => {
              const filter =
                layout === "nchw" ? Math.floor(e / P) % c.f : Math.floor(e / (g.n * P));
              return v + bias[filter]!;
            });
            const got = conv2dForward(x, w, c.f, c.g, undefined, { kernels, pool, layout, bias });
            expect(bits(got)).toEqual(bits(want));
          }
      }),
      { numRuns: 30 },
    );
    expect(() =>
      conv2dForward(
        new Float32Array(4),
        new Float32Array(2),
        2,
        { n: 1, c: 1, h: 2, w: 2, kh: 1, kw: 1 },
        undefined,
        {
          bias: new Float32Array(1),
        },
      ),
    ).toThrow("conv2dForward: bias has 1 elements but shape [F=2] needs at least 2");
  });

  it("apply options.relu after the bias: max(·, +0) of the unfused output, bitwise (layouts, paths, Winograd or not, 1-3 threads)", () => {
    // smallCnn-like geometries take the Winograd route with layout "nchw" on the wasm path
    const winogradArb = sameArb.map((c) => ({
      ...c,
      g: { ...c.g, kh: 3, kw: 3, padH: 1, padW: 1, h: 2 * c.g.h, w: 2 * c.g.w },
    }));
    fc.assert(
      fc.property(
        fc.oneof(caseArb, winogradArb),
        fc.constantFrom(undefined, 2, 3),
        fc.boolean(),
        (c, threads, withBias) => {
          const { x, w } = data(c);
          const bias = withBias ? (randomArray(c.f, c.seed + 7) as Float32Array) : undefined;
          const pool = threads === 2 ? pool2 : threads === 3 ? pool3 : undefined;
          for (const kernels of ["asm", "wasm"] as const)
            for (const layout of ["batched", "nchw"] as const)
              for (const winograd of [true, false]) {
                const o = { kernels, pool, layout, bias, winograd };
                const plain = conv2dForward(x, w, c.f, c.g, undefined, o);
                // f32x4.max(v, +0): +0 for v <= 0 (and -0), NaN kept
                const want = plain.map((v) => (v > 0 || v !== v ? v : 0));
                const got = conv2dForward(x, w, c.f, c.g, undefined, { ...o, relu: true });
                expect(bits(got)).toEqual(bits(want));
              }
        },
      ),
      { numRuns: 25 },
    );
    // a fault the check sees: the ReLU left out
    const c = { ...large, g: { ...large.g, c: 8, kh: 3, kw: 3, padH: 1, padW: 1, h: 8, w: 8 } };
    const { x, w } = data(c);
    const o = { kernels: "wasm" as const, layout: "nchw" as const };
    const got = conv2dForward(x, w, c.f, c.g, undefined, { ...o, relu: true });
    expect(Math.min(...got)).toBe(0);
    expect(Math.min(...conv2dForward(x, w, c.f, c.g, undefined, o))).toBeLessThan(0);
  });

  it("give the same bits on 1, 2 and 3 threads", () => {
    const cases = [
      large,
      sameLarge,
      ...fc.sample(caseArb, { numRuns: 12, seed: 7 }).map((c) => ({ ...c, g: { ...c.g, n: 5 } })),
      ...fc.sample(sameArb, { numRuns: 6, seed: 7 }).map((c) => ({ ...c, g: { ...c.g, n: 5 } })),
    ];
    for (const c of cases) {
      const one = bothWays(c).fused.map(bits);
      for (const pool of [pool2, pool3]) {
        const many = bothWays(c, pool).fused.map(bits);
        for (let i = 0; i < 3; i++) expect(many[i]).toEqual(one[i]);
      }
    }
  });

  it("convTables: the offsets of the definition, also when geometries differing in one field alternate (cached)", () => {
    const fields = ["n", "c", "h", "w", "kh", "kw", "strideH", "strideW", "padH", "padW"] as const;
    fc.assert(
      fc.property(
        caseArb,
        fc.constantFrom(...fields, "dilationH" as const, "dilationW" as const),
        (c, field) => {
          const g = conv2dGeometry("test", c.g);
          // One field one larger (skipped where the window then no longer fits).
          const changed = { ...c.g, [field]: c.g[field] + 1 };
          let other: ReturnType<typeof conv2dGeometry>;
          try {
            other = conv2dGeometry("test", changed);
          } catch {
            return;
          }
          for (const geo of [g, other, g, other]) {
            const t = convTables(geo);
            const Hp = geo.h + 2 * geo.padH;
            const Wp = geo.w + 2 * geo.padW;
            const K = geo.patchSize;
            const NP = geo.n * geo.positions;
            for (let r = 0; r < K; r++) {
              const ch = Math.floor(r / (geo.kh * geo.kw));
              const u = Math.floor(r / geo.kw) % geo.kh;
              const v = r % geo.kw;
              expect(t.rowOff[r]).toBe(ch * Hp * Wp + u * geo.dilationH * Wp + v * geo.dilationW);
            }
            for (let j = 0; j < NP; j++) {
              const i = Math.floor(j / geo.positions);
              const oy = Math.floor(j / geo.outW) % geo.outH;
              const ox = j % geo.outW;
              expect(t.colOff[j]).toBe(
                i * geo.c * Hp * Wp + oy * geo.strideH * Wp + ox * geo.strideW,
              );
            }
            expect(t.xpLength).toBe(geo.n * geo.c * Hp * Wp);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("stagePlanes writes exactly planes [p0, p1) of the zero-padded input, whatever the other planes held", () => {
    const t = new WasmThread(createKernelMemory(1 << 20), 0);
    fc.assert(
      fc.property(
        fc.record({
          planes: fc.integer({ min: 1, max: 7 }),
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 13 }),
          padH: fc.integer({ min: 0, max: 3 }),
          padW: fc.integer({ min: 0, max: 3 }),
          cut: fc.tuple(fc.nat(), fc.nat()),
          at: fc.integer({ min: 0, max: 5 }),
          seed: fc.integer({ min: 1, max: 1 << 30 }),
        }),
        (r) => {
          const { planes, h, w, padH, padW } = r;
          const [p0, p1] = [r.cut[0] % (planes + 1), r.cut[1] % (planes + 1)].sort((a, b) => a - b);
          const Hp = h + 2 * padH;
          const Wp = w + 2 * padW;
          const x = randomArray(planes * h * w, r.seed) as Float32Array;
          const H = t.f32();
          const xpAt = 16 * r.at; // byte address
          const len = planes * Hp * Wp;
          H.fill(Number.NaN, 0, (xpAt >> 2) + len + 16); // stale values everywhere
          stagePlanes(t, { x, xpAt, h, w, padH, padW }, p0!, p1!);
          const want = new Float32Array(len).fill(Number.NaN);
          for (let pl = p0!; pl < p1!; pl++) {
            want.fill(0, pl * Hp * Wp, (pl + 1) * Hp * Wp);
            for (let y = 0; y < h; y++)
              for (let xx = 0; xx < w; xx++)
                want[(pl * Hp + y + padH) * Wp + padW + xx] = x[(pl * h + y) * w + xx]!;
          }
          expect(bits(H.subarray(xpAt >> 2, (xpAt >> 2) + len))).toEqual(bits(want));
          // nothing written after the range (before it: xpAt floats of NaN, checked too)
          expect(H.subarray(0, xpAt >> 2).every(Number.isNaN)).toBe(true);
          expect(H.subarray((xpAt >> 2) + len, (xpAt >> 2) + len + 16).every(Number.isNaN)).toBe(
            true,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("the kernel generator validates for panel widths 4 to 16", () => {
    for (const nr of [4, 8, 12, 16])
      expect(WebAssembly.validate(convKernelBytes({ mr: 4, nr }))).toBe(true);
    expect(() => convKernelBytes({ mr: 4, nr: 6 })).toThrow(
      "convKernelBytes: tile.nr must be a positive multiple of 4, got 4x6",
    );
  });

  it("kernelPath resolves the option, then the pool, then the process default", () => {
    expect(kernelPath({ kernels: "asm", pool: pool2 })).toBe("asm");
    expect(kernelPath({ pool: pool2 })).toBe("wasm");
    expect(() => kernelPath({ kernels: "simd" as KernelPath })).toThrow(
      'kernelPath: options.kernels must be "asm" or "wasm", got "simd"',
    );
  });

  it("name the function, the argument and the expected shape in errors", () => {
    const g = { n: 2, c: 1, h: 5, w: 5, kh: 3, kw: 3 };
    const x = new Float32Array(50);
    expect(() => conv2dForward(x, new Float32Array(17), 2, g)).toThrow(
      /conv2dForward: weight .*\[F=2, K=9\]/,
    );
    expect(() => conv2dWeightGrad(new Float32Array(5), x, 2, g)).toThrow(
      /conv2dWeightGrad: gy .*\[F=2, N\*P=18\]/,
    );
    expect(() =>
      conv2dInputGrad(new Float32Array(18), new Float32Array(36), 2, g, new Float32Array(3)),
    ).toThrow(/conv2dInputGrad: out .*\[N=2, C=1, H=5, W=5\]/);
    expect(() => conv2dForward(x, new Float64Array(18) as never, 2, g)).toThrow(
      /conv2dForward: weight/,
    );
  });
});
