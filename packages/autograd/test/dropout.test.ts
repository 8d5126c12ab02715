// Inverted dropout: identity when off, reproducible masks from a seeded generator.
import { describe, expect, it } from "vitest";
import * as T from "@tessera/tensor";
import { Variable, dropout, gradcheck, sum } from "../src/index.ts";
import { normal64, param } from "./helpers.ts";

describe("dropout", () => {
  it("is the identity with p = 0 or when not training", () => {
    const x = param(normal64([3, 4], 1));
    const g = new T.Generator(0);
    expect(dropout(x, 0, g, true)).toBe(x);
    expect(dropout(x, 0.5, g, false)).toBe(x);
    // nothing was drawn from the generator
    expect(g.nextUint32()).toBe(new T.Generator(0).nextUint32());
  });

  it("masks reproducibly with a seeded generator and scales survivors by 1/(1-p)", () => {
    const x = new Variable(T.ones([1000], "float64"));
    const a = dropout(x, 0.3, new T.Generator(42), true);
    const b = dropout(x, 0.3, new T.Generator(42), true);
    const c = dropout(x, 0.3, new T.Generator(43), true);
    expect(T.equals(a.data, b.data)).toBe(true);
    expect(T.equals(a.data, c.data)).toBe(false);
    const vals = Array.from(a.data.data);
    expect(vals.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-15)).toBe(true);
    const dropped = vals.filter((v) => v === 0).length;
    // Binomial(1000, 0.3): mean 300, sd ≈ 14.5; 6 sd either side
    expect(dropped).toBeGreaterThan(213);
    expect(dropped).toBeLessThan(387);
    // the mask matches the generator's documented draw order: drop when nextFloat32() < p
    const g = new T.Generator(42);
    for (let i = 0; i < 20; i++) expect(vals[i] === 0).toBe(g.nextFloat32() < 0.3);
  });

  it("back-propagates through the same mask; p = 1 drops everything", () => {
    const x = param(normal64([50], 2));
    const y = dropout(x, 0.5, new T.Generator(7), true);
    sum(y).backward();
    for (let i = 0; i < 50; i++) expect(x.grad!.data[i]).toBe(y.data.data[i] === 0 ? 0 : 2);
    expect(
      gradcheck((v) => dropout(v, 0.4, new T.Generator(5), true), [normal64([4, 3], 3)]).ok,
    ).toBe(true);
    expect(
      Array.from(dropout(x, 1, new T.Generator(1), true).data.data).every((v) => v === 0),
    ).toBe(true);
  });

  it("validates p, training and the generator", () => {
    const x = new Variable(T.zeros([2]));
    expect(() => dropout(x, 1.5, new T.Generator(0), true)).toThrow(
      /dropout: p must be a probability in \[0, 1\], got 1.5/,
    );
    expect(() => dropout(x, 0.5, null as unknown as T.Generator, true)).toThrow(
      /dropout: generator must be/,
    );
    expect(() => dropout(x, 0.5, new T.Generator(0), 1 as unknown as boolean)).toThrow(
      /dropout: training must be a boolean/,
    );
  });
});
