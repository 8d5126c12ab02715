import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { constantLr, cosineLr, linearWarmup, stepDecayLr, toSchedule } from "../src/schedules.ts";

describe("schedules", () => {
  it("constant", () => {
    const s = constantLr(0.1);
    expect([0, 1, 1000].map(s)).toEqual([0.1, 0.1, 0.1]);
    expect(toSchedule(0.01)(5)).toBe(0.01);
    expect(toSchedule(s)).toBe(s);
  });
  it("step decay", () => {
    const s = stepDecayLr({ lr: 1, stepSize: 3, gamma: 0.5 });
    expect([0, 1, 2, 3, 5, 6, 9].map(s)).toEqual([1, 1, 1, 0.5, 0.5, 0.25, 0.125]);
  });
  it("cosine with min lr", () => {
    const s = cosineLr({ lr: 1, totalSteps: 4, minLr: 0.2 });
    expect(s(0)).toBeCloseTo(1, 12);
    expect(s(2)).toBeCloseTo(0.6, 12);
    expect(s(1)).toBeCloseTo(0.2 + (0.8 * (1 + Math.SQRT1_2)) / 2, 12);
    expect(s(4)).toBe(0.2);
    expect(s(100)).toBe(0.2);
  });
  it("cosine is non-increasing and stays within [minLr, lr] (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.001, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 500 }),
        (lr, total) => {
          const s = cosineLr({ lr, totalSteps: total, minLr: lr / 10 });
          let prev = Infinity;
          for (let k = 0; k <= total + 2; k++) {
            const v = s(k);
            expect(v).toBeLessThanOrEqual(prev + 1e-15);
            expect(v).toBeGreaterThanOrEqual(lr / 10 - 1e-15);
            expect(v).toBeLessThanOrEqual(lr + 1e-15);
            prev = v;
          }
        },
      ),
      { numRuns: 30 },
    );
  });
  it("linear warm-up composes with any schedule", () => {
    const s = linearWarmup(stepDecayLr({ lr: 0.8, stepSize: 2, gamma: 0.5 }), 4);
    expect([0, 1, 2, 3].map(s)).toEqual([0.2, 0.4, 0.6000000000000001, 0.8]);
    expect([4, 5, 6, 7, 8].map(s)).toEqual([0.8, 0.8, 0.4, 0.4, 0.2]);
    const c = linearWarmup(cosineLr({ lr: 1, totalSteps: 10 }), 2);
    expect(c(0)).toBe(0.5);
    expect(c(2)).toBe(1);
    expect(c(12)).toBe(0);
    expect(linearWarmup(constantLr(0.3), 0)(0)).toBe(0.3);
  });
  it("validates arguments", () => {
    expect(() => constantLr(-1)).toThrow(/constantLr: lr must be/);
    expect(() => stepDecayLr({ lr: 1, stepSize: 0, gamma: 0.1 })).toThrow(
      /stepSize must be an integer >= 1/,
    );
    expect(() => cosineLr({ lr: 0.1, totalSteps: 10, minLr: 0.2 })).toThrow(
      /minLr \(0.2\) must not exceed lr/,
    );
    expect(() => linearWarmup(constantLr(1), 1.5)).toThrow(/warmupSteps/);
    expect(() => constantLr(1)(-1)).toThrow(/step must be an integer >= 0/);
  });
});
