// One-input element-wise ops: forward values against Math, gradients by finite differences
// (relu/leakyRelu at points away from the kink at 0; log/sqrt on positive inputs).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Tensor } from "@tessera/tensor";
import { fromArray } from "@tessera/tensor";
import {
  Variable,
  exp,
  gradcheck,
  leakyRelu,
  log,
  relu,
  sigmoid,
  sqrt,
  sum,
  tanh,
} from "../src/index.ts";
import { arbShape, awayFromZero, normal64, param, seedArb, uniform64 } from "./helpers.ts";

const cases: [
  string,
  (v: Variable) => Variable,
  (x: number) => number,
  (s: number[], seed: number) => Tensor,
][] = [
  ["exp", exp, Math.exp, (s, seed) => normal64(s, seed)],
  ["log", log, Math.log, (s, seed) => uniform64(s, 0.2, 3, seed)],
  ["sqrt", sqrt, Math.sqrt, (s, seed) => uniform64(s, 0.2, 3, seed)],
  ["sigmoid", sigmoid, (x) => 1 / (1 + Math.exp(-x)), (s, seed) => normal64(s, seed, 3)],
  ["tanh", tanh, Math.tanh, (s, seed) => normal64(s, seed)],
  ["relu", relu, (x) => Math.max(x, 0), (s, seed) => awayFromZero(s, seed)],
  [
    "leakyRelu",
    (v) => leakyRelu(v, 0.1),
    (x) => (x > 0 ? x : 0.1 * x),
    (s, seed) => awayFromZero(s, seed),
  ],
];

describe("pointwise ops", () => {
  for (const [name, op, ref, make] of cases) {
    it(`${name}: forward matches the reference and gradient matches finite differences`, () => {
      fc.assert(
        fc.property(arbShape(3, 4), seedArb, (shape, seed) => {
          const x = make(shape, seed);
          const y = op(new Variable(x));
          expect(y.data.shape).toEqual(shape);
          for (let i = 0; i < x.size; i++) expect(y.data.data[i]).toBeCloseTo(ref(x.data[i]!), 12);
          expect(gradcheck(op, [x]).ok).toBe(true);
        }),
        { numRuns: 15 },
      );
    });
  }

  it("works on float32 and on strided (transposed) inputs", () => {
    const x = param(
      fromArray(
        [
          [1, -2],
          [-3, 4],
        ],
        "float32",
      ),
    );
    const y = relu(x.transpose());
    expect(y.dtype).toBe("float32");
    expect(y.data.toArray()).toEqual([
      [1, 0],
      [0, 4],
    ]);
    sum(y).backward();
    expect(x.grad!.toArray()).toEqual([
      [1, 0],
      [0, 1],
    ]);
  });

  it("relu keeps exact semantics on non-finite values, -0 and huge float64 values", () => {
    const x = param(fromArray([-Infinity, Infinity, NaN, -0, 0, 1e308, -1e308, 2, -2], "float64"));
    const y = relu(x);
    expect(Array.from(y.data.data)).toEqual([0, Infinity, NaN, 0, 0, 1e308, 0, 2, 0]);
    y.backward(fromArray([Infinity, -Infinity, 1, 1, 1, NaN, NaN, -3, -3], "float64"));
    // a closed gate passes exactly 0, even for infinite or NaN upstream gradients
    expect(Array.from(x.grad!.data)).toEqual([0, -Infinity, 0, 0, 0, NaN, 0, -3, 0]);
  });

  it("sigmoid does not overflow for large |x|", () => {
    const y = sigmoid(new Variable(fromArray([-1000, 1000], "float64")));
    expect(Array.from(y.data.data)).toEqual([0, 1]);
  });

  it("rejects non-Variables and bad slopes", () => {
    expect(() => relu(fromArray([1]) as unknown as Variable)).toThrow(
      /relu: x must be a Variable, got Tensor/,
    );
    expect(() => leakyRelu(new Variable(fromArray([1])), NaN)).toThrow(/leakyRelu: slope/);
  });
});
