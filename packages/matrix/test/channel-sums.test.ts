// channelSums (a layer's bias gradient) against the definition: per channel the float64 sum over
// images of the sum over positions; on 1-3 threads with shared arrays the same bits (each
// channel is summed whole by one thread in the serial order); ordinary arrays stay serial.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { channelSums } from "../src/index.ts";
import { asmTestPools, bits, rng } from "./helpers.ts";

const { pool2, pool3 } = asmTestPools();

/** The definition, in the documented order. */
function ref(g: ArrayLike<number>, n: number, c: number, p: number): Float64Array {
  const acc = new Float64Array(c);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let q = 0; q < p; q++) s += g[(i * c + j) * p + q]!;
      acc[j] = acc[j]! + s;
    }
  return acc;
}

const shared64 = (n: number) => new Float64Array(new SharedArrayBuffer(8 * n));

describe("channelSums", () => {
  it("adds the definition's sums into acc, bitwise, on 1-3 threads (shared or ordinary arrays)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9 }),
        fc.integer({ min: 0, max: 40 }),
        // p = 1 (a dense layer's bias) has a loop of its own
        fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 300 })),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 1 << 30 }),
        (n, c, p, f64, shared, seed) => {
          const r = rng(seed);
          const len = n * c * p;
          const g = f64
            ? new Float64Array(shared ? new SharedArrayBuffer(8 * len) : new ArrayBuffer(8 * len))
            : new Float32Array(shared ? new SharedArrayBuffer(4 * len) : new ArrayBuffer(4 * len));
          for (let k = 0; k < len; k++) g[k] = r() * 3;
          const start = Array.from({ length: c }, () => r());
          const want = ref(g, n, c, p).map((v, j) => start[j]! + v);
          for (const pool of [undefined, pool2(), pool3()]) {
            const acc = shared ? shared64(c) : new Float64Array(c);
            acc.set(start);
            channelSums(g, n, c, p, acc, { pool });
            expect(bits(acc)).toEqual(bits(want));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("names a wrong argument", () => {
    expect(() => channelSums(new Float32Array(5), 2, 1, 3, new Float64Array(1))).toThrow(
      "channelSums: g has 5 values, expected n*c*p = 2*1*3 = 6",
    );
    expect(() =>
      channelSums(new Float32Array(6), 2, 1, 3, new Float32Array(1) as unknown as Float64Array),
    ).toThrow("channelSums: acc must be a Float64Array of c = 1 sums");
    expect(() => channelSums(new Float32Array(6), 2, 3, 1, new Float64Array(2))).toThrow(
      "channelSums: acc has 2 values, expected 3",
    );
    expect(() => channelSums(new Float32Array(6), -1, 3, 1, new Float64Array(3))).toThrow(
      /channelSums: n/,
    );
  });
});
