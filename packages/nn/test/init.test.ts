import { Generator } from "@tessera/tensor";
import { describe, expect, it } from "vitest";
import {
  calculateGain,
  computeFans,
  defaultLayerInit,
  kaimingNormal,
  kaimingUniform,
  xavierNormal,
  xavierUniform,
} from "../src/init.ts";

function stats(a: Float32Array): { min: number; max: number; mean: number; std: number } {
  let min = Infinity,
    max = -Infinity,
    s = 0,
    s2 = 0;
  for (const v of a) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    s += v;
    s2 += v * v;
  }
  const mean = s / a.length;
  return { min, max, mean, std: Math.sqrt(s2 / a.length - mean * mean) };
}

describe("initialisers", () => {
  it("fans and gains as PyTorch computes them", () => {
    expect(computeFans([300, 784])).toEqual({ fanIn: 784, fanOut: 300 });
    expect(computeFans([20, 1, 5, 5])).toEqual({ fanIn: 25, fanOut: 500 });
    expect(calculateGain("relu")).toBe(Math.SQRT2);
    expect(calculateGain("leaky_relu", Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 15);
    expect(() => computeFans([3])).toThrow(/at least 2 dims/);
  });
  it("default Linear/Conv init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias", () => {
    const shape = [64, 100];
    const wt = new Float32Array(6400);
    const b = new Float32Array(64);
    defaultLayerInit(wt, shape, b, new Generator(1));
    const s = stats(wt);
    expect(s.min).toBeGreaterThanOrEqual(-0.1);
    expect(s.max).toBeLessThanOrEqual(0.1);
    expect(s.max).toBeGreaterThan(0.099); // the bound is reached, not a smaller one
    expect(s.std).toBeCloseTo(0.1 / Math.sqrt(3), 2);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(0.1);
    // deterministic with the seed
    const wt2 = new Float32Array(6400);
    defaultLayerInit(wt2, shape, new Float32Array(64), new Generator(1));
    expect(wt2).toEqual(wt);
  });
  it("kaiming and xavier have the documented spread", () => {
    const g = new Generator(7);
    const a = new Float32Array(20000);
    kaimingUniform(a, [200, 100], g, { nonlinearity: "relu" });
    expect(stats(a).max).toBeLessThanOrEqual(Math.sqrt(6 / 100));
    expect(stats(a).std).toBeCloseTo(Math.sqrt(2 / 100), 2);
    kaimingNormal(a, [200, 100], g, { nonlinearity: "relu", mode: "fanOut" });
    expect(stats(a).std).toBeCloseTo(Math.sqrt(2 / 200), 2);
    xavierUniform(a, [200, 100], g);
    expect(stats(a).max).toBeLessThanOrEqual(Math.sqrt(6 / 300));
    xavierNormal(a, [200, 100], g, 2);
    expect(stats(a).std).toBeCloseTo(2 * Math.sqrt(2 / 300), 2);
    expect(Math.abs(stats(a).mean)).toBeLessThan(0.01);
    expect(() => kaimingUniform(a, [0, 0], g)).toThrow(/fanIn must be > 0/);
  });
});
