import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { iterativeDensity, polynomialDecay } from "../src/index.ts";

describe("polynomialDecay (Zhu & Gupta, TF-MOT PolynomialDecay)", () => {
  it("follows s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n·Δt))^3 and clamps outside [t0, t0 + nΔt]", () => {
    const s = polynomialDecay({
      initialSparsity: 0.1,
      finalSparsity: 0.9,
      beginStep: 100,
      endStep: 500,
      frequency: 100,
    });
    expect(s.sparsityAt(0)).toBeCloseTo(0.1, 15);
    expect(s.sparsityAt(100)).toBeCloseTo(0.1, 15);
    // t = 300: p = 0.5, s = 0.9 - 0.8 · 0.125 = 0.8.
    expect(s.sparsityAt(300)).toBeCloseTo(0.8, 15);
    expect(s.sparsityAt(500)).toBeCloseTo(0.9, 15);
    expect(s.sparsityAt(10_000)).toBeCloseTo(0.9, 15);
    expect(s.densityAt(300)).toBeCloseTo(0.2, 15);
    expect([0, 100, 150, 200, 500, 600].map((t) => s.isPruningStep(t))).toEqual([
      false,
      true,
      false,
      true,
      true,
      false,
    ]);
  });

  it("is a pure, monotone function of the step matching the formula (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0.5, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 3000 }),
        (si, sf, t0, span, t) => {
          const s = polynomialDecay({
            initialSparsity: si,
            finalSparsity: sf,
            beginStep: t0,
            endStep: t0 + span,
          });
          const p = Math.min(1, Math.max(0, (t - t0) / span));
          expect(s.sparsityAt(t)).toBeCloseTo(sf + (si - sf) * (1 - p) ** 3, 12);
          expect(s.sparsityAt(t + 1)).toBeGreaterThanOrEqual(s.sparsityAt(t) - 1e-15);
          expect(s.sparsityAt(t)).toBe(s.sparsityAt(t)); // no hidden state
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses bad options, naming them", () => {
    expect(() =>
      polynomialDecay({ initialSparsity: 0, finalSparsity: 1.2, beginStep: 0, endStep: 10 }),
    ).toThrow(/polynomialDecay: finalSparsity must be in \[0, 1\], got 1.2/);
    expect(() =>
      polynomialDecay({ initialSparsity: 0, finalSparsity: 0.5, beginStep: 10, endStep: 10 }),
    ).toThrow(/endStep must be an integer > beginStep \(10\), got 10/);
    expect(() =>
      polynomialDecay({
        initialSparsity: 0,
        finalSparsity: 0.5,
        beginStep: 0,
        endStep: 10,
        frequency: 0,
      }),
    ).toThrow(/frequency must be a positive integer, got 0/);
  });

  it("iterativeDensity is (1 - rate)^round", () => {
    expect(iterativeDensity(0.2, 10)).toBeCloseTo(0.107374, 6);
    expect(() => iterativeDensity(0.2, -1)).toThrow(/round must be an integer >= 0/);
  });
});
