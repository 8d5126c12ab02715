// kepConv2d against conv2d with the masked dense weight (values and gradients), and its
// gradients against finite differences, over random geometries, strides, paddings, kept
// counts per plane (0 .. kh·kw, or varying) and batch sizes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { KepLayout, createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Variable, conv2d, gradcheck, kepConv2d, setMatrixPool } from "../src/index.ts";
import { normal64, param, seedArb } from "./helpers.ts";

interface Geo {
  n: number;
  c: number;
  f: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  stride: [number, number];
  padding: [number, number];
  /** Kept per plane, or -1 for a random count per plane. */
  keep: number;
}

const arbGeo = (maxBatch: number, maxSide: number): fc.Arbitrary<Geo> =>
  fc
    .record({
      n: fc.integer({ min: 0, max: maxBatch }),
      c: fc.integer({ min: 1, max: 3 }),
      f: fc.integer({ min: 1, max: 5 }),
      kh: fc.integer({ min: 1, max: 3 }),
      kw: fc.integer({ min: 1, max: 3 }),
      extraH: fc.integer({ min: 0, max: maxSide }),
      extraW: fc.integer({ min: 0, max: maxSide }),
      stride: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
      padding: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
      keep: fc.integer({ min: -1, max: 9 }),
    })
    .map((r) => ({
      ...r,
      h: Math.max(1, r.kh - 2 * r.padding[0]) + r.extraH,
      w: Math.max(1, r.kw - 2 * r.padding[1]) + r.extraW,
      keep: Math.min(r.keep, r.kh * r.kw),
    }));

/** A 0/1 mask [F, C, kh, kw] with `keep` random positions per plane (random counts when -1). */
function randomMask(g: Geo, seed: number): Float32Array {
  const gen = new T.Generator(seed);
  const k2 = g.kh * g.kw;
  const mask = new Float32Array(g.f * g.c * k2);
  for (let p = 0; p < g.f * g.c; p++) {
    const count = g.keep >= 0 ? g.keep : Math.floor(gen.nextFloat() * (k2 + 1));
    const order = gen.permutation(k2);
    for (let i = 0; i < count; i++) mask[p * k2 + order[i]!] = 1;
  }
  return mask;
}

function setup(g: Geo, seed: number, dtype: "float32" | "float64") {
  const mask = randomMask(g, seed);
  const layout = KepLayout.fromMask(mask, g.f, g.c, g.kh, g.kw);
  const cast = (t: T.Tensor) => (dtype === "float64" ? t : t.astype("float32"));
  const x = cast(normal64([g.n, g.c, g.h, g.w], seed + 1));
  const dense = cast(normal64([g.f, g.c, g.kh, g.kw], seed + 2));
  const masked = dense.clone();
  for (let i = 0; i < mask.length; i++) if (mask[i] === 0) masked.data[i] = 0;
  const values = new T.Tensor(layout.gather(masked.data as Float32Array), [layout.nnz]);
  const b = cast(normal64([g.f], seed + 3));
  return { mask, layout, x, masked, values, b };
}

describe("kepConv2d", () => {
  it("gradients match finite differences (float64)", () => {
    fc.assert(
      fc.property(arbGeo(2, 3), fc.boolean(), seedArb, (g, withBias, seed) => {
        const { layout, x, values, b } = setup(g, seed, "float64");
        const opts = { stride: g.stride, padding: g.padding };
        const inputs = withBias ? [param(x), param(values), param(b)] : [param(x), param(values)];
        gradcheck((xi, vi, bi) => kepConv2d(xi!, vi!, layout, bi ?? null, opts), inputs, { seed });
      }),
      { numRuns: 40 },
    );
  });

  it("equals conv2d with the masked dense weight, outputs and gradients (float32)", () => {
    fc.assert(
      fc.property(arbGeo(5, 9), fc.boolean(), seedArb, (g, withBias, seed) => {
        const { mask, layout, x, masked, values, b } = setup(g, seed, "float32");
        const opts = { stride: g.stride, padding: g.padding };
        const xs = param(x);
        const vs = param(values);
        const bs = withBias ? param(b) : null;
        const y = kepConv2d(xs, vs, layout, bs, opts);
        const xd = param(x);
        const wd = param(masked);
        const bd = withBias ? param(b) : null;
        const yd = conv2d(xd, wd, bd, opts);
        expect(y.shape).toEqual(yd.shape);
        const k = g.c * g.kh * g.kw;
        expectNear(y.data.data, yd.data.data, 1e-5 * k);
        if (y.size === 0) return;
        const seedGrad = normal64(y.shape, seed + 9).astype("float32");
        y.backward(seedGrad);
        yd.backward(seedGrad);
        expectNear(xs.grad!.data, xd.grad!.data, 1e-5 * g.f * g.kh * g.kw);
        // The values' gradient is the dense weight gradient at the kept positions.
        const wantV = layout.gather(wd.grad!.data as Float32Array);
        expectNear(vs.grad!.data, wantV, 1e-5 * g.n * y.shape[2]! * y.shape[3]!);
        expect(vs.grad!.shape).toEqual([layout.nnz]);
        if (bs && bd) expectNear(bs.grad!.data, bd.grad!.data, 1e-5 * y.size);
        expect(mask.length).toBe(g.f * g.c * g.kh * g.kw);
      }),
      { numRuns: 80 },
    );
  });

  it("keeps float32 in, float32 out, and records nothing without gradients", () => {
    const g: Geo = {
      n: 1,
      c: 2,
      f: 3,
      h: 5,
      w: 5,
      kh: 3,
      kw: 3,
      stride: [1, 1],
      padding: [1, 1],
      keep: 3,
    };
    const { layout, x, values } = setup(g, 1, "float32");
    const y = kepConv2d(new Variable(x), new Variable(values), layout, null, { padding: 1 });
    expect(y.dtype).toBe("float32");
    expect(y.shape).toEqual([1, 3, 5, 5]);
    expect(y.requiresGrad).toBe(false);
    expect(y.op).toBeNull();
    const yg = kepConv2d(new Variable(x), param(values), layout, null, { padding: 1 });
    expect(yg.op).toBe("kepConv2d");
  });

  it("rejects mismatched arguments, naming the argument and the shapes", () => {
    const g: Geo = {
      n: 1,
      c: 2,
      f: 3,
      h: 4,
      w: 4,
      kh: 3,
      kw: 3,
      stride: [1, 1],
      padding: [0, 0],
      keep: 2,
    };
    const { layout, x, values, b } = setup(g, 2, "float32");
    const X = new Variable(x);
    const V = new Variable(values);
    expect(() => kepConv2d(new Variable(T.zeros([1, 3, 4, 4])), V, layout)).toThrow(
      /kepConv2d: x has 3 channels \(shape \[1,3,4,4\]\) but the layout is for a weight \[3,2,3,3\]/,
    );
    expect(() => kepConv2d(X, new Variable(T.zeros([5])), layout)).toThrow(
      /kepConv2d: values must have shape \[12\] \(the layout's kept elements\), got \[5\]/,
    );
    expect(() => kepConv2d(X, V, layout, new Variable(b.reshape([3, 1])))).toThrow(
      /kepConv2d: bias must have shape \[3\]/,
    );
    expect(() => kepConv2d(X, V, {} as KepLayout)).toThrow(/kepConv2d: layout must be a KepLayout/);
    expect(() => kepConv2d(X, new Variable(values.astype("float64")), layout)).toThrow(
      /kepConv2d: x is float32 but values is float64/,
    );
    expect(() => kepConv2d(X, V, layout, null, { stride: 0 })).toThrow(
      /kepConv2d: stride must be an integer >= 1/,
    );
  });
});

describe("kepConv2d on a 2-thread pool", () => {
  let pool: MatrixPool;
  beforeAll(async () => {
    pool = createPool({ threads: 2, minParallelFlops: 0 });
    await pool.ready();
  });
  afterAll(async () => {
    setMatrixPool(undefined);
    await pool.close();
  });

  /** Output and every gradient of one forward + backward. */
  function pass(g: Geo, seed: number, withBias: boolean): number[][] {
    const { layout, x, values, b } = setup(g, seed, "float32");
    const xs = param(x);
    const vs = param(values);
    const bs = withBias ? param(b) : null;
    const y = kepConv2d(xs, vs, layout, bs, { stride: g.stride, padding: g.padding });
    const out = [Array.from(y.data.data)];
    if (y.size === 0) return out;
    y.backward(normal64(y.shape, seed + 9).astype("float32"));
    out.push(Array.from(xs.grad!.data), Array.from(vs.grad!.data));
    if (bs) out.push(Array.from(bs.grad!.data));
    return out;
  }

  it("gives bitwise the single-thread output and gradients (split over images and filters)", () => {
    fc.assert(
      fc.property(arbGeo(6, 9), fc.boolean(), seedArb, (g, withBias, seed) => {
        setMatrixPool(undefined);
        const serial = pass(g, seed, withBias);
        setMatrixPool(pool);
        const pooled = pass(g, seed, withBias);
        setMatrixPool(undefined);
        expect(pooled).toEqual(serial);
      }),
      { numRuns: 40 },
    );
  });
});

function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  const t = Math.max(tol, 1e-5);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= t * Math.max(1, Math.abs(want[i]!))))
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]} (|diff| ${d} > ${t})`);
  }
}
