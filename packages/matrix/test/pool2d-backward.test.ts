// Max pooling's backward scatter (maxPool2dBackward): against the plain loop gx[arg[i]] += gy[i]
// bit for bit, serial and split over 2 and 3 threads by planes (arrays on shared memory), with
// windows that overlap (several outputs adding into one input) and planes of any size.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { maxPool2dBackward, sharedFloat32, sharedFloat64, sharedInt32 } from "../src/index.ts";
import { KIND_MAXPOOL_BACKWARD } from "../src/jobs.ts";
import { asmTestPools, bits, rng } from "./helpers.ts";

const pools = asmTestPools();

const caseArb = fc.record({
  planes: fc.integer({ min: 1, max: 40 }),
  inPlane: fc.integer({ min: 1, max: 50 }),
  outPlane: fc.integer({ min: 1, max: 30 }),
  seed: fc.integer(),
  f64: fc.boolean(),
  threads: fc.constantFrom(1, 2, 3),
});

describe("maxPool2dBackward", () => {
  it("equals the plain scatter loop bit for bit on 1-3 threads", () => {
    fc.assert(
      fc.property(caseArb, ({ planes, inPlane, outPlane, seed, f64, threads }) => {
        const r = rng(seed);
        const outs = planes * outPlane;
        const gy = f64 ? sharedFloat64(outs) : sharedFloat32(outs);
        for (let i = 0; i < outs; i++) gy[i] = r();
        // Each output's winner somewhere in its own plane (windows may share inputs).
        const arg = sharedInt32(outs);
        for (let i = 0; i < outs; i++)
          arg[i] = Math.floor(i / outPlane) * inPlane + Math.floor(((r() + 1) / 2) * inPlane);
        const start = f64 ? sharedFloat64(planes * inPlane) : sharedFloat32(planes * inPlane);
        for (let k = 0; k < start.length; k++) start[k] = r();
        const want = start.slice();
        for (let i = 0; i < outs; i++) want[arg[i]!] = want[arg[i]!]! + gy[i]!;
        const gx = start.slice(); // ordinary memory: the serial path
        maxPool2dBackward(gy, arg, gx, planes, inPlane, outPlane);
        expect(bits(gx)).toEqual(bits(want));
        const pool = threads === 2 ? pools.pool2() : threads === 3 ? pools.pool3() : undefined;
        const shared = f64 ? sharedFloat64(start.length) : sharedFloat32(start.length);
        shared.set(start);
        maxPool2dBackward(gy, arg, shared, planes, inPlane, outPlane, { pool });
        expect(bits(shared)).toEqual(bits(want));
      }),
      { numRuns: 60 },
    );
    // The split ran (the test pools take any size of job).
    expect(pools.pool2().jobsByKind.get(KIND_MAXPOOL_BACKWARD)).toBeGreaterThan(0);
    expect(pools.pool3().jobsByKind.get(KIND_MAXPOOL_BACKWARD)).toBeGreaterThan(0);
  });

  it("name the argument and the expected size in errors", () => {
    const a = new Float32Array(4);
    expect(() => maxPool2dBackward(a, new Int32Array(4), a, 1, 4, 5)).toThrow(
      "maxPool2dBackward: gy has 4 and arg 4 values, expected planes*outPlane = 1*5 = 5 each",
    );
    expect(() => maxPool2dBackward(a, new Int32Array(4), a, 2, 3, 2)).toThrow(
      "maxPool2dBackward: gx has 4 values, expected planes*inPlane = 2*3 = 6",
    );
    expect(() => maxPool2dBackward(a, new Float32Array(4) as never, a, 1, 4, 4)).toThrow(
      "maxPool2dBackward: arg must be an Int32Array",
    );
    // An index into another plane (the forward never gives one) is an error, not a race.
    expect(() => maxPool2dBackward(a, new Int32Array([0, 1, 1, 3]), a, 2, 2, 2)).toThrow(
      "maxPool2dBackward: arg[2] = 1 is outside its plane 1 (inputs 2..3)",
    );
    expect(() => maxPool2dBackward(a, new Int32Array([0, 1, 2, 4]), a, 2, 2, 2)).toThrow(
      "maxPool2dBackward: arg[3] = 4 is outside its plane 1 (inputs 2..3)",
    );
  });
});
