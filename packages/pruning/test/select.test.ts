import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  removalOrder,
  selectFraction,
  selectGlobal,
  selectToDensity,
  selectTopPerPartition,
} from "../src/index.ts";
import { tiedScores } from "./helpers.ts";

// Reference removal order: sort (score, index) pairs of the alive groups.
function refOrder(scores: ArrayLike<number>, alive: Uint8Array): number[] {
  const idx: number[] = [];
  for (let j = 0; j < alive.length; j++) if (alive[j]) idx.push(j);
  return idx.sort((a, b) => (scores[a]! < scores[b]! ? -1 : scores[a]! > scores[b]! ? 1 : a - b));
}

const caseArb = fc
  .tuple(
    fc.integer({ min: 0, max: 60 }),
    fc.integer({ min: 0, max: 1e6 }),
    fc.integer({ min: 1, max: 6 }),
  )
  .map(([n, seed, levels]) => {
    const scores = tiedScores(n, seed, levels);
    const alive = Uint8Array.from({ length: n }, (_, j) => ((j * 31 + seed) % 4 === 0 ? 0 : 1));
    return { scores, alive };
  });

describe("selectFraction (the paper's per-round rule)", () => {
  it("removes round(f · alive) alive groups, lowest score first, lower index first on ties (property)", () => {
    fc.assert(
      fc.property(caseArb, fc.double({ min: 0, max: 1, noNaN: true }), ({ scores, alive }, f) => {
        const removed = Array.from(selectFraction(scores, alive, f));
        const order = refOrder(scores, alive);
        expect(removed).toEqual(order.slice(0, Math.round(f * order.length)));
        for (const j of removed) expect(alive[j]).toBe(1); // never a removed group again
      }),
      { numRuns: 300 },
    );
  });

  it("states its rounding: 20% of 7 alive removes 1, of 8 removes 2; halves round up", () => {
    const s = new Float64Array([5, 4, 3, 2, 1, 0, 9, 8]);
    expect(Array.from(selectFraction(s, new Uint8Array(8).fill(1), 0.2))).toEqual([5, 4]);
    const seven = new Uint8Array(8).fill(1);
    seven[5] = 0;
    expect(Array.from(selectFraction(s, seven, 0.2))).toEqual([4]);
    expect(selectFraction(s, new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]), 0.25).length).toBe(1); // 0.5 -> 1
    expect(() => selectFraction(s, new Uint8Array(8), 1.5)).toThrow(
      /selectFraction: fraction must be in \[0, 1\], got 1.5/,
    );
    expect(() => selectFraction(s, new Uint8Array(3), 0.5)).toThrow(
      /alive must be a Uint8Array of one flag per group \(8\), got 3/,
    );
    expect(() => removalOrder([NaN], new Uint8Array([1]))).toThrow(/score of alive group 0 is NaN/);
  });
});

describe("selectToDensity (one shot, per layer)", () => {
  it("keeps >= round(d · total) elements, within one group of it, removing a prefix of the order (property)", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 1e6 }),
        ({ scores, alive }, d, seed) => {
          const sizes = Int32Array.from(
            { length: scores.length },
            (_, j) => 1 + ((j * 13 + seed) % 5),
          );
          const total = sizes.reduce((a, b) => a + b, 0);
          let kept = 0;
          for (let j = 0; j < sizes.length; j++) if (alive[j]) kept += sizes[j]!;
          const removed = Array.from(selectToDensity(scores, alive, sizes, d));
          const order = refOrder(scores, alive);
          expect(removed).toEqual(order.slice(0, removed.length));
          const after = kept - removed.reduce((a, j) => a + sizes[j]!, 0);
          const target = Math.round(d * total);
          if (kept <= target) expect(removed).toEqual([]);
          else {
            expect(after).toBeGreaterThanOrEqual(target);
            const next = order[removed.length];
            if (next !== undefined) expect(after - sizes[next]!).toBeLessThan(target);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("selectGlobal", () => {
  it("ranks all layers together; 'max' normalises each layer by its best alive score", () => {
    const a = {
      scores: new Float64Array([1, 2, 3, 4]),
      alive: new Uint8Array(4).fill(1),
      sizes: new Int32Array(4).fill(1),
    };
    const b = {
      scores: new Float64Array([10, 20, 30, 40]),
      alive: new Uint8Array(4).fill(1),
      sizes: new Int32Array(4).fill(1),
    };
    // Raw scores: the four smallest are all in layer a.
    expect(selectGlobal([a, b], 0.5).map((r) => Array.from(r))).toEqual([[0, 1, 2, 3], []]);
    // Normalised: both layers score 0.25, 0.5, 0.75, 1; ties go to the first layer.
    expect(selectGlobal([a, b], 0.5, "max").map((r) => Array.from(r))).toEqual([
      [0, 1],
      [0, 1],
    ]);
    expect(selectGlobal([a, b], 0.625, "max").map((r) => Array.from(r))).toEqual([[0, 1], [0]]);
    expect(() => selectGlobal([a], 0.5, "l2" as "max")).toThrow(
      /normalize must be "none" or "max"/,
    );
  });

  it("removes the lowest scores of the union, by element count, never revived (property)", () => {
    fc.assert(
      fc.property(caseArb, caseArb, fc.double({ min: 0, max: 1, noNaN: true }), (x, y, d) => {
        const layers = [x, y].map((c) => ({
          ...c,
          sizes: new Int32Array(c.scores.length).fill(2),
        }));
        const removed = selectGlobal(layers, d);
        const total = 2 * (x.scores.length + y.scores.length);
        let kept = 0;
        layers.forEach((l) => l.alive.forEach((a) => (kept += 2 * a)));
        const nRemoved = removed[0]!.length + removed[1]!.length;
        const target = Math.round(d * total);
        const after = kept - 2 * nRemoved;
        if (kept <= target) expect(nRemoved).toBe(0);
        else {
          expect(after).toBeGreaterThanOrEqual(target);
          if (after > 0) expect(after - 2).toBeLessThan(target);
        }
        // Every removed score <= every kept alive score across both layers.
        const maxRemoved = Math.max(
          -Infinity,
          ...removed.flatMap((r, li) => Array.from(r, (j) => layers[li]!.scores[j]!)),
        );
        layers.forEach((l, li) => {
          const gone = new Set(removed[li]);
          l.alive.forEach((a, j) => {
            if (a && !gone.has(j)) expect(l.scores[j]!).toBeGreaterThanOrEqual(maxRemoved);
            if (gone.has(j)) expect(a).toBe(1);
          });
        });
      }),
      { numRuns: 200 },
    );
  });
});

describe("selectTopPerPartition (KEP)", () => {
  it("keeps the n best alive groups of each partition and removes the rest (property)", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 0, max: 5 }),
        ({ scores, alive }, planeSize, n) => {
          const count = scores.length;
          const parts = Math.ceil(count / planeSize);
          const partitionOf = Int32Array.from({ length: count }, (_, j) =>
            Math.floor(j / planeSize),
          );
          const removed = new Set(selectTopPerPartition(scores, alive, partitionOf, parts, n));
          for (let p = 0; p < parts; p++) {
            const members = refOrder(scores, alive).filter((j) => partitionOf[j] === p);
            const keep = members.slice(Math.max(0, members.length - n));
            for (const j of members) expect(removed.has(j)).toBe(!keep.includes(j));
          }
          for (const j of removed) expect(alive[j]).toBe(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
