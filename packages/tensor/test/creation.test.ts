import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "../src/index.ts";
import { Tensor, fromArray } from "../src/index.ts";
import { arbShape } from "./helpers.ts";

describe("creation", () => {
  it("zeros / ones / full / *Like give packed tensors of the shape and dtype", () => {
    fc.assert(
      fc.property(
        arbShape(),
        fc.constantFrom("float32", "float64", "int32") as fc.Arbitrary<T.DType>,
        (shape, dt) => {
          const n = shape.reduce((a, b) => a * b, 1);
          for (const [t, v] of [
            [T.zeros(shape, dt), 0],
            [T.ones(shape, dt), 1],
            [T.full(shape, 7, dt), 7],
          ] as const) {
            expect(t.shape).toEqual(shape);
            expect(t.dtype).toBe(dt);
            expect(t.data.length).toBe(n);
            expect(t.isContiguous()).toBe(true);
            expect(Array.from(t.data).every((x) => x === v)).toBe(true);
          }
          const like = T.fullLike(T.zeros(shape, dt), 2);
          expect(like.dtype).toBe(dt);
          expect(like.shape).toEqual(shape);
        },
      ),
      { numRuns: 40 },
    );
    expect(T.scalar(3).shape).toEqual([]);
    expect(T.scalar(3).item()).toBe(3);
    expect(T.eye(2, 3).toArray()).toEqual([
      [1, 0, 0],
      [0, 1, 0],
    ]);
  });

  it("arange follows NumPy's length rule", () => {
    expect(T.arange(5).toArray()).toEqual([0, 1, 2, 3, 4]);
    expect(T.arange(2, 5).toArray()).toEqual([2, 3, 4]);
    expect(T.arange(5, 0, -2).toArray()).toEqual([5, 3, 1]);
    expect(T.arange(0, 1, 0.25, "float64").toArray()).toEqual([0, 0.25, 0.5, 0.75]);
    expect(T.arange(3, 1).size).toBe(0);
    expect(T.arange(4, undefined, 1, "int32").dtype).toBe("int32");
    expect(() => T.arange(0, 3, 0)).toThrow(
      /arange: start, stop and step must be finite numbers with step != 0, got start=0, stop=3, step=0/,
    );
  });

  it("fromArray: nested arrays, flat data with a shape, typed arrays wrapped without copy", () => {
    const t = fromArray([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.dtype).toBe("float32");
    expect(fromArray(5).shape).toEqual([]);
    expect(fromArray([]).shape).toEqual([0]);
    expect(fromArray([[], []]).shape).toEqual([2, 0]);
    const f = new Float64Array([1, 2, 3, 4]);
    const w = fromArray(f, [2, 2]);
    expect(w.dtype).toBe("float64");
    expect(w.data).toBe(f);
    const conv = fromArray(f, [4], "float32");
    expect(conv.data).not.toBe(f);
    expect(conv.dtype).toBe("float32");
    expect(fromArray(new Int32Array([1, 2])).dtype).toBe("int32");
    expect(fromArray(new Uint8Array([1, 255]), [2]).toArray()).toEqual([1, 255]);
    expect(fromArray([1, 2, 3, 4], [2, 2], "int32").toArray()).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });

  it("fromArray round-trips toArray for random nested data", () => {
    fc.assert(
      fc.property(arbShape(4, 4), fc.integer({ min: 1, max: 1e6 }), (shape, seed) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const vals = Array.from({ length: n }, (_, i) => ((i * 7 + seed) % 23) - 11);
        const t = fromArray(vals, shape, "float64");
        // nested arrays cannot express dims after a 0 (e.g. [0,3] prints as []), so only
        // shapes whose zeros, if any, are last round-trip
        fc.pre(shape.slice(0, -1).every((d) => d > 0));
        const back = fromArray(t.toArray(), "float64");
        expect(back.shape).toEqual(shape);
        expect(back.equals(t)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("toString is readable and elides big tensors", () => {
    expect(T.arange(4).reshape([2, 2]).toString()).toBe(
      "tensor([[0, 1],\n        [2, 3]], shape=[2,2], dtype=float32)",
    );
    expect(fromArray([0.5, 1e-7], "float64").toString()).toBe(
      "tensor([0.5, 1.0000e-7], shape=[2], dtype=float64)",
    );
    expect(T.scalar(2, "int32").toString()).toBe("tensor(2, shape=[], dtype=int32)");
    const big = T.arange(2000).toString();
    expect(big).toContain("...");
    expect(big.length).toBeLessThan(100);
    expect(String(T.zeros([0, 3]))).toBe("tensor([], shape=[0,3], dtype=float32)");
  });

  it("the constructor validates data, shape, strides and offset", () => {
    expect(() => new Tensor([1, 2] as unknown as Float32Array, [2])).toThrow(
      /Tensor: data must be a Float32Array, Float64Array or Int32Array/,
    );
    expect(() => new Tensor(new Float32Array(6), [2, 4])).toThrow(
      /Tensor: shape \[2,4\], strides \[4,1\] and offset 0 reach indices 0\.\.7, outside data of length 6/,
    );
    expect(() => new Tensor(new Float32Array(6), [2, -3])).toThrow(
      /Tensor: shape must contain non-negative integers, got \[2,-3\]/,
    );
    expect(() => new Tensor(new Float32Array(6), [2, 3], [3])).toThrow(
      /Tensor: strides \[3\] must be 2 integers to match shape \[2,3\]/,
    );
    expect(() => new Tensor(new Float32Array(6), [3], [-1], 1)).toThrow(/reach indices -1\.\.1/);
    expect(new Tensor(new Float32Array([1, 2, 3]), [3], [-1], 2).toArray()).toEqual([3, 2, 1]);
  });

  it("bad creation arguments throw naming the function and the value", () => {
    expect(() => T.zeros([2, 1.5])).toThrow(
      /zeros: shape must contain non-negative integers, got \[2,1\.5\]/,
    );
    expect(() => T.ones([2], "int8" as T.DType)).toThrow(
      /ones: unknown dtype "int8"; expected one of "float32", "float64", "int32"/,
    );
    expect(() => fromArray([[1, 2], [3]])).toThrow(
      /fromArray: ragged nested array: \[1\] has length 1 where length 2 was expected \(shape \[2,2\]\)/,
    );
    expect(() => fromArray([[1, 2], 3] as unknown as number[][])).toThrow(
      /fromArray: ragged nested array: \[1\] has a number/,
    );
    expect(() => fromArray([1, 2, 3], [2, 2])).toThrow(
      /fromArray: data has 3 elements but shape \[2,2\] needs 4/,
    );
    expect(() => fromArray(["a"] as unknown as number[])).toThrow(
      /fromArray: element at \[0\] is string, expected a number/,
    );
  });
});
