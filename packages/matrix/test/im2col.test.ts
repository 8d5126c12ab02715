import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { col2im, conv2dGeometry, createPool, im2col, matmul, sharedFloat64 } from "../src/index.ts";
import type { Conv2dGeometry, MatrixPool } from "../src/index.ts";
import { expectClose, randomArray } from "./helpers.ts";

/** Direct convolution (cross-correlation) in float64: the reference for im2col + GEMM. */
function refConv(
  x: ArrayLike<number>,
  wt: ArrayLike<number>,
  cout: number,
  g: Required<Conv2dGeometry>,
  outH: number,
  outW: number,
): Float64Array {
  const y = new Float64Array(g.n * cout * outH * outW);
  for (let i = 0; i < g.n; i++)
    for (let o = 0; o < cout; o++)
      for (let oy = 0; oy < outH; oy++)
        for (let ox = 0; ox < outW; ox++) {
          let s = 0;
          for (let ch = 0; ch < g.c; ch++)
            for (let u = 0; u < g.kh; u++)
              for (let v = 0; v < g.kw; v++) {
                const yy = oy * g.strideH - g.padH + u * g.dilationH;
                const xx = ox * g.strideW - g.padW + v * g.dilationW;
                if (yy < 0 || yy >= g.h || xx < 0 || xx >= g.w) continue;
                s +=
                  x[((i * g.c + ch) * g.h + yy) * g.w + xx]! *
                  wt[((o * g.c + ch) * g.kh + u) * g.kw + v]!;
              }
          y[((i * cout + o) * outH + oy) * outW + ox] = s;
        }
  return y;
}

const geometry = fc
  .record({
    n: fc.integer({ min: 0, max: 3 }),
    c: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 1, max: 9 }),
    w: fc.integer({ min: 1, max: 9 }),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    strideH: fc.integer({ min: 1, max: 3 }),
    strideW: fc.integer({ min: 1, max: 3 }),
    padH: fc.integer({ min: 0, max: 2 }),
    padW: fc.integer({ min: 0, max: 2 }),
    dilationH: fc.integer({ min: 1, max: 2 }),
    dilationW: fc.integer({ min: 1, max: 2 }),
  })
  .filter(
    (g) =>
      g.h + 2 * g.padH >= g.dilationH * (g.kh - 1) + 1 &&
      g.w + 2 * g.padW >= g.dilationW * (g.kw - 1) + 1,
  );

describe("im2col / col2im", () => {
  it("im2col + per-image GEMM equals a direct convolution", () => {
    fc.assert(
      fc.property(geometry, fc.integer({ min: 1, max: 4 }), fc.integer(), (g, cout, seed) => {
        const r = conv2dGeometry("test", g);
        const x = randomArray(g.n * g.c * g.h * g.w, seed);
        const wt = randomArray(cout * r.patchSize, seed + 7);
        const cols = im2col(x, g);
        expect(cols.length).toBe(g.n * r.patchSize * r.positions);
        const y = new Float32Array(g.n * cout * r.positions);
        for (let i = 0; i < g.n; i++) {
          const part = matmul(
            wt,
            cols.subarray(i * r.patchSize * r.positions),
            cout,
            r.patchSize,
            r.positions,
          );
          y.set(part, i * cout * r.positions);
        }
        expectClose(y, refConv(x, wt, cout, g, r.outH, r.outW), r.patchSize);
      }),
      { numRuns: 120 },
    );
  });

  it("col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>", () => {
    fc.assert(
      fc.property(geometry, fc.integer(), (g, seed) => {
        const r = conv2dGeometry("test", g);
        const x = randomArray(g.n * g.c * g.h * g.w, seed, true);
        const c = randomArray(g.n * r.patchSize * r.positions, seed + 3, true);
        const cols = im2col(x, g);
        const back = col2im(c, g, new Float64Array(x.length).fill(5));
        let lhs = 0;
        let rhs = 0;
        for (let i = 0; i < c.length; i++) lhs += cols[i]! * c[i]!;
        for (let i = 0; i < x.length; i++) rhs += x[i]! * back[i]!;
        expect(Math.abs(lhs - rhs)).toBeLessThanOrEqual(1e-9 * (1 + c.length));
      }),
      { numRuns: 120 },
    );
  });

  it('"batched" layout [K, N·P] holds the "per-image" rows [N, K, P] side by side; col2im reads both', () => {
    fc.assert(
      fc.property(geometry, fc.integer(), (g, seed) => {
        const r = conv2dGeometry("test", g);
        const K = r.patchSize;
        const P = r.positions;
        const x = randomArray(g.n * g.c * g.h * g.w, seed, true);
        const perImage = im2col(x, g);
        const batched = im2col(x, g, new Float64Array(K * g.n * P).fill(7), "batched");
        const moved = new Float64Array(K * g.n * P); // [N, K, P] -> [K, N, P]
        for (let i = 0; i < g.n; i++)
          for (let k = 0; k < K; k++)
            for (let p = 0; p < P; p++)
              moved[(k * g.n + i) * P + p] = perImage[(i * K + k) * P + p]!;
        expect(batched).toEqual(moved);
        const c = randomArray(K * g.n * P, seed + 5, true);
        const cPerImage = new Float64Array(c.length); // c read as [K, N, P], laid out [N, K, P]
        for (let i = 0; i < g.n; i++)
          for (let k = 0; k < K; k++)
            for (let p = 0; p < P; p++) cPerImage[(i * K + k) * P + p] = c[(k * g.n + i) * P + p]!;
        expect(col2im(c, g, undefined, "batched")).toEqual(col2im(cPerImage, g));
      }),
      { numRuns: 120 },
    );
  });

  describe("on a pool", () => {
    let pool: MatrixPool;
    beforeAll(async () => {
      pool = createPool({ threads: 2, minParallelFlops: 0 });
      await pool.ready();
    });
    afterAll(() => pool.close());

    it("gives bitwise the serial result in both layouts, with shared or ordinary arrays", () => {
      fc.assert(
        fc.property(
          geometry,
          fc.constantFrom("per-image", "batched"),
          fc.boolean(),
          fc.integer(),
          (g, layout, shared, seed) => {
            const r = conv2dGeometry("test", g);
            const len = g.n * r.patchSize * r.positions;
            const onMemory = (a: Float64Array) => {
              if (!shared) return a;
              const s = sharedFloat64(a.length);
              s.set(a);
              return s;
            };
            const x = onMemory(randomArray(g.n * g.c * g.h * g.w, seed, true) as Float64Array);
            const c = onMemory(randomArray(len, seed + 1, true) as Float64Array);
            const cols = im2col(x, g, onMemory(new Float64Array(len).fill(3)), layout, { pool });
            expect(cols).toEqual(im2col(x, g, undefined, layout));
            const back = col2im(c, g, onMemory(new Float64Array(x.length).fill(3)), layout, {
              pool,
            });
            expect(back).toEqual(col2im(c, g, undefined, layout));
          },
        ),
        { numRuns: 80 },
      );
    });
  });

  it("rejects bad geometry and short buffers with named errors", () => {
    const g = { n: 1, c: 1, h: 3, w: 3, kh: 2, kw: 2 };
    expect(conv2dGeometry("t", g)).toMatchObject({ outH: 2, outW: 2, patchSize: 4, positions: 4 });
    expect(() => im2col(new Float32Array(8), g)).toThrow(/im2col: x has 8 elements/);
    expect(() => im2col(new Float32Array(9), { ...g, kh: 5 })).toThrow(/im2col: kernel 5x2/);
    expect(() => im2col(new Float32Array(9), { ...g, strideH: 0 })).toThrow(
      /strideH must be at least 1/,
    );
    expect(() => col2im(new Float32Array(15), g)).toThrow(/col2im: cols has 15 elements/);
    expect(() => col2im(new Float32Array(16), g, new Float32Array(8))).toThrow(
      /col2im: out has 8 elements/,
    );
    const two = { ...g, n: 2 };
    expect(() => im2col(new Float32Array(18), two, new Float32Array(31), "batched")).toThrow(
      /im2col: out has 31 elements.*\[C\*kh\*kw=4, N\*outH\*outW=8\]/,
    );
    expect(() => col2im(new Float32Array(16), g, undefined, "rows" as never)).toThrow(
      /col2im: layout must be "per-image" or "batched", got rows/,
    );
  });
});
