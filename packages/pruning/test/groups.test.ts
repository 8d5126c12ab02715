import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { aliveFromMask, groupLayout, maskFromAlive, type GroupKind } from "../src/index.ts";
import { kindArb, referenceGroups, shapeArb } from "./helpers.ts";

describe("groupLayout", () => {
  it("every kind partitions the elements into the reference groups (property)", () => {
    fc.assert(
      fc.property(shapeArb, kindArb, (shape, kind) => {
        const l = groupLayout(kind, shape);
        const ref = referenceGroups(kind, shape);
        const n = shape.reduce((a, b) => a * b, 1);
        expect(l.groupOf.length).toBe(n);
        expect(l.count).toBe(ref.length);
        // Each reference group maps to exactly one layout group and vice versa, in order.
        const seen = new Uint8Array(n);
        ref.forEach((members, j) => {
          expect(l.sizes[j]).toBe(members.length);
          for (const i of members) {
            expect(l.groupOf[i]).toBe(j);
            seen[i]!++;
          }
        });
        expect(seen.every((s) => s === 1)).toBe(true);
        expect(Array.from(l.sizes).every((s) => s > 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("ragged tiles: 784 = 3·261 + 1 columns in 3x3 blocks leave a last tile column of width 1", () => {
    const l = groupLayout({ kind: "block", rows: 3, cols: 3 }, [4, 784]);
    expect(l.count).toBe(2 * 262);
    expect(l.sizes[0]).toBe(9);
    expect(l.sizes[261]).toBe(3); // rows 0-2, column 783 only
    expect(l.sizes[262 + 261]).toBe(1); // row 3, column 783
    expect(l.sizes.reduce((a, b) => a + b, 0)).toBe(4 * 784);
  });

  it("conv weights group through the [F, C·kh·kw] view; kernel elements rank within planes", () => {
    const shape = [2, 3, 2, 2];
    const ch = groupLayout({ kind: "channel" }, shape);
    expect(ch.count).toBe(3);
    // Element (f=1, c=2, i=1, j=0) has flat index 1·12 + 2·4 + 1·2 + 0 = 22: channel 2.
    expect(ch.groupOf[22]).toBe(2);
    const ke = groupLayout({ kind: "kernelElement" }, shape);
    expect(ke.partitionCount).toBe(6);
    expect(ke.partitionOf![22]).toBe(1 * 3 + 2);
    expect(groupLayout({ kind: "row" }, shape).count).toBe(2);
    expect(groupLayout({ kind: "column" }, shape).count).toBe(12);
    // On a Linear weight a channel is an input feature and each element is its own plane.
    expect(Array.from(groupLayout({ kind: "channel" }, [2, 3]).groupOf)).toEqual(
      Array.from(groupLayout({ kind: "column" }, [2, 3]).groupOf),
    );
    expect(groupLayout({ kind: "kernelElement" }, [2, 3]).partitionCount).toBe(6);
  });

  it("refuses shapes and kinds that do not fit, naming what was wrong", () => {
    expect(() => groupLayout({ kind: "row" }, [3])).toThrow(
      /groupLayout: row groups need a weight of shape \[out, in\] or \[F, C, kh, kw\] with positive sizes, got \[3\]/,
    );
    expect(() => groupLayout({ kind: "block", rows: 4, cols: 4 }, [2, 0, 3])).toThrow(
      /block 4x4 groups need .* got \[2,0,3\]/,
    );
    expect(() => groupLayout({ kind: "block", rows: 0, cols: 4 }, [2, 2])).toThrow(
      /block rows must be a positive integer, got 0/,
    );
    expect(() => groupLayout({ kind: "tile" } as unknown as GroupKind, [2, 2])).toThrow(
      /unknown group kind "tile"; expected element, block, row, column, channel or kernelElement/,
    );
  });
});

describe("masks and alive flags", () => {
  it("maskFromAlive keeps exactly the alive groups; aliveFromMask inverts it (property)", () => {
    fc.assert(
      fc.property(shapeArb, kindArb, fc.integer({ min: 0, max: 1e6 }), (shape, kind, seed) => {
        const l = groupLayout(kind, shape);
        const alive = Uint8Array.from({ length: l.count }, (_, j) =>
          (j * 7919 + seed) % 3 === 0 ? 0 : 1,
        );
        const mask = maskFromAlive(l, alive);
        const ref = referenceGroups(kind, shape);
        ref.forEach((members, j) => {
          for (const i of members) expect(mask[i]).toBe(alive[j]);
        });
        expect(Array.from(aliveFromMask("t", "w", l, mask))).toEqual(Array.from(alive));
      }),
      { numRuns: 200 },
    );
  });

  it("aliveFromMask refuses a mask that splits a group or is not 0/1", () => {
    const l = groupLayout({ kind: "block", rows: 2, cols: 2 }, [3, 3]);
    const mask = new Float32Array(9).fill(1);
    mask[0] = 0; // tile 0 holds elements 0, 1, 3, 4
    expect(() => aliveFromMask("loadX", "fc1.weight", l, mask)).toThrow(
      /loadX: mask of "fc1.weight" keeps 3 of the 4 elements of block 2x2 group 0; a mask must keep or remove whole groups/,
    );
    expect(() => aliveFromMask("loadX", "fc1.weight", l, new Float32Array(9).fill(0.5))).toThrow(
      /must hold only 0 and 1, element 0 is 0.5/,
    );
    expect(() => aliveFromMask("loadX", "fc1.weight", l, new Float32Array(8))).toThrow(
      /mask of "fc1.weight" has 8 elements, the parameter \[3,3\] has 9/,
    );
  });
});
