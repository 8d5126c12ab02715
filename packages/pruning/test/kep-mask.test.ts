// KEP's mask builders (free top-n, pattern library, plane removal) against brute-force
// references on small shapes, and the controllable penalty: lambda(t) values, the gradient term
// against float64 central differences, and a planted fault the checks catch.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Generator, Tensor } from "@tessera/tensor";
import { SGD, fit, arrayDataset, type Sequential } from "@tessera/nn";
import {
  MaskPenalty,
  PruningState,
  applyKepMask,
  assignPatterns,
  derivePatternLibrary,
  penaltyLambda,
  planeMask,
  planeNorms,
  planesToRemove,
  preservingWeights,
  selectTopPerPartition,
  topPerPlane,
  type PatternLibrary,
} from "../src/index.ts";
import { convNet, randomValues, tiedScores } from "./helpers.ts";

const shape4Arb = fc.tuple(
  fc.integer({ min: 1, max: 4 }),
  fc.integer({ min: 1, max: 3 }),
  fc.integer({ min: 1, max: 3 }),
  fc.integer({ min: 1, max: 3 }),
);

/** Every subset of size n of 0..k-1, ascending, in lexicographic order. */
function subsets(k: number, n: number): number[][] {
  const out: number[][] = [];
  const rec = (start: number, cur: number[]) => {
    if (cur.length === n) {
      out.push(cur.slice());
      return;
    }
    for (let i = start; i < k; i++) rec(i + 1, [...cur, i]);
  };
  rec(0, []);
  return out;
}

/** Brute force: the size-n subset of a plane with the largest score sum (first one on ties). */
function bestSubset(plane: number[], n: number): number[] {
  let best: number[] = [];
  let bestSum = -Infinity;
  for (const s of subsets(plane.length, n)) {
    const sum = s.reduce((a, q) => a + plane[q]!, 0);
    if (sum > bestSum) {
      bestSum = sum;
      best = s;
    }
  }
  return best;
}

/**
 * Reference library: count each plane's top-n subset (`top`, default the brute-force best),
 * most frequent first; equal counts by the layer score (the sum over the pattern's positions of
 * each position's score summed over all planes, both sums ascending as documented), then by
 * positions.
 */
function referenceLibrary(
  scores: Float64Array,
  shape: number[],
  n: number,
  size: number,
  top: (plane: number[], n: number) => number[] = bestSubset,
) {
  const k2 = shape[2]! * shape[3]!;
  const planes = shape[0]! * shape[1]!;
  const count: Record<string, number> = {};
  for (let p = 0; p < planes; p++) {
    const key = top(Array.from(scores.subarray(p * k2, (p + 1) * k2)), n).join(",");
    count[key] = (count[key] ?? 0) + 1;
  }
  const column = Array.from({ length: k2 }, (_, q) => {
    let t = 0;
    for (let p = 0; p < planes; p++) t += scores[p * k2 + q]!;
    return t;
  });
  const mass = (key: string) => key.split(",").reduce((a, q) => a + column[Number(q)]!, 0);
  const lex = (a: string, b: string) => {
    const x = a.split(",").map(Number);
    const y = b.split(",").map(Number);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return 0;
  };
  return Object.entries(count)
    .sort((a, b) => b[1] - a[1] || mass(b[0]) - mass(a[0]) || lex(a[0], b[0]))
    .slice(0, size);
}

/** The n largest of distinct scores, ascending positions (no subsets: 5x5 planes have too many). */
function topBySort(plane: number[], n: number): number[] {
  return [...plane.keys()]
    .sort((a, b) => plane[b]! - plane[a]!)
    .slice(0, n)
    .sort((a, b) => a - b);
}

/** Distinct random scores (no ties), so the brute-force optimum is unique. */
function distinctScores(n: number, seed: number): Float64Array {
  const g = new Generator(seed);
  return Float64Array.from({ length: n }, (_, i) => g.nextFloat() + i * 1e-9);
}

/** Whether every plane's id names a library pattern of maximal score sum (lowest id on ties). */
function assignmentIsBest(
  scores: Float64Array,
  shape: number[],
  lib: PatternLibrary,
  ids: Int32Array,
): boolean {
  const k2 = shape[2]! * shape[3]!;
  for (let p = 0; p < ids.length; p++) {
    const sums = lib.patterns.map((pat) =>
      Array.from(pat).reduce((a, q) => a + scores[p * k2 + q]!, 0),
    );
    const max = Math.max(...sums);
    if (ids[p] !== sums.indexOf(max)) return false;
  }
  return true;
}

function kepState(model: Sequential): PruningState {
  return new PruningState(model, {
    "conv1.weight": { kind: "kernelElement" },
    "conv2.weight": { kind: "kernelElement" },
  });
}

describe("topPerPlane", () => {
  it("keeps the n positions of largest score sum in every plane (brute force, distinct scores)", () => {
    fc.assert(
      fc.property(shape4Arb, fc.integer({ min: 1, max: 9 }), fc.nat(10000), (s, nRaw, seed) => {
        const shape = [...s];
        const k2 = s[2] * s[3];
        const n = 1 + (nRaw % k2);
        const scores = distinctScores(s[0] * s[1] * k2, seed);
        const top = topPerPlane(scores, shape, n);
        for (let p = 0; p < s[0] * s[1]; p++)
          expect(Array.from(top.subarray(p * n, (p + 1) * n))).toEqual(
            bestSubset(Array.from(scores.subarray(p * k2, (p + 1) * k2)), n),
          );
      }),
    );
  });

  it("breaks ties as the frame's selectTopPerPartition does (the higher position stays)", () => {
    fc.assert(
      fc.property(shape4Arb, fc.integer({ min: 1, max: 9 }), fc.nat(10000), (s, nRaw, seed) => {
        const k2 = s[2] * s[3];
        const n = 1 + (nRaw % k2);
        const total = s[0] * s[1] * k2;
        const scores = tiedScores(total, seed, 3);
        const mask = planeMask([...s], { positions: topPerPlane(scores, [...s], n), n });
        const partitionOf = Int32Array.from({ length: total }, (_, i) => Math.floor(i / k2));
        const removed = selectTopPerPartition(
          scores,
          new Uint8Array(total).fill(1),
          partitionOf,
          s[0] * s[1],
          n,
        );
        const want = new Float32Array(total).fill(1);
        for (const j of removed) want[j] = 0;
        expect(mask).toEqual(want);
      }),
    );
  });

  it("names the argument when the input is wrong", () => {
    expect(() => topPerPlane(new Float64Array(9), [1, 1, 3, 3], 0)).toThrow(
      /topPerPlane: n must be an integer in 1..9/,
    );
    expect(() => topPerPlane(new Float64Array(8), [1, 1, 3, 3], 2)).toThrow(
      /topPerPlane: scores have 8 entries, expected 9 for weight \[1,1,3,3\]/,
    );
    expect(() => topPerPlane(new Float64Array(9), [9], 2)).toThrow(/expected a conv weight shape/);
  });
});

describe("pattern mode", () => {
  it("derives the L most frequent top-n patterns, ties by layer score, then positions (reference counting)", () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 })),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(10000),
        ([f, c], n, size, seed) => {
          const shape = [f, c, 2, 2];
          // Few levels, so patterns repeat and counts tie.
          const scores = Float64Array.from(tiedScores(f * c * 4, seed, 3), (v, i) => v + i * 1e-9);
          const lib = derivePatternLibrary(scores, shape, { n, size });
          const ref = referenceLibrary(scores, shape, n, size);
          expect(lib.patterns.map((p) => Array.from(p).join(","))).toEqual(ref.map((r) => r[0]));
          expect(lib.counts).toEqual(ref.map((r) => r[1]));
        },
      ),
    );
  });

  it("on LeNet-5-shaped 5x5 planes, where most top-n patterns occur once, the library is the reference's (layer score, not top-left positions)", () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 6 })),
        fc.integer({ min: 1, max: 25 }),
        fc.integer({ min: 1, max: 8 }),
        fc.nat(10000),
        ([f, c], n, size, seed) => {
          const shape = [f, c, 5, 5];
          const scores = distinctScores(f * c * 25, seed);
          const lib = derivePatternLibrary(scores, shape, { n, size });
          const ref = referenceLibrary(scores, shape, n, size, topBySort);
          expect(lib.patterns.map((p) => Array.from(p).join(","))).toEqual(ref.map((r) => r[0]));
          expect(lib.counts).toEqual(ref.map((r) => r[1]));
          const ids = assignPatterns(scores, shape, lib);
          expect(assignmentIsBest(scores, shape, lib, ids)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
    // A 5x5 layer whose central 3x3 positions carry more score: all 80 top-6 patterns differ,
    // and the library takes central ones (ordering the count ties by positions alone took
    // 0,1,7,8,18,24 first).
    const shape = [10, 8, 5, 5];
    const g = new Generator(5);
    const centre = new Set([6, 7, 8, 11, 12, 13, 16, 17, 18]);
    const scores = Float64Array.from(
      { length: 80 * 25 },
      (_, i) => g.nextFloat() + (centre.has(i % 25) ? 0.3 : 0),
    );
    const lib = derivePatternLibrary(scores, shape, { n: 6, size: 4 });
    expect(lib.counts).toEqual([1, 1, 1, 1]);
    for (const p of lib.patterns) expect(Array.from(p).every((q) => centre.has(q))).toBe(true);
  });

  it("each plane takes the library pattern keeping the most score (brute force over the library)", () => {
    fc.assert(
      fc.property(
        shape4Arb,
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 5 }),
        fc.nat(10000),
        (s, nRaw, size, seed) => {
          const shape = [...s];
          const k2 = s[2] * s[3];
          const n = 1 + (nRaw % k2);
          const scores = Float64Array.from(tiedScores(s[0] * s[1] * k2, seed, 4));
          const lib = derivePatternLibrary(scores, shape, { n, size });
          const ids = assignPatterns(scores, shape, lib);
          expect(assignmentIsBest(scores, shape, lib, ids)).toBe(true);
        },
      ),
    );
  });

  it("a planted fault (planes taking the pattern of least score) is caught by the same check", () => {
    const shape = [4, 3, 3, 3];
    const scores = distinctScores(4 * 3 * 9, 7);
    const lib = derivePatternLibrary(scores, shape, { n: 3, size: 4 });
    expect(lib.patterns.length).toBeGreaterThan(1);
    const wrong = assignPatterns(
      Float64Array.from(scores, (v) => -v),
      shape,
      lib,
    );
    expect(assignmentIsBest(scores, shape, lib, wrong)).toBe(false);
  });

  it("a pattern-mode mask keeps exactly n per plane, each plane a library pattern", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(1000),
        (n, size, seed) => {
          const model = convNet(seed);
          const state = kepState(model);
          const info = applyKepMask(state, { n, mode: "pattern", librarySize: size });
          for (const name of ["conv1.weight", "conv2.weight"]) {
            const i = info.get(name)!;
            expect(i.library!.patterns.length).toBeLessThanOrEqual(size);
            const mask = state.mask(name);
            const keys = new Set(i.library!.patterns.map((p) => Array.from(p).join(",")));
            for (let p = 0; p < mask.length / 9; p++) {
              const kept: number[] = [];
              for (let q = 0; q < 9; q++) if (mask[p * 9 + q] === 1) kept.push(q);
              expect(kept.length).toBe(n);
              expect(keys.has(kept.join(","))).toBe(true);
              expect(kept.join(",")).toBe(
                Array.from(i.library!.patterns[i.patternIds![p]!]!).join(","),
              );
            }
            // The state zeroed the removed weights, as every prune operation does.
            const w = model.getParameter(name).data.data;
            for (let k = 0; k < w.length; k++) if (mask[k] === 0) expect(w[k]).toBe(0);
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it("free mode on a state equals keepTopPerPartition; with L = all patterns, pattern mode equals free mode", () => {
    const a = kepState(convNet(3));
    const b = kepState(convNet(3));
    const c = kepState(convNet(3));
    applyKepMask(a, { n: 4 });
    b.keepTopPerPartition(4);
    applyKepMask(c, { n: 4, mode: "pattern", librarySize: 10_000 });
    for (const name of a.names()) {
      expect(a.mask(name)).toEqual(b.mask(name));
      expect(c.mask(name)).toEqual(a.mask(name));
    }
  });

  it("refuses a state with removed elements and a parameter that is not a kernelElement conv weight", () => {
    const s = kepState(convNet(6));
    s.removeGroups("conv2.weight", [5]);
    expect(() => applyKepMask(s, { n: 2, names: ["conv2.weight"] })).toThrow(
      /applyKepMask: "conv2.weight" already has removed elements \(element 5\)/,
    );
    const rows = new PruningState(convNet(6), { "conv1.weight": { kind: "row" } });
    expect(() => applyKepMask(rows, { n: 2 })).toThrow(
      /applyKepMask: "conv1.weight" must be a conv weight \[F, C, kh, kw\] with kernelElement groups, got row groups on \[3,2,3,3\]/,
    );
    expect(() => applyKepMask(kepState(convNet(6)), { n: 10 })).toThrow(
      /applyKepMask\("conv1.weight"\): n must be an integer in 1..9 \(kh·kw\), got 10/,
    );
  });

  it("the scores come from the state's score options (a score other than |w| changes the mask)", () => {
    const a = kepState(convNet(5));
    const b = kepState(convNet(5));
    applyKepMask(a, { n: 2 });
    applyKepMask(b, { n: 2, score: "random", generator: new Generator(1) });
    expect(a.mask("conv2.weight")).not.toEqual(b.mask("conv2.weight"));
  });
});

describe("connectivity sparsity", () => {
  it("removes round(fraction · planes) planes of least norm over the kept elements, in both modes", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom("free" as const, "pattern" as const),
        fc.nat(1000),
        (n, fraction, mode, seed) => {
          const model = convNet(seed);
          const before = kepState(convNet(seed));
          applyKepMask(before, { n, mode, librarySize: 3 });
          const state = kepState(model);
          const info = applyKepMask(state, { n, mode, librarySize: 3, planeFraction: fraction });
          for (const name of state.names()) {
            const maskBefore = before.mask(name);
            const mask = state.mask(name);
            const planes = mask.length / 9;
            const removed = new Set(info.get(name)!.planesRemoved);
            expect(removed.size).toBe(Math.round(fraction * planes));
            const w = before.model.getParameter(name).data.data;
            const norms = planeNorms(w, [planes, 1, 3, 3]);
            for (let p = 0; p < planes; p++) {
              const keptNow = Array.from(mask.subarray(p * 9, p * 9 + 9));
              if (removed.has(p)) {
                expect(keptNow.every((m) => m === 0)).toBe(true);
                if (mode === "pattern") expect(info.get(name)!.patternIds![p]).toBe(-1);
              } else {
                expect(keptNow).toEqual(Array.from(maskBefore.subarray(p * 9, p * 9 + 9)));
                for (const r of removed) expect(norms[r]!).toBeLessThanOrEqual(norms[p]!);
              }
            }
          }
        },
      ),
      { numRuns: 30 },
    );
  });

  it("planesToRemove: lower plane index first on equal norms; fraction checked", () => {
    expect(Array.from(planesToRemove([1, 0, 1, 0, 1], 0.6))).toEqual([0, 1, 3]);
    expect(() => planesToRemove([1], 1.5)).toThrow(
      /planesToRemove: fraction must be in \[0, 1\], got 1.5/,
    );
  });
});

describe("the controllable penalty", () => {
  it("lambda(t): constant, linear ramp, cubic ramp (0 before beginStep, lambda from endStep)", () => {
    expect(penaltyLambda({ kind: "constant", lambda: 0.3 })(17)).toBe(0.3);
    const lin = penaltyLambda({ kind: "ramp", lambda: 2, beginStep: 10, endStep: 20 });
    expect([0, 10, 15, 20, 99].map(lin)).toEqual([0, 0, 1, 2, 2]);
    const cub = penaltyLambda({ kind: "ramp", lambda: 2, beginStep: 0, endStep: 4, power: 3 });
    expect(cub(1)).toBeCloseTo(2 * (1 - 0.75 ** 3), 15);
    expect(cub(2)).toBeCloseTo(2 * (1 - 0.5 ** 3), 15);
    expect(() => penaltyLambda({ kind: "ramp", lambda: 1, beginStep: 5, endStep: 5 })).toThrow(
      /penaltyLambda: endStep must be an integer > beginStep \(5\), got 5/,
    );
    expect(() => penaltyLambda({ kind: "constant", lambda: -1 })).toThrow(
      /penaltyLambda: lambda must be a finite number >= 0, got -1/,
    );
  });

  it("adds 2·lambda(t)·(1−M)⊙W, matching float64 central differences of lambda(t)·||(1−M)⊙W||²", () => {
    const model = convNet(11);
    const state = kepState(model);
    preservingWeights(state, () => applyKepMask(state, { n: 3 }));
    const penalty = new MaskPenalty(model, state, {
      kind: "ramp",
      lambda: 0.8,
      beginStep: 0,
      endStep: 10,
    });
    const step = 4;
    const lam = 0.8 * 0.4;
    const before = new Map<string, Float32Array>();
    for (const name of state.names()) {
      const p = model.getParameter(name);
      p.grad = new Tensor(randomValues(p.data.data.length, 3), [...p.shape]);
      before.set(name, (p.grad.data as Float32Array).slice());
    }
    penalty.addGradients(step);
    let total = 0;
    for (const name of state.names()) {
      const p = model.getParameter(name);
      const w = p.data.data as Float32Array;
      const mask = state.mask(name);
      const f = (v: number[]) => lam * v.reduce((s, x, i) => s + (mask[i] === 0 ? x * x : 0), 0);
      const wd = Array.from(w, Number);
      total += f(wd);
      const h = 1e-6;
      for (let i = 0; i < w.length; i++) {
        const plus = wd.slice();
        const minus = wd.slice();
        plus[i]! += h;
        minus[i]! -= h;
        const fd = (f(plus) - f(minus)) / (2 * h);
        expect(p.grad!.data[i]! - before.get(name)![i]!).toBeCloseTo(fd, 5);
      }
      p.grad = null;
    }
    expect(penalty.value(step)).toBeCloseTo(total, 9);
    expect(() => penalty.addGradients(step)).toThrow(/"conv1.weight" has no gradient/);
  });

  it("a planted fault (the term added on the kept elements instead) fails the difference check", () => {
    const model = convNet(12);
    const state = kepState(model);
    preservingWeights(state, () => applyKepMask(state, { n: 3 }));
    const inverted = new Map(
      state.entries().map((e) => [e.name, Float32Array.from(e.mask, (m) => 1 - m)]),
    );
    const wrong = new MaskPenalty(model, inverted, { kind: "constant", lambda: 1 });
    const p = model.getParameter("conv2.weight");
    const mask = state.mask("conv2.weight");
    for (const n of state.names()) {
      const q = model.getParameter(n);
      q.grad = new Tensor(new Float32Array(q.data.data.length), [...q.shape]);
    }
    wrong.addGradients(0);
    const w = p.data.data;
    const g = p.grad!.data;
    let mismatches = 0;
    for (let i = 0; i < w.length; i++)
      if (Math.abs(g[i]! - (mask[i] === 0 ? 2 * w[i]! : 0)) > 1e-6) mismatches++;
    expect(mismatches).toBeGreaterThan(0);
  });

  it("through fit's beforeStep the masked-out weights shrink while the kept ones train; the cut then leaves a KEP model", () => {
    const model = convNet(13);
    const state = kepState(model);
    preservingWeights(state, () => applyKepMask(state, { n: 2, mode: "pattern", librarySize: 4 }));
    // The weights are still dense after choosing the mask.
    const w2 = model.getParameter("conv2.weight").data.data;
    expect(Array.from(w2).filter((v) => v === 0).length).toBe(0);
    const penalty = new MaskPenalty(model, state, {
      kind: "ramp",
      lambda: 5,
      beginStep: 0,
      endStep: 8,
    });
    const g = new Generator(4);
    const x = Float32Array.from({ length: 32 * 2 * 16 }, () => g.nextFloat());
    const y = Int32Array.from({ length: 32 }, () => g.int(0, 3));
    const data = arrayDataset(x, y, [2, 4, 4]);
    const outside0 = penalty.outsideNorm();
    fit(model, {
      train: data,
      epochs: 4,
      batchSize: 8,
      optimizer: new SGD(model.parameters(), { lr: 0.05 }),
      seed: 1,
      beforeStep: penalty.beforeStep,
    });
    expect(penalty.outsideNorm()).toBeLessThan(0.2 * outside0);
    state.apply();
    expect(penalty.outsideNorm()).toBe(0);
  });
});
