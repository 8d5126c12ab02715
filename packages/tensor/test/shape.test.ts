import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { coalesce } from "../src/shape.ts";
import { allIndices, arbShape } from "./helpers.ts";

/** The sequence of per-operand offsets a row-major walk over `shape` visits. */
function walk(shape: readonly number[], strides: readonly (readonly number[])[]): string[] {
  return allIndices(shape).map((idx) =>
    strides.map((s) => idx.reduce((acc, v, i) => acc + v * s[i]!, 0)).join(","),
  );
}

describe("coalesce", () => {
  it("visits the same offsets in the same order with no more axes", () => {
    fc.assert(
      fc.property(
        arbShape(5, 4).chain((shape) =>
          fc.tuple(
            fc.constant(shape),
            fc.array(
              // strides built from packed layouts, some zeroed or negated, so merges happen
              fc.tuple(
                fc.boolean(),
                fc.array(fc.constantFrom(0, 1, -1), {
                  minLength: shape.length,
                  maxLength: shape.length,
                }),
              ),
              { minLength: 1, maxLength: 3 },
            ),
          ),
        ),
        ([shape, specs]) => {
          const strides = specs.map(([rev, mods]) => {
            const s = new Array<number>(shape.length);
            let acc = 1;
            for (let i = shape.length - 1; i >= 0; i--) {
              s[i] = acc * mods[i]! * (rev ? -1 : 1);
              acc *= shape[i]!;
            }
            return s;
          });
          const c = coalesce(shape, strides);
          expect(c.shape.length).toBeLessThanOrEqual(shape.length);
          expect(c.shape.reduce((a, b) => a * b, 1)).toBe(shape.reduce((a, b) => a * b, 1));
          expect(walk(c.shape, c.strides)).toEqual(walk(shape, strides));
        },
      ),
      { numRuns: 200 },
    );
    expect(coalesce([2, 3, 4], [[12, 4, 1]])).toEqual({ shape: [24], strides: [[1]] });
    expect(
      coalesce(
        [2, 3, 4],
        [
          [12, 4, 1],
          [0, 0, 1],
        ],
      ),
    ).toEqual({
      shape: [6, 4],
      strides: [
        [4, 1],
        [0, 1],
      ],
    });
    expect(coalesce([1, 1], [[5, 7]])).toEqual({ shape: [], strides: [[]] });
  });
});
