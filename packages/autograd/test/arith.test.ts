// add/sub/mul/div/pow/neg: forward equals @tessera/tensor's op, gradients match finite
// differences over random broadcasting shape pairs.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { fromArray } from "@tessera/tensor";
import { Variable, add, div, gradcheck, mul, neg, pow, sub, sum } from "../src/index.ts";
import { arbBroadcastPair, normal64, param, seedArb, uniform64 } from "./helpers.ts";

const ops = { add, sub, mul, div } as const;

describe("broadcasting arithmetic", () => {
  for (const [name, op] of Object.entries(ops)) {
    it(`${name}: forward matches the tensor op and gradients reduce to each input's shape`, () => {
      fc.assert(
        fc.property(arbBroadcastPair(), seedArb, ([sa, sb], seed) => {
          const a = normal64(sa, seed);
          // keep divisors away from 0 so finite differences stay accurate
          const b = name === "div" ? uniform64(sb, 0.5, 2, seed + 1) : normal64(sb, seed + 1);
          const y = op(new Variable(a), new Variable(b));
          const want = T[name as keyof typeof ops](a, b);
          expect(T.equals(want, y.data)).toBe(true);
          const r = gradcheck((x, z) => op(x, z), [a, b]);
          expect(r.ok).toBe(true);
        }),
        { numRuns: 25 },
      );
    });
  }

  it("pow: gradient for base and exponent (positive base) and for a number exponent", () => {
    fc.assert(
      fc.property(arbBroadcastPair(), seedArb, ([sa, sb], seed) => {
        const a = uniform64(sa, 0.5, 2, seed);
        const b = normal64(sb, seed + 1);
        expect(gradcheck((x, z) => pow(x, z), [a, b]).ok).toBe(true);
        expect(gradcheck((x) => pow(x, 3), [normal64(sa, seed)]).ok).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it("neg and numbers on either side", () => {
    const x = normal64([3, 2], 4);
    expect(gradcheck((v) => neg(v), [x]).ok).toBe(true);
    expect(gradcheck((v) => sub(2, v), [x]).ok).toBe(true);
    expect(gradcheck((v) => div(1.5, add(mul(v, v), 1)), [x]).ok).toBe(true);
    const y = sub(5, new Variable(fromArray([1, 2], "float32")));
    expect(y.dtype).toBe("float32");
    expect(Array.from(y.data.data)).toEqual([4, 3]);
  });

  it("a broadcast input's gradient is summed over the broadcast axes", () => {
    const a = param(
      fromArray(
        [
          [1, 2, 3],
          [4, 5, 6],
        ],
        "float64",
      ),
    );
    const b = param(fromArray([10, 20, 30], "float64"));
    sum(mul(a, b)).backward();
    expect(Array.from(b.grad!.data)).toEqual([5, 7, 9]);
    expect(Array.from(a.grad!.data)).toEqual([10, 20, 30, 10, 20, 30]);
  });

  it("names the op and both shapes when shapes do not broadcast", () => {
    const a = new Variable(normal64([2, 3], 1));
    const b = new Variable(normal64([4], 2));
    expect(() => add(a, b)).toThrow(/add.*\[2,3\].*\[4\]/);
    expect(() => mul(a, "x" as unknown as number)).toThrow(
      /mul: expected a Variable, Tensor or number/,
    );
    expect(() => add(1, 2)).toThrow(/add: at least one argument/);
  });
});
