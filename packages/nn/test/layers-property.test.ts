// Layers against naive reference loops on random small shapes, including batch 0 and 1.
import fc from "fast-check";
import { Generator, Tensor } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { describe, expect, it } from "vitest";
import { AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d } from "../src/layers.ts";

function randomInput(shape: number[], seed: number): Variable {
  const g = new Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Variable(
    new Tensor(
      Float32Array.from({ length: n }, () => g.normal()),
      shape,
    ),
  );
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++)
    expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(want[i]!)));
}

describe("layers vs naive references (property)", () => {
  it("Linear", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        fc.nat(1000),
        (n, inF, outF, bias, seed) => {
          const layer = new Linear(inF, outF, { bias, generator: new Generator(seed) });
          const x = randomInput([n, inF], seed + 1);
          const y = layer.forward(x);
          expect(y.shape).toEqual([n, outF]);
          const W = layer.weight.data.data;
          const X = x.data.data;
          const want = new Float64Array(n * outF);
          for (let i = 0; i < n; i++)
            for (let o = 0; o < outF; o++) {
              let s = bias ? layer.bias!.data.data[o]! : 0;
              for (let k = 0; k < inF; k++) s += X[i * inF + k]! * W[o * inF + k]!;
              want[i * outF + o] = s;
            }
          expectClose(y.data.contiguous().data, want);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("Conv2d (stride, padding)", () => {
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 0, max: 2 }),
          c: fc.integer({ min: 1, max: 3 }),
          f: fc.integer({ min: 1, max: 3 }),
          k: fc.integer({ min: 1, max: 3 }),
          stride: fc.integer({ min: 1, max: 2 }),
          padding: fc.integer({ min: 0, max: 1 }),
          extra: fc.integer({ min: 0, max: 3 }),
          seed: fc.nat(1000),
        }),
        ({ n, c, f, k, stride, padding, extra, seed }) => {
          const h = Math.max(1, k - 2 * padding) + extra;
          const w = Math.max(1, k - 2 * padding) + ((extra + 1) % 3);
          const layer = new Conv2d(c, f, k, { stride, padding, generator: new Generator(seed) });
          const x = randomInput([n, c, h, w], seed + 1);
          const y = layer.forward(x);
          const oh = Math.floor((h + 2 * padding - k) / stride) + 1;
          const ow = Math.floor((w + 2 * padding - k) / stride) + 1;
          expect(y.shape).toEqual([n, f, oh, ow]);
          const W = layer.weight.data.data;
          const B = layer.bias!.data.data;
          const X = x.data.data;
          const want = new Float64Array(n * f * oh * ow);
          for (let b = 0; b < n; b++)
            for (let o = 0; o < f; o++)
              for (let i = 0; i < oh; i++)
                for (let j = 0; j < ow; j++) {
                  let s = B[o]!;
                  for (let ci = 0; ci < c; ci++)
                    for (let u = 0; u < k; u++)
                      for (let v = 0; v < k; v++) {
                        const r = i * stride - padding + u;
                        const q = j * stride - padding + v;
                        if (r < 0 || r >= h || q < 0 || q >= w) continue;
                        s +=
                          X[((b * c + ci) * h + r) * w + q]! * W[((o * c + ci) * k + u) * k + v]!;
                      }
                  want[((b * f + o) * oh + i) * ow + j] = s;
                }
          expectClose(y.data.contiguous().data, want);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("MaxPool2d / AvgPool2d / Flatten", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.nat(1000),
        (n, c, k, extra, seed) => {
          const h = k + extra;
          const w = k + ((extra + 2) % 4);
          const x = randomInput([n, c, h, w], seed);
          const oh = Math.floor((h - k) / k) + 1;
          const ow = Math.floor((w - k) / k) + 1;
          const X = x.data.data;
          const mx = new Float64Array(n * c * oh * ow);
          const av = new Float64Array(n * c * oh * ow);
          for (let p = 0; p < n * c; p++)
            for (let i = 0; i < oh; i++)
              for (let j = 0; j < ow; j++) {
                let m = -Infinity;
                let s = 0;
                for (let u = 0; u < k; u++)
                  for (let v = 0; v < k; v++) {
                    const val = X[(p * h + i * k + u) * w + j * k + v]!;
                    m = Math.max(m, val);
                    s += val;
                  }
                mx[(p * oh + i) * ow + j] = m;
                av[(p * oh + i) * ow + j] = s / (k * k);
              }
          expectClose(new MaxPool2d(k).forward(x).data.contiguous().data, mx);
          expectClose(new AvgPool2d(k).forward(x).data.contiguous().data, av);
          const flat = new Flatten().forward(x);
          expect(flat.shape).toEqual([n, c * h * w]);
          expectClose(flat.data.contiguous().data, X);
        },
      ),
      { numRuns: 40 },
    );
  });
});
