import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  groupLayout,
  groupScores,
  keptGroupCount,
  project,
  removalOrder,
  type AdmmConstraint,
  type GroupKind,
} from "../src/index.ts";
import { randomValues, referenceGroups, shapeArb } from "./helpers.ts";

type SingleSet = Exclude<GroupKind, { kind: "kernelElement" }>;

const setArb: fc.Arbitrary<SingleSet> = fc.oneof(
  fc.constant<SingleSet>({ kind: "element" }),
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }))
    .map(([rows, cols]): SingleSet => ({ kind: "block", rows, cols })),
  fc.constant<SingleSet>({ kind: "row" }),
  fc.constant<SingleSet>({ kind: "column" }),
  fc.constant<SingleSet>({ kind: "channel" }),
);

const sq = (v: number): number => v * v;

function distance2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += sq(a[i]! - b[i]!);
  return s;
}

/** Nonzero groups of `values` by the reference grouping (not groupLayout). */
function nonzeroGroups(values: ArrayLike<number>, groups: number[][]): number {
  return groups.filter((g) => g.some((i) => values[i] !== 0)).length;
}

/**
 * Brute force: the minimum of ||W − Z||² over Z in the set, enumerating every support of at
 * most k groups (Z = W on the support is the best Z for a support). Returns the distance and
 * every support reaching it.
 */
function bruteForce(
  w: ArrayLike<number>,
  groups: number[][],
  k: number,
): { best: number; argmins: number[] } {
  const mass = groups.map((g) => g.reduce((s, i) => s + sq(w[i]!), 0));
  const total = mass.reduce((a, b) => a + b, 0);
  let best = Infinity;
  let argmins: number[] = [];
  for (let subset = 0; subset < 1 << groups.length; subset++) {
    let bits = 0;
    let kept = 0;
    for (let j = 0; j < groups.length; j++)
      if (subset & (1 << j)) {
        bits++;
        kept += mass[j]!;
      }
    if (bits > k) continue;
    const d = total - kept;
    if (d < best - 1e-12) {
      best = d;
      argmins = [subset];
    } else if (Math.abs(d - best) <= 1e-12) argmins.push(subset);
  }
  return { best, argmins };
}

// Small shapes so that 2^groups stays small for every kind.
const smallShapeArb = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 })).map(([a, b]) => [a, b]),
  fc
    .tuple(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 2 }),
    )
    .map(([f, c, k]) => [f, c, k, k]),
);

describe("project (single group kinds)", () => {
  it("lies in the set, is idempotent, and keeps exactly the mask's groups", () => {
    fc.assert(
      fc.property(
        shapeArb,
        setArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.nat(),
        (shape, set, d, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const w = randomValues(n, seed);
          const c: AdmmConstraint = { set, target: { density: d } };
          const p = project(w, shape, c);
          const groups = referenceGroups(set, shape);
          const k = Math.round(d * groups.length);
          expect(nonzeroGroups(p.values, groups)).toBeLessThanOrEqual(k);
          // The mask keeps whole reference groups, exactly k of them, and values = w · mask.
          const keptGroups = groups.filter((g) => g.every((i) => p.mask[i] === 1));
          expect(keptGroups.length).toBe(k);
          for (let i = 0; i < n; i++) expect(p.values[i]).toBe(p.mask[i] === 1 ? w[i] : 0);
          const again = project(p.values, shape, c);
          expect([...again.values]).toEqual([...p.values]);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reaches the brute-force minimum of ||W − Z|| over all supports, with its support when unique", () => {
    fc.assert(
      fc.property(
        smallShapeArb,
        setArb,
        fc.integer({ min: 0, max: 100 }),
        fc.nat(),
        (shape, set, pct, seed) => {
          const n = shape.reduce((a, b) => a * b, 1);
          const groups = referenceGroups(set, shape);
          fc.pre(groups.length <= 14);
          const w = randomValues(n, seed);
          const k = Math.round((pct / 100) * groups.length);
          const p = project(w, shape, { set, target: { keep: k } });
          const { best, argmins } = bruteForce(w, groups, k);
          expect(distance2(w, p.values)).toBeCloseTo(best, 9);
          if (argmins.length === 1) {
            const support = groups.map((g) => g.every((i) => p.mask[i] === 1));
            const bf = groups.map((_, j) => (argmins[0]! & (1 << j)) !== 0);
            // A group of all-zero weights may be in either support; here none is (random values).
            expect(support).toEqual(bf);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("breaks ties with the frame's removal order: among equal norms the lower index goes", () => {
    // Four rows of equal L2 norm (different values): keeping 2 keeps rows 2 and 3.
    const w = Float32Array.from([3, 4, 0, 0, 5, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, -5]);
    const shape = [4, 4];
    const p = project(w, shape, { set: { kind: "row" }, target: { keep: 2 } });
    expect([...p.kept]).toEqual([0, 0, 1, 1]);
    // The same as pruning to that count with the l2 score.
    const layout = groupLayout({ kind: "row" }, shape);
    const order = removalOrder(groupScores(w, layout, "l2"), new Uint8Array(4).fill(1));
    expect([...order.slice(0, 2)]).toEqual([0, 1]);
    // And the same bits on a second call (deterministic).
    expect([...project(w, shape, { set: { kind: "row" }, target: { keep: 2 } }).values]).toEqual([
      ...p.values,
    ]);
  });

  it("a projection by another norm (mean |w|) is caught by the brute-force check", () => {
    // Planted fault: rank ragged tiles by mean |w| instead of L2 norm. The brute-force
    // property must find an input where that misses the nearest point.
    const broken = (w: Float32Array, shape: number[], set: SingleSet, k: number): Float64Array => {
      const layout = groupLayout(set, shape);
      const alive = new Uint8Array(layout.count).fill(1);
      const order = removalOrder(groupScores(w, layout, "mean-abs"), alive);
      for (let j = 0; j < layout.count - k; j++) alive[order[j]!] = 0;
      return Float64Array.from(w, (v, i) => (alive[layout.groupOf[i]!] ? v : 0));
    };
    const result = fc.check(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 3 }), (seed, k) => {
        const shape = [3, 5];
        const set: SingleSet = { kind: "block", rows: 2, cols: 2 };
        const w = randomValues(15, seed);
        const best = bruteForce(w, referenceGroups(set, shape), k).best;
        expect(distance2(w, broken(w, shape, set, k))).toBeCloseTo(best, 9);
      }),
      { numRuns: 300, seed: 7 },
    );
    expect(result.failed).toBe(true);
  });

  it("refuses bad targets, kernelElement, wrong lengths and non-finite values, by name", () => {
    const w = new Float32Array(6);
    expect(() => project(w, [2, 3], { set: { kind: "row" }, target: { keep: 3 } })).toThrow(
      /project: keep must be an integer in \[0, 2\]/,
    );
    expect(() => project(w, [2, 3], { set: { kind: "row" }, target: { density: 1.5 } })).toThrow(
      /project: density must be in \[0, 1\]/,
    );
    expect(() =>
      project(w, [2, 3], { set: { kind: "row" }, target: { keep: 1, density: 0.5 } as never }),
    ).toThrow(/exactly one/);
    expect(() =>
      project(w, [2, 3], { set: { kind: "kernelElement" } as never, target: { keep: 1 } }),
    ).toThrow(/kernelElement is not an ADMM set/);
    expect(() =>
      project(new Float32Array(5), [2, 3], { set: { kind: "row" }, target: { keep: 1 } }),
    ).toThrow(/project: values have 5 elements, the shape \[2,3\] has 6/);
    expect(() =>
      project(Float32Array.from([0, 0, NaN, 0, 0, 0]), [2, 3], {
        set: { kind: "row" },
        target: { keep: 1 },
      }),
    ).toThrow(/value 2 is NaN/);
    expect(keptGroupCount("f", { density: 0.25 }, 10)).toBe(3); // round(2.5) = 3, halves up
  });
});

describe("project (filter + column, sequential)", () => {
  const fcArb = fc.tuple(
    smallShapeArb,
    fc.double({ min: 0, max: 1, noNaN: true }),
    fc.double({ min: 0, max: 1, noNaN: true }),
    fc.nat(),
  );

  it("lies in the intersection, is idempotent, and is no nearer than the brute-force optimum", () => {
    fc.assert(
      fc.property(fcArb, ([shape, dr, dc, seed]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const w = randomValues(n, seed);
        const c: AdmmConstraint = {
          set: { kind: "filterColumn" },
          rows: { density: dr },
          cols: { density: dc },
        };
        const p = project(w, shape, c);
        const rows = referenceGroups({ kind: "row" }, shape);
        const cols = referenceGroups({ kind: "column" }, shape);
        expect(nonzeroGroups(p.values, rows)).toBeLessThanOrEqual(Math.round(dr * rows.length));
        expect(nonzeroGroups(p.values, cols)).toBeLessThanOrEqual(Math.round(dc * cols.length));
        expect([...project(p.values, shape, c).values]).toEqual([...p.values]);
        // Brute force over row subsets x column subsets (feasible points of the intersection).
        const kr = Math.round(dr * rows.length);
        const kc = Math.round(dc * cols.length);
        let best = Infinity;
        const nc = cols.length;
        for (let rs = 0; rs < 1 << rows.length; rs++) {
          if (popcount(rs) > kr) continue;
          for (let cs = 0; cs < 1 << nc; cs++) {
            if (popcount(cs) > kc) continue;
            let d = 0;
            for (let i = 0; i < n; i++) {
              const keep = rs & (1 << Math.floor(i / nc)) && cs & (1 << (i % nc));
              if (!keep) d += sq(w[i]!);
            }
            best = Math.min(best, d);
          }
        }
        expect(distance2(w, p.values)).toBeGreaterThanOrEqual(best - 1e-9);
      }),
      { numRuns: 200 },
    );
  });

  it("is not the exact projection: a 2x3 case where the best pair is missed", () => {
    // Rows: [3, 3, 0] (mass 18) beats [0, 0, 4] (16), so the row step keeps row 0; one column
    // of it keeps 9. The nearest point keeps row 1, column 2: mass 16.
    const w = Float32Array.from([3, 3, 0, 0, 0, 4]);
    const p = project(w, [2, 3], {
      set: { kind: "filterColumn" },
      rows: { keep: 1 },
      cols: { keep: 1 },
    });
    expect([...p.values]).toEqual([0, 3, 0, 0, 0, 0]);
    expect([...p.kept]).toEqual([1, 0]);
    expect([...p.keptColumns!]).toEqual([0, 1, 0]);
    expect(distance2(w, p.values)).toBe(25); // the optimum is 18
  });
});

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}
