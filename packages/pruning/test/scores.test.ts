import fc from "fast-check";
import { Generator } from "@tessera/tensor";
import { Variable, softmaxCrossEntropy } from "@tessera/autograd";
import { describe, expect, it } from "vitest";
import { Linear, ReLU, SGD, Sequential, arrayDataset, fit } from "@tessera/nn";
import {
  PruningState,
  TaylorAccumulator,
  accumulateTaylor,
  groupLayout,
  groupScores,
  type GroupLayout,
  type GroupKind,
} from "../src/index.ts";
import { kindArb, randomValues, referenceGroups, shapeArb } from "./helpers.ts";

type Scorer = (w: Float32Array, l: GroupLayout) => Float64Array;

// The reference: mean |w| over each group's real elements, from the enumerated groups.
function refMeanAbs(w: Float32Array, kind: GroupKind, shape: number[]): number[] {
  return referenceGroups(kind, shape).map(
    (m) => m.reduce((a, i) => a + Math.abs(w[i]!), 0) / m.length,
  );
}

function agreesWithReference(
  scorer: Scorer,
  shape: number[],
  kind: GroupKind,
  seed: number,
): boolean {
  const n = shape.reduce((a, b) => a * b, 1);
  const w = randomValues(n, seed);
  const got = scorer(w, groupLayout(kind, shape));
  const want = refMeanAbs(w, kind, shape);
  return want.every((v, j) => Math.abs(v - got[j]!) <= 1e-12 * Math.max(1, v));
}

const real: Scorer = (w, l) => groupScores(w, l, "mean-abs");
// A planted fault: a scorer that treats tiles as padded to full R x C (dividing by R·C), as
// a dense padded implementation would. It must be caught on ragged shapes.
const padded: Scorer = (w, l) => {
  const s = groupScores(w, l, "l1");
  const k = l.kind;
  const full = k.kind === "block" ? k.rows * k.cols : 1;
  return s.map((v) => v / full);
};

describe("group scores", () => {
  it("mean-abs averages over the real elements of ragged tiles (property, random R x C)", () => {
    fc.assert(
      fc.property(shapeArb, kindArb, fc.integer({ min: 0, max: 1e6 }), (shape, kind, seed) => {
        expect(agreesWithReference(real, shape, kind, seed)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("the same check catches a scorer that reads padding (planted fault)", () => {
    // 784 = 3·261 + 1: 3x3 tiles leave a ragged last column of tiles.
    expect(agreesWithReference(padded, [5, 784], { kind: "block", rows: 3, cols: 3 }, 1)).toBe(
      false,
    );
    const counter = fc.check(
      fc.property(shapeArb, kindArb, fc.integer({ min: 0, max: 1e6 }), (shape, kind, seed) =>
        agreesWithReference(padded, shape, kind, seed),
      ),
      { numRuns: 300, seed: 42 },
    );
    expect(counter.failed).toBe(true);
    // ... and only where tiles are ragged: on whole tiles the two agree.
    expect(agreesWithReference(padded, [8, 12], { kind: "block", rows: 4, cols: 4 }, 3)).toBe(true);
  });

  it("l1 and l2 match their definitions over each group", () => {
    fc.assert(
      fc.property(shapeArb, kindArb, fc.integer({ min: 0, max: 1e6 }), (shape, kind, seed) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const w = randomValues(n, seed);
        const l = groupLayout(kind, shape);
        const l1 = groupScores(w, l, "l1");
        const l2 = groupScores(w, l, "l2");
        referenceGroups(kind, shape).forEach((m, j) => {
          expect(l1[j]).toBeCloseTo(
            m.reduce((a, i) => a + Math.abs(w[i]!), 0),
            10,
          );
          expect(l2[j]).toBeCloseTo(Math.sqrt(m.reduce((a, i) => a + w[i]! * w[i]!, 0)), 10);
        });
      }),
      { numRuns: 100 },
    );
  });

  it("random scores come from the generator passed in: same seed, same scores", () => {
    const l = groupLayout({ kind: "block", rows: 2, cols: 3 }, [7, 10]);
    const w = randomValues(70, 1);
    const a = groupScores(w, l, "random", { generator: new Generator(5) });
    const b = groupScores(w, l, "random", { generator: new Generator(5) });
    const c = groupScores(w, l, "random", { generator: new Generator(6) });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(() => groupScores(w, l, "random")).toThrow(/"random" score needs a generator/);
    expect(() => groupScores(w, l, "max" as "l1")).toThrow(
      /unknown score "max"; expected one of mean-abs, l1, l2, random, taylor/,
    );
    expect(() => groupScores(new Float32Array(3), l, "l1")).toThrow(
      /weights have 3 elements, the layout of shape \[7,10\] has 70/,
    );
  });
});

describe("taylor score", () => {
  function tiny(seed: number) {
    const g = new Generator(seed);
    return Sequential.named({
      fc1: new Linear(4, 5, { generator: g }),
      relu: new ReLU(),
      fc2: new Linear(5, 3, { generator: g }),
    });
  }
  const data = (() => {
    const g = new Generator(11);
    const x = Float32Array.from({ length: 4 * 24 }, () => g.nextFloat() * 2 - 1);
    const y = Int32Array.from({ length: 24 }, () => g.int(0, 3));
    return arrayDataset(x, y, [4]);
  })();

  it("accumulates mean |w·g| per element over batches and scores groups by their mean", () => {
    const model = tiny(1);
    const acc = new TaylorAccumulator(model, ["fc1.weight"]);
    const w = model.getParameter("fc1.weight");
    const before = Float32Array.from(w.data.data as Float32Array);
    accumulateTaylor(model, acc, data, { batches: 3, batchSize: 8, seed: 4 });
    // Not a training step: the weights did not move, and no gradient is left behind.
    expect(Array.from(w.data.data)).toEqual(Array.from(before));
    expect(w.grad).toBeNull();
    expect(acc.batches).toBe(3);
    // Reference: the same three batches run by hand.
    const g = new Generator(4);
    const order = g.permutation(24);
    const manual = new Float64Array(20);
    for (let b = 0; b < 3; b++) {
      model.zeroGrad();
      const batch = data.getBatch(order.subarray(b * 8, b * 8 + 8));
      softmaxCrossEntropy(model.forward(new Variable(batch.x)), batch.y).backward();
      const gw = w.grad!.data;
      for (let k = 0; k < 20; k++) manual[k]! += Math.abs(before[k]! * gw[k]!) / 3;
    }
    model.zeroGrad();
    const imp = acc.importance("fc1.weight");
    for (let k = 0; k < 20; k++) expect(imp[k]).toBeCloseTo(manual[k]!, 12);
    const l = groupLayout({ kind: "row" }, [5, 4]);
    const s = groupScores(w.data.data, l, "taylor", { importance: imp });
    for (let r = 0; r < 5; r++)
      expect(s[r]).toBeCloseTo(
        (imp[4 * r]! + imp[4 * r + 1]! + imp[4 * r + 2]! + imp[4 * r + 3]!) / 4,
        12,
      );
    acc.reset();
    expect(acc.batches).toBe(0);
  });

  it("fed from fit's beforeStep, counts one batch per step and drives a taylor prune round", () => {
    const model = tiny(3);
    const acc = new TaylorAccumulator(model, ["fc1.weight", "fc2.weight"]);
    const optimizer = new SGD(model.parameters(), { lr: 0.05 });
    fit(model, {
      train: data,
      epochs: 2,
      batchSize: 8,
      optimizer,
      seed: 1,
      beforeStep: () => acc.accumulate(),
    });
    expect(acc.batches).toBe(6);
    const st = new PruningState(model, { "fc1.weight": { kind: "row" } });
    const imp = acc.importance("fc1.weight");
    const rowScore = (r: number) =>
      (imp[4 * r]! + imp[4 * r + 1]! + imp[4 * r + 2]! + imp[4 * r + 3]!) / 4;
    st.pruneFraction(0.4, { score: "taylor", taylor: acc });
    const removed = [0, 1, 2, 3, 4].filter((r) => st.alive("fc1.weight")[r] === 0);
    const kept = [0, 1, 2, 3, 4].filter((r) => st.alive("fc1.weight")[r] === 1);
    expect(removed.length).toBe(2);
    for (const r of removed)
      for (const k of kept) expect(rowScore(r)).toBeLessThanOrEqual(rowScore(k));
    expect(() => st.pruneFraction(0.4, { score: "taylor" })).toThrow(
      /"taylor" score needs the accumulated importance of 20 elements, got none/,
    );
  });

  it("says what is missing", () => {
    const model = tiny(2);
    const acc = new TaylorAccumulator(model, ["fc2.weight"]);
    expect(() => acc.accumulate()).toThrow(
      /"fc2.weight" has no gradient; call it after backward\(\)/,
    );
    expect(() => acc.importance("fc2.weight")).toThrow(/no batch accumulated yet/);
    expect(() => acc.importance("fc1.weight")).toThrow(
      /"fc1.weight" is not tracked; tracking fc2.weight/,
    );
    expect(() => new TaylorAccumulator(model, ["fc9.weight"])).toThrow(/no parameter "fc9.weight"/);
    expect(() => accumulateTaylor(model, acc, data, { batches: 0, batchSize: 8, seed: 1 })).toThrow(
      /accumulateTaylor: batches must be a positive integer, got 0/,
    );
  });
});
