// KepConv2d, toKep / fromKep: a converted CNN computes what the masked dense CNN computes
// (outputs, gradients, optimizer steps), never revives a pruned position, and converts back to
// the masked dense weights exactly.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, softmaxCrossEntropy } from "@tessera/autograd";
import { KepLayout } from "@tessera/matrix";
import { Adam, Conv2d, Flatten, Linear, ReLU, SGD, Sequential } from "@tessera/nn";
import type { Module, Optimizer } from "@tessera/nn";
import { KepConv2d, fromKep, toKep } from "../src/index.ts";
import type { PrunedEntry, PrunedSource } from "../src/index.ts";

function sourceOf(entries: PrunedEntry[]): PrunedSource {
  return { entries: () => entries };
}

interface Net {
  c1: number;
  c2: number;
  stride: number;
  bias: boolean;
  /** Kept per plane in conv1 and conv2 (-1: a random count per plane). */
  keep: [number, number];
  seed: number;
  batch: number;
  adam: boolean;
}

const netArb: fc.Arbitrary<Net> = fc.record({
  c1: fc.integer({ min: 1, max: 4 }),
  c2: fc.integer({ min: 1, max: 5 }),
  stride: fc.integer({ min: 1, max: 2 }),
  bias: fc.boolean(),
  keep: fc.tuple(fc.integer({ min: -1, max: 9 }), fc.integer({ min: -1, max: 9 })),
  seed: fc.integer({ min: 0, max: 100000 }),
  batch: fc.integer({ min: 1, max: 3 }),
  adam: fc.boolean(),
});

const SIDE = 6;

/** conv1 3x3 pad 1, ReLU, conv2 3x3 pad 1 (stride s), ReLU, flatten, fc -> 3 classes. */
function cnn(n: Net): Sequential {
  const g = new T.Generator(n.seed);
  const out = Math.floor((SIDE + 2 - 3) / n.stride) + 1;
  return Sequential.named([
    ["conv1", new Conv2d(1, n.c1, 3, { padding: 1, bias: n.bias, generator: g })],
    ["relu1", new ReLU()],
    [
      "conv2",
      new Conv2d(n.c1, n.c2, 3, { padding: 1, stride: n.stride, bias: n.bias, generator: g }),
    ],
    ["relu2", new ReLU()],
    ["flatten", new Flatten()],
    ["fc", new Linear(n.c2 * out * out, 3, { generator: g })],
  ]);
}

/** Top-`keep` |w| positions per plane (random counts when -1), applied to the weight. */
function kepMask(w: Float32Array, planes: number, keep: number, g: T.Generator): Float32Array {
  const mask = new Float32Array(w.length);
  for (let p = 0; p < planes; p++) {
    const n = keep >= 0 ? keep : Math.floor(g.nextFloat() * 10);
    const order = Array.from({ length: 9 }, (_, i) => i).sort(
      (a, b) => Math.abs(w[p * 9 + b]!) - Math.abs(w[p * 9 + a]!) || a - b,
    );
    for (let i = 0; i < n; i++) mask[p * 9 + order[i]!] = 1;
  }
  for (let i = 0; i < w.length; i++) if (mask[i] === 0) w[i] = 0;
  return mask;
}

/** The masked dense CNN and its kernelElement entries. */
function maskedCnn(n: Net): { model: Sequential; entries: PrunedEntry[] } {
  const model = cnn(n);
  const g = new T.Generator(n.seed + 1);
  const entries = (["conv1", "conv2"] as const).map((name, i) => {
    const conv = model.getSubmodule(name) as Conv2d;
    const w = conv.weight.data.data as Float32Array;
    const mask = kepMask(w, conv.outChannels * conv.inChannels, n.keep[i]!, g);
    return { name: `${name}.weight`, kind: { kind: "kernelElement" as const }, mask };
  });
  return { model, entries };
}

function near(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= tol * Math.max(1, Math.abs(want[i]!))))
      throw new Error(`element ${i}: got ${got[i]}, want ${want[i]} (|diff| ${d} > ${tol})`);
  }
}

function optimizerFor(adam: boolean, model: Module): Optimizer {
  return adam
    ? new Adam(model.parameters(), { lr: 1e-2 })
    : new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
}

describe("toKep", () => {
  it("gives the masked dense CNN's outputs, gradients and training steps; pruned positions stay 0", () => {
    fc.assert(
      fc.property(netArb, (n) => {
        const ref = maskedCnn(n);
        const conv = maskedCnn(n);
        const report = toKep(conv.model, sourceOf(conv.entries));
        expect(report.map((r) => r.name)).toEqual(["conv1", "conv2"]);
        expect(report[1]!.shape).toEqual([n.c2, n.c1, 3, 3]);
        expect(report[1]!.perPlane).toBe(n.keep[1] >= 0 ? n.keep[1] : report[1]!.perPlane);
        const dense = ref.model;
        const sparse = conv.model;
        expect(sparse.getSubmodule("conv2")).toBeInstanceOf(KepConv2d);
        const optD = optimizerFor(n.adam, dense);
        const optS = optimizerFor(n.adam, sparse);
        ref.entries.forEach((e) => optD.setMask(dense.getParameter(e.name), e.mask));
        const g = new T.Generator(n.seed + 3);
        for (let step = 0; step < 2; step++) {
          const x = T.randn([n.batch, 1, SIDE, SIDE], g);
          const labels = Int32Array.from({ length: n.batch }, () => Math.floor(g.nextFloat() * 3));
          const yd = dense.forward(new Variable(x));
          const ys = sparse.forward(new Variable(x));
          near(ys.data.data, yd.data.data, 1e-4);
          optD.zeroGrad();
          optS.zeroGrad();
          softmaxCrossEntropy(yd, labels).backward();
          softmaxCrossEntropy(ys, labels).backward();
          for (const name of ["conv1", "conv2"]) {
            const k = sparse.getSubmodule(name) as KepConv2d;
            const d = dense.getSubmodule(name) as Conv2d;
            near(k.values.grad!.data, k.layout.gather(d.weight.grad!.data as Float32Array), 1e-4);
            if (n.bias) near(k.bias!.grad!.data, d.bias!.grad!.data, 1e-4);
          }
          optD.step();
          optS.step();
          ref.entries.forEach((e, i) => {
            const k = sparse.getSubmodule(`conv${i + 1}`) as KepConv2d;
            const d = dense.getSubmodule(`conv${i + 1}`) as Conv2d;
            const w = k.toDenseWeight();
            near(w, d.weight.data.data, 1e-3);
            for (let j = 0; j < w.length; j++) if (e.mask[j] === 0) expect(w[j]).toBe(0);
          });
        }
      }),
      { numRuns: 30 },
    );
  });

  it("fromKep(toKep(m)) gives back the masked dense weights and biases exactly", () => {
    fc.assert(
      fc.property(netArb, (n) => {
        const ref = maskedCnn(n);
        const conv = maskedCnn(n);
        toKep(conv.model, sourceOf(conv.entries));
        expect(fromKep(conv.model)).toEqual(["conv1", "conv2"]);
        for (const name of ["conv1", "conv2"]) {
          const back = conv.model.getSubmodule(name) as Conv2d;
          const want = ref.model.getSubmodule(name) as Conv2d;
          expect(back).toBeInstanceOf(Conv2d);
          expect([back.stride, back.padding, back.kernelSize]).toEqual([
            want.stride,
            want.padding,
            3,
          ]);
          expect(Array.from(back.weight.data.data)).toEqual(Array.from(want.weight.data.data));
          expect(back.bias === null).toBe(!n.bias);
          if (n.bias)
            expect(Array.from(back.bias!.data.data)).toEqual(Array.from(want.bias!.data.data));
        }
        const x = new Variable(T.randn([2, 1, SIDE, SIDE], new T.Generator(n.seed)));
        expect(Array.from(conv.model.forward(x).data.data)).toEqual(
          Array.from(ref.model.forward(x).data.data),
        );
      }),
      { numRuns: 30 },
    );
  });

  it("converts only kernelElement entries of Conv2d weights unless asked, and reports storage", () => {
    const n: Net = {
      c1: 4,
      c2: 4,
      stride: 1,
      bias: true,
      keep: [3, 3],
      seed: 1,
      batch: 1,
      adam: false,
    };
    const { model, entries } = maskedCnn(n);
    const other = entries.map((e) => ({ ...e, kind: { kind: "element" as const } }));
    expect(toKep(model, sourceOf(other))).toEqual([]);
    const fcMask = new Float32Array((model.getSubmodule("fc") as Linear).weight.size).fill(1);
    const withFc = [
      ...other,
      { name: "fc.weight", kind: { kind: "kernelElement" as const }, mask: fcMask },
    ];
    const report = toKep(model, sourceOf(withFc), { anyKind: true, only: ["conv2", "fc"] });
    expect(report.map((r) => r.name)).toEqual(["conv2"]);
    expect(model.getSubmodule("conv1")).toBeInstanceOf(Conv2d);
    // 4x4 planes x 3 kept: 48 float32 values, 48 positions of 4 bits = 24 index bytes.
    expect(report[0]!.bytes).toEqual({ dense: 4 * 144, values: 4 * 48, index: 24 });
    expect(report[0]!.nnz).toBe(48);
    // A Map of masks converts whatever it lists.
    const viaMap = toKep(model, new Map([["conv1.weight", entries[0]!.mask]]));
    expect(viaMap.map((r) => r.name)).toEqual(["conv1"]);
    expect(() => toKep(model, new Map([["nope.weight", new Float32Array(1)]]))).toThrow(
      /toKep: the source lists "nope.weight" but the model has no module "nope"/,
    );
    const m2 = maskedCnn(n).model;
    expect(() => toKep(m2, new Map([["conv2.weight", new Float32Array(5)]]))).toThrow(
      /toKep: mask of "conv2.weight" has 5 elements, expected 144 for weight \[4,4,3,3\]/,
    );
  });
});

describe("KepConv2d", () => {
  it("carries its pattern in the state dict: loading other positions changes the convolution", () => {
    const maskA = new Float32Array(2 * 9);
    maskA[0] = 1;
    maskA[9 + 4] = 1;
    const maskB = new Float32Array(2 * 9);
    maskB[8] = 1;
    maskB[9 + 4] = 1;
    const w = Float32Array.from({ length: 18 }, (_, i) => i + 1);
    const a = KepConv2d.fromDense(w, maskA, [1, 2, 3, 3], Float32Array.of(0.5), { padding: 1 });
    const b = KepConv2d.fromDense(w, maskB, [1, 2, 3, 3], Float32Array.of(0.5), { padding: 1 });
    expect([...a.stateDict().keys()]).toEqual(["values", "bias", "ptr", "pos"]);
    const x = new Variable(T.randn([1, 2, 4, 4], new T.Generator(3)));
    a.loadStateDict(b.stateDict());
    expect(Array.from(a.layout.pos)).toEqual([8, 4]);
    expect(Array.from(a.forward(x).data.data)).toEqual(Array.from(b.forward(x).data.data));
  });

  it("rejects bad arguments, naming what was wrong", () => {
    const layout = KepLayout.fromMask(new Float32Array(18).fill(1), 1, 2, 3, 3);
    expect(() => new KepConv2d(layout, new Float32Array(5))).toThrow(
      /KepConv2d: values has 5 entries, expected the layout's 18 kept elements/,
    );
    expect(() => new KepConv2d(layout, new Float32Array(18), new Float32Array(2))).toThrow(
      /KepConv2d: bias has 2 values, expected outChannels = 1/,
    );
    expect(() => new KepConv2d(layout, new Float32Array(18), null, { stride: 0 })).toThrow(
      /KepConv2d: stride must be an integer >= 1, got 0/,
    );
    const rect = KepLayout.fromMask(new Float32Array(6).fill(1), 1, 1, 2, 3);
    expect(() => new KepConv2d(rect, new Float32Array(6))).toThrow(
      /kernels must be square, got 2x3/,
    );
    const k = new KepConv2d(layout, new Float32Array(18));
    expect(() => k.forward(new Variable(T.zeros([1, 3, 4, 4])))).toThrow(
      /KepConv2d.forward: expected input \[N, 2, H, W\], got \[1,3,4,4\]/,
    );
  });
});
