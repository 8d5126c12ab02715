// The gradcheck helper itself: it must catch wrong gradients, not only pass right ones.
import { describe, expect, it } from "vitest";
import * as T from "@tessera/tensor";
import { Variable, gradcheck, mul, record } from "../src/index.ts";
import { normal64 } from "./helpers.ts";

/** x², with a deliberately wrong backward (x instead of 2x). */
function badSquare(x: Variable): Variable {
  return record("badSquare", T.mul(x.data, x.data), [x], (g) => [T.mul(g, x.data)]);
}

/** Swaps the first two gradient entries: invisible to a seed of ones with symmetric sums. */
function swappedGrad(x: Variable): Variable {
  return record("swapped", T.mul(x.data, x.data), [x], (g) => {
    const gx = T.mul(T.mul(g, x.data), 2).contiguous().clone();
    const t = gx.data[0]!;
    gx.data[0] = gx.data[1]!;
    gx.data[1] = t;
    return [gx];
  });
}

describe("gradcheck", () => {
  it("passes a correct op and reports what it compared", () => {
    const r = gradcheck((x) => mul(x, x), [normal64([2, 3], 1)]);
    expect(r.ok).toBe(true);
    expect(r.checked).toBe(6);
    expect(r.maxAbsError).toBeLessThan(1e-7);
  });

  it("catches a wrong backward, reporting the worst entries", () => {
    expect(() => gradcheck(badSquare, [normal64([3], 2)])).toThrow(
      /gradcheck: 3 of 3 gradient entries differ/,
    );
    const r = gradcheck(badSquare, [normal64([3], 2)], { throwOnFailure: false });
    expect(r.ok).toBe(false);
    expect(r.mismatches[0]!.numeric).toBeCloseTo(2 * r.mismatches[0]!.analytic, 6);
    expect(
      gradcheck(swappedGrad, [T.fromArray([1, 2], "float64")], { throwOnFailure: false }).ok,
    ).toBe(false);
  });

  it("skips inputs that do not require grad and leaves the originals untouched", () => {
    const x = normal64([2], 3);
    const before = Array.from(x.data);
    const c = new Variable(T.fromArray([10, 20], "float64"));
    const r = gradcheck((a, b) => mul(a, b), [x, c]);
    expect(r.checked).toBe(2);
    expect(Array.from(x.data)).toEqual(before);
  });

  it("refuses float32 inputs and non-deterministic functions", () => {
    expect(() => gradcheck((x) => mul(x, x), [T.ones([2])])).toThrow(
      /input 0 is float32; finite differences need float64/,
    );
    let calls = 0;
    expect(() => gradcheck((x) => mul(x, ++calls), [T.ones([2], "float64")])).toThrow(
      /not deterministic/,
    );
  });
});
