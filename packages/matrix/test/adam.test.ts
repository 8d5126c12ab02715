// adamUpdate against Adam's formula written out here (PyTorch's form), bit for bit: serial, and
// split over 2 and 3 threads (arrays on shared memory), float32 and float64, with no decay,
// Adam's L2 term and AdamW's decoupled decay; lengths past the split's thresholds.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { adamUpdate, sharedFloat32, sharedFloat64 } from "../src/index.ts";
import type { AdamStep, FloatArray } from "../src/index.ts";
import { KIND_ADAM } from "../src/jobs.ts";
import { asmTestPools, rng } from "./helpers.ts";

/** Same bytes (a vitest deep equality over long arrays is slow). */
const sameBytes = (a: FloatArray, b: FloatArray) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

const pools = asmTestPools();

function reference(w: FloatArray, g: FloatArray, m: FloatArray, v: FloatArray, s: AdamStep) {
  for (let k = 0; k < w.length; k++) {
    const gk = g[k]! + s.l2 * w[k]!;
    const mk = s.beta1 * m[k]! + (1 - s.beta1) * gk;
    const vk = s.beta2 * v[k]! + (1 - s.beta2) * gk * gk;
    m[k] = mk;
    v[k] = vk;
    w[k] = w[k]! * s.shrink - (s.stepSize * mk) / (Math.sqrt(vk) / s.bc2sqrt + s.eps);
  }
}

interface Case {
  n: number;
  seed: number;
  f64: boolean;
  decay: "none" | "l2" | "decoupled";
  t: number;
  threads: number;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  // The test pools split any job, so small lengths exercise the split; one long case follows.
  n: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 1000, max: 3000 })),
  seed: fc.integer(),
  f64: fc.boolean(),
  decay: fc.constantFrom("none", "l2", "decoupled"),
  t: fc.integer({ min: 1, max: 50 }),
  threads: fc.constantFrom(1, 2, 3),
});

describe("adamUpdate", () => {
  it("equals Adam's formula bit for bit, serial and on 2-3 threads", () => {
    const check = ({ n, seed, f64, decay, t, threads }: Case) => {
      const r = rng(seed);
      const make = () => {
        const a = f64 ? sharedFloat64(n) : sharedFloat32(n);
        for (let k = 0; k < n; k++) a[k] = r();
        return a;
      };
      const [w, g, m, v0] = [make(), make(), make(), make()];
      const v = v0.map((x) => x * x); // second moments are >= 0
      const lr = 1e-3;
      const step: AdamStep = {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        stepSize: lr / (1 - 0.9 ** t),
        bc2sqrt: Math.sqrt(1 - 0.999 ** t),
        l2: decay === "l2" ? 0.01 : 0,
        shrink: decay === "decoupled" ? 1 - lr * 0.01 : 1,
      };
      const want = [w, g, m, v].map((a) => a.slice());
      reference(want[0]!, want[1]!, want[2]!, want[3]!, step);
      const plain = [w, g, m, v].map((a) => a.slice()); // ordinary memory: serial
      adamUpdate(plain[0]!, plain[1]!, plain[2]!, plain[3]!, step);
      const pool = threads === 2 ? pools.pool2() : threads === 3 ? pools.pool3() : undefined;
      const vs = f64 ? sharedFloat64(n) : sharedFloat32(n);
      vs.set(v);
      adamUpdate(w, g, m, vs, step, { pool });
      for (const got of [plain, [w, g, m, vs]])
        got.forEach((a, i) => expect(sameBytes(a, want[i]!), `array ${i}`).toBe(true));
    };
    fc.assert(fc.property(caseArb, check), { numRuns: 40 });
    check({ n: 70000, seed: 3, f64: false, decay: "none", t: 7, threads: 2 });
    expect(pools.pool2().jobsByKind.get(KIND_ADAM)).toBeGreaterThan(0);
    expect(pools.pool3().jobsByKind.get(KIND_ADAM)).toBeGreaterThan(0);
  });

  it("name the argument and what was expected in errors", () => {
    const a = new Float32Array(3);
    const s: AdamStep = {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      stepSize: 1,
      bc2sqrt: 1,
      l2: 0,
      shrink: 1,
    };
    expect(() => adamUpdate(a, new Float32Array(2), a, a, s)).toThrow(
      "adamUpdate: g has 2 values, expected w's 3",
    );
    expect(() => adamUpdate(a, a, new Float64Array(3), a, s)).toThrow(/adamUpdate: m/);
    expect(() => adamUpdate(a, a, a, a, { ...s, eps: Number.NaN })).toThrow(
      "adamUpdate: step.eps must be a finite number, got NaN",
    );
  });
});
