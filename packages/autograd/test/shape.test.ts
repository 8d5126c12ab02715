// View ops, slicing and joining: forward equals the tensor view, gradients by finite
// differences (composed with a non-linear op so a wrong layout cannot hide).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import {
  Variable,
  broadcastTo,
  concat,
  flatten,
  gradcheck,
  mul,
  permute,
  reshape,
  slice,
  squeeze,
  stack,
  sum,
  transpose,
  unsqueeze,
} from "../src/index.ts";
import { arbShape, normal64, param, seedArb } from "./helpers.ts";

/** A random permutation of 0..n-1 from a seed. */
function perm(n: number, seed: number): number[] {
  return Array.from(new T.Generator(seed).permutation(n));
}

describe("views", () => {
  it("reshape / flatten / transpose / permute / unsqueeze / squeeze", () => {
    fc.assert(
      fc.property(arbShape(4, 3), seedArb, (shape, seed) => {
        const x = normal64(shape, seed);
        const p = perm(shape.length, seed);
        const fns: [(v: Variable) => Variable, T.Tensor][] = [
          [(v) => reshape(v, [-1]), x.reshape([-1])],
          [(v) => flatten(v), x.reshape([-1])],
          [(v) => transpose(v), x.transpose()],
          [(v) => permute(v, p), x.permute(p)],
          [(v) => unsqueeze(v, 0), x.unsqueeze(0)],
          [(v) => squeeze(v), x.squeeze()],
        ];
        for (const [f, want] of fns) {
          expect(T.equals(f(new Variable(x)).data, want)).toBe(true);
          // multiply by a position-dependent constant so the gradient layout matters
          const w = normal64(want.shape, seed + 7);
          expect(gradcheck((v) => mul(f(v), new Variable(w)), [x]).ok).toBe(true);
        }
      }),
      { numRuns: 20 },
    );
  });

  it("flatten with axes, as torch.flatten", () => {
    const x = new Variable(T.zeros([2, 3, 4, 5]));
    expect(flatten(x, 1).shape).toEqual([2, 60]);
    expect(flatten(x, 1, 2).shape).toEqual([2, 12, 5]);
    expect(() => flatten(x, 2, 1)).toThrow(/flatten: startAxis 2 comes after endAxis 1/);
  });

  it("broadcastTo sums the gradient back", () => {
    fc.assert(
      fc.property(
        arbShape(3, 3),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
        seedArb,
        (shape, lead, seed) => {
          const x = normal64(shape, seed);
          const target = [...lead, ...shape.map((d, i) => (d === 1 && i % 2 === 0 ? 3 : d))];
          const w = normal64(target, seed + 1);
          expect(gradcheck((v) => mul(broadcastTo(v, target), new Variable(w)), [x]).ok).toBe(true);
        },
      ),
      { numRuns: 20 },
    );
    expect(() => broadcastTo(new Variable(T.zeros([2, 3])), [3, 3])).toThrow(
      /broadcastTo: cannot broadcast shape \[2,3\] to \[3,3\]/,
    );
  });

  it("reshape errors name the shapes", () => {
    expect(() => reshape(new Variable(T.zeros([2, 3])), [4, 2])).toThrow(
      /reshape.*\[2,3\].*\[4,2\]/,
    );
  });
});

describe("slice and concat", () => {
  it("slice: ranges, steps (also negative) and indices", () => {
    const x = normal64([4, 5, 3], 3);
    const specs: T.SliceArg[][] = [
      [[1, 3]],
      [null, [0, 5, 2]],
      [2, [null, null, -1], 1],
      [[3, 0, -2], null, [1, 3]],
      [[2, 2]],
    ];
    for (const s of specs) {
      expect(T.equals(slice(new Variable(x), ...s).data, x.slice(...s))).toBe(true);
      const w = normal64(x.slice(...s).shape, 9);
      expect(gradcheck((v) => mul(slice(v, ...s), new Variable(w)), [x]).ok).toBe(true);
    }
  });

  it("concat and stack along random axes", () => {
    fc.assert(
      fc.property(
        arbShape(3, 3).filter((s) => s.length > 0),
        fc.array(fc.nat(3), { minLength: 1, maxLength: 3 }),
        seedArb,
        (shape, sizes, seed) => {
          const ax = seed % shape.length;
          const parts = sizes.map((d, i) =>
            normal64(
              shape.map((s, k) => (k === ax ? d : s)),
              seed + i,
            ),
          );
          const y = concat(
            parts.map((p) => new Variable(p)),
            ax,
          );
          expect(T.equals(y.data, T.concat(parts, ax))).toBe(true);
          const w = normal64(y.shape, seed + 99);
          expect(gradcheck((...vs) => mul(concat(vs, ax), new Variable(w)), parts).ok).toBe(true);
          const same = [normal64(shape, seed), normal64(shape, seed + 1)];
          const ws = normal64(T.stack(same, ax).shape, seed + 5);
          expect(gradcheck((a, b) => mul(stack([a, b], ax), new Variable(ws)), same).ok).toBe(true);
        },
      ),
      { numRuns: 20 },
    );
  });

  it("concat passes gradients only to inputs that need them", () => {
    const a = param(T.ones([2], "float64"));
    const b = new Variable(T.ones([3], "float64"));
    sum(concat([a, b])).backward();
    expect(Array.from(a.grad!.data)).toEqual([1, 1]);
    expect(b.grad).toBeNull();
    expect(() => concat([])).toThrow(/concat: expected a non-empty array/);
    expect(() => concat([a, new Variable(T.zeros([2, 2]))])).toThrow(/concat/);
    expect(() => stack([a, b])).toThrow(/stack: all shapes must match/);
  });
});
