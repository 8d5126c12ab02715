import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Generator, Tensor } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import {
  BatchNorm1d,
  Conv2d,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
  lenet300100,
  lenet5,
} from "@tessera/nn";
import { AdmmPruner, compactModel } from "../src/index.ts";

function input(shape: number[], seed: number): Tensor {
  const g = new Generator(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new Tensor(
    Float32Array.from({ length: n }, () => 2 * g.nextFloat() - 1),
    shape,
  );
}

function run(m: Sequential, x: Tensor): Float32Array {
  m.eval();
  return m.forward(new Variable(x)).data.data as Float32Array;
}

/** Max |a − b| relative to max |a| (float32 tolerance for re-summed biases). */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 1e-6;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    s = Math.max(s, Math.abs(a[i]!));
  }
  return d / s;
}

function w(m: Sequential, name: string): Float32Array {
  return m.getParameter(name).data.data as Float32Array;
}

/** Zero row r of a [rows, len] weight. */
function zeroRow(m: Sequential, name: string, r: number): void {
  const p = m.getParameter(name);
  const len = p.data.data.length / p.shape[0]!;
  w(m, name).fill(0, r * len, (r + 1) * len);
}

/** Zero input group j of width `per` (columns j·per .. j·per + per − 1) of every row. */
function zeroGroup(m: Sequential, name: string, j: number, per: number): void {
  const p = m.getParameter(name);
  const len = p.data.data.length / p.shape[0]!;
  for (let f = 0; f < p.shape[0]!; f++)
    w(m, name).fill(0, f * len + j * per, f * len + (j + 1) * per);
}

describe("compactModel", () => {
  it("LeNet-300-100: zero rows (nonzero biases, folded) and zero columns give a smaller MLP with the same outputs", () => {
    const m = lenet300100({ generator: new Generator(1) });
    for (const r of [0, 5, 299]) zeroRow(m, "fc1.weight", r); // biases nonzero: folded into fc2
    for (const j of [7, 8, 100]) zeroGroup(m, "fc2.weight", j, 1); // fc1 units 7, 8, 100 unread
    for (const r of [3, 99]) zeroRow(m, "fc2.weight", r);
    zeroGroup(m, "fc3.weight", 50, 1);
    const x = input([5, 784], 2);
    const y = run(m, x);
    const c = compactModel(m);
    expect(c.layers.map((l) => [l.name, l.before, l.after])).toEqual([
      ["fc1", [300, 784], [294, 784]],
      ["fc2", [100, 300], [97, 294]],
      ["fc3", [10, 100], [10, 97]],
    ]);
    expect(c.weightsBefore).toBe(266200);
    expect(c.weightsAfter).toBe(294 * 784 + 97 * 294 + 10 * 97);
    expect(relErr(y, run(c.model, x))).toBeLessThan(1e-5);
    // The source model is untouched and the removed units are the ones planted.
    expect(c.layers[0]!.keptOutputs).not.toContain(5);
    expect(w(m, "fc1.weight").length).toBe(300 * 784);
  });

  it("LeNet-5: dead filters, channels and flatten blocks go through pooling and flatten, same outputs", () => {
    for (const convRelu of [false, true]) {
      const m = lenet5({ generator: new Generator(3), convRelu });
      zeroRow(m, "conv1.weight", 4); // nonzero bias: a constant map folded into conv2's bias
      zeroGroup(m, "conv2.weight", 11, 25); // conv1 filter 11 unread
      zeroRow(m, "conv2.weight", 7); // constant -> pool -> flatten: fc1's 16 features folded
      zeroGroup(m, "fc1.weight", 30, 16); // conv2 channel 30's 4x4 block unread
      zeroRow(m, "fc1.weight", 499);
      const x = input([3, 1, 28, 28], 4);
      const y = run(m, x);
      const c = compactModel(m);
      expect(c.layers.map((l) => [l.name, l.after])).toEqual([
        ["conv1", [18, 1, 5, 5]],
        ["conv2", [48, 18, 5, 5]],
        ["fc1", [499, 768]],
        ["fc2", [10, 499]],
      ]);
      expect(relErr(y, run(c.model, x))).toBeLessThan(1e-5);
    }
  });

  it("random CNNs and MLPs with random dead rows and groups keep their outputs (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 2, max: 6 }),
        fc.nat(),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.boolean(), fc.nat()), {
          maxLength: 8,
        }),
        fc.boolean(),
        (a, bch, h, seed, cuts, withPad) => {
          const g = new Generator(seed);
          const m = Sequential.named([
            ["conv1", new Conv2d(2, a, 3, { generator: g, padding: withPad ? 1 : 0 })],
            ["relu0", new ReLU()],
            ["conv2", new Conv2d(a, bch, 3, { generator: g, padding: withPad ? 1 : 0 })],
            ["pool", new MaxPool2d(2)],
            ["flatten", new Flatten()],
            ["fc1", new Linear(bch * (withPad ? 16 : 4), h, { generator: g })],
            ["relu1", new ReLU()],
            ["fc2", new Linear(h, 3, { generator: g })],
          ]);
          const names = ["conv1", "conv2", "fc1", "fc2"];
          const per = [0, 9, withPad ? 16 : 4, 1];
          const units = [a, bch, h, 3];
          for (const [layer, row, k] of cuts) {
            const name = `${names[layer]!}.weight`;
            if (row) zeroRow(m, name, k % units[layer]!);
            else if (layer > 0) zeroGroup(m, name, k % units[layer - 1]!, per[layer]!);
          }
          const x = input([2, 2, withPad ? 8 : 8, 8], seed + 1);
          const y = run(m, x);
          let c;
          try {
            c = compactModel(m);
          } catch (e) {
            // Every path through a layer dead: refused by name, nothing to compare.
            expect(String(e)).toMatch(/every path through/);
            return;
          }
          expect(relErr(y, run(c.model, x))).toBeLessThan(1e-5);
          for (const l of c.layers) expect(l.after[0]).toBeLessThanOrEqual(l.before[0]!);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("after an ADMM filter + column hard prune, the compacted LeNet-5 has the same outputs", () => {
    const m = lenet5({ generator: new Generator(8) });
    const pr = new AdmmPruner(m, {
      layers: {
        "conv1.weight": {
          constraint: {
            set: { kind: "filterColumn" },
            rows: { density: 0.5 },
            cols: { density: 0.8 },
          },
          rho: 1e-3,
        },
        "conv2.weight": {
          constraint: {
            set: { kind: "filterColumn" },
            rows: { density: 0.4 },
            cols: { density: 0.3 },
          },
          rho: 1e-3,
        },
      },
    });
    pr.hardPrune();
    const x = input([2, 1, 28, 28], 9);
    const y = run(m, x);
    const c = compactModel(m);
    expect(c.layers[0]!.after[0]).toBe(10);
    expect(c.layers[1]!.after[0]).toBe(20);
    expect(c.layers[2]!.after).toEqual([500, 20 * 16]);
    expect(c.weightsAfter).toBeLessThan(c.weightsBefore);
    expect(relErr(y, run(c.model, x))).toBeLessThan(1e-5);
  });

  it("refuses models it cannot reason about, by layer name", () => {
    const m = Sequential.named([
      ["fc1", new Linear(4, 3)],
      ["bn", new BatchNorm1d(3)],
      ["fc2", new Linear(3, 2)],
    ]);
    expect(() => compactModel(m)).toThrow(/compactModel: layer "bn" is a BatchNorm1d/);
    const dead = Sequential.named([
      ["fc1", new Linear(2, 1, { generator: new Generator(1) })],
      ["fc2", new Linear(1, 2, { generator: new Generator(2) })],
    ]);
    w(dead, "fc2.weight").fill(0);
    expect(() => compactModel(dead)).toThrow(/every path through "fc1" is dead/);
  });
});
