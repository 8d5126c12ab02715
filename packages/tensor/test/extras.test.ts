import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "../src/index.ts";
import { fromArray } from "../src/index.ts";
import { NUM_RUNS, allIndices, arbShape, arbView } from "./helpers.ts";

describe("softmax / logSoftmax", () => {
  it("rows sum to 1, equal the naive formula, and survive huge inputs", () => {
    fc.assert(
      fc.property(
        arbView(arbShape(3, 5, 1)).chain((v) =>
          fc.tuple(fc.constant(v.view), fc.nat(v.view.ndim - 1)),
        ),
        ([view, axis]) => {
          const s = T.softmax(view, axis);
          const naive = T.div(T.exp(view), T.sum(T.exp(view), axis, true));
          expect(s.allClose(naive, 1e-12, 1e-15)).toBe(true);
          expect(T.logSoftmax(view, axis).allClose(T.log(naive), 1e-12, 1e-12)).toBe(true);
          if (view.shape[axis]! > 0) {
            const totals = T.sum(s, axis);
            for (const idx of allIndices(totals.shape))
              expect(totals.get(...idx)).toBeCloseTo(1, 12);
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
    const big = fromArray([[1000, 1000, 990]], "float32");
    const p = big.softmax();
    expect(p.dtype).toBe("float32");
    expect(p.sum().item()).toBeCloseTo(1, 6);
    // float32 near 1000 has an ulp of 6e-5, so logsumexp(row) is only good to ~3e-5
    expect(big.logSoftmax().get(0, 0)).toBeCloseTo(-Math.log(2 + Math.exp(-10)), 4);
    expect(() => T.softmax(big, 2)).toThrow(
      /softmax: axis 2 is out of range for a tensor of rank 2/,
    );
  });
});

describe("pad / oneHot", () => {
  it("pad places the tensor inside a constant frame", () => {
    fc.assert(
      fc.property(
        arbView(arbShape(3, 4)),
        fc.array(fc.tuple(fc.nat(2), fc.nat(2)), { maxLength: 3 }),
        ({ view }, w) => {
          const widths = w.slice(0, view.ndim);
          const out = T.pad(view, widths, -9);
          expect(out.shape).toEqual(
            view.shape.map((d, i) => d + (widths[i] ? widths[i]![0] + widths[i]![1] : 0)),
          );
          for (const idx of allIndices(out.shape)) {
            const src = idx.map((v, i) => v - (widths[i]?.[0] ?? 0));
            const inside = src.every((v, i) => v >= 0 && v < view.shape[i]!);
            expect(out.get(...idx)).toBe(inside ? view.get(...src) : -9);
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
    expect(() => T.pad(T.zeros([2]), [[1, -1]])).toThrow(
      /pad: widths\[0\] must be \[before, after\] with non-negative integers, got \[1,-1\]/,
    );
    expect(() =>
      T.pad(T.zeros([2]), [
        [1, 1],
        [1, 1],
      ]),
    ).toThrow(/pad: expected at most 1 \[before, after\] pairs for shape \[2\]/);
  });

  it("oneHot", () => {
    const labels = fromArray(
      [
        [2, 0],
        [1, 1],
      ],
      "int32",
    );
    const o = T.oneHot(labels, 3);
    expect(o.shape).toEqual([2, 2, 3]);
    expect(o.toArray()).toEqual([
      [
        [0, 0, 1],
        [1, 0, 0],
      ],
      [
        [0, 1, 0],
        [0, 1, 0],
      ],
    ]);
    expect(T.argmax(o, -1).equals(labels)).toBe(true);
    expect(() => T.oneHot(fromArray([3], "int32"), 3)).toThrow(
      /oneHot: label 3 at flat position 0 is outside 0\.\.2/,
    );
    expect(() => T.oneHot(labels, 0)).toThrow(
      /oneHot: numClasses must be a positive integer, got 0/,
    );
  });
});

describe("where (property)", () => {
  it("picks per element under three-way broadcasting", () => {
    fc.assert(
      fc.property(arbView(arbShape(3, 4)), fc.nat(), ({ view }, seed) => {
        const cond = T.gt(view, 0);
        const other = T.full(view.shape.slice(1), seed % 7);
        const w = T.where(cond, view, other);
        for (const idx of allIndices(view.shape)) {
          expect(w.get(...idx)).toBe(view.get(...idx) > 0 ? view.get(...idx) : seed % 7);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe("end to end in float64 and int32", () => {
  it("float64 keeps finite-difference precision: d logsumexp(x W)/dx = softmax(x W) Wᵀ", () => {
    const g = T.createGenerator(11);
    const x = T.randn([5], g, "float64");
    const w = T.randn([5, 7], g, "float64");
    const f = (v: T.Tensor): number => T.logsumexp(T.matmul(v, w)).item();
    const analytic = T.matmul(T.softmax(T.matmul(x, w)), w.T);
    expect(analytic.dtype).toBe("float64");
    const h = 1e-6;
    for (let i = 0; i < 5; i++) {
      const xp = x.clone();
      const xm = x.clone();
      xp.set(i, x.get(i) + h);
      xm.set(i, x.get(i) - h);
      const numeric = (f(xp) - f(xm)) / (2 * h);
      expect(Math.abs(numeric - analytic.get(i))).toBeLessThan(1e-8);
    }
  });

  it("int32 labels: accuracy = mean(argmax(logits) == labels)", () => {
    const logits = fromArray([
      [0.1, 2, -1],
      [3, 0, 0],
      [0, 0, 5],
      [1, 2, 0.5],
    ]);
    const labels = fromArray([1, 0, 1, 1], "int32");
    const hits = T.eq(T.argmax(logits, 1), labels);
    expect(hits.dtype).toBe("int32");
    expect(T.sum(hits).item()).toBe(3);
    expect(T.mean(hits).item()).toBe(0.75);
  });
});
