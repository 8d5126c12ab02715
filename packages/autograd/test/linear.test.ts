// Fused linear layer: forward against matmul + bias, gradients, errors, the skip of dx for
// inputs that need no gradient, and the fused ReLU (relu: true) against relu(linear(...)).
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { jobKindName } from "@tessera/matrix";
import {
  BufferArena,
  Variable,
  gradcheck,
  linear,
  mul,
  relu,
  setMatrixPool,
  sum,
} from "../src/index.ts";
import { kernelPathRuns, normal64, param, seedArb } from "./helpers.ts";

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

  it("with relu: true equals relu(linear(...)) bit for bit, value and every gradient (float64, and float32 on both kernel paths, 1-2 threads, in an arena or not), and passes gradcheck", async () => {
    const { runs, two, close } = await kernelPathRuns();
    // Σ r·(y·w2ᵀ): the upstream gradient comes out of a product, as in a network (inside an
    // arena on shared memory, so a pool splits the backward's gate and sums)
    const both = (x: T.Tensor, w: T.Tensor, b: T.Tensor | null, r: T.Tensor, fused: boolean) => {
      const w2 = normal64([3, w.shape[0]!], 11).astype(w.dtype);
      const run = () => {
        const xv = new Variable(x, { requiresGrad: true });
        const wv = new Variable(w, { requiresGrad: true });
        const bv = b === null ? null : new Variable(b, { requiresGrad: true });
        const y = fused ? linear(xv, wv, bv, { relu: true }) : relu(linear(xv, wv, bv));
        sum(mul(linear(y, new Variable(w2)), new Variable(r))).backward();
        return [y.data, xv.grad!, wv.grad!, ...(bv ? [bv.grad!] : [])].map((t) =>
          Array.from(t.data),
        );
      };
      return [run(), new BufferArena().step(run)];
    };
    try {
      fc.assert(
        fc.property(
          fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 60, max: 140 })),
          fc.integer({ min: 1, max: 40 }),
          fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 290, max: 310 })),
          fc.boolean(),
          seedArb,
          (rows, inF, outF, withBias, seed) => {
            const x = normal64([rows, inF], seed);
            const w = normal64([outF, inF], seed + 1);
            const b = normal64([outF], seed + 2);
            const r = normal64([rows, 3], seed + 3);
            for (const [dtype, pool] of runs) {
              const [xt, wt, bt, rt] = [x, w, b, r].map((v) => v.astype(dtype));
              setMatrixPool(pool);
              const bias = withBias ? bt! : null;
              expect(both(xt!, wt!, bias, rt!, true)).toEqual(both(xt!, wt!, bias, rt!, false));
            }
            setMatrixPool(undefined);
            if (rows * inF * outF <= 400) {
              const g = withBias
                ? gradcheck((a, c, d) => linear(a, c, d, { relu: true }), [x, w, b])
                : gradcheck((a, c) => linear(a, c, null, { relu: true }), [x, w]);
              expect(g.ok).toBe(true);
            }
          },
        ),
        { numRuns: 25 },
      );
      // the wasm path ran the gate with the bias gradient's column sums
      const kinds = [...two.jobsByKind.keys()].map(jobKindName);
      expect(kinds).toContain("wasm_relu_backward_columns");
      // the check sees a ReLU left out of the gradient: the gate matters where y <= 0
      const x = normal64([4, 3], 5);
      const w = normal64([5, 3], 6);
      const b = normal64([5], 7);
      const r = normal64([4, 3], 8);
      const [fused] = both(x, w, b, r, true);
      const xv = new Variable(x, { requiresGrad: true });
      const w2 = new Variable(normal64([3, 5], 11));
      sum(
        mul(linear(linear(xv, new Variable(w), new Variable(b)), w2), new Variable(r)),
      ).backward();
      expect(fused![1]).not.toEqual(Array.from(xv.grad!.data));
      expect(() => linear(xv, new Variable(w), null, { relu: 1 as unknown as boolean })).toThrow(
        "linear: options.relu must be a boolean, got number",
      );
    } finally {
      setMatrixPool(undefined);
      await close();
    }
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
