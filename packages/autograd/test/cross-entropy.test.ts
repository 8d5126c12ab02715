// Fused softmax cross-entropy against a reference built from logSoftmax.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, softmaxCrossEntropy } from "../src/index.ts";
import { normal64, param, seedArb } from "./helpers.ts";

/** Row losses by the definition: -Σ_c q_c log softmax(z)_c. */
function reference(z: T.Tensor, labels: Int32Array, eps: number): number[] {
  const [n, c] = z.shape as [number, number];
  const lp = T.sub(z, T.logsumexp(z, 1, true));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let l = 0;
    for (let k = 0; k < c; k++) l -= (eps / c + (k === labels[i] ? 1 - eps : 0)) * lp.get(i, k);
    out.push(l);
  }
  return out;
}

const arbCase = fc.record({
  n: fc.integer({ min: 0, max: 5 }),
  c: fc.integer({ min: 1, max: 5 }),
  eps: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.5, noNaN: true })),
  reduction: fc.constantFrom("mean" as const, "sum" as const, "none" as const),
  seed: seedArb,
});

describe("softmaxCrossEntropy", () => {
  it("matches -Σ q·logSoftmax per row and its gradient matches finite differences", () => {
    fc.assert(
      fc.property(arbCase, ({ n, c, eps, reduction, seed }) => {
        const z = normal64([n, c], seed, 2);
        const g = new T.Generator(seed);
        const labels = Int32Array.from({ length: n }, () => g.int(0, c));
        const opts = { labelSmoothing: eps, reduction };
        const y = softmaxCrossEntropy(new Variable(z), labels, opts);
        const rows = reference(z, labels, eps);
        const want =
          reduction === "none"
            ? rows
            : [rows.reduce((a, b) => a + b, 0) / (reduction === "mean" ? n : 1)];
        if (!(reduction === "mean" && n === 0)) {
          Array.from(y.data.data).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 10));
          expect(gradcheck((v) => softmaxCrossEntropy(v, labels, opts), [z]).ok).toBe(true);
        } else expect(Number.isNaN(y.item())).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("accepts Uint8Array, number[], Tensor and Variable labels; float32 logits", () => {
    const z = new T.Tensor(Float32Array.from([2, 1, 0, 0, 3, 1]), [2, 3]);
    const expected = softmaxCrossEntropy(new Variable(z), new Int32Array([0, 1])).item();
    for (const labels of [
      new Uint8Array([0, 1]),
      [0, 1],
      new T.Tensor(new Int32Array([0, 1]), [2]),
      new Variable(new T.Tensor(new Int32Array([0, 1]), [2])),
    ]) {
      const l = param(z.clone());
      const y = softmaxCrossEntropy(l, labels);
      expect(y.dtype).toBe("float32");
      expect(y.item()).toBeCloseTo(expected, 6);
      y.backward();
      expect(l.grad!.dtype).toBe("float32");
    }
  });

  it("copies labels, so a reused label buffer does not change the backward", () => {
    const z = param(normal64([2, 3], 1));
    const buf = new Int32Array([0, 2]);
    const y = softmaxCrossEntropy(z, buf);
    buf[0] = 1;
    y.backward();
    const p = T.exp(T.sub(z.data, T.logsumexp(z.data, 1, true)));
    expect(z.grad!.get(0, 0)).toBeCloseTo((p.get(0, 0) - 1) / 2, 12);
  });

  it("rejects out-of-range labels, wrong counts, bad shapes and options", () => {
    const z = new Variable(T.zeros([3, 4]));
    expect(() => softmaxCrossEntropy(z, [0, 4, 1])).toThrow(
      /softmaxCrossEntropy: label 4 at index 1 is out of range for 4 classes; expected an integer in 0..3/,
    );
    expect(() => softmaxCrossEntropy(z, [0, -1, 1])).toThrow(/label -1 at index 1/);
    expect(() => softmaxCrossEntropy(z, [0, 1.5, 1])).toThrow(/label 1.5/);
    expect(() => softmaxCrossEntropy(z, [0, 1])).toThrow(/got 2 labels for 3 rows/);
    expect(() => softmaxCrossEntropy(new Variable(T.zeros([3])), [0, 1, 2])).toThrow(
      /logits must be 2-d \[N, C\], got shape \[3\]/,
    );
    expect(() => softmaxCrossEntropy(z, [0, 1, 2], { labelSmoothing: 1 })).toThrow(
      /labelSmoothing must be a number in \[0, 1\)/,
    );
    expect(() => softmaxCrossEntropy(z, [0, 1, 2], { reduction: "avg" as "mean" })).toThrow(
      /reduction must be/,
    );
  });
});
