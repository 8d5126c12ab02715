// BsrLinear, toBsr / toDense and storageBytes: a converted model computes what the masked
// dense model computes (outputs, gradients, optimizer steps) and never revives a pruned block;
// toDense(toBsr(m)) gives back the masked dense weights exactly; storage against the formulas.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { Variable, softmaxCrossEntropy } from "@tessera/autograd";
import { BsrMatrix } from "@tessera/matrix";
import { Adam, AdamW, Conv2d, Linear, ReLU, SGD, Sequential, lenet300100 } from "@tessera/nn";
import type { Module, Optimizer } from "@tessera/nn";
import { BsrLinear, PruningState, storageBytes, toBsr, toDense } from "../src/index.ts";
import type { GroupKind, PrunedEntry, PrunedSource } from "../src/index.ts";

/** A PrunedSource over fixed entries (what a PruningState hands toBsr). */
function sourceOf(entries: PrunedEntry[]): PrunedSource {
  return { entries: () => entries };
}

/** A 0/1 element mask of [rows, cols] that is constant over R x C blocks (1x1 for element). */
function maskFor(
  rows: number,
  cols: number,
  kind: GroupKind,
  density: number,
  g: T.Generator,
): Float32Array {
  const [R, C] = kind.kind === "block" ? [kind.rows, kind.cols] : [1, 1];
  const bc = Math.ceil(cols / C);
  const keep = Array.from({ length: Math.ceil(rows / R) * bc }, () =>
    g.nextFloat() < density ? 1 : 0,
  );
  const m = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++)
      m[i * cols + j] = keep[Math.floor(i / R) * bc + Math.floor(j / C)]!;
  return m;
}

function mlp(sizes: readonly number[], seed: number, bias: boolean): Sequential {
  const g = new T.Generator(seed);
  const layers: [string, Module][] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    if (i > 0) layers.push([`relu${i}`, new ReLU()]);
    layers.push([`fc${i + 1}`, new Linear(sizes[i]!, sizes[i + 1]!, { bias, generator: g })]);
  }
  return Sequential.named(layers);
}

/** Builds the masked dense model and its entries: weights multiplied by their masks. */
function maskedModel(
  sizes: readonly number[],
  seed: number,
  bias: boolean,
  kinds: GroupKind[],
  density: number,
): { model: Sequential; entries: PrunedEntry[] } {
  const model = mlp(sizes, seed, bias);
  const g = new T.Generator(seed + 7);
  const entries = kinds.map((kind, i) => {
    const w = model.getParameter(`fc${i + 1}.weight`);
    const mask = maskFor(w.shape[0]!, w.shape[1]!, kind, density, g);
    const d = w.data.data as Float32Array;
    for (let k = 0; k < d.length; k++) d[k] = d[k]! * mask[k]!;
    return { name: `fc${i + 1}.weight`, kind, mask };
  });
  return { model, entries };
}

/** The BSR layer's data gradient scattered to the dense [out, in] layout. */
function denseGrad(layer: BsrLinear): Float32Array {
  const w = layer.weight;
  return BsrMatrix.fromArrays({
    rows: w.rows,
    cols: w.cols,
    blockShape: w.blockShape,
    indptr: w.indptr,
    indices: w.indices,
    data: layer.data.grad!.data as Float32Array,
  }).toDense();
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++)
    if (!(Math.abs(a[i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)))) return false;
  return true;
}

const kindArb: fc.Arbitrary<GroupKind> = fc.oneof(
  fc.constant({ kind: "element" } as const),
  fc
    .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }))
    .map(([rows, cols]) => ({ kind: "block", rows, cols }) as const),
);

const modelArb = fc.record({
  sizes: fc.array(fc.integer({ min: 1, max: 23 }), { minLength: 3, maxLength: 4 }),
  seed: fc.integer({ min: 0, max: 100_000 }),
  bias: fc.boolean(),
  density: fc.constantFrom(0, 0.05, 0.2, 0.5, 0.8, 1),
  kindSeed: fc.array(kindArb, { minLength: 3, maxLength: 3 }),
  batch: fc.integer({ min: 1, max: 9 }),
  optim: fc.constantFrom("sgd", "adam", "adamw"),
});

function optimizerFor(name: string, model: Module): Optimizer {
  if (name === "sgd")
    return new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 });
  if (name === "adam") return new Adam(model.parameters(), { lr: 1e-2 });
  return new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 0.01 });
}

describe("toBsr", () => {
  it("gives the masked dense model's outputs, gradients and training steps; pruned blocks stay 0", () => {
    fc.assert(
      fc.property(modelArb, ({ sizes, seed, bias, density, kindSeed, batch, optim }) => {
        const kinds = kindSeed.slice(0, sizes.length - 1);
        const ref = maskedModel(sizes, seed, bias, kinds, density);
        const conv = maskedModel(sizes, seed, bias, kinds, density);
        const report = toBsr(conv.model, sourceOf(conv.entries));
        expect(report.map((r) => r.name)).toEqual(kinds.map((_, i) => `fc${i + 1}`));
        const dense = ref.model;
        const sparse = conv.model;
        const optD = optimizerFor(optim, dense);
        const optS = optimizerFor(optim, sparse);
        ref.entries.forEach((e) => optD.setMask(dense.getParameter(e.name), e.mask));
        const g = new T.Generator(seed + 3);
        const classes = sizes[sizes.length - 1]!;
        for (let step = 0; step < 3; step++) {
          const x = T.randn([batch, sizes[0]!], g);
          const labels = Int32Array.from({ length: batch }, () =>
            Math.floor(g.nextFloat() * classes),
          );
          const yd = dense.forward(new Variable(x));
          const ys = sparse.forward(new Variable(x));
          expect(close(ys.data.data, yd.data.data, 1e-4)).toBe(true);
          optD.zeroGrad();
          optS.zeroGrad();
          softmaxCrossEntropy(yd, labels).backward();
          softmaxCrossEntropy(ys, labels).backward();
          kinds.forEach((_, i) => {
            const layer = sparse.getSubmodule(`fc${i + 1}`) as BsrLinear;
            const lin = dense.getSubmodule(`fc${i + 1}`) as Linear;
            const mask = ref.entries[i]!.mask;
            const gd =
              (lin.weight.grad?.data as Float32Array | undefined) ?? new Float32Array(mask.length);
            const masked = gd.map((v, k) => v * mask[k]!);
            if (layer.data.grad !== null) expect(close(denseGrad(layer), masked, 1e-4)).toBe(true);
            if (bias && lin.bias!.grad !== null)
              expect(close(layer.bias!.grad!.data, lin.bias!.grad.data, 1e-4)).toBe(true);
          });
          optD.step();
          optS.step();
          kinds.forEach((_, i) => {
            const layer = sparse.getSubmodule(`fc${i + 1}`) as BsrLinear;
            const lin = dense.getSubmodule(`fc${i + 1}`) as Linear;
            const w = layer.toDenseWeight();
            const mask = ref.entries[i]!.mask;
            expect(close(w, lin.weight.data.data, 1e-3)).toBe(true);
            // Never revived: outside the mask the BSR weight is exactly 0 (and so is the dense one).
            for (let k = 0; k < w.length; k++) if (mask[k] === 0) expect(w[k]).toBe(0);
          });
        }
      }),
      { numRuns: 40 },
    );
  });

  it("converts LeNet-300-100 pruned by a PruningState (ragged 4x4 blocks of fc1, element fc2)", () => {
    const model = lenet300100({ generator: new T.Generator(4) });
    const state = new PruningState(model, {
      "fc1.weight": { kind: "block", rows: 4, cols: 4 },
      "fc2.weight": { kind: "element" },
      "fc3.weight": { kind: "row" },
    });
    state.pruneFraction(0.8);
    state.apply();
    const x = new Variable(T.rand([6, 784], new T.Generator(5)));
    const before = model.forward(x).data;
    const report = toBsr(model, state);
    expect(report.map((r) => r.name)).toEqual(["fc1", "fc2"]); // row kind stays dense
    // Element kind: one 1x1 block per kept weight.
    expect(report[1]!.nnzBlocks).toBe(Math.round(state.density("fc2.weight") * 300 * 100));
    expect(report[1]!.nnzBlocks).toBe(report[1]!.bytes.nnz);
    expect(model.getSubmodule("fc3")).toBeInstanceOf(Linear);
    expect(close(model.forward(x).data.data, before.data, 1e-5)).toBe(true);
  });

  it("toDense(toBsr(m)) gives back the masked dense weights and biases exactly", () => {
    fc.assert(
      fc.property(modelArb, ({ sizes, seed, bias, density, kindSeed }) => {
        const kinds = kindSeed.slice(0, sizes.length - 1);
        const ref = maskedModel(sizes, seed, bias, kinds, density);
        const conv = maskedModel(sizes, seed, bias, kinds, density);
        toBsr(conv.model, sourceOf(conv.entries));
        expect(conv.model.namedModules().filter(([, m]) => m instanceof BsrLinear).length).toBe(
          kinds.length,
        );
        expect(toDense(conv.model)).toEqual(kinds.map((_, i) => `fc${i + 1}`));
        const a = ref.model.stateDict();
        const b = conv.model.stateDict();
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const [k, t] of a) expect(T.equals(b.get(k)!, t)).toBe(true);
        const x = T.randn([3, sizes[0]!], new T.Generator(seed));
        expect(
          T.equals(
            ref.model.forward(new Variable(x)).data,
            conv.model.forward(new Variable(x)).data,
          ),
        ).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it("keeps exactly the blocks whose mask is nonzero, with the masked values, and reports them", () => {
    const model = mlp([10, 7, 3], 1, true);
    const w1 = model.getParameter("fc1.weight").data.data as Float32Array;
    const before = w1.slice();
    const g = new T.Generator(2);
    const kind = { kind: "block", rows: 4, cols: 3 } as const; // 7 = 4 + 3, 10 = 3·3 + 1: ragged
    const mask = maskFor(7, 10, kind, 0.5, g);
    const report = toBsr(model, sourceOf([{ name: "fc1.weight", kind, mask }]));
    const layer = model.getSubmodule("fc1") as BsrLinear;
    expect(layer).toBeInstanceOf(BsrLinear);
    expect(model.getSubmodule("fc2")).toBeInstanceOf(Linear);
    // + 0 turns the -0 of a pruned negative weight into the 0 an unstored block reads as.
    const expected = before.map((v, k) => v * mask[k]! + 0);
    expect(Array.from(layer.toDenseWeight())).toEqual(Array.from(expected));
    let blocks = 0;
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 4; j++) if (mask[i * 4 * 10 + j * 3] === 1) blocks++;
    expect(report).toEqual([
      {
        name: "fc1",
        blockShape: [4, 3],
        nnzBlocks: blocks,
        density: blocks / 8,
        bytes: storageBytes(mask, [7, 10], [4, 3]),
      },
    ]);
    // The state dict holds scipy's arrays under the layer's name.
    const sd = model.stateDict();
    expect([...sd.keys()]).toEqual([
      "fc1.data",
      "fc1.bias",
      "fc2.weight",
      "fc2.bias",
      "fc1.indices",
      "fc1.indptr",
    ]);
    expect(sd.get("fc1.data")!.shape).toEqual([blocks, 4, 3]);
    expect(sd.get("fc1.indices")!.dtype).toBe("int32");
    expect(Array.from(sd.get("fc1.indptr")!.data)).toEqual(Array.from(layer.weight.indptr));
  });

  it("leaves non-block kinds, non-Linear modules and unlisted layers alone; `only` restricts", () => {
    const model = Sequential.named([
      ["conv", new Conv2d(1, 2, 3)],
      ["fc1", new Linear(4, 3)],
      ["fc2", new Linear(3, 2)],
    ]);
    const all = (rows: number, cols: number) => new Float32Array(rows * cols).fill(1);
    const entries: PrunedEntry[] = [
      { name: "conv.weight", kind: { kind: "element" }, mask: all(2, 9) },
      { name: "fc1.weight", kind: { kind: "row" }, mask: all(3, 4) },
      { name: "fc2.weight", kind: { kind: "element" }, mask: all(2, 3) },
    ];
    expect(toBsr(model, sourceOf(entries), { only: ["fc1"] })).toEqual([]);
    expect(toBsr(model, sourceOf(entries)).map((r) => r.name)).toEqual(["fc2"]);
    expect(model.getSubmodule("conv")).toBeInstanceOf(Conv2d);
    expect(model.getSubmodule("fc1")).toBeInstanceOf(Linear);
    expect(model.getSubmodule("fc2")).toBeInstanceOf(BsrLinear);
  });

  it("refuses a block mask that is not constant over a block, a wrong-sized mask and unknown names", () => {
    const model = mlp([5, 4], 0, true);
    const mask = new Float32Array(20).fill(1);
    mask[6] = 0; // element (1, 1) inside block (0, 0) of 2x2 blocks
    expect(() =>
      toBsr(
        model,
        sourceOf([{ name: "fc1.weight", kind: { kind: "block", rows: 2, cols: 2 }, mask }]),
      ),
    ).toThrow(
      'toBsr: mask of "fc1.weight" (2x2 blocks) is not constant over block (0, 0): element (1, 1) is pruned but others are kept',
    );
    expect(() =>
      toBsr(
        model,
        sourceOf([{ name: "fc1.weight", kind: { kind: "element" }, mask: new Float32Array(3) }]),
      ),
    ).toThrow('toBsr: mask of "fc1.weight" has 3 elements, expected 20 for weight [4,5]');
    expect(() =>
      toBsr(model, sourceOf([{ name: "fc9.weight", kind: { kind: "element" }, mask }])),
    ).toThrow('toBsr: the source lists "fc9.weight" but the model has no module "fc9"');
    expect(model.getSubmodule("fc1")).toBeInstanceOf(Linear);
  });
});

describe("BsrLinear", () => {
  it("follows a state dict that loads a different pattern of the same size", () => {
    // Two layers with one stored 2x2 block each, at different places.
    const a = BsrLinear.fromDense(
      Float32Array.from([1, 2, 0, 0, 3, 4, 0, 0]),
      2,
      4,
      [2, 2],
      new Uint8Array([1, 0]),
    );
    const b = BsrLinear.fromDense(
      Float32Array.from([0, 0, 5, 6, 0, 0, 7, 8]),
      2,
      4,
      [2, 2],
      new Uint8Array([0, 1]),
    );
    a.loadStateDict(b.stateDict());
    expect(Array.from(a.toDenseWeight())).toEqual([0, 0, 5, 6, 0, 0, 7, 8]);
    const y = a.forward(new Variable(T.fromArray([[1, 1, 1, 1]])));
    expect(Array.from(y.data.data)).toEqual([11, 15]);
  });

  it("runs with a following ReLU as one op in a Sequential: the numbers of the two layers", () => {
    const g = new T.Generator(4);
    const mask = new Uint8Array(20).map((_, i) => (i % 3 === 0 ? 0 : 1));
    const make = () =>
      new Sequential(
        BsrLinear.fromDense(
          T.randn([10, 8], new T.Generator(5)).data as Float32Array,
          10,
          8,
          [2, 2],
          mask,
          T.randn([10], new T.Generator(6)).data as Float32Array,
        ),
        new ReLU(),
        new Linear(10, 3, { generator: new T.Generator(7) }),
      );
    const x = T.randn([6, 8], g);
    const r = T.randn([6, 3], g);
    const run = (fused: boolean) => {
      const net = make();
      const calls: string[] = [];
      const bsr = net.layers[0] as BsrLinear;
      const orig = bsr.forwardRelu.bind(bsr);
      bsr.forwardRelu = (v: Variable) => (calls.push("forwardRelu"), orig(v));
      let y = new Variable(x);
      if (fused) y = net.forward(y);
      else for (const m of net.layers) y = m.forward(y);
      y.mul(new Variable(r)).sum().backward();
      return {
        calls,
        out: [y.data, ...net.parameters().map((p) => p.grad!)].map((t) => Array.from(t.data)),
      };
    };
    const fused = run(true);
    expect(fused.calls).toEqual(["forwardRelu"]);
    expect(fused.out).toEqual(run(false).out);
  });

  it("explains bad inputs", () => {
    const layer = BsrLinear.fromDense(new Float32Array(6), 2, 3, [1, 1], new Uint8Array(6).fill(1));
    expect(() => layer.forward(new Variable(T.zeros([4, 2])))).toThrow(
      "BsrLinear.forward: expected input [N, 3], got [4,2]",
    );
    expect(() => layer.forwardRelu(new Variable(T.zeros([4, 2])))).toThrow(
      "BsrLinear.forwardRelu: expected input [N, 3], got [4,2]",
    );
    const m = BsrMatrix.fromDense(new Float32Array(6), 2, 3, [1, 1]);
    expect(() => new BsrLinear(m, new Float32Array(3))).toThrow(
      "BsrLinear: bias has 3 values, expected outFeatures = 2",
    );
  });
});

describe("storageBytes", () => {
  it("gives dense, CSR and BSR bytes by the layout formulas", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 1000 }),
        (rows, cols, R, C, density, seed) => {
          const mask = maskFor(rows, cols, { kind: "element" }, density, new T.Generator(seed));
          const s = storageBytes(mask, [rows, cols], [R, C]);
          let nnz = 0;
          const blocks = new Set<number>();
          for (let i = 0; i < rows; i++)
            for (let j = 0; j < cols; j++)
              if (mask[i * cols + j] !== 0) {
                nnz++;
                blocks.add(Math.floor(i / R) * 1000 + Math.floor(j / C));
              }
          const br = Math.ceil(rows / R);
          expect(s).toEqual({
            dense: rows * cols * 4,
            csr: (rows + 1) * 4 + nnz * 8,
            bsr: (br + 1) * 4 + blocks.size * (4 + R * C * 4),
            nnz,
            nnzBlocks: blocks.size,
          });
        },
      ),
      { numRuns: 100 },
    );
  });

  it("reads a conv weight [F, C, k, k] as [F, C·k·k] and checks the mask length", () => {
    const s = storageBytes(new Float32Array(2 * 3 * 3 * 3).fill(1), [2, 3, 3, 3], [1, 27]);
    expect(s.bsr).toBe(3 * 4 + 2 * 4 + 2 * 27 * 4);
    expect(() => storageBytes(new Float32Array(5), [2, 3])).toThrow(
      "storageBytes: mask must be a Float32Array of 6 elements for shape [2,3], got 5",
    );
  });
});
