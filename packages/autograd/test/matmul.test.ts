// Batched matmul with broadcasting and 1-d operands.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, matmul } from "../src/index.ts";
import { normal64, seedArb } from "./helpers.ts";

/** Operand shapes for a·b: [batchA..., m, k] and [batchB..., k, n] with broadcastable batches, or 1-d. */
const arbMatmulShapes = fc
  .tuple(
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.integer({ min: 0, max: 3 }),
    fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
    fc.nat(2),
    fc.array(fc.boolean(), { minLength: 2, maxLength: 2 }),
    fc.integer({ min: 0, max: 3 }),
  )
  .map(([m, k, n, batch, dropB, ones, kind]) => {
    const bb = batch.slice(Math.min(dropB, batch.length)).map((d, i) => (ones[i] ? 1 : d));
    if (kind === 1) return [[k], [...bb, k, n]];
    if (kind === 2) return [[...batch, m, k], [k]];
    if (kind === 3 && batch.length === 0) return [[k], [k]];
    return [
      [...batch, m, k],
      [...bb, k, n],
    ];
  });

describe("matmul", () => {
  it("forward equals the tensor matmul; gradients match finite differences", () => {
    fc.assert(
      fc.property(arbMatmulShapes, seedArb, ([sa, sb], seed) => {
        const a = normal64(sa!, seed);
        const b = normal64(sb!, seed + 1);
        const y = matmul(new Variable(a), new Variable(b));
        expect(T.allClose(y.data, T.matmul(a, b), 1e-12, 1e-12)).toBe(true);
        expect(gradcheck(matmul, [a, b]).ok).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("works with float32 and transposed views", () => {
    const a = new Variable(
      T.fromArray(
        [
          [1, 2],
          [3, 4],
        ],
        "float32",
      ),
      { requiresGrad: true },
    );
    const y = matmul(a.transpose(), a);
    expect(y.data.toArray()).toEqual([
      [10, 14],
      [14, 20],
    ]);
    y.backward(T.ones([2, 2], "float32"));
    // d/da sum(aᵀa) = a·1 + a·1 = 2·a·ones
    expect(a.grad!.toArray()).toEqual([
      [6, 6],
      [14, 14],
    ]);
  });

  it("names the mismatched shapes", () => {
    expect(() => matmul(new Variable(T.zeros([2, 3])), new Variable(T.zeros([2, 3])))).toThrow(
      /matmul.*\[2,3\].*\[2,3\]/,
    );
  });
});
