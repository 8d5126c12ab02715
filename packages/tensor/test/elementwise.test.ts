import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "../src/index.ts";
import { arange, fromArray } from "../src/index.ts";
import type { DType, Tensor } from "../src/index.ts";
import { NUM_RUNS, allIndices, arbShape, arbView, refBroadcast, srcIndex } from "./helpers.ts";

/** A result shape plus two operand shapes that broadcast to it. */
const arbBroadcastPair = arbShape(4, 5).chain((out) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: out.length }),
      fc.integer({ min: 0, max: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
      fc.array(fc.boolean(), { minLength: out.length, maxLength: out.length }),
    )
    .map(([la, lb, ma, mb]) => {
      const a = out.slice(out.length - la).map((d, i) => (ma[i] ? 1 : d));
      const b = out.slice(out.length - lb).map((d, i) => (mb[i] ? 1 : d));
      return [a, b] as const;
    }),
);

const round: Record<DType, (v: number) => number> = {
  float32: Math.fround,
  float64: (v) => v,
  int32: (v) => v | 0,
};

const BINARY: [string, (a: T.Operand, b: T.Operand) => Tensor, (x: number, y: number) => number][] =
  [
    ["add", T.add, (x, y) => x + y],
    ["sub", T.sub, (x, y) => x - y],
    ["mul", T.mul, (x, y) => x * y],
    ["div", T.div, (x, y) => x / y],
    ["pow", T.pow, (x, y) => Math.pow(x, y)],
    ["maximum", T.maximum, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y))],
    ["minimum", T.minimum, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y))],
    ["eq", T.eq, (x, y) => +(x === y)],
    ["ne", T.ne, (x, y) => +(x !== y)],
    ["lt", T.lt, (x, y) => +(x < y)],
    ["le", T.le, (x, y) => +(x <= y)],
    ["gt", T.gt, (x, y) => +(x > y)],
    ["ge", T.ge, (x, y) => +(x >= y)],
  ];

const UNARY: [string, (a: Tensor) => Tensor, (x: number) => number][] = [
  ["neg", T.neg, (x) => -x],
  ["abs", T.abs, Math.abs],
  ["sign", T.sign, Math.sign],
  ["square", T.square, (x) => x * x],
  ["relu", T.relu, (x) => Math.max(x, 0)],
  ["exp", T.exp, Math.exp],
  ["log", T.log, Math.log],
  ["sqrt", T.sqrt, Math.sqrt],
  ["sigmoid", T.sigmoid, (x) => 1 / (1 + Math.exp(-x))],
  ["tanh", T.tanh, Math.tanh],
  ["reciprocal", T.reciprocal, (x) => 1 / x],
];

function expectSame(got: number, want: number, tol = 0): void {
  if (Number.isNaN(want)) expect(got).toBeNaN();
  else if (tol === 0) expect(got).toBe(want);
  else expect(Math.abs(got - want)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want)));
}

describe("binary ops with broadcasting", () => {
  it("agree with a naive reference on random strided views (float64 and float32)", () => {
    fc.assert(
      fc.property(
        arbBroadcastPair.chain(([sa, sb]) =>
          fc.tuple(
            arbView(fc.constant(sa), "float64"),
            arbView(fc.constant(sb), "float64"),
            fc.constantFrom<DType>("float64", "float32"),
          ),
        ),
        fc.nat(BINARY.length - 1),
        ([va, vb, dt], k) => {
          const a = va.view.astype(dt);
          const b = vb.view.astype(dt);
          const [name, op, ref] = BINARY[k]!;
          const out = op(a, b);
          const shape = refBroadcast(a.shape, b.shape)!;
          expect(out.shape).toEqual(shape);
          expect(out.dtype).toBe(
            ["eq", "ne", "lt", "le", "gt", "ge"].includes(name) ? "int32" : dt,
          );
          for (const idx of allIndices(shape)) {
            const x = a.get(...srcIndex(a.shape, idx));
            const y = b.get(...srcIndex(b.shape, idx));
            expectSame(out.get(...idx), round[out.dtype](ref(x, y)));
          }
        },
      ),
      { numRuns: NUM_RUNS * 2 },
    );
  });

  it("accept a number on either side and size-1 tensors", () => {
    fc.assert(
      fc.property(
        arbView(arbShape(3, 4)),
        fc.double({ min: -3, max: 3, noNaN: true }),
        fc.nat(BINARY.length - 1),
        ({ view }, s, k) => {
          const [, op, ref] = BINARY[k]!;
          const r1 = op(view, s);
          const r2 = op(s, view);
          const r3 = op(view, fromArray([s], [1], "float64"));
          expect(r1.shape).toEqual(view.shape);
          expect(r3.shape).toEqual(view.ndim === 0 ? [1] : view.shape);
          for (const idx of allIndices(view.shape)) {
            const x = view.get(...idx);
            expectSame(r1.get(...idx), round[r1.dtype](ref(x, s)));
            expectSame(r2.get(...idx), round[r2.dtype](ref(s, x)));
            expectSame(r3.get(...(view.ndim === 0 ? [0] : idx)), round[r3.dtype](ref(x, s)));
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("raise errors that name the op and both shapes when shapes do not broadcast", () => {
    fc.assert(
      fc.property(arbShape(3, 5, 1), arbShape(3, 5, 1), fc.nat(BINARY.length - 1), (sa, sb, k) => {
        fc.pre(refBroadcast(sa, sb) === null);
        const [name, op] = BINARY[k]!;
        const re = new RegExp(
          `^${name}: cannot broadcast shapes \\[${sa.join(",")}\\] and \\[${sb.join(",")}\\]$`,
        );
        expect(() => op(T.zeros(sa), T.zeros(sb))).toThrow(re);
      }),
      { numRuns: NUM_RUNS },
    );
    expect(() => T.add(T.zeros([2, 3]), T.zeros([4]))).toThrow(
      "add: cannot broadcast shapes [2,3] and [4]",
    );
    expect(() => T.add(T.zeros([2]), "x" as unknown as number)).toThrow(
      /add: right operand must be a Tensor or a number, got string/,
    );
  });
});

describe("unary ops", () => {
  it("agree with Math on random views, rounding to the result dtype", () => {
    fc.assert(
      fc.property(
        arbView(arbShape()),
        fc.nat(UNARY.length - 1),
        fc.constantFrom<DType>("float64", "float32", "int32"),
        ({ view }, k, dt) => {
          const [name, op, ref] = UNARY[k]!;
          const a = view.astype(dt);
          const out = op(a);
          const floaty = ["exp", "log", "sqrt", "sigmoid", "tanh", "reciprocal"].includes(name);
          expect(out.dtype).toBe(dt === "int32" && floaty ? "float32" : dt);
          for (const idx of allIndices(a.shape)) {
            // sigmoid's stable branch may differ from the naive formula by an ulp
            expectSame(
              out.get(...idx),
              round[out.dtype](ref(a.get(...idx))),
              name === "sigmoid" ? 1e-15 : 0,
            );
          }
        },
      ),
      { numRuns: NUM_RUNS * 2 },
    );
  });

  it("sigmoid does not overflow; relu, maximum and sign keep NaN", () => {
    const x = fromArray([-1000, 1000, 0, NaN], "float64");
    expect(T.sigmoid(x).toArray()).toEqual([0, 1, 0.5, NaN]);
    expect(T.relu(x).toArray()).toEqual([0, 1000, 0, NaN]);
    expect(T.sign(x).toArray()).toEqual([-1, 1, 0, NaN]);
    expect(T.maximum(x, 0).toArray()).toEqual([0, 1000, 0, NaN]);
    expect(T.minimum(0, x).toArray()).toEqual([-1000, 0, 0, NaN]);
  });

  it("clamp, where", () => {
    const x = arange(-3, 4);
    expect(T.clamp(x, -1, 2).toArray()).toEqual([-1, -1, -1, 0, 1, 2, 2]);
    expect(T.clamp(x, null, 0).toArray()).toEqual([-3, -2, -1, 0, 0, 0, 0]);
    expect(T.clamp(x.astype("int32"), 0, 1).dtype).toBe("int32");
    expect(T.clamp(x.astype("int32"), 0.5).dtype).toBe("float32");
    expect(() => T.clamp(x, 2, 1)).toThrow(
      /clamp: bounds must be numbers with lo <= hi, got lo=2, hi=1/,
    );
    const m = arange(6).reshape([2, 3]);
    expect(T.where(m.gt(2), m, fromArray([-1, -2, -3])).toArray()).toEqual([
      [-1, -2, -3],
      [3, 4, 5],
    ]);
    expect(T.where(fromArray([1, 0], "int32"), 1, 0).toArray()).toEqual([1, 0]);
    expect(() => T.where(T.zeros([2]), T.zeros([3]), 0)).toThrow(
      /where: cannot broadcast shapes \[2\], \[3\] and \[\]/,
    );
  });
});

describe("dtype rules", () => {
  it("follow the documented promotion table", () => {
    const f32 = T.ones([2]);
    const f64 = T.ones([2], "float64");
    const i32 = T.ones([2], "int32");
    expect(T.add(f32, f64).dtype).toBe("float64");
    expect(T.add(i32, f32).dtype).toBe("float32");
    expect(T.add(i32, i32).dtype).toBe("int32");
    expect(T.div(i32, i32).dtype).toBe("float32");
    expect(T.div(i32, i32).toArray()).toEqual([1, 1]);
    expect(T.mul(i32, 2).dtype).toBe("int32");
    expect(T.mul(i32, 0.5).dtype).toBe("float32");
    expect(T.mul(f32, 1e300).dtype).toBe("float32");
    expect(T.lt(f64, f32).dtype).toBe("int32");
    expect(T.add(2, 3).dtype).toBe("float32");
    expect(T.add(2, 3).shape).toEqual([]);
    expect(T.mul(fromArray([2 ** 30], "int32"), 4).toArray()).toEqual([0]); // wraps mod 2^32
  });
});

describe("in-place ops", () => {
  it("equal the out-of-place result, written through the target's strides", () => {
    fc.assert(
      fc.property(
        arbBroadcastPair.chain(([sa, sb]) => {
          const out = refBroadcast(sa, sb)!;
          return fc.tuple(arbView(fc.constant(out)), arbView(fc.constant(sb)));
        }),
        fc.nat(4),
        fc.double({ min: -2, max: 2, noNaN: true }),
        ([vt, vb], k, alpha) => {
          const target = vt.view;
          const before = target.clone();
          const other = vb.view;
          const cases: [(t: Tensor) => void, Tensor][] = [
            [(t) => T.addInPlace(t, other), T.add(before, other)],
            [(t) => T.subInPlace(t, other), T.sub(before, other)],
            [(t) => T.mulInPlace(t, other), T.mul(before, other)],
            [(t) => T.scaleInPlace(t, alpha), T.mul(before, alpha)],
            [(t) => T.axpyInPlace(t, alpha, other), T.add(before, T.mul(other, alpha))],
          ];
          const [run, want] = cases[k]!;
          run(target);
          expect(target.shape).toEqual(before.shape);
          expect(target.allClose(want, 1e-12, 1e-12)).toBe(true);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it("handle an operand that aliases the target with another layout", () => {
    const x = arange(9, undefined, 1, "float64").reshape([3, 3]);
    const want = T.add(x, x.T);
    x.addInPlace(x.T);
    expect(x.toArray()).toEqual(want.toArray());
    const y = arange(4);
    y.copyFrom(y.slice([null, null, -1]));
    expect(y.toArray()).toEqual([3, 2, 1, 0]);
  });

  it("reject targets that are not the broadcast result shape, broadcast views and int32 targets of float results", () => {
    expect(() => T.addInPlace(T.zeros([3]), T.zeros([2, 3]))).toThrow(
      /addInPlace: cannot broadcast shapes \[3\] and \[2,3\] into the target shape \[3\]/,
    );
    expect(() => T.mulInPlace(T.zeros([3]), T.zeros([4]))).toThrow(
      /mulInPlace: cannot broadcast shapes \[3\] and \[4\]/,
    );
    expect(() => T.addInPlace(T.zeros([1, 3]).broadcastTo([2, 3]), 1)).toThrow(
      /addInPlace: target of shape \[2,3\] is a broadcast view \(stride 0 on axis 0\)/,
    );
    expect(() => T.addInPlace(T.zeros([2], "int32"), T.ones([2]))).toThrow(
      /addInPlace: cannot write a float32 result into an int32 target/,
    );
    expect(() => T.divInPlace(T.ones([2], "int32"), 2)).toThrow(
      /divInPlace: cannot write a float32 result into an int32 target/,
    );
    expect(() => T.axpyInPlace(T.zeros([2], "int32"), 0.5, T.ones([2], "int32"))).toThrow(
      /axpyInPlace: cannot write a float32 result into an int32 target/,
    );
    expect(() => T.copyInto(T.zeros([2]), T.zeros([3]))).toThrow(
      /copyInto: cannot broadcast shapes \[2\] and \[3\]/,
    );
    expect(T.addInPlace(T.zeros([2], "int32"), 3).toArray()).toEqual([3, 3]);
  });
});

describe("equals / allClose", () => {
  it("compare values and shapes", () => {
    const a = fromArray([1, 2, 3]);
    expect(a.equals(fromArray([1, 2, 3], "float64"))).toBe(true);
    expect(a.equals(fromArray([[1, 2, 3]]))).toBe(false);
    expect(a.equals(fromArray([1, 2, 4]))).toBe(false);
    expect(fromArray([NaN]).equals(fromArray([NaN]))).toBe(false);
    expect(T.allClose(a, fromArray([1, 2, 3.00001]))).toBe(true);
    expect(T.allClose(a, fromArray([1, 2, 3.1]))).toBe(false);
    expect(T.allClose(a, fromArray([1, 2, 3.1]), 0, 0.2)).toBe(true);
    expect(T.allClose(fromArray([Infinity]), fromArray([Infinity]))).toBe(true);
    expect(T.allClose(fromArray([NaN]), fromArray([NaN]))).toBe(false);
    expect(() => T.allClose(a, T.zeros([2]))).toThrow(
      /allClose: cannot broadcast shapes \[3\] and \[2\]/,
    );
    expect(() => T.allClose(a, a, -1)).toThrow(/allClose: rtol and atol must be >= 0/);
  });
});
