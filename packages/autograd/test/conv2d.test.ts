// conv2d (im2col + GEMM) against a direct nested-loop convolution, gradients by finite
// differences over random geometries with stride, padding and dilation.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Variable, conv2d, gradcheck, mul, relu, setMatrixPool, sum } from "../src/index.ts";
import { kernelPathRuns, normal64, param, seedArb } from "./helpers.ts";

interface Geo {
  n: number;
  c: number;
  h: number;
  w: number;
  f: number;
  kh: number;
  kw: number;
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

/** y[i,o,oy,ox] = b[o] + Σ x[i,ch,oy·s - p + u·d, ox·s - p + v·d]·W[o,ch,u,v] (zero outside). */
function naiveConv(x: T.Tensor, wt: T.Tensor, b: T.Tensor | null, g: Geo): T.Tensor {
  const oh =
    Math.floor((g.h + 2 * g.padding[0] - g.dilation[0] * (g.kh - 1) - 1) / g.stride[0]) + 1;
  const ow =
    Math.floor((g.w + 2 * g.padding[1] - g.dilation[1] * (g.kw - 1) - 1) / g.stride[1]) + 1;
  const y = T.zeros([g.n, g.f, oh, ow], "float64");
  for (let i = 0; i < g.n; i++)
    for (let o = 0; o < g.f; o++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = b ? b.get(o) : 0;
          for (let ch = 0; ch < g.c; ch++)
            for (let u = 0; u < g.kh; u++)
              for (let v = 0; v < g.kw; v++) {
                const yy = oy * g.stride[0] - g.padding[0] + u * g.dilation[0];
                const xx = ox * g.stride[1] - g.padding[1] + v * g.dilation[1];
                if (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w)
                  s += x.get(i, ch, yy, xx) * wt.get(o, ch, u, v);
              }
          y.set(i, o, oy, ox, s);
        }
  return y;
}

const arbGeo: fc.Arbitrary<Geo> = fc
  .record({
    n: fc.integer({ min: 0, max: 2 }),
    c: fc.integer({ min: 1, max: 2 }),
    f: fc.integer({ min: 1, max: 3 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    extraH: fc.integer({ min: 0, max: 3 }),
    extraW: fc.integer({ min: 0, max: 3 }),
    stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    padding: fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 1 })),
    dilation: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
  })
  .map((r) => ({
    ...r,
    // big enough for the dilated kernel
    h: Math.max(1, r.dilation[0] * (r.kh - 1) + 1 - 2 * r.padding[0]) + r.extraH,
    w: Math.max(1, r.dilation[1] * (r.kw - 1) + 1 - 2 * r.padding[1]) + r.extraW,
  }));

/** y = conv2d(x, w, b) and the gradients of Σ y·r (r random), in x's dtype, on the current pool. */
function convAndGrads(x: T.Tensor, wt: T.Tensor, b: T.Tensor, r: T.Tensor, g: Geo): T.Tensor[] {
  const xv = new Variable(x, { requiresGrad: true });
  const wv = new Variable(wt, { requiresGrad: true });
  const bv = new Variable(b, { requiresGrad: true });
  const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation };
  const y = conv2d(xv, wv, bv, opts);
  sum(mul(y, new Variable(r))).backward();
  return [y.data, xv.grad!, wv.grad!, bv.grad!];
}

describe("conv2d on the WebAssembly kernels (float32: no patch matrix, wasm-conv.ts)", () => {
  let one: MatrixPool;
  let two: MatrixPool;
  beforeAll(async () => {
    one = createPool({ threads: 1, kernels: "wasm" });
    two = createPool({ threads: 2, kernels: "wasm", minParallelFlops: 0 });
    await two.ready();
  });
  afterAll(async () => {
    setMatrixPool(undefined);
    await one.close();
    await two.close();
  });

  it("matches the float64 op (gradchecked above) in value and every gradient, bitwise on 1 and 2 threads", () => {
    fc.assert(
      fc.property(arbGeo, seedArb, (g, seed) => {
        const x = normal64([g.n, g.c, g.h, g.w], seed);
        const wt = normal64([g.f, g.c, g.kh, g.kw], seed + 1);
        const b = normal64([g.f], seed + 2);
        const oh =
          Math.floor((g.h + 2 * g.padding[0] - g.dilation[0] * (g.kh - 1) - 1) / g.stride[0]) + 1;
        const ow =
          Math.floor((g.w + 2 * g.padding[1] - g.dilation[1] * (g.kw - 1) - 1) / g.stride[1]) + 1;
        const r = normal64([g.n, g.f, oh, ow], seed + 3);
        setMatrixPool(undefined);
        const want = convAndGrads(x, wt, b, r, g);
        const f32 = [x, wt, b, r].map((t) => t.astype("float32"));
        setMatrixPool(one);
        const got = convAndGrads(f32[0]!, f32[1]!, f32[2]!, f32[3]!, g);
        setMatrixPool(two);
        const pooled = convAndGrads(f32[0]!, f32[1]!, f32[2]!, f32[3]!, g);
        setMatrixPool(undefined);
        // Sums of at most C·kh·kw·F·N·P terms of normal numbers: float32 roundoff stays far
        // below 1e-4 relative, while a wrong or missing term is of order 1.
        for (let i = 0; i < 4; i++) {
          expect(got[i]!.dtype).toBe("float32");
          expect(T.allClose(got[i]!.astype("float64"), want[i]!, 1e-4, 1e-4)).toBe(true);
          expect(Array.from(pooled[i]!.data)).toEqual(Array.from(got[i]!.data));
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe("conv2d", () => {
  it("equals a direct convolution and its gradients match finite differences", () => {
    fc.assert(
      fc.property(arbGeo, fc.boolean(), seedArb, (g, withBias, seed) => {
        const x = normal64([g.n, g.c, g.h, g.w], seed);
        const wt = normal64([g.f, g.c, g.kh, g.kw], seed + 1);
        const b = normal64([g.f], seed + 2);
        const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation };
        const y = conv2d(
          new Variable(x),
          new Variable(wt),
          withBias ? new Variable(b) : null,
          opts,
        );
        expect(T.allClose(y.data, naiveConv(x, wt, withBias ? b : null, g), 1e-12, 1e-12)).toBe(
          true,
        );
        const r = withBias
          ? gradcheck((a, c, d) => conv2d(a, c, d, opts), [x, wt, b])
          : gradcheck((a, c) => conv2d(a, c, null, opts), [x, wt]);
        expect(r.ok).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it("with relu: true equals relu(conv2d(...)) bit for bit, value and every gradient (float64, and float32 on both kernel paths and 1-2 threads), and passes gradcheck", async () => {
    const { runs, close } = await kernelPathRuns();
    const both = (x: T.Tensor, wt: T.Tensor, b: T.Tensor, r: T.Tensor, g: Geo, fused: boolean) => {
      const xv = new Variable(x, { requiresGrad: true });
      const wv = new Variable(wt, { requiresGrad: true });
      const bv = new Variable(b, { requiresGrad: true });
      const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation };
      const y = fused
        ? conv2d(xv, wv, bv, { ...opts, relu: true })
        : relu(conv2d(xv, wv, bv, opts));
      sum(mul(y, new Variable(r))).backward();
      return [y.data, xv.grad!, wv.grad!, bv.grad!].map((t) => Array.from(t.data));
    };
    // "same" 3x3 geometries with 8+ channels take the wasm path's Winograd route
    const winogradGeo = arbGeo.map((g) => ({
      ...g,
      c: 8 + (g.c % 3),
      kh: 3,
      kw: 3,
      stride: [1, 1] as [number, number],
      padding: [1, 1] as [number, number],
      dilation: [1, 1] as [number, number],
      h: 2 + 2 * (g.h % 3),
      w: 2 + 2 * (g.w % 4),
    }));
    try {
      fc.assert(
        fc.property(fc.oneof(arbGeo, winogradGeo), seedArb, (g, seed) => {
          const x = normal64([g.n, g.c, g.h, g.w], seed);
          const wt = normal64([g.f, g.c, g.kh, g.kw], seed + 1);
          const b = normal64([g.f], seed + 2);
          const y0 = conv2d(new Variable(x), new Variable(wt), new Variable(b), {
            stride: g.stride,
            padding: g.padding,
            dilation: g.dilation,
          });
          const r = normal64(y0.shape, seed + 3);
          for (const [dtype, pool] of runs) {
            const t = [x, wt, b, r].map((v) => v.astype(dtype));
            setMatrixPool(pool);
            expect(both(t[0]!, t[1]!, t[2]!, t[3]!, g, true)).toEqual(
              both(t[0]!, t[1]!, t[2]!, t[3]!, g, false),
            );
          }
          setMatrixPool(undefined);
          const opts = { stride: g.stride, padding: g.padding, dilation: g.dilation, relu: true };
          expect(gradcheck((a, c, d) => conv2d(a, c, d, opts), [x, wt, b]).ok).toBe(true);
        }),
        { numRuns: 20 },
      );
      // the check sees a ReLU left out of the gradient: the gate matters where y <= 0
      const g: Geo = {
        n: 1,
        c: 2,
        h: 4,
        w: 4,
        f: 3,
        kh: 3,
        kw: 3,
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
      };
      const x = normal64([1, 2, 4, 4], 5);
      const wt = normal64([3, 2, 3, 3], 6);
      const b = normal64([3], 7);
      const r = normal64([1, 3, 4, 4], 8);
      const fused = both(x, wt, b, r, g, true);
      const plainGrads = (() => {
        const xv = new Variable(x, { requiresGrad: true });
        const y = conv2d(xv, new Variable(wt), new Variable(b), { padding: 1 });
        sum(mul(y, new Variable(r))).backward();
        return Array.from(xv.grad!.data);
      })();
      expect(fused[1]).not.toEqual(plainGrads);
    } finally {
      setMatrixPool(undefined);
      await close();
    }
  });

  it("runs LeNet-5's first layer shape in float32 and skips dx for inputs", () => {
    const gen = new T.Generator(3);
    const x = new Variable(T.rand([2, 1, 28, 28], gen));
    const w = param(T.randn([20, 1, 5, 5], gen, "float32", 0, 0.1));
    const b = param(T.zeros([20]));
    const y = conv2d(x, w, b);
    expect(y.shape).toEqual([2, 20, 24, 24]);
    expect(y.dtype).toBe("float32");
    sum(y).backward();
    expect(x.grad).toBeNull();
    expect(Array.from(b.grad!.data).every((v) => v === 2 * 24 * 24)).toBe(true);
  });

  it("explains channel, shape, bias and option errors", () => {
    const x = new Variable(T.zeros([2, 3, 8, 8]));
    expect(() => conv2d(x, new Variable(T.zeros([4, 1, 3, 3])))).toThrow(
      "conv2d: x has 3 channels (shape [2,3,8,8]) but weight of shape [4,1,3,3] expects 1 input channels",
    );
    expect(() =>
      conv2d(new Variable(T.zeros([3, 8, 8])), new Variable(T.zeros([4, 3, 3, 3]))),
    ).toThrow(/conv2d: x must be 4-d \[N, C, H, W\], got shape \[3,8,8\]/);
    expect(() =>
      conv2d(x, new Variable(T.zeros([4, 3, 3, 3])), new Variable(T.zeros([3]))),
    ).toThrow(/conv2d: bias must have shape \[4\]/);
    expect(() => conv2d(x, new Variable(T.zeros([4, 3, 9, 9])))).toThrow(
      /conv2d: kernel 9x9.*does not fit/,
    );
    expect(() => conv2d(x, new Variable(T.zeros([4, 3, 3, 3])), null, { stride: 0 })).toThrow(
      /conv2d: stride must be an integer >= 1/,
    );
  });
});
