// logSoftmax and softmax along any axis.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, logSoftmax, softmax } from "../src/index.ts";
import { arbShape, normal64, seedArb } from "./helpers.ts";

describe("logSoftmax / softmax", () => {
  it("forward equals x - logsumexp(x) and gradients match finite differences", () => {
    fc.assert(
      fc.property(
        arbShape(3, 4).filter((s) => s.length > 0),
        seedArb,
        (shape, seed) => {
          const x = normal64(shape, seed, 3);
          const axis = (seed % shape.length) - (seed % 2 === 0 ? 0 : shape.length);
          const y = logSoftmax(new Variable(x), axis);
          const want = T.sub(x, T.logsumexp(x, axis, true));
          expect(T.allClose(y.data, want, 1e-12, 1e-12)).toBe(true);
          expect(T.allClose(softmax(new Variable(x), axis).data, T.exp(want), 1e-12, 1e-12)).toBe(
            true,
          );
          expect(gradcheck((v) => logSoftmax(v, axis), [x]).ok).toBe(true);
          expect(gradcheck((v) => softmax(v, axis), [x]).ok).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it("is stable for large logits", () => {
    const y = logSoftmax(new Variable(T.fromArray([1000, 0], "float64")));
    expect(y.data.data[0]).toBe(0);
    expect(y.data.data[1]).toBe(-1000);
    expect(() => logSoftmax(new Variable(T.zeros([2])), 1)).toThrow(
      /logSoftmax: axis 1 is out of range/,
    );
  });
});
