// Fused linear layer: forward against matmul + bias, gradients, errors, and the skip of dx
// for inputs that need no gradient.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, linear, sum } from "../src/index.ts";
import { normal64, param, seedArb } from "./helpers.ts";

describe("linear", () => {
  it("equals x·Wᵀ + b and its gradients match finite differences (float64 kernels)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        seedArb,
        (lead, inF, outF, withBias, seed) => {
          const x = normal64([...lead, inF], seed);
          const w = normal64([outF, inF], seed + 1);
          const b = normal64([outF], seed + 2);
          const y = linear(new Variable(x), new Variable(w), withBias ? new Variable(b) : null);
          let want = T.matmul(x, w.transpose());
          if (withBias) want = T.add(want, b);
          expect(y.shape).toEqual([...lead, outF]);
          expect(T.allClose(y.data, want, 1e-12, 1e-12)).toBe(true);
          const r = withBias
            ? gradcheck((a, c, d) => linear(a, c, d), [x, w, b])
            : gradcheck((a, c) => linear(a, c), [x, w]);
          expect(r.ok).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("1-d input gives 1-d output", () => {
    const y = linear(
      new Variable(T.fromArray([1, 2], "float64")),
      new Variable(
        T.fromArray(
          [
            [1, 0],
            [1, 1],
            [0, 2],
          ],
          "float64",
        ),
      ),
    );
    expect(y.data.toArray()).toEqual([1, 3, 4]);
  });

  it("trains in float32 and skips dx when x needs no gradient", () => {
    const x = new Variable(T.randn([8, 5], new T.Generator(1)));
    const w = param(T.randn([3, 5], new T.Generator(2)));
    const b = param(T.zeros([3]));
    const y = linear(x, w, b);
    expect(y.dtype).toBe("float32");
    sum(y).backward();
    expect(w.grad!.dtype).toBe("float32");
    expect(x.grad).toBeNull();
    // db = column sums of ones = batch size; dW = 1ᵀ·x = column sums of x
    expect(Array.from(b.grad!.data)).toEqual([8, 8, 8]);
    const colSums = T.sum(x.data, 0);
    for (let j = 0; j < 5; j++) expect(w.grad!.get(1, j)).toBeCloseTo(colSums.get(j), 4);
  });

  it("explains in-feature, bias and dtype mismatches", () => {
    const x = new Variable(T.zeros([128, 784]));
    const w = new Variable(T.zeros([300, 700]));
    expect(() => linear(x, w)).toThrow(
      "linear: x has 784 input features (shape [128,784]) but weight of shape [300,700] expects 700",
    );
    const w2 = new Variable(T.zeros([300, 784]));
    expect(() => linear(x, w2, new Variable(T.zeros([299])))).toThrow(
      /linear: bias must have shape \[300\]/,
    );
    expect(() => linear(x, new Variable(T.zeros([300, 784], "float64")))).toThrow(
      /linear: x is float32 but weight is float64/,
    );
    expect(() => linear(x, new Variable(T.zeros([784])))).toThrow(/linear: weight must be 2-d/);
  });
});
