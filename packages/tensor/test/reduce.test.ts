import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "../src/index.ts";
import { arange, fromArray } from "../src/index.ts";
import { NUM_RUNS, allIndices, arbShape, arbView } from "./helpers.ts";

/** Naive reduction: group every element by its index with reduced axes zeroed. */
function naive(
  view: T.Tensor,
  axes: number[],
  init: number,
  f: (acc: number, x: number) => number,
): Map<string, number> {
  const groups = new Map<string, number>();
  for (const idx of allIndices(view.shape)) {
    const key = idx.map((v, i) => (axes.includes(i) ? 0 : v)).join(",");
    groups.set(key, f(groups.get(key) ?? init, view.get(...idx)));
  }
  return groups;
}

const arbAxes = (ndim: number): fc.Arbitrary<number[] | undefined> =>
  fc.option(fc.subarray(Array.from({ length: ndim }, (_, i) => i)), { nil: undefined });

describe("reductions", () => {
  it("sum / mean / max / min over any axes equal naive loops (keepdims both ways)", () => {
    fc.assert(
      fc.property(
        arbView(arbShape()).chain((v) =>
          fc.tuple(fc.constant(v.view), arbAxes(v.view.ndim), fc.boolean(), fc.boolean()),
        ),
        ([view, axesOpt, keepdims, negate]) => {
          const axes = axesOpt ?? view.shape.map((_, i) => i);
          // negative axis spellings mean the same
          const spelled =
            axesOpt === undefined
              ? undefined
              : negate
                ? axesOpt.map((a) => a - view.ndim)
                : axesOpt;
          const keptShape = view.shape.map((d, i) => (axes.includes(i) ? 1 : d));
          const outShape = keepdims ? keptShape : view.shape.filter((_, i) => !axes.includes(i));
          const count = axes.reduce((c, a) => c * view.shape[a]!, 1);
          const sums = naive(view, axes, 0, (a, x) => a + x);
          const s = T.sum(view, spelled, keepdims);
          const m = T.mean(view, spelled, keepdims);
          expect(s.shape).toEqual(outShape);
          expect(m.shape).toEqual(outShape);
          const nonEmpty = count > 0;
          const maxs = naive(view, axes, -Infinity, Math.max);
          const mins = naive(view, axes, Infinity, Math.min);
          const mx = nonEmpty ? T.max(view, spelled, keepdims) : null;
          const mn = nonEmpty ? T.min(view, spelled, keepdims) : null;
          if (!nonEmpty && s.size > 0) {
            expect(() => T.max(view, spelled, keepdims)).toThrow(
              /max: cannot reduce over zero-size axes/,
            );
          }
          const sr = s.reshape(keptShape);
          const mr = m.reshape(keptShape);
          for (const idx of allIndices(keptShape)) {
            const key = idx.join(",");
            expect(sr.get(...idx)).toBe(sums.get(key) ?? 0); // values are multiples of 1/8: exact
            if (count === 0) expect(mr.get(...idx)).toBeNaN();
            else expect(mr.get(...idx)).toBeCloseTo((sums.get(key) ?? 0) / count, 12);
            if (mx && mn) {
              expect(mx.reshape(keptShape).get(...idx)).toBe(maxs.get(key));
              expect(mn.reshape(keptShape).get(...idx)).toBe(mins.get(key));
            }
          }
        },
      ),
      { numRuns: NUM_RUNS * 2 },
    );
  });

  it("argmax / argmin along one axis equal a naive scan (first occurrence)", () => {
    fc.assert(
      fc.property(
        arbView(arbShape(4, 5, 1)).chain((v) =>
          fc.tuple(fc.constant(v.view), fc.nat(v.view.ndim - 1), fc.boolean()),
        ),
        ([view, axis, keepdims]) => {
          const n = view.shape[axis]!;
          const outKept = view.shape.map((d, i) => (i === axis ? 1 : d));
          if (n === 0) {
            if (outKept.every((d) => d > 0))
              expect(() => T.argmax(view, axis)).toThrow(/argmax: axis .* has size 0/);
            return;
          }
          const am = T.argmax(view, axis, keepdims);
          const an = T.argmin(view, axis, keepdims);
          expect(am.dtype).toBe("int32");
          expect(am.shape).toEqual(keepdims ? outKept : view.shape.filter((_, i) => i !== axis));
          for (const idx of allIndices(outKept)) {
            const vals = Array.from({ length: n }, (_, j) =>
              view.get(...idx.map((v, i) => (i === axis ? j : v))),
            );
            const k = keepdims ? idx : idx.filter((_, i) => i !== axis);
            expect(am.get(...k)).toBe(vals.indexOf(Math.max(...vals)));
            expect(an.get(...k)).toBe(vals.indexOf(Math.min(...vals)));
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
    const t = fromArray([
      [1, 5, 5],
      [NaN, 2, NaN],
    ]);
    expect(T.argmax(t, 1).toArray()).toEqual([1, 0]);
    expect(T.argmax(t).toArray()).toBe(3);
    expect(T.argmax(arange(6).reshape([2, 3])).item()).toBe(5);
  });

  it("logsumexp is stable and equals the naive formula where that does not overflow", () => {
    fc.assert(
      fc.property(
        arbView(arbShape(3, 5)).chain((v) =>
          fc.tuple(fc.constant(v.view), arbAxes(v.view.ndim), fc.boolean()),
        ),
        ([view, axes, keepdims]) => {
          const got = T.logsumexp(view, axes, keepdims);
          const want = T.log(T.sum(T.exp(view), axes, keepdims));
          expect(got.shape).toEqual(want.shape);
          expect(got.allClose(want, 1e-12, 1e-12)).toBe(true);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    const big = fromArray([1000, 1000, -Infinity], "float64");
    expect(T.logsumexp(big).item()).toBeCloseTo(1000 + Math.log(2), 10);
    expect(T.logsumexp(fromArray([-Infinity, -Infinity])).item()).toBe(-Infinity);
    expect(T.logsumexp(fromArray([Infinity, 1])).item()).toBe(Infinity);
    expect(T.logsumexp(fromArray([-1000, -1000], "float32")).item()).toBeCloseTo(
      -1000 + Math.log(2),
      3,
    );
    expect(T.logsumexp(T.zeros([0])).item()).toBe(-Infinity);
  });

  it("sumToShape undoes broadcasting: sum of broadcast(x) == x * copies", () => {
    fc.assert(
      fc.property(
        arbShape(3, 4),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
        fc.array(fc.boolean(), { maxLength: 3 }),
        (shape, lead, stretch) => {
          const x = arange(
            shape.reduce((a, b) => a * b, 1),
            undefined,
            1,
            "float64",
          ).reshape(shape);
          const big = [...lead, ...shape.map((d, i) => (d === 1 && stretch[i] ? 3 : d))];
          const copies = big.reduce((a, b) => a * b, 1) / Math.max(1, x.size);
          const g = x.broadcastTo(big).sumToShape(shape);
          expect(g.shape).toEqual(shape);
          if (x.size > 0) expect(g.allClose(T.mul(x, copies))).toBe(true);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    const t = T.ones([2, 3]);
    expect(t.sumToShape([2, 3])).toBe(t);
    expect(t.sumToShape([3]).toArray()).toEqual([2, 2, 2]);
    expect(t.sumToShape([2, 1]).toArray()).toEqual([[3], [3]]);
    expect(t.sumToShape([]).item()).toBe(6);
    expect(() => t.sumToShape([4])).toThrow(
      /sumToShape: cannot reduce shape \[2,3\] to \[4\]: \[4\] does not broadcast to \[2,3\]/,
    );
    expect(() => t.sumToShape([1, 2, 3])).toThrow(
      /sumToShape: cannot reduce shape \[2,3\] to \[1,2,3\]/,
    );
  });

  it("dtypes: sums of int32 stay int32, means become float32; float32 sums accumulate in double", () => {
    const i = arange(5, undefined, 1, "int32");
    expect(T.sum(i).dtype).toBe("int32");
    expect(T.mean(i).dtype).toBe("float32");
    expect(T.mean(i).item()).toBe(2);
    expect(T.argmax(i).dtype).toBe("int32");
    // 1 followed by 2^20 values of 2^-25: a float32 running sum stays at 1 (1 + 2^-25
    // rounds back to 1); accumulating in double gives 1 + 2^-5 exactly
    const x = T.concat([T.ones([1]), T.full([2 ** 20], 2 ** -25)]);
    expect(T.sum(x).item()).toBe(1 + 2 ** -5);
    expect(T.sum(x.reshape([1, -1]), 1).item()).toBe(1 + 2 ** -5);
  });

  it("invalid axes throw RangeErrors naming the function, the axis and the allowed range", () => {
    const t = T.zeros([2, 3]);
    expect(() => T.sum(t, 2)).toThrow(
      /sum: axis 2 is out of range for a tensor of rank 2; allowed axes are -2\.\.1/,
    );
    expect(() => T.mean(t, [0, -2])).toThrow(/mean: axis -2 is repeated/);
    expect(() => T.max(t, 1.5)).toThrow(RangeError);
    expect(() => T.argmax(t, -3)).toThrow(/argmax: axis -3 is out of range/);
    expect(() => T.logsumexp(T.scalar(1), 0)).toThrow(
      /logsumexp: axis 0 is out of range for a tensor of rank 0; allowed axes are none/,
    );
    expect(() => T.min(T.zeros([0]))).toThrow(
      /min: cannot reduce over zero-size axes \[0\] of shape \[0\]/,
    );
  });
});
