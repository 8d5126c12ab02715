import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { arrayDataset } from "../src/data.ts";

describe("arrayDataset", () => {
  it("gathers rows by index, scales uint8 pixels and normalises", () => {
    const x = new Uint8Array([0, 255, 51, 102, 255, 0]); // 3 examples of [2]
    const y = new Uint8Array([7, 8, 9]);
    const ds = arrayDataset(x, y, [2], { mean: 0.5, std: 0.5 });
    expect(ds.count).toBe(3);
    const b = ds.getBatch(new Int32Array([2, 0]));
    expect(b.x.shape).toEqual([2, 2]);
    expect(Array.from(b.x.data)).toEqual([1, -1, -1, 1]);
    expect(Array.from(b.y)).toEqual([9, 7]);
    const c = ds.getBatch(new Int32Array([1, 1]));
    expect(c.x).toBe(b.x); // the buffer of a batch size is reused
    expect(Array.from(c.x.data).map((v) => +v.toFixed(6))).toEqual([-0.6, -0.2, -0.6, -0.2]);
    expect(ds.getBatch(new Int32Array([1])).x.shape).toEqual([1, 2]);
  });
  it("copies float rows unchanged by default and keeps the example shape", () => {
    const x = Float32Array.from({ length: 12 }, (_, i) => i);
    const ds = arrayDataset(x, new Int32Array([0, 1, 2]), [1, 2, 2]);
    const b = ds.getBatch(new Int32Array([1]));
    expect(b.x.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(b.x.data)).toEqual([4, 5, 6, 7]);
  });
  it("gives every value (v * scale - mean) / std as one float32, uint8 (a table of 256) and float32 sources alike", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.double({ min: 1e-3, max: 10, noNaN: true }),
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.double({ min: 1e-2, max: 5, noNaN: true }),
        (pixels, scale, mean, std) => {
          const a = scale / std;
          const b = -mean / std;
          const want = Float32Array.from(pixels, (v) => v * a + b);
          const order = new Int32Array([2, 0, 1]); // 3 examples of [4]
          const wantBatch = [...want.subarray(8, 12), ...want.subarray(0, 8)];
          for (const x of [pixels, Float32Array.from(pixels)]) {
            const ds = arrayDataset(x, new Int32Array(3), [4], { scale, mean, std });
            expect(Array.from(ds.getBatch(order).x.data)).toEqual(wantBatch);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
  it("validates", () => {
    expect(() => arrayDataset(new Float32Array(5), new Int32Array(2), [2])).toThrow(
      /x has 5 values but 2 labels of inputShape \[2\] need 4/,
    );
    expect(() =>
      arrayDataset(new Float32Array(4), new Int32Array(2), [2]).getBatch(new Int32Array([2])),
    ).toThrow(/index 2 out of range 0..1/);
    expect(() => arrayDataset(new Float32Array(4), new Int32Array(2), [0, 2])).toThrow(
      /inputShape/,
    );
  });
});
