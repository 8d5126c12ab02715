// adamUpdate against Adam's formula written out here (PyTorch's form), bit for bit: serial, and
// split over 2 and 3 threads (arrays on shared memory), float32 and float64, with no decay,
// Adam's L2 term and AdamW's decoupled decay; lengths past the split's thresholds. On the wasm
// path (float32 arrays): against the same formula in float32 with every operation rounded, bit
// for bit, and near the double one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { adamUpdate, createPool, sharedFloat32, sharedFloat64 } from "../src/index.ts";
import type { AdamStep, FloatArray } from "../src/index.ts";
import { KIND_ADAM, KIND_WASM_ADAM } from "../src/jobs.ts";
import type { MatrixPool } from "../src/index.ts";
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

/** Step t's scalars with lr 1e-3, PyTorch's betas and eps, and the case's decay (0.01). */
function stepOf(decay: Case["decay"], t: number): AdamStep {
  const lr = 1e-3;
  return {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    stepSize: lr / (1 - 0.9 ** t),
    bc2sqrt: Math.sqrt(1 - 0.999 ** t),
    l2: decay === "l2" ? 0.01 : 0,
    shrink: decay === "decoupled" ? 1 - lr * 0.01 : 1,
  };
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
      const step = stepOf(decay, t);
      const want = [w, g, m, v].map((a) => a.slice());
      reference(want[0]!, want[1]!, want[2]!, want[3]!, step);
      const plain = [w, g, m, v].map((a) => a.slice()); // ordinary memory: serial
      adamUpdate(plain[0]!, plain[1]!, plain[2]!, plain[3]!, step, { kernels: "asm" });
      const pool = threads === 2 ? pools.pool2() : threads === 3 ? pools.pool3() : undefined;
      const vs = f64 ? sharedFloat64(n) : sharedFloat32(n);
      vs.set(v);
      adamUpdate(w, g, m, vs, step, { pool, kernels: "asm" });
      for (const got of [plain, [w, g, m, vs]])
        got.forEach((a, i) => expect(sameBytes(a, want[i]!), `array ${i}`).toBe(true));
    };
    fc.assert(fc.property(caseArb, check), { numRuns: 40 });
    check({ n: 70000, seed: 3, f64: false, decay: "none", t: 7, threads: 2 });
    expect(pools.pool2().jobsByKind.get(KIND_ADAM)).toBeGreaterThan(0);
    expect(pools.pool3().jobsByKind.get(KIND_ADAM)).toBeGreaterThan(0);
  });

  describe("on the wasm path (float32 arrays)", () => {
    let wasm2: MatrixPool;
    let wasm3: MatrixPool;
    beforeAll(async () => {
      wasm2 = createPool({ threads: 2, minParallelFlops: 0, kernels: "wasm" });
      wasm3 = createPool({ threads: 3, minParallelFlops: 0, kernels: "wasm" });
      await Promise.all([wasm2.ready(), wasm3.ready()]);
    });
    afterAll(async () => {
      await Promise.all([wasm2.close(), wasm3.close()]);
    });

    /** The same formula in float32, every operation rounded (as the f32x4 kernel does it). */
    function reference32(
      w: Float32Array,
      g: Float32Array,
      m: Float32Array,
      v: Float32Array,
      s: AdamStep,
    ) {
      const f = Math.fround;
      const [b1, b2, c1, c2] = [f(s.beta1), f(s.beta2), f(1 - s.beta1), f(1 - s.beta2)];
      const [stepSize, bc2sqrt, eps, l2, shrink] = [
        s.stepSize,
        s.bc2sqrt,
        s.eps,
        s.l2,
        s.shrink,
      ].map(f);
      const decay = !(s.l2 === 0 && s.shrink === 1);
      for (let k = 0; k < w.length; k++) {
        const gk = decay ? f(g[k]! + f(w[k]! * l2!)) : g[k]!;
        const mk = f(f(m[k]! * b1) + f(c1 * gk));
        const vk = f(f(v[k]! * b2) + f(f(c2 * gk) * gk));
        const wk = decay ? f(w[k]! * shrink!) : w[k]!;
        const den = f(f(f(Math.sqrt(vk)) / bc2sqrt!) + eps!);
        m[k] = mk;
        v[k] = vk;
        w[k] = f(wk - f(f(stepSize! * mk) / den));
      }
    }

    it("equals the formula in float32 bit for bit, serial and on 2-3 threads, and stays near the double one", () => {
      const check = ({ n, seed, decay, t, threads }: Case) => {
        const r = rng(seed);
        const make = () => {
          const a = sharedFloat32(n);
          for (let k = 0; k < n; k++) a[k] = r();
          return a;
        };
        const [w, g, m, v] = [make(), make(), make(), make()];
        v.forEach((x, k) => (v[k] = x * x)); // in place: all four stay shared, so the pool splits
        const step = stepOf(decay, t);
        const want0 = w.slice();
        const want = [w, g, m, v].map((a) => a.slice());
        reference32(want[0]!, want[1]!, want[2]!, want[3]!, step);
        const double = [w, g, m, v].map((a) => a.slice());
        reference(double[0]!, double[1]!, double[2]!, double[3]!, step);
        const plain = [w, g, m, v].map((a) => a.slice());
        adamUpdate(plain[0]!, plain[1]!, plain[2]!, plain[3]!, step, { kernels: "wasm" });
        const pool = threads === 2 ? wasm2 : threads === 3 ? wasm3 : undefined;
        adamUpdate(w, g, m, v, step, { pool, kernels: "wasm" });
        for (const got of [plain, [w, g, m, v]])
          got.forEach((a, i) => expect(sameBytes(a, want[i]!), `array ${i}`).toBe(true));
        // a few float32 roundings from the double loop, relative to the weight and its update
        for (let k = 0; k < n; k++) {
          const scale = Math.abs(want0[k]!) + Math.abs(want0[k]! - double[0]![k]!);
          expect(Math.abs(w[k]! - double[0]![k]!)).toBeLessThanOrEqual(1e-6 * scale);
        }
      };
      fc.assert(
        fc.property(caseArb, (c) => check({ ...c, f64: false })),
        { numRuns: 40 },
      );
      check({ n: 70000, seed: 3, f64: false, decay: "l2", t: 7, threads: 2 });
      expect(wasm2.jobsByKind.get(KIND_WASM_ADAM)).toBeGreaterThan(0);
      expect(wasm3.jobsByKind.get(KIND_WASM_ADAM)).toBeGreaterThan(0);
    });

    it("float64 arrays keep the double loop whatever the path", () => {
      const a = () => Float64Array.from({ length: 9 }, (_, i) => 0.1 * (i + 1));
      const [w, g, m, v] = [a(), a(), a(), a()];
      const want = [w, g, m, v].map((x) => x.slice());
      const s: AdamStep = {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        stepSize: 1e-3,
        bc2sqrt: 0.03,
        l2: 0,
        shrink: 1,
      };
      reference(want[0]!, want[1]!, want[2]!, want[3]!, s);
      adamUpdate(w, g, m, v, s, { kernels: "wasm" });
      [w, g, m, v].forEach((x, i) => expect(sameBytes(x, want[i]!)).toBe(true));
    });
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
