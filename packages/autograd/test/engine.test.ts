// The backward engine: accumulation, graph freeing, noGrad, seeds, deep graphs.
import { describe, expect, it } from "vitest";
import { Tensor, fromArray, ones, zeros } from "@tessera/tensor";
import {
  Variable,
  add,
  enableGrad,
  exp,
  gradcheck,
  isGradEnabled,
  linear,
  mul,
  noGrad,
  record,
  relu,
  softmaxCrossEntropy,
  sum,
  tanh,
} from "../src/index.ts";
import { normal64, param } from "./helpers.ts";

describe("backward engine", () => {
  it("accumulates the gradient of a variable used twice (y = x*x -> 2x)", () => {
    const x = param(fromArray([1, -2, 3], "float64"));
    sum(mul(x, x)).backward();
    expect(Array.from(x.grad!.data)).toEqual([2, -4, 6]);
  });

  it("sums gradients over a diamond graph (x -> a, b -> a + b)", () => {
    const x = param(fromArray([0.5, 1.5], "float64"));
    const a = tanh(x);
    const b = exp(x);
    sum(add(a, b)).backward();
    const want = [0.5, 1.5].map((v) => 1 - Math.tanh(v) ** 2 + Math.exp(v));
    Array.from(x.grad!.data).forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 12));
  });

  it("accumulates across backward calls until zeroGrad", () => {
    const x = param(fromArray([1, 2], "float64"));
    sum(mul(x, 3)).backward();
    sum(mul(x, 3)).backward();
    expect(Array.from(x.grad!.data)).toEqual([6, 6]);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    sum(mul(x, 3)).backward();
    expect(Array.from(x.grad!.data)).toEqual([3, 3]);
  });

  it("gives the leaf a packed gradient with its own memory and dtype", () => {
    const a = param(fromArray([1, 2, 3], "float32"));
    const b = param(fromArray([4, 5, 6], "float32"));
    // add passes the same gradient tensor to both inputs: each leaf must get its own copy
    sum(add(a, b)).backward();
    expect(a.grad!.data).not.toBe(b.grad!.data);
    a.grad!.data[0] = 100;
    expect(b.grad!.data[0]).toBe(1);
    expect(a.grad!.dtype).toBe("float32");
    expect(a.grad!.isContiguous()).toBe(true);
  });

  it("noGrad disables recording and restores the previous state, even on throw", () => {
    const x = param(fromArray([1, 2], "float64"));
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return mul(x, x);
    });
    expect(y.requiresGrad).toBe(false);
    expect(y.op).toBeNull();
    expect(isGradEnabled()).toBe(true);
    expect(() =>
      noGrad(() => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(isGradEnabled()).toBe(true);
    const z = noGrad(() => enableGrad(() => mul(x, x)));
    expect(z.requiresGrad).toBe(true);
    expect(() => y.backward()).toThrow(/does not require grad/);
  });

  it("throws for backward on a non-scalar without a seed, and checks the seed's shape", () => {
    const x = param(normal64([2, 3], 1));
    const y = mul(x, 2);
    expect(() => y.backward()).toThrow(/seed gradient is required.*\[2,3\]/);
    expect(() => y.backward(ones([3, 2], "float64"))).toThrow(/seed has shape \[3,2\].*\[2,3\]/);
    y.backward(
      fromArray(
        [
          [1, 0, 0],
          [0, 0, 2],
        ],
        "float64",
      ),
    );
    expect(Array.from(x.grad!.data)).toEqual([2, 0, 0, 0, 0, 4]);
  });

  it("accepts a one-element non-0-d output without a seed", () => {
    const x = param(fromArray([3], "float64"));
    mul(x, x).backward();
    expect(x.grad!.data[0]).toBe(6);
  });

  it("frees the graph after backward so saved tensors can be collected", () => {
    const x = param(normal64([4], 2));
    const h = tanh(x);
    const y = sum(h);
    expect(y.op).toBe("sum");
    y.backward();
    expect(y.op).toBeNull();
    expect(h._node).toBeNull();
    expect(() => y.backward()).toThrow(/already freed/);
    // reusing a freed intermediate in a new graph is an error too
    expect(() => sum(mul(h, 2)).backward()).toThrow(/already freed/);
  });

  it("handles a 20000-op chain without recursion (no stack overflow)", () => {
    const x = param(fromArray([1], "float64"));
    let y: Variable = x;
    for (let i = 0; i < 20000; i++) y = add(y, 0.5);
    sum(y).backward();
    expect(x.grad!.data[0]).toBe(1);
    expect(y.item()).toBe(10001);
  });

  it("never writes into a gradient that an op passed on to several inputs", () => {
    // the fused loss hands a freshly allocated gradient to add, which passes that same
    // tensor to a (a leaf) and to the relu/tanh branch that also reaches a
    const z = normal64([3, 4], 11);
    const labels = [0, 3, 1];
    const f = (a: Variable) =>
      softmaxCrossEntropy(add(a, add(relu(a), tanh(mul(a, 2)))), labels, { reduction: "sum" });
    expect(gradcheck(f, [z]).ok).toBe(true);
    const lin = (x: Variable, w: Variable) => add(linear(x, w), linear(x, w));
    expect(gradcheck(lin, [normal64([2, 3], 12), normal64([4, 3], 13)]).ok).toBe(true);
  });

  it("retainGrad keeps a non-leaf's gradient; leaves without requiresGrad get none", () => {
    const x = param(fromArray([1, 2], "float64"));
    const c = new Variable(fromArray([5, 7], "float64"));
    const h = mul(x, c).retainGrad();
    sum(mul(h, h)).backward();
    expect(Array.from(h.grad!.data)).toEqual([10, 28]);
    expect(c.grad).toBeNull();
    expect(Array.from(x.grad!.data)).toEqual([50, 196]);
  });

  it("casts gradients back to each input's dtype when dtypes mix", () => {
    const a = param(fromArray([1, 2], "float32"));
    const b = param(fromArray([3, 4], "float64"));
    const y = sum(mul(a, b));
    expect(y.dtype).toBe("float64");
    y.backward();
    expect(a.grad!.dtype).toBe("float32");
    expect(Array.from(a.grad!.data)).toEqual([3, 4]);
    expect(b.grad!.dtype).toBe("float64");
  });

  it("detach shares data but cuts history", () => {
    const x = param(fromArray([1, 2], "float64"));
    const d = mul(x, 2).detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.isLeaf).toBe(true);
    expect(Array.from(d.data.data)).toEqual([2, 4]);
  });

  it("validates constructor arguments", () => {
    expect(() => new Variable(new Tensor(new Int32Array(2), [2]), { requiresGrad: true })).toThrow(
      /only float32\/float64/,
    );
    expect(() => new Variable([1, 2] as unknown as Tensor)).toThrow(
      /must be a @tessera\/tensor Tensor/,
    );
  });

  it("reports an op whose backward returns a wrongly shaped gradient", () => {
    const x = param(zeros([2, 3], "float64"));
    const bad = record("bad", x.data.clone(), [x], () => [zeros([3, 2], "float64")]);
    expect(() => sum(bad).backward()).toThrow(
      /op "bad" produced a gradient of shape \[3,2\].*\[2,3\]/,
    );
  });
});
