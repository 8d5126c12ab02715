import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Adam, AdamW, SGD, type ParamLike } from "../src/optim.ts";
import { cosineLr } from "../src/schedules.ts";

function param(
  values: number[],
  name?: string,
): ParamLike & { grad: { data: Float64Array } | null } {
  const p: ParamLike & { grad: { data: Float64Array } | null } = {
    data: { data: Float64Array.from(values), shape: [values.length] },
    grad: null,
    requiresGrad: true,
  };
  if (name !== undefined) p.name = name;
  return p;
}

function setGrad(p: ParamLike, g: number[]): void {
  p.grad = { data: Float64Array.from(g) };
}

const w = (p: ParamLike) => Array.from(p.data.data);

describe("SGD", () => {
  it("plain step and weight decay (hand computed)", () => {
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1, weightDecay: 0.5 });
    setGrad(p, [1, 1]);
    opt.step();
    // w - lr * (g + wd * w): 1 - 0.1*(1+0.5) = 0.85; -2 - 0.1*(1-1) = -2
    expect(w(p)[0]).toBeCloseTo(0.85, 14);
    expect(w(p)[1]).toBeCloseTo(-2, 14);
  });
  it("momentum (hand computed)", () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    setGrad(p, [1]);
    opt.step(); // b = 1, w = 0.9
    expect(w(p)[0]).toBeCloseTo(0.9, 14);
    setGrad(p, [1]);
    opt.step(); // b = 1.9, w = 0.71
    expect(w(p)[0]).toBeCloseTo(0.71, 14);
  });
  it("dampening applies from the second step", () => {
    const p = param([0]);
    const opt = new SGD([p], { lr: 1, momentum: 0.5, dampening: 0.5 });
    setGrad(p, [2]);
    opt.step(); // b = 2, w = -2
    setGrad(p, [2]);
    opt.step(); // b = 0.5*2 + 0.5*2 = 2, w = -4
    expect(w(p)[0]).toBeCloseTo(-4, 14);
  });
  it("Nesterov (hand computed)", () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true });
    setGrad(p, [1]);
    opt.step(); // b = 1, d = 1.9, w = 0.81
    expect(w(p)[0]).toBeCloseTo(0.81, 14);
    setGrad(p, [1]);
    opt.step(); // b = 1.9, d = 1 + 0.9*1.9 = 2.71, w = 0.539
    expect(w(p)[0]).toBeCloseTo(0.539, 14);
  });
  it("follows a schedule and skips params without grad or requiresGrad", () => {
    const p = param([0]);
    const q = param([5]);
    const r = param([7]);
    r.requiresGrad = false;
    const opt = new SGD([p, q, r], { lr: (s) => (s + 1) * 0.1 });
    expect(opt.lr).toBe(0.1);
    setGrad(p, [1]);
    setGrad(r, [1]);
    opt.step();
    setGrad(p, [1]);
    opt.step();
    expect(w(p)[0]).toBeCloseTo(-0.3, 14);
    expect(w(q)).toEqual([5]);
    expect(w(r)).toEqual([7]);
    expect(opt.stepCount).toBe(2);
    opt.zeroGrad();
    expect(p.grad).toBeNull();
  });
});

// Scalar reference of PyTorch's Adam/AdamW written independently of the implementation.
function adamRef(
  w0: number,
  grads: number[],
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; decoupled: boolean },
): number {
  let w = w0,
    m = 0,
    v = 0;
  grads.forEach((g0, i) => {
    const t = i + 1;
    if (o.decoupled) w *= 1 - o.lr * o.wd;
    const g = o.decoupled ? g0 : g0 + o.wd * w;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    const mhat = m / (1 - o.b1 ** t);
    const vhat = v / (1 - o.b2 ** t);
    w -= (o.lr * mhat) / (Math.sqrt(vhat) + o.eps);
  });
  return w;
}

describe("Adam / AdamW", () => {
  it("first Adam step moves each weight by about lr against the gradient sign", () => {
    const p = param([1, 1]);
    const opt = new Adam([p], { lr: 0.1 });
    setGrad(p, [2, -0.001]);
    opt.step();
    expect(w(p)[0]).toBeCloseTo(1 - 0.1 * (2 / (2 + 1e-8)), 12);
    expect(w(p)[1]).toBeCloseTo(1 + 0.1 * (0.001 / (0.001 + 1e-8)), 12);
  });
  it("AdamW decays decoupled: 1*(1 - 0.1*0.1) - 0.1 = 0.89", () => {
    const p = param([1]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.1 });
    setGrad(p, [2]);
    opt.step();
    expect(w(p)[0]).toBeCloseTo(0.99 - 0.1 * (2 / (2 + 1e-8)), 12);
  });
  it("matches the scalar reference over several steps (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 1, maxLength: 6 }),
        fc.constantFrom(0, 0.01, 0.3),
        fc.boolean(),
        (w0, grads, wd, decoupled) => {
          const o = { lr: 0.01, b1: 0.8, b2: 0.95, eps: 1e-6, wd, decoupled };
          const p = param([w0]);
          const opts = { lr: o.lr, beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: wd };
          const opt = decoupled ? new AdamW([p], opts) : new Adam([p], opts);
          for (const g of grads) {
            setGrad(p, [g]);
            opt.step();
          }
          expect(w(p)[0]).toBeCloseTo(adamRef(w0, grads, o), 10);
        },
      ),
      { numRuns: 100 },
    );
  });
  it("works on float32 parameters", () => {
    const p: ParamLike = {
      data: { data: new Float32Array([1]), shape: [1] },
      grad: { data: new Float32Array([1]) },
      requiresGrad: true,
    };
    new Adam([p], { lr: cosineLr({ lr: 0.5, totalSteps: 10 }) }).step();
    expect(p.data.data[0]).toBeCloseTo(0.5, 6);
  });
});

describe("gradient masks", () => {
  it("masked positions get zero gradient and stay exactly zero despite momentum from before", () => {
    const p = param([1, 1, 1]);
    const opt = new Adam([p], { lr: 0.1 });
    setGrad(p, [1, 1, 1]);
    opt.step(); // builds moments at every position
    (p.data.data as Float64Array)[1] = 0; // prune position 1
    opt.setMask(p, new Uint8Array([1, 0, 1]));
    const before = w(p);
    setGrad(p, [0.5, 3, -1]);
    opt.step();
    expect(p.grad!.data[1]).toBe(0);
    expect(w(p)[1]).toBe(0);
    expect(w(p)[0]).not.toBe(before[0]);
    opt.setMask(p, null);
    expect(opt.getMask(p)).toBeUndefined();
  });
  it("SGD momentum cannot revive pruned weights", () => {
    const p = param([1, 1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    setGrad(p, [1, 1]);
    opt.step();
    (p.data.data as Float64Array)[0] = 0;
    opt.setMask(p, new Float32Array([0, 1]));
    for (let i = 0; i < 3; i++) {
      setGrad(p, [1, 1]);
      opt.step();
      expect(w(p)[0]).toBe(0);
    }
  });
});

describe("setMask clears the optimizer state of masked-out positions", () => {
  const stateAt = (opt: SGD | Adam, key: string) =>
    Array.from(opt.stateDict().get(key)!.data as Float64Array);

  it("zeroes SGD momentum and Adam moments where the mask is 0, keeps the rest bit for bit", () => {
    const ps = param([1, -2, 3, -4]);
    const sgd = new SGD([ps], { lr: 0.1, momentum: 0.9 });
    const pa = param([1, -2, 3, -4]);
    const adam = new Adam([pa], { lr: 0.1 });
    for (const [p, opt] of [
      [ps, sgd],
      [pa, adam],
    ] as const) {
      setGrad(p, [0.5, -1, 2, 0.25]);
      opt.step();
      setGrad(p, [1, 1, -1, 3]);
      opt.step();
    }
    const mom = stateAt(sgd, "0.momentum_buffer");
    const m = stateAt(adam, "0.exp_avg");
    const v = stateAt(adam, "0.exp_avg_sq");
    const mask = new Uint8Array([1, 0, 1, 0]);
    sgd.setMask(ps, mask);
    adam.setMask(pa, mask);
    const keep = (a: number[]) => a.map((x, k) => (mask[k] === 0 ? 0 : x));
    expect(stateAt(sgd, "0.momentum_buffer")).toEqual(keep(mom));
    expect(stateAt(adam, "0.exp_avg")).toEqual(keep(m));
    expect(stateAt(adam, "0.exp_avg_sq")).toEqual(keep(v));
    expect(mom[1]).not.toBe(0); // the clearing did something
  });

  it("a parameter without state yet gets none created; removing the mask clears nothing", () => {
    const p = param([1, 2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    opt.setMask(p, new Uint8Array([0, 1]));
    expect(opt.stateDict().has("0.momentum_buffer")).toBe(false);
    setGrad(p, [1, 1]);
    opt.step();
    const before = stateAt(opt, "0.momentum_buffer");
    opt.setMask(p, null);
    expect(stateAt(opt, "0.momentum_buffer")).toEqual(before);
  });

  it("after the mask is removed (strip), stale momentum does not revive a pruned weight", () => {
    // Momentum built before pruning; the weight is pruned, masked, then the mask removed. A
    // zero gradient there afterwards must leave it at exactly 0 (it would move by
    // -lr * momentum * b if setMask had kept the old buffer).
    const p = param([1, 1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
    setGrad(p, [1, 1]);
    opt.step();
    opt.step();
    (p.data.data as Float64Array)[0] = 0;
    opt.setMask(p, new Uint8Array([0, 1]));
    setGrad(p, [1, 1]);
    opt.step();
    opt.setMask(p, null);
    for (let i = 0; i < 3; i++) {
      setGrad(p, [0, 1]);
      opt.step();
      expect(w(p)[0]).toBe(0);
    }
  });

  it("optimizer checkpoints leave masks out (the pruning state owns them)", () => {
    const p = param([1, 2, 3]);
    const opt = new Adam([p], { lr: 0.1 });
    opt.setMask(p, new Uint8Array([1, 0, 1]));
    setGrad(p, [1, 1, 1]);
    opt.step();
    const sd = opt.stateDict();
    expect([...sd.keys()].sort()).toEqual(["0.exp_avg", "0.exp_avg_sq", "0.step", "step_count"]);
    const fresh = new Adam([p], { lr: 0.1 });
    fresh.loadStateDict(sd);
    expect(fresh.getMask(p)).toBeUndefined();
  });

  it("pruned weights stay exactly 0 through SGD/Adam/AdamW steps with decay and prior state (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (n, which, seed) => {
          let s = seed;
          const rnd = () => {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            return s / 2 ** 32;
          };
          const p = param(Array.from({ length: n }, () => rnd() * 2 - 1));
          const opt =
            which === 0
              ? new SGD([p], { lr: 0.05, momentum: 0.9, weightDecay: 0.01 })
              : which === 1
                ? new Adam([p], { lr: 0.05, weightDecay: 0.01 })
                : new AdamW([p], { lr: 0.05, weightDecay: 0.1 });
          const grads = () => Array.from({ length: n }, () => rnd() * 4 - 2);
          for (let t = 0; t < 3; t++) {
            setGrad(p, grads());
            opt.step();
          }
          const mask = Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 0 : 1));
          const d = p.data.data as Float64Array;
          for (let k = 0; k < n; k++) if (mask[k] === 0) d[k] = 0;
          opt.setMask(p, mask);
          for (const arrays of [...opt.stateDict()].filter(([k]) => k !== "step_count")) {
            const [key, r] = arrays;
            if (key.endsWith(".step")) continue;
            for (let k = 0; k < n; k++) if (mask[k] === 0) expect(r.data[k]).toBe(0);
          }
          for (let t = 0; t < 4; t++) {
            setGrad(p, grads());
            opt.step();
            for (let k = 0; k < n; k++) if (mask[k] === 0) expect(d[k]).toBe(0);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("optimizer argument checks", () => {
  it("throws clear errors", () => {
    const p = param([1], "fc.weight");
    expect(() => new SGD([p], {} as { lr: number })).toThrow(/SGD: options.lr/);
    expect(() => new SGD([p, p], { lr: 1 })).toThrow(/"fc.weight"\) appears twice/);
    expect(() => new SGD([p], { lr: 1, nesterov: true })).toThrow(/Nesterov/);
    expect(() => new Adam([p], { lr: 1, beta1: 1 })).toThrow(/beta1 must be in \[0, 1\)/);
    expect(() => new SGD([p], { lr: 1 }).setMask(p, new Uint8Array(2))).toThrow(
      /mask for parameter 0 \("fc.weight"\) must be a typed array of 1 elements, got 2/,
    );
    expect(() => new SGD([p], { lr: 1 }).setMask(param([1]), new Uint8Array(1))).toThrow(
      /not managed/,
    );
    const view: ParamLike = {
      data: { data: new Float32Array(4), shape: [2] },
      grad: null,
      requiresGrad: true,
    };
    expect(() => new SGD([view], { lr: 1 })).toThrow(/contiguous storage/);
    const bad = new SGD([p], { lr: () => NaN });
    setGrad(p, [1]);
    expect(() => bad.step()).toThrow(/lr = NaN at step 0/);
  });
});

describe("optimizer state dict", () => {
  it("Adam resumed from its state dict continues exactly like the original", () => {
    const grads = [
      [1, -2],
      [0.5, 0.5],
      [-1, 3],
      [2, 2],
    ];
    const p = param([1, 2]);
    const opt = new Adam([p], { lr: 0.1 });
    for (const g of grads.slice(0, 2)) {
      setGrad(p, g);
      opt.step();
    }
    const saved = opt.stateDict();
    expect([...saved.keys()].sort()).toEqual(["0.exp_avg", "0.exp_avg_sq", "0.step", "step_count"]);
    const q = param(w(p));
    const resumed = new Adam([q], { lr: 0.1 });
    resumed.loadStateDict(saved);
    expect(resumed.stepCount).toBe(2);
    for (const g of grads.slice(2)) {
      setGrad(p, g);
      opt.step();
      setGrad(q, g);
      resumed.step();
    }
    expect(w(q)).toEqual(w(p));
  });
  it("SGD momentum buffers round trip and bad state is refused", () => {
    const p = param([1]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    expect([...opt.stateDict().keys()]).toEqual(["step_count"]);
    setGrad(p, [1]);
    opt.step();
    const sd = opt.stateDict();
    expect(Array.from(sd.get("0.momentum_buffer")!.data as Float64Array)).toEqual([1]);
    const other = new SGD([param([1, 2])], { lr: 0.1, momentum: 0.9 });
    expect(() => other.loadStateDict(sd)).toThrow(
      /"0.momentum_buffer" has 1 F64 values, parameter 0 has 2/,
    );
    sd.set("9.momentum_buffer", sd.get("0.momentum_buffer")!);
    expect(() => opt.loadStateDict(sd)).toThrow(/unexpected keys: 9.momentum_buffer/);
  });
});
