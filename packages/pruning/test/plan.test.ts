// InferencePlan: the same bits as model.forward under noGrad (same products on the same pool,
// bias and ReLU rounded as autograd's ops do), on 1 and 2 threads alike, within float32
// roundoff of a float64 reference; buffers reused without stale values; clear errors.
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Generator, Tensor } from "@tessera/tensor";
import { Variable, noGrad, setMatrixPool } from "@tessera/autograd";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Conv2d, Flatten, Linear, ReLU, Sequential } from "@tessera/nn";
import type { Module } from "@tessera/nn";
import { BsrLinear, biasReluEpilogue, planInference } from "../src/index.ts";
import { randomValues } from "./helpers.ts";

// minParallelFlops 0: every product of these small models is split across both threads.
const pool2 = createPool({ threads: 2, minParallelFlops: 0 });
afterAll(() => pool2.close());

interface LayerSpec {
  /** 0: dense Linear; else a BsrLinear of R x C blocks. */
  sparse: boolean;
  R: number;
  C: number;
  density: number;
  bias: boolean;
  relu: boolean;
}

/** A Sequential of the specified layers (widths[i] -> widths[i+1]), optionally Flatten first. */
function buildModel(widths: number[], specs: LayerSpec[], seed: number, flatten: boolean): Module {
  const g = new Generator(seed);
  const layers: [string, Module][] = flatten ? [["flatten", new Flatten()]] : [];
  specs.forEach((s, i) => {
    const inF = widths[i]!;
    const outF = widths[i + 1]!;
    const lin = new Linear(inF, outF, { bias: s.bias, generator: g });
    if (!s.sparse) layers.push([`fc${i}`, lin]);
    else {
      const bc = Math.ceil(inF / s.C);
      const mask = new Uint8Array(Math.ceil(outF / s.R) * bc);
      for (let k = 0; k < mask.length; k++) mask[k] = g.nextFloat() < s.density ? 1 : 0;
      layers.push([
        `fc${i}`,
        BsrLinear.fromDense(
          lin.weight.data.data as Float32Array,
          outF,
          inF,
          [s.R, s.C],
          mask,
          s.bias ? (lin.bias!.data.data as Float32Array) : null,
        ),
      ]);
    }
    if (s.relu) layers.push([`relu${i}`, new ReLU()]);
  });
  return Sequential.named(layers);
}

/** The model's output through its modules (noGrad), products on `pool`. */
function moduleForward(model: Module, x: Tensor, pool: MatrixPool | undefined): Float32Array {
  setMatrixPool(pool);
  try {
    return noGrad(() => model.forward(new Variable(x)).data.contiguous().data as Float32Array);
  } finally {
    setMatrixPool(undefined);
  }
}

/** Float64 reference of the whole model: plain loops over the dense weights. */
function reference(model: Module, x: Float32Array, batch: number): Float64Array {
  let a = Float64Array.from(x);
  for (const [, m] of model.namedModules()) {
    if (m instanceof ReLU) a = a.map((v) => Math.max(v, 0));
    if (!(m instanceof Linear) && !(m instanceof BsrLinear)) continue;
    const w = m instanceof Linear ? (m.weight.data.data as Float32Array) : m.toDenseWeight();
    const b = m.bias === null ? null : (m.bias.data.data as Float32Array);
    const inF = m.inFeatures;
    const outF = m.outFeatures;
    const y = new Float64Array(batch * outF);
    for (let r = 0; r < batch; r++)
      for (let o = 0; o < outF; o++) {
        let s = b === null ? 0 : b[o]!;
        for (let i = 0; i < inF; i++) s += a[r * inF + i]! * w[o * inF + i]!;
        y[r * outF + o] = s;
      }
    a = y;
  }
  return a;
}

const bitsOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

const layerArb: fc.Arbitrary<LayerSpec> = fc.record({
  sparse: fc.boolean(),
  R: fc.integer({ min: 1, max: 5 }),
  C: fc.integer({ min: 1, max: 5 }),
  density: fc.constantFrom(0, 0.1, 0.3, 0.7, 1),
  bias: fc.boolean(),
  relu: fc.boolean(),
});

/** A case: widths, layer specs, batch, seed, and whether the input is [batch, 2, w/2] flattened. */
function caseArb(maxWidth: number) {
  return fc.integer({ min: 1, max: 4 }).chain((layers) =>
    fc.record({
      widths: fc.array(fc.integer({ min: 1, max: maxWidth }), {
        minLength: layers + 1,
        maxLength: layers + 1,
      }),
      specs: fc.array(layerArb, { minLength: layers, maxLength: layers }),
      batch: fc.integer({ min: 1, max: 19 }),
      seed: fc.integer({ min: 0, max: 100_000 }),
      flatten: fc.boolean(),
    }),
  );
}

function checkCase(c: {
  widths: number[];
  specs: LayerSpec[];
  batch: number;
  seed: number;
  flatten: boolean;
}): void {
  const widths = [...c.widths];
  // A flattened input [batch, 2, w] needs an even width.
  if (c.flatten) widths[0] = 2 * Math.ceil(widths[0]! / 2);
  const model = buildModel(widths, c.specs, c.seed, c.flatten);
  const xs = randomValues(c.batch * widths[0]!, c.seed + 1);
  const shape = c.flatten ? [c.batch, 2, widths[0]! / 2] : [c.batch, widths[0]!];
  const x = new Tensor(xs, shape);
  const serial = planInference(model, { batch: c.batch });
  const pooled = planInference(model, { batch: c.batch, pool: pool2 });
  const passes = planInference(model, { batch: c.batch, epilogue: "pass" });
  const y1 = serial.run(x).slice();
  const y2 = pooled.run(xs).slice();
  // The products' fused epilogue (sparse and dense) gives the separate pass's bits.
  expect(bitsOf(passes.run(xs))).toEqual(bitsOf(y1));
  expect(bitsOf(y1)).toEqual(bitsOf(moduleForward(model, x, undefined)));
  expect(bitsOf(y2)).toEqual(bitsOf(moduleForward(model, x, pool2)));
  expect(bitsOf(y2)).toEqual(bitsOf(y1));
  const ref = reference(model, xs, c.batch);
  expect(y1.length).toBe(ref.length);
  let scale = 0;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < ref.length; i++)
    expect(Math.abs(y1[i]! - ref[i]!)).toBeLessThanOrEqual(1e-5 * (1 + scale));
}

describe("planInference", () => {
  it("gives model.forward's bits on 1 and 2 threads (dense and BSR layers, ragged blocks, fused bias and ReLU)", () => {
    fc.assert(fc.property(caseArb(23), checkCase), { numRuns: 120 });
  });

  it("stays exact past the kernels' blocking sizes (widths past 256, batches past 16)", () => {
    fc.assert(
      fc.property(
        caseArb(300).map((c) => ({
          ...c,
          widths: c.widths.map((w) => 200 + w),
          batch: c.batch + 17,
        })),
        checkCase,
      ),
      { numRuns: 6 },
    );
  });

  it("reuses its buffers: the same output array every run, no stale values between inputs", () => {
    const spec = (sparse: boolean): LayerSpec => ({
      sparse,
      R: 3,
      C: 2,
      density: 0.5,
      bias: true,
      relu: true,
    });
    const model = buildModel([13, 11, 7], [spec(true), spec(false)], 3, false);
    const plan = planInference(model, { batch: 5 });
    const a = randomValues(5 * 13, 1);
    const b = randomValues(5 * 13, 2);
    const ya = plan.run(a);
    const first = ya.slice();
    const yb = plan.run(b);
    expect(yb).toBe(ya);
    expect(bitsOf(yb)).toEqual(bitsOf(moduleForward(model, new Tensor(b, [5, 13]), undefined)));
    expect(bitsOf(plan.run(a))).toEqual(bitsOf(first));
    expect(plan.steps.map((s) => [s.kind, s.modules, s.relu, s.bias, s.epilogue])).toEqual([
      ["bsr", "fc0+relu0", true, true, "product"],
      ["dense", "fc1+relu1", true, true, "product"],
    ]);
  });

  it("chains runs of two or more BsrLinear layers (fused plans only), with the per-layer bits", () => {
    const spec = (sparse: boolean, relu: boolean): LayerSpec => ({
      sparse,
      R: 4,
      C: 3,
      density: 0.6,
      bias: true,
      relu,
    });
    const model = buildModel(
      [40, 30, 20, 12, 8, 5],
      [spec(true, true), spec(true, false), spec(false, true), spec(true, true), spec(true, false)],
      8,
      false,
    );
    const fused = planInference(model, { batch: 24, pool: pool2 });
    expect(fused.steps.map((s) => s.chained)).toEqual([true, true, false, true, true]);
    const passes = planInference(model, { batch: 24, pool: pool2, epilogue: "pass" });
    expect(passes.steps.map((s) => s.chained)).toEqual([false, false, false, false, false]);
    const xs = randomValues(24 * 40, 4);
    const x = new Tensor(xs, [24, 40]);
    const y = fused.run(xs).slice();
    expect(bitsOf(y)).toEqual(bitsOf(passes.run(xs)));
    expect(bitsOf(y)).toEqual(bitsOf(moduleForward(model, x, pool2)));
    expect(bitsOf(fused.run(xs))).toEqual(bitsOf(y));
  });

  it("sees weights changed in place (as an optimizer changes them)", () => {
    const model = buildModel(
      [6, 4],
      [{ sparse: true, R: 2, C: 2, density: 1, bias: false, relu: false }],
      5,
      false,
    );
    const plan = planInference(model, { batch: 2 });
    const x = randomValues(12, 9);
    const before = plan.run(x).slice();
    const layer = model.getSubmodule("fc0") as BsrLinear;
    (layer.data.data.data as Float32Array)[0]! += 1;
    expect(bitsOf(plan.run(x))).not.toEqual(bitsOf(before));
    expect(bitsOf(plan.run(x))).toEqual(
      bitsOf(moduleForward(model, new Tensor(x, [2, 6]), undefined)),
    );
  });

  it("runs a ReLU it cannot fuse (after another ReLU) in place", () => {
    const model = Sequential.named([
      ["fc", new Linear(3, 4, { generator: new Generator(1) })],
      ["r1", new ReLU()],
      ["r2", new ReLU()],
    ]);
    const plan = planInference(model, { batch: 3 });
    expect(plan.steps.map((s) => `${s.kind}:${s.modules}`)).toEqual(["dense:fc+r1", "relu:r2"]);
    const x = randomValues(9, 4);
    expect(bitsOf(plan.run(x))).toEqual(
      bitsOf(moduleForward(model, new Tensor(x, [3, 3]), undefined)),
    );
  });

  it("names what it cannot plan or run", () => {
    const g = new Generator(2);
    expect(() =>
      planInference(Sequential.named([["conv1", new Conv2d(1, 2, 3, { generator: g })]]), {
        batch: 1,
      }),
    ).toThrow(/planInference: cannot plan module "conv1" \(Conv2d\)/);
    const lin = new Linear(4, 3, { generator: g });
    expect(() => planInference(Sequential.named([["fc", lin]]), { batch: 0 })).toThrow(
      /planInference: options.batch must be a positive integer, got 0/,
    );
    expect(() =>
      planInference(
        Sequential.named([
          ["a", new Linear(4, 3, { generator: g })],
          ["b", new Linear(5, 2, { generator: g })],
        ]),
        { batch: 1 },
      ),
    ).toThrow(/"b" takes 5 features but the layer before gives 3/);
    expect(() => planInference(Sequential.named([["r", new ReLU()]]), { batch: 1 })).toThrow(
      /ReLU "r" comes before any Linear/,
    );
    expect(() => planInference(Sequential.named([["f", new Flatten()]]), { batch: 1 })).toThrow(
      /no Linear or BsrLinear layer/,
    );
    expect(() =>
      planInference(Sequential.named([["fc", lin]]), { batch: 1, epilogue: "kernel" as never }),
    ).toThrow(/options.epilogue must be "fused" or "pass", got "kernel"/);
    const plan = planInference(Sequential.named([["fc", lin]]), { batch: 2 });
    expect(() => plan.run(new Float32Array(7))).toThrow(
      /InferencePlan.run: x has 7 values, expected batch x inFeatures = 2 x 4 = 8/,
    );
    expect(() => plan.run(new Tensor(new Float32Array(8), [2, 2, 2]))).toThrow(
      /x has shape \[2,2,2\], expected \[2,4\]/,
    );
  });
});

describe("biasReluEpilogue", () => {
  const relu = (v: number) => (v > 0 ? v : v === v ? 0 : v);
  it("is relu(fround(y + b)) elementwise, including -0, infinities, NaN and float32 overflow", () => {
    const special = [0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38, Infinity, -Infinity, NaN, 1.5, -2];
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.float(), fc.constantFrom(...special)), { minLength: 6, maxLength: 6 }),
        fc.array(fc.oneof(fc.float(), fc.constantFrom(...special)), { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        fc.boolean(),
        (ys, bs, withBias, withRelu) => {
          const y = Float32Array.from(ys);
          const b = Float32Array.from(bs);
          // From the float32 inputs (Float32Array.from rounds the special values).
          const want = Float32Array.from(y, (v, i) => {
            const s = Math.fround(withBias ? v + b[i % 3]! : v);
            return withRelu ? relu(s) : s;
          });
          biasReluEpilogue(y, withBias ? b : null, 2, 3, withRelu);
          // Object.is: +0 and -0 differ, NaN equals NaN.
          for (let i = 0; i < 6; i++) expect(Object.is(y[i], want[i])).toBe(true);
        },
      ),
    );
  });
});
