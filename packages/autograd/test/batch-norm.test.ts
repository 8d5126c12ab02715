// batchNorm in training (batch statistics, running-stat update) and evaluation (running
// statistics), for [N, C] and [N, C, H, W].
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, batchNorm, gradcheck, sum } from "../src/index.ts";
import { normal64, param, seedArb, uniform64 } from "./helpers.ts";

const arbBn = fc.record({
  n: fc.integer({ min: 1, max: 4 }),
  c: fc.integer({ min: 1, max: 3 }),
  spatial: fc.oneof(
    fc.constant(null),
    fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
  ),
  affine: fc.boolean(),
  seed: seedArb,
});

describe("batchNorm", () => {
  it("training: normalises with batch statistics and gradients match finite differences", () => {
    fc.assert(
      fc.property(arbBn, ({ n, c, spatial, affine, seed }) => {
        const shape = spatial ? [n, c, ...spatial] : [n, c];
        const m = n * (spatial ? spatial[0] * spatial[1] : 1);
        fc.pre(m >= 2);
        const x = normal64(shape, seed, 2);
        const gamma = uniform64([c], 0.5, 2, seed + 1);
        const beta = normal64([c], seed + 2);
        const rm = T.zeros([c], "float64");
        const rv = T.ones([c], "float64");
        const opts = { training: true, momentum: 0.1, eps: 1e-5 };
        const y = batchNorm(
          new Variable(x),
          affine ? new Variable(gamma) : null,
          affine ? new Variable(beta) : null,
          rm,
          rv,
          opts,
        );
        // reference: per channel mean/var over every axis but 1
        const axes = shape.length === 4 ? [0, 2, 3] : [0];
        const mu = T.mean(x, axes, true);
        const centred = T.sub(x, mu);
        const varB = T.mean(T.mul(centred, centred), axes, true);
        let want = T.div(centred, T.sqrt(T.add(varB, 1e-5)));
        if (affine) {
          const bshape = shape.length === 4 ? [c, 1, 1] : [c];
          want = T.add(T.mul(want, gamma.reshape(bshape)), beta.reshape(bshape));
        }
        expect(T.allClose(y.data, want, 1e-10, 1e-10)).toBe(true);
        // running stats: 0.9·old + 0.1·batch, unbiased variance
        for (let k = 0; k < c; k++) {
          expect(rm.get(k)).toBeCloseTo(0.1 * mu.data[k]!, 12);
          expect(rv.get(k)).toBeCloseTo(0.9 + (0.1 * varB.data[k]! * m) / (m - 1), 12);
        }
        const r = affine
          ? gradcheck(
              (a, g, b) =>
                batchNorm(a, g, b, T.zeros([c], "float64"), T.ones([c], "float64"), opts),
              [x, gamma, beta],
              { atol: 1e-4 },
            )
          : gradcheck(
              (a) =>
                batchNorm(a, null, null, T.zeros([c], "float64"), T.ones([c], "float64"), opts),
              [x],
              { atol: 1e-4 },
            );
        expect(r.ok).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it("evaluation uses the running statistics and leaves them unchanged", () => {
    const x = normal64([3, 2, 2, 2], 5);
    const rm = T.fromArray([0.5, -1], "float64");
    const rv = T.fromArray([4, 0.25], "float64");
    const gamma = T.fromArray([2, 3], "float64");
    const beta = T.fromArray([1, 0], "float64");
    const opts = { training: false, eps: 0 };
    const y = batchNorm(new Variable(x), new Variable(gamma), new Variable(beta), rm, rv, opts);
    for (const [i, ch, a, b] of [
      [0, 0, 1, 1],
      [2, 1, 0, 1],
      [1, 1, 1, 0],
    ] as const) {
      const want =
        ch === 0 ? (2 * (x.get(i, ch, a, b) - 0.5)) / 2 + 1 : (3 * (x.get(i, ch, a, b) + 1)) / 0.5;
      expect(y.data.get(i, ch, a, b)).toBeCloseTo(want, 12);
    }
    expect(Array.from(rm.data)).toEqual([0.5, -1]);
    expect(Array.from(rv.data)).toEqual([4, 0.25]);
    expect(
      gradcheck((a, g, b) => batchNorm(a, g, b, rm, rv, { training: false }), [x, gamma, beta]).ok,
    ).toBe(true);
  });

  it("float32 training works and gives float32 gradients", () => {
    const x = param(T.randn([8, 4], new T.Generator(1)));
    const g = param(T.ones([4]));
    const b = param(T.zeros([4]));
    const y = batchNorm(x, g, b, T.zeros([4]), T.ones([4]), { training: true });
    sum(y.mul(y)).backward();
    expect(x.grad!.dtype).toBe("float32");
    // Σ y² = M per channel whatever x is, so dL/dx ≈ 0 and dL/dγ = 2M
    expect(Math.max(...Array.from(x.grad!.data).map(Math.abs))).toBeLessThan(1e-3);
    expect(g.grad!.data[0]).toBeCloseTo(16, 3);
  });

  it("explains bad shapes and options", () => {
    const rm = T.zeros([3]);
    const rv = T.ones([3]);
    expect(() =>
      batchNorm(new Variable(T.zeros([2, 3, 4])), null, null, rm, rv, { training: true }),
    ).toThrow(/batchNorm: x must be \[N, C\] or \[N, C, H, W\], got shape \[2,3,4\]/);
    expect(() =>
      batchNorm(new Variable(T.zeros([2, 4])), null, null, rm, rv, { training: true }),
    ).toThrow(/batchNorm: runningMean must have shape \[4\]/);
    expect(() =>
      batchNorm(new Variable(T.zeros([1, 3])), null, null, rm, rv, { training: true }),
    ).toThrow(/batchNorm: training needs more than one value per channel/);
    expect(() =>
      batchNorm(new Variable(T.zeros([2, 3])), new Variable(T.ones([2])), null, rm, rv, {
        training: true,
      }),
    ).toThrow(/batchNorm: gamma must have shape \[3\]/);
  });
});
