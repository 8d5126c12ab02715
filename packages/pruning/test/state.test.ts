import fc from "fast-check";
import { Generator } from "@tessera/tensor";
import { describe, expect, it } from "vitest";
import {
  Adam,
  AdamW,
  Conv2d,
  Flatten,
  SGD,
  Sequential,
  fit,
  lenet300100,
  type Optimizer,
} from "@tessera/nn";
import {
  PruningState,
  groupScores,
  maskFromAlive,
  polynomialDecay,
  selectFraction,
  type GroupKind,
} from "../src/index.ts";
import { dataset, mlp } from "./helpers.ts";

const weights = (s: PruningState, name: string) =>
  s.model.getParameter(name).data.data as Float32Array;

// The paper's overall densities after rounds 1..16 (papers.md), in percent.
const PAPER = [
  80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5, 3.6, 2.9,
];

describe("PruningState: the paper's iterative rule on LeNet-300-100", () => {
  it("gives the paper's 16 densities (80.0 ... 2.9 %) with 1x1 and 4x4 groups", () => {
    for (const kind of [{ kind: "element" }, { kind: "block", rows: 4, cols: 4 }] as GroupKind[]) {
      const st = new PruningState(lenet300100({ generator: new Generator(1) }), {
        "fc1.weight": kind,
        "fc2.weight": kind,
        "fc3.weight": kind,
      });
      const got: number[] = [];
      for (let r = 0; r < 16; r++) {
        st.pruneFraction({ "fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1 });
        got.push(Math.round(1000 * st.density()) / 10);
      }
      expect(got).toEqual(PAPER);
    }
  });

  it("other block sizes stay within 0.2 points (whole-tile rounding; ragged tiles weigh less: 8x8 is off by 0.18 at round 5)", () => {
    for (const b of [2, 3, 5, 6, 8]) {
      const kind: GroupKind = { kind: "block", rows: b, cols: b };
      const st = new PruningState(lenet300100({ generator: new Generator(2) }), {
        "fc1.weight": kind,
        "fc2.weight": kind,
        "fc3.weight": kind,
      });
      for (let r = 0; r < 16; r++) {
        st.pruneFraction({ "fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1 });
        expect(Math.abs(100 * st.density() - PAPER[r]!)).toBeLessThan(0.2);
      }
    }
  });
});

describe("PruningState: masks", () => {
  it("keeps exactly the selected groups, zeroes exactly the rest, never revives (property)", () => {
    const kinds: GroupKind[] = [
      { kind: "element" },
      { kind: "block", rows: 3, cols: 4 },
      { kind: "row" },
      { kind: "column" },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 1000 }),
        (kind, rates, seed) => {
          const st = new PruningState(mlp(seed), { "fc1.weight": kind, "fc2.weight": kind });
          const original = Float32Array.from(weights(st, "fc1.weight"));
          let prevAlive = Uint8Array.from(st.alive("fc1.weight"));
          for (const rate of rates) {
            const scores = groupScores(weights(st, "fc1.weight"), st.layout("fc1.weight"));
            const want = new Set(selectFraction(scores, st.alive("fc1.weight"), rate));
            st.pruneFraction({ "fc1.weight": rate });
            const alive = st.alive("fc1.weight");
            prevAlive.forEach((a, j) => expect(alive[j]).toBe(a === 1 && !want.has(j) ? 1 : 0));
            const mask = st.mask("fc1.weight");
            expect(Array.from(mask)).toEqual(
              Array.from(maskFromAlive(st.layout("fc1.weight"), alive)),
            );
            const w = weights(st, "fc1.weight");
            for (let k = 0; k < w.length; k++) expect(w[k]).toBe(mask[k] === 0 ? 0 : original[k]);
            prevAlive = Uint8Array.from(alive);
          }
          // fc2 was not named in the rates: untouched.
          expect(st.density("fc2.weight")).toBe(1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("entries() is the PrunedSource view with live masks; densities are by weights", () => {
    const st = new PruningState(mlp(3), {
      "fc1.weight": { kind: "row" },
      "fc2.weight": { kind: "element" },
    });
    st.pruneToDensity({ "fc1.weight": 0.5, "fc2.weight": 0.25 });
    const e = st.entries();
    expect(e.map((x) => x.name)).toEqual(["fc1.weight", "fc2.weight"]);
    expect(e[0]!.mask).toBe(st.mask("fc1.weight"));
    expect(e[0]!.kind).toEqual({ kind: "row" });
    expect(st.density("fc1.weight")).toBe(0.5); // 5 of 10 rows
    expect(st.density("fc2.weight")).toBeCloseTo(Math.round(0.25 * 70) / 70, 15);
    expect(st.density()).toBeCloseTo((60 + Math.round(0.25 * 70)) / (120 + 70), 15);
    expect([...st.densities().keys()]).toEqual(["fc1.weight", "fc2.weight"]);
  });

  it("global one-shot ranks both layers together", () => {
    const st = new PruningState(mlp(4), {
      "fc1.weight": { kind: "element" },
      "fc2.weight": { kind: "element" },
    });
    const all = [...weights(st, "fc1.weight"), ...weights(st, "fc2.weight")]
      .map(Math.abs)
      .sort((a, b) => a - b);
    st.pruneToDensity(0.3, { scope: "global" });
    expect(st.keptCount()).toBe(Math.round(0.3 * 190));
    const threshold = all[190 - st.keptCount()]!;
    for (const n of ["fc1.weight", "fc2.weight"]) {
      const w = weights(st, n);
      const m = st.mask(n);
      for (let k = 0; k < w.length; k++)
        if (m[k] === 1) expect(Math.abs(w[k]!)).toBeGreaterThanOrEqual(threshold);
    }
    expect(() => st.pruneToDensity({ "fc1.weight": 0.1 }, { scope: "global" })).toThrow(
      /a global target must be one number/,
    );
  });

  it("random masks come from the generator passed in (the paper's baseline)", () => {
    const run = (seed: number) => {
      const st = new PruningState(mlp(5), { "fc1.weight": { kind: "block", rows: 2, cols: 2 } });
      st.pruneFraction(0.5, { score: "random", generator: new Generator(seed) });
      return Array.from(st.mask("fc1.weight"));
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it("KEP: keeps the top n elements of every kernel plane of a conv weight", () => {
    const g = new Generator(6);
    const model = Sequential.named({
      conv: new Conv2d(2, 3, 3, { generator: g }),
      flat: new Flatten(),
    });
    const st = new PruningState(model, { "conv.weight": { kind: "kernelElement" } });
    const before = Float32Array.from(weights(st, "conv.weight"));
    st.keepTopPerPartition(4);
    const m = st.mask("conv.weight");
    for (let p = 0; p < 6; p++) {
      const plane = Array.from(before.subarray(9 * p, 9 * p + 9), Math.abs);
      const kept = [...plane.keys()].filter((i) => m[9 * p + i] === 1);
      expect(kept.length).toBe(4);
      const minKept = Math.min(...kept.map((i) => plane[i]!));
      plane.forEach((v, i) => {
        if (m[9 * p + i] === 0) expect(v).toBeLessThanOrEqual(minKept);
      });
    }
    expect(() =>
      new PruningState(model, { "conv.weight": { kind: "row" } }).keepTopPerPartition(2),
    ).toThrow(
      /"conv.weight" has row groups; keeping the top n per plane needs kernelElement groups/,
    );
  });

  it("gradual pruning follows the cubic schedule's density at its pruning steps", () => {
    const st = new PruningState(mlp(7, [40, 30, 3]), { "fc1.weight": { kind: "element" } });
    const sched = polynomialDecay({
      initialSparsity: 0,
      finalSparsity: 0.9,
      beginStep: 10,
      endStep: 50,
      frequency: 10,
    });
    for (let t = 0; t <= 60; t++) {
      const before = st.density();
      const r = st.pruneToSchedule(sched, t);
      if (!sched.isPruningStep(t)) {
        expect(r).toBeNull();
        expect(st.density()).toBe(before);
      } else {
        expect(st.keptCount()).toBe(Math.round(sched.densityAt(t) * 1200));
      }
    }
    expect(st.density()).toBeCloseTo(0.1, 15);
  });

  it("errors name the parameter and what was expected", () => {
    const m = mlp(8);
    expect(() => new PruningState(m, { "fc9.weight": { kind: "row" } })).toThrow(
      /no parameter "fc9.weight"/,
    );
    expect(() => new PruningState(m, { "fc1.bias": { kind: "row" } })).toThrow(
      /PruningState: "fc1.bias": groupLayout: row groups need a weight of shape \[out, in\] or \[F, C, kh, kw\]/,
    );
    expect(
      () =>
        new PruningState(m, {
          "fc1.weight": { kind: "block", rows: 2, cols: 2, pruneBias: true },
        }),
    ).toThrow(/pruneBias needs row groups, got block 2x2/);
    expect(() => new PruningState(m, {})).toThrow(/the config names no parameter/);
    const st = new PruningState(m, { "fc1.weight": { kind: "row" } });
    expect(() => st.mask("fc2.weight")).toThrow(
      /PruningState.mask: "fc2.weight" is not pruned here; pruned: fc1.weight/,
    );
    expect(() => st.pruneFraction({ "fc1.weight": 2 })).toThrow(
      /rate for "fc1.weight" must be in \[0, 1\], got 2/,
    );
    expect(() => st.removeGroups("fc1.weight", [10])).toThrow(
      /group 10 of "fc1.weight" is out of range \[0, 10\)/,
    );
  });
});

describe("PruningState with optimizers: pruned weights stay exactly 0", () => {
  const train = dataset(64, 12, 3, 21);
  const makers: [string, (m: Sequential) => Optimizer][] = [
    [
      "SGD momentum + weight decay",
      (m) => new SGD(m.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0.01 }),
    ],
    ["Adam + L2", (m) => new Adam(m.parameters(), { lr: 0.01, weightDecay: 0.01 })],
    ["AdamW", (m) => new AdamW(m.parameters(), { lr: 0.01, weightDecay: 0.1 })],
  ];
  for (const [label, make] of makers) {
    it(`${label}: state from before pruning, two prune rounds, fit steps in between`, () => {
      const model = mlp(11);
      const opt = make(model);
      fit(model, { train, epochs: 1, batchSize: 16, optimizer: opt, seed: 1 }); // momentum built
      const st = new PruningState(model, {
        "fc1.weight": { kind: "block", rows: 3, cols: 5 },
        "fc2.weight": { kind: "row", pruneBias: true },
      });
      st.attach(opt);
      for (let round = 0; round < 2; round++) {
        st.pruneFraction(0.3);
        expect(opt.getMask(model.getParameter("fc1.weight"))).toBe(st.mask("fc1.weight"));
        // The optimizer state of the newly pruned positions is cleared at registration.
        for (const [key, r] of opt.stateDict()) {
          const idx = Number(key.split(".")[0]);
          if (!Number.isInteger(idx) || key.endsWith(".step")) continue;
          if (model.parameters()[idx] !== model.getParameter("fc1.weight")) continue;
          const mask = st.mask("fc1.weight");
          for (let k = 0; k < mask.length; k++) if (mask[k] === 0) expect(r.data[k]).toBe(0);
        }
        fit(model, { train, epochs: 2, batchSize: 16, optimizer: opt, seed: 2 + round });
        for (const n of ["fc1.weight", "fc2.weight"]) {
          const w = weights(st, n);
          const m = st.mask(n);
          for (let k = 0; k < w.length; k++) if (m[k] === 0) expect(w[k]).toBe(0);
        }
        const bias = model.getParameter("fc2.bias").data.data;
        const alive = st.alive("fc2.weight");
        alive.forEach((a, r) => {
          if (a === 0) expect(bias[r]).toBe(0);
        });
        expect(alive.includes(0)).toBe(true);
      }
    });
  }

  it("strip() makes it permanent: zeros stay, masks leave the optimizer, nothing is tracked", () => {
    const model = mlp(12);
    const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const st = new PruningState(model, { "fc1.weight": { kind: "element" } }).attach(opt);
    st.pruneToDensity(0.4);
    const zeros = Array.from(st.mask("fc1.weight"), (m) => m === 0);
    st.strip();
    expect(opt.getMask(model.getParameter("fc1.weight"))).toBeUndefined();
    expect(st.entries()).toEqual([]);
    const w = weights(st, "fc1.weight");
    zeros.forEach((z, k) => {
      if (z) expect(w[k]).toBe(0);
    });
    // Trained on without a mask, the pruned weights are free to move again (as in PyTorch).
    fit(model, { train, epochs: 1, batchSize: 16, optimizer: opt, seed: 3 });
    expect(zeros.some((z, k) => z && w[k] !== 0)).toBe(true);
  });

  it("detach removes the masks; an evaluation needs no optimizer", () => {
    const model = mlp(13);
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const st = new PruningState(model, { "fc1.weight": { kind: "row" } }).attach(opt);
    st.detach(opt);
    expect(opt.getMask(model.getParameter("fc1.weight"))).toBeUndefined();
    st.pruneFraction(0.5);
    expect(opt.getMask(model.getParameter("fc1.weight"))).toBeUndefined();
  });
});
