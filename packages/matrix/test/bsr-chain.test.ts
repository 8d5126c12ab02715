// BsrChain: consecutive BSR layers' forward (bias, ReLU) as one pooled job split by batch rows,
// each chunk through every layer. Checked bit for bit against the layers run one by one through
// rmatmulTranspose (serially), and within float32 roundoff of a float64 loop, over chains of 1-4
// layers with ragged blocks, densities 0..1, batches past the kernel's 4-column tile, serial
// and on pools of 2 and 3 threads, on both kernel paths; the pooled route is shown to run (one
// chain job, no per-layer job), weights changed in place and new patterns are seen, and bad
// arguments get errors naming them.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BsrChain, BsrMatrix } from "../src/index.ts";
import type { BsrChainLayer, KernelPath, MatrixPool } from "../src/index.ts";
import { KIND_SPMM, KIND_SPMM_CHAIN } from "../src/jobs.ts";
import { asmTestPools, bits, maskedDense, randomArray, wasmTestPool } from "./helpers.ts";

const pools = asmTestPools();
const wasmPool = wasmTestPool();

interface LayerCase {
  R: number;
  C: number;
  density: number;
  bias: boolean;
  relu: boolean;
}

function buildLayers(widths: number[], specs: LayerCase[], seed: number): BsrChainLayer[] {
  return specs.map((s, i) => {
    const rows = widths[i + 1]!;
    const cols = widths[i]!;
    const { dense, mask } = maskedDense({
      rows,
      cols,
      R: s.R,
      C: s.C,
      n: 1,
      seed: seed + i,
      density: s.density,
    });
    return {
      weight: BsrMatrix.fromDense(dense, rows, cols, [s.R, s.C], { mask }),
      bias: s.bias ? (randomArray(rows, seed + 100 + i) as Float32Array) : null,
      relu: s.relu,
    };
  });
}

/** The layers one by one through rmatmulTranspose, serially, outputs concatenated. */
function layerByLayer(layers: BsrChainLayer[], x: Float32Array, n: number): Float32Array {
  const outs: Float32Array[] = [];
  let input = x;
  for (const l of layers) {
    input = l.weight.rmatmulTranspose(input, n, { bias: l.bias, relu: l.relu, kernels: "asm" });
    outs.push(input);
  }
  const all = new Float32Array(outs.reduce((t, o) => t + o.length, 0));
  let at = 0;
  for (const o of outs) {
    all.set(o, at);
    at += o.length;
  }
  return all;
}

/** Float64 loops over the dense weights: the last layer's output. */
function reference(layers: BsrChainLayer[], x: Float32Array, n: number): Float64Array {
  let a = Float64Array.from(x);
  for (const l of layers) {
    const w = l.weight.toDense();
    const { rows, cols } = l.weight;
    const y = new Float64Array(n * rows);
    for (let r = 0; r < n; r++)
      for (let o = 0; o < rows; o++) {
        let s = l.bias ? l.bias[o]! : 0;
        for (let i = 0; i < cols; i++) s += a[r * cols + i]! * w[o * cols + i]!;
        y[r * rows + o] = l.relu ? Math.max(s, 0) : s;
      }
    a = y;
  }
  return a;
}

const layerArb: fc.Arbitrary<LayerCase> = fc.record({
  R: fc.integer({ min: 1, max: 6 }),
  C: fc.integer({ min: 1, max: 6 }),
  density: fc.oneof(fc.constantFrom(0, 1), fc.double({ min: 0, max: 1, noNaN: true })),
  bias: fc.boolean(),
  relu: fc.boolean(),
});

function chainArb(maxWidth: number, batch: fc.Arbitrary<number>) {
  return fc.integer({ min: 1, max: 4 }).chain((layers) =>
    fc.record({
      widths: fc.array(fc.integer({ min: 1, max: maxWidth }), {
        minLength: layers + 1,
        maxLength: layers + 1,
      }),
      specs: fc.array(layerArb, { minLength: layers, maxLength: layers }),
      n: batch,
      seed: fc.integer({ min: 0, max: 1_000_000 }),
      threads: fc.constantFrom(1, 2, 3),
      path: fc.constantFrom<KernelPath>("asm", "wasm"),
    }),
  );
}

function poolFor(threads: number, path: KernelPath): MatrixPool | undefined {
  if (threads === 1) return undefined;
  if (path === "wasm") return wasmPool();
  return threads === 2 ? pools.pool2() : pools.pool3();
}

function checkChain(c: {
  widths: number[];
  specs: LayerCase[];
  n: number;
  seed: number;
  threads: number;
  path: KernelPath;
}): void {
  const layers = buildLayers(c.widths, c.specs, c.seed);
  const x = randomArray(c.n * c.widths[0]!, c.seed + 7) as Float32Array;
  const chain = new BsrChain(c.n);
  const out = new Float32Array(chain.outLength(layers));
  const pool = poolFor(c.threads, c.path);
  chain.forward(layers, x, out, { pool, kernels: c.path });
  const expected = layerByLayer(layers, x, c.n);
  if (c.path === "asm") expect(bits(out)).toEqual(bits(expected));
  // The wasm path sums in float32 in another order: within roundoff of the float64 reference.
  const ref = reference(layers, x, c.n);
  const last = out.subarray(out.length - ref.length);
  let scale = 1;
  for (const v of ref) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < ref.length; i++)
    expect(Math.abs(last[i]! - ref[i]!)).toBeLessThanOrEqual(2e-5 * scale * c.widths.length);
}

describe("BsrChain", () => {
  it("gives the layers' own bits (asm.js) and float32 roundoff of float64 (both paths), 1-3 threads", () => {
    const batch = fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(16, 17, 24, 33));
    fc.assert(fc.property(chainArb(30, batch), checkChain), { numRuns: 150 });
  });

  it("stays exact on wide layers and long batches (an MLP's shapes, 2 threads)", () => {
    const batch = fc.integer({ min: 60, max: 130 });
    fc.assert(
      fc.property(
        chainArb(120, batch).map((c) => ({
          ...c,
          widths: c.widths.map((w) => 150 + w),
          threads: 2,
          path: "asm" as const,
        })),
        checkChain,
      ),
      { numRuns: 4 },
    );
  });

  it("runs one chain job on a pool instead of a job per layer", () => {
    const pool = pools.pool2();
    const layers = buildLayers(
      [30, 20, 10],
      [
        { R: 4, C: 4, density: 0.5, bias: true, relu: true },
        { R: 2, C: 3, density: 0.7, bias: true, relu: false },
      ],
      11,
    );
    const chain = new BsrChain(32);
    const x = randomArray(32 * 30, 5) as Float32Array;
    const out = new Float32Array(chain.outLength(layers));
    const before = [KIND_SPMM, KIND_SPMM_CHAIN].map((k) => pool.jobsByKind.get(k) ?? 0);
    chain.forward(layers, x, out, { pool });
    const after = [KIND_SPMM, KIND_SPMM_CHAIN].map((k) => pool.jobsByKind.get(k) ?? 0);
    expect(after[0]! - before[0]!).toBe(0);
    expect(after[1]! - before[1]!).toBe(1);
    expect(bits(out)).toEqual(bits(layerByLayer(layers, x, 32)));
    // Too few rows to split (fewer than 8 per thread): the layers run one by one, same bits.
    const small = new BsrChain(9);
    const xs = x.subarray(0, 9 * 30);
    const outSmall = new Float32Array(small.outLength(layers));
    small.forward(layers, xs, outSmall, { pool });
    expect(pool.jobsByKind.get(KIND_SPMM_CHAIN)).toBe(after[1]);
    expect(bits(outSmall)).toEqual(bits(layerByLayer(layers, xs, 9)));
  });

  it("sees weights and biases changed in place, and new weight objects", () => {
    const pool = pools.pool2();
    const specs: LayerCase[] = [
      { R: 3, C: 2, density: 0.6, bias: true, relu: true },
      { R: 2, C: 2, density: 0.8, bias: true, relu: false },
    ];
    const layers = buildLayers([17, 13, 5], specs, 21);
    const chain = new BsrChain(20);
    const x = randomArray(20 * 17, 9) as Float32Array;
    const out = new Float32Array(chain.outLength(layers));
    chain.forward(layers, x, out, { pool });
    layers[0]!.weight.data.forEach((v, i, d) => (d[i] = -0.5 * v));
    layers[1]!.bias![2] = 3;
    chain.forward(layers, x, out, { pool });
    expect(bits(out)).toEqual(bits(layerByLayer(layers, x, 20)));
    // Another pattern for layer 1 (a new BsrMatrix): the chain's index arrays follow it.
    const other = buildLayers([13, 5], [{ ...specs[1]!, density: 0.3 }], 77)[0]!;
    const swapped = [layers[0]!, { ...layers[1]!, weight: other.weight }];
    chain.forward(swapped, x, out, { pool });
    expect(bits(out)).toEqual(bits(layerByLayer(swapped, x, 20)));
  });

  it("rejects bad layers, inputs and outputs with errors naming them", () => {
    const layers = buildLayers(
      [6, 4, 3],
      [
        { R: 2, C: 2, density: 1, bias: true, relu: true },
        { R: 1, C: 1, density: 1, bias: false, relu: false },
      ],
      1,
    );
    const chain = new BsrChain(2);
    const x = new Float32Array(2 * 6);
    const out = new Float32Array(chain.outLength(layers));
    expect(() => new BsrChain(0)).toThrow(/BsrChain: batch must be at least 1/);
    expect(() => chain.forward([], x, out)).toThrow(/layers must be a non-empty array/);
    expect(() => chain.forward([layers[1]!, layers[0]!], x, out)).toThrow(
      /layers\[1\]\.weight is \[4, 6\] but layers\[0\] gives 3 features/,
    );
    expect(() => chain.forward([layers[0]!, layers[0]!], x, out)).toThrow(
      /layers\[1\]\.weight is \[4, 6\] but layers\[0\] gives 4 features/,
    );
    expect(() =>
      chain.forward([{ ...layers[0]!, bias: new Float32Array(3) }, layers[1]!], x, out),
    ).toThrow(/layers\[0\]\.bias must be a Float32Array of 4 values/);
    expect(() => chain.forward(layers, new Float32Array(11), out)).toThrow(
      /x must be a Float32Array of batch x in = 2 x 6 = 12 values, got 11/,
    );
    expect(() => chain.forward(layers, x, new Float32Array(5))).toThrow(
      /out must be a Float32Array of 14 values \(batch 2 times 4 \+ 3 features\), got 5/,
    );
    const f64 = BsrMatrix.fromDense(new Float64Array(24), 4, 6, [2, 2]);
    expect(() => chain.forward([{ weight: f64 as never }, layers[1]!], x, out)).toThrow(
      /layers\[0\]\.weight must be a float32 BsrMatrix/,
    );
    expect(() => chain.forward([{ ...layers[0]!, relu: 1 as never }, layers[1]!], x, out)).toThrow(
      /layers\[0\]\.relu must be a boolean, got number/,
    );
  });
});
