// sum/mean/max/min over random axes with and without keepdims.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, max, mean, min, sum } from "../src/index.ts";
import { arbShape, distinct, normal64, param, seedArb } from "./helpers.ts";

/** A shape and a random subset of its axes (possibly undefined = all). */
const arbShapeAxes = (allowZero: boolean) =>
  arbShape(3, 4, allowZero).chain((shape) =>
    fc.tuple(
      fc.constant(shape),
      fc.oneof(
        fc.constant(undefined),
        fc
          .subarray(shape.map((_, i) => i))
          .map((ax) => ax.map((a) => (a % 2 === 0 ? a : a - shape.length))),
      ),
      fc.boolean(),
    ),
  );

describe("reductions", () => {
  it("sum and mean: forward equals the tensor reduction; gradient matches finite differences", () => {
    fc.assert(
      fc.property(arbShapeAxes(true), seedArb, ([shape, axes, keep], seed) => {
        const x = normal64(shape, seed);
        for (const [op, ref] of [
          [sum, T.sum],
          [mean, T.mean],
        ] as const) {
          const y = op(new Variable(x), axes, keep);
          const want = ref(x, axes, keep);
          expect(y.data.shape).toEqual(want.shape);
          if (want.size > 0 && x.size > 0) expect(T.allClose(want, y.data)).toBe(true);
          expect(gradcheck((v) => op(v, axes, keep), [x]).ok).toBe(true);
        }
      }),
      { numRuns: 30 },
    );
  });

  it("max and min (distinct values): gradient flows to the extreme entry only", () => {
    fc.assert(
      fc.property(arbShapeAxes(false), seedArb, ([shape, axes, keep], seed) => {
        const x = distinct(shape, seed);
        for (const [op, ref] of [
          [max, T.max],
          [min, T.min],
        ] as const) {
          const y = op(new Variable(x), axes, keep);
          expect(T.equals(ref(x, axes, keep), y.data)).toBe(true);
          expect(gradcheck((v) => op(v, axes, keep), [x]).ok).toBe(true);
        }
      }),
      { numRuns: 30 },
    );
  });

  it("max splits the gradient evenly among ties", () => {
    const x = param(
      T.fromArray(
        [
          [1, 3, 3],
          [2, 0, 1],
        ],
        "float64",
      ),
    );
    sum(max(x, 1)).backward();
    expect(x.grad!.toArray()).toEqual([
      [0, 0.5, 0.5],
      [1, 0, 0],
    ]);
  });

  it("mean gradient is 1/count; errors name the function", () => {
    const x = param(T.zeros([2, 5], "float64"));
    mean(x).backward();
    expect(Array.from(x.grad!.data).every((g) => g === 0.1)).toBe(true);
    expect(() => sum(new Variable(T.zeros([2, 3])), 2)).toThrow(/sum: axis 2 is out of range/);
    expect(() => max(new Variable(T.zeros([0, 3])), 0)).toThrow(/max/);
  });
});
