import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  Generator,
  createGenerator,
  portableLog,
  rand,
  randn,
  randint,
  uniform,
} from "../src/index.ts";

describe("Generator", () => {
  it("matches the xoshiro128** reference output for state [1,2,3,4]", () => {
    // reference: Blackman & Vigna's xoshiro128starstar.c compiled with gcc, s = {1,2,3,4}
    const g = Generator.fromState({ key: [0], spawned: 0, s: [1, 2, 3, 4], spare: null });
    const got = Array.from({ length: 8 }, () => g.nextUint32());
    expect(got).toEqual([
      11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849,
    ]);
  });

  it("pins the stream of seed 42 (guards against accidental algorithm changes)", () => {
    const g = createGenerator(42);
    const first = [g.nextUint32(), g.nextUint32(), g.nextUint32()];
    const again = createGenerator(42);
    expect([again.nextUint32(), again.nextUint32(), again.nextUint32()]).toEqual(first);
    // recorded from this implementation; any change here breaks every saved experiment
    expect(first).toEqual([566908992, 3905662657, 2989814277]);
  });

  it("pins normal(), nextFloat(), int() and fork() for seed 2024 (recorded from this implementation)", () => {
    // exact equality: every step is integer math or correctly rounded IEEE arithmetic
    const g = createGenerator(2024);
    const got = [
      g.normal(),
      g.normal(),
      g.normal(),
      g.nextFloat(),
      g.int(0, 10),
      g.fork().nextUint32(),
    ];
    expect(got).toEqual([
      0.40630982441350544, 1.7295016684760611, -1.1413127321363632, 0.6598968460392769, 9,
      3400391152,
    ]);
  });

  it("same seed -> same numbers; different seeds differ", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 1000 }),
        (seed, delta) => {
          const a = new Generator(seed);
          const b = new Generator(seed);
          const c = new Generator(seed + delta);
          const xa = Array.from({ length: 16 }, () => a.nextUint32());
          const xb = Array.from({ length: 16 }, () => b.nextUint32());
          const xc = Array.from({ length: 16 }, () => c.nextUint32());
          expect(xa).toEqual(xb);
          expect(xa).not.toEqual(xc);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("split streams differ from each other and from the parent, and are reproducible", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 }),
        fc.integer({ min: 2, max: 6 }),
        (seed, n) => {
          const g = new Generator(seed);
          const kids = g.split(n);
          const draws = [g, ...kids].map((x) =>
            Array.from({ length: 8 }, () => x.nextUint32()).join(","),
          );
          expect(new Set(draws).size).toBe(n + 1);
          const kids2 = new Generator(seed).split(n);
          expect(
            kids2.map((x) => Array.from({ length: 8 }, () => x.nextUint32()).join(",")),
          ).toEqual(draws.slice(1));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("fork does not consume the parent's numbers; grandchildren differ from children", () => {
    const a = new Generator(7);
    const b = new Generator(7);
    const child = a.fork();
    expect(a.nextUint32()).toBe(b.nextUint32());
    const grand = child.fork();
    const second = a.fork();
    const s1 = Array.from({ length: 4 }, () => grand.nextUint32());
    const s2 = Array.from({ length: 4 }, () => second.nextUint32());
    const s3 = Array.from({ length: 4 }, () => child.nextUint32());
    expect(s1).not.toEqual(s2);
    expect(s1).not.toEqual(s3);
  });

  it("getState/fromState/clone resume the exact stream (including the cached normal)", () => {
    const g = new Generator(123);
    g.normal();
    const c = g.clone();
    const r = Generator.fromState(JSON.parse(JSON.stringify(g.getState())));
    const x = [g.normal(), g.nextFloat(), g.fork().nextUint32()];
    expect([c.normal(), c.nextFloat(), c.fork().nextUint32()]).toEqual(x);
    expect([r.normal(), r.nextFloat(), r.fork().nextUint32()]).toEqual(x);
  });

  it("nextFloat and nextFloat32 are in [0,1); float32 values are exact in float32", () => {
    const g = new Generator(1);
    for (let i = 0; i < 2000; i++) {
      const u = g.nextFloat();
      const v = g.nextFloat32();
      expect(u >= 0 && u < 1).toBe(true);
      expect(v >= 0 && v < 1).toBe(true);
      expect(Math.fround(v)).toBe(v);
    }
  });

  it("int(lo, hi) stays in range and hits every value", () => {
    fc.assert(
      fc.property(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 1, max: 9 }), (lo, w) => {
        const g = new Generator(lo + 1000 * w);
        const seen = new Set<number>();
        for (let i = 0; i < 300; i++) {
          const v = g.int(lo, lo + w);
          expect(Number.isInteger(v) && v >= lo && v < lo + w).toBe(true);
          seen.add(v);
        }
        expect(seen.size).toBe(w);
      }),
      { numRuns: 30 },
    );
  });

  it("normal() has mean ~0 and variance ~1 (n=20000, 5-sigma bounds)", () => {
    const g = new Generator(99);
    const n = 20000;
    let s = 0,
      s2 = 0;
    for (let i = 0; i < n; i++) {
      const z = g.normal();
      s += z;
      s2 += z * z;
    }
    const mean = s / n;
    const v = s2 / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(v - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });

  it("permutation is a permutation; shuffle is reproducible", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 1e6 }), (n, seed) => {
        const p = new Generator(seed).permutation(n);
        expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
        expect([...new Generator(seed).permutation(n)]).toEqual([...p]);
      }),
      { numRuns: 40 },
    );
  });

  it("portableLog agrees with Math.log to ~1 ulp over many magnitudes", () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-300, max: 1e300, noNaN: true }), (x) => {
        const a = portableLog(x);
        const b = Math.log(x);
        expect(Math.abs(a - b)).toBeLessThanOrEqual(4e-16 * Math.max(1, Math.abs(b)));
      }),
      { numRuns: 300 },
    );
    expect(portableLog(1)).toBe(0);
    expect(portableLog(0)).toBe(-Infinity);
    expect(portableLog(Infinity)).toBe(Infinity);
    expect(portableLog(-1)).toBeNaN();
    expect(portableLog(NaN)).toBeNaN();
    expect(Math.abs(portableLog(5e-324) - Math.log(5e-324))).toBeLessThan(1e-12);
  });

  it("tensor draws are reproducible and typed", () => {
    const a = rand([3, 4], new Generator(5));
    const b = rand([3, 4], new Generator(5));
    expect(a.dtype).toBe("float32");
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    const n = randn([1000], new Generator(6), "float64");
    expect(n.dtype).toBe("float64");
    const r = randint(-3, 4, [500], new Generator(8));
    expect(r.dtype).toBe("int32");
    expect(Math.min(...r.data)).toBe(-3);
    expect(Math.max(...r.data)).toBe(3);
    const u = uniform([500], -2, 5, new Generator(9), "float64");
    expect(Math.min(...u.data)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u.data)).toBeLessThan(5);
  });

  it("rejects bad seeds and arguments with RangeErrors", () => {
    expect(() => new Generator(-1)).toThrow(
      /Generator: seed must be a non-negative safe integer.*-1/,
    );
    expect(() => new Generator(1.5)).toThrow(RangeError);
    expect(() => new Generator(1).int(3, 3)).toThrow(
      /Generator\.int: need integers with 1 <= hi - lo <= 2\^32, got lo=3, hi=3/,
    );
    expect(() => new Generator(1).int(0, 2 ** 32 + 1)).toThrow(RangeError);
    expect(() => new Generator(1).split(-1)).toThrow(
      /Generator\.split: n must be a non-negative integer, got -1/,
    );
    expect(() => new Generator(1).permutation(-2)).toThrow(/Generator\.permutation/);
    expect(() =>
      Generator.fromState({ key: [], spawned: 0, s: [0, 0, 0, 0], spare: null }),
    ).toThrow(/fromState/);
    expect(() => rand([2], 5 as unknown as Generator)).toThrow(/rand: expected a Generator/);
    expect(() => randint(3, 3, [2], new Generator(1))).toThrow(
      /randint: need integers .* got low=3, high=3/,
    );
    expect(() => randn([2], new Generator(1), "int32")).toThrow(/randn: dtype must be/);
    expect(() => uniform([2], 1, 0, new Generator(1))).toThrow(
      /uniform: need finite low <= high, got low=1, high=0/,
    );
  });
});
