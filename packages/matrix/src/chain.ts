// The forward of consecutive BSR layers (a pruned MLP's Linear layers in BSR form) as one pooled
// job: y_l = relu_l?(y_{l-1}·W_lᵀ + b_l), y_{-1} = x, batch-major. Layer by layer, a pool splits
// each product by batch rows and waits for every row before the next layer starts; but row j
// of y_l needs only row j of y_{l-1}, so here each chunk of rows goes through every layer on the
// thread that took it. What that saves is the per-layer fixed cost: a barrier, the tail of a
// product whose last chunk runs on one thread, and the small layers' poor split (fc2 of a
// 10.8%-dense LeNet-300-100 ran 1.3x faster on two threads than on one, fc3 not pooled at all:
// docs/results/block-pruning-speed/README.md). Every output is the same sum in the same order as
// BsrMatrix.rmatmulTranspose's, so a chain gives the layers' bits whatever runs it.
import { identityOf } from "./bsr.ts";
import type { BsrMatrix } from "./bsr.ts";
import type { KernelPath } from "./kernels.ts";
import { resolveKernels } from "./kernels.ts";
import { chainPays, runSpmmChain } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import { sharedFloat32, sharedInt32 } from "./shared.ts";
import { CHAIN } from "./spmm-kernel.ts";
import type { SpmmChainArgs } from "./spmm-kernel.ts";
import { checkDim } from "./types.ts";

/** One layer of a chain: its weight [out, in], an optional bias [out] and a following ReLU. */
export interface BsrChainLayer {
  weight: BsrMatrix<Float32Array>;
  bias?: Float32Array | null;
  relu?: boolean;
}

/** Where a chain runs: a pool to split the batch over, and the kernels (see SparseProductOptions). */
export interface BsrChainOptions {
  pool?: MatrixPool;
  kernels?: KernelPath;
}

/**
 * Runs consecutive BSR layers for a fixed batch size. `forward` writes every layer's output,
 * [batch, out_l] after [batch, out_{l-1}], into one array. With a pool, on the asm.js kernels,
 * a batch of at least 8 rows per thread and enough work (the pool's minParallelFlops), the
 * layers run as one job split by batch rows; otherwise layer by layer through
 * BsrMatrix.rmatmulTranspose with the same options. Same values either way.
 *
 * The chain keeps the layers' index arrays (copied once per set of weight objects: a BsrMatrix's
 * pattern never changes) and copies the blocks and biases at every call, so weights trained in
 * place are seen.
 */
export class BsrChain {
  readonly batch: number;
  private weights: readonly BsrMatrix<Float32Array>[] = [];
  private args: SpmmChainArgs | undefined;

  constructor(batch: number) {
    checkDim("BsrChain", "batch", batch);
    if (batch < 1) throw new RangeError("BsrChain: batch must be at least 1, got 0");
    this.batch = batch;
  }

  /** Elements `out` needs for these layers: batch times the sum of their output features. */
  outLength(layers: readonly BsrChainLayer[]): number {
    return this.batch * layers.reduce((s, l) => s + l.weight.rows, 0);
  }

  /**
   * Every layer's output for x ([batch, in_0] row-major) into `out` (outLength(layers) values:
   * layer 0's [batch, out_0] first); returns `out`.
   */
  forward(
    layers: readonly BsrChainLayer[],
    x: Float32Array,
    out: Float32Array,
    options: BsrChainOptions = {},
  ): Float32Array {
    const fn = "BsrChain.forward";
    this.check(fn, layers, x, out);
    const n = this.batch;
    const path = resolveKernels(fn, options.kernels, options.pool);
    if (path === "asm" && chainPays(layers, n, options.pool)) {
      runSpmmChain(this.wire(layers, x, out), options.pool!);
      return out;
    }
    let at = 0;
    let input = x;
    for (const l of layers) {
      const y = out.subarray(at, at + n * l.weight.rows);
      l.weight.rmatmulTranspose(input, n, {
        out: y,
        pool: options.pool,
        kernels: path,
        bias: l.bias ?? null,
        relu: l.relu === true,
      });
      input = y;
      at += y.length;
    }
    return out;
  }

  private check(
    fn: string,
    layers: readonly BsrChainLayer[],
    x: Float32Array,
    out: Float32Array,
  ): void {
    if (!Array.isArray(layers) || layers.length === 0)
      throw new RangeError(`${fn}: layers must be a non-empty array of { weight, bias?, relu? }`);
    layers.forEach((l, i) => {
      const w = l?.weight as BsrMatrix<Float32Array> | undefined;
      if (w === undefined || !(w.data instanceof Float32Array) || !Array.isArray(w.blockShape))
        throw new TypeError(`${fn}: layers[${i}].weight must be a float32 BsrMatrix`);
      if (i > 0 && w.cols !== layers[i - 1]!.weight.rows)
        throw new RangeError(
          `${fn}: layers[${i}].weight is [${w.rows}, ${w.cols}] but layers[${i - 1}] gives ${layers[i - 1]!.weight.rows} features`,
        );
      const b = l.bias ?? null;
      if (b !== null && (!(b instanceof Float32Array) || b.length !== w.rows))
        throw new RangeError(
          `${fn}: layers[${i}].bias must be a Float32Array of ${w.rows} values (one per output feature) or null`,
        );
      if (l.relu !== undefined && typeof l.relu !== "boolean")
        throw new TypeError(`${fn}: layers[${i}].relu must be a boolean, got ${typeof l.relu}`);
    });
    const inF = layers[0]!.weight.cols;
    if (!(x instanceof Float32Array) || x.length !== this.batch * inF)
      throw new RangeError(
        `${fn}: x must be a Float32Array of batch x in = ${this.batch} x ${inF} = ${this.batch * inF} values, got ${x instanceof Float32Array ? x.length : typeof x}`,
      );
    const need = this.outLength(layers);
    if (!(out instanceof Float32Array) || out.length !== need)
      throw new RangeError(
        `${fn}: out must be a Float32Array of ${need} values (batch ${this.batch} times ${layers.map((l) => l.weight.rows).join(" + ")} features), got ${out instanceof Float32Array ? out.length : typeof out}`,
      );
  }

  /** The job's arguments: the index arrays rebuilt when the weight objects change, blocks and biases copied. */
  private wire(
    layers: readonly BsrChainLayer[],
    x: Float32Array,
    out: Float32Array,
  ): SpmmChainArgs {
    const same =
      this.args !== undefined &&
      layers.length === this.weights.length &&
      layers.every((l, i) => l.weight === this.weights[i]);
    if (!same) this.build(layers);
    const c = this.args!;
    let biasAt = 0;
    layers.forEach((l, i) => {
      const t = i * CHAIN.stride;
      const w = l.weight;
      c.data.set(
        w.data.subarray(0, w.nnzBlocks * w.blockShape[0] * w.blockShape[1]),
        c.table[t + CHAIN.dataAt]!,
      );
      const b = l.bias ?? null;
      if (b !== null) {
        c.bias.set(b, biasAt);
        c.table[t + CHAIN.biasAt] = biasAt;
        biasAt += b.length;
      } else c.table[t + CHAIN.biasAt] = -1;
      c.table[t + CHAIN.relu] = l.relu === true ? 1 : 0;
    });
    // A fresh object per call: workers cache a job's layer views by its arguments' identity.
    return { ...c, x, out };
  }

  private build(layers: readonly BsrChainLayer[]): void {
    const L = layers.length;
    const table = sharedInt32(L * CHAIN.stride);
    let ptrLen = 0;
    let slots = 0;
    let values = 0;
    let biasLen = 0;
    for (const { weight: w } of layers) {
      ptrLen += w.blockRows + 1;
      slots += w.nnzBlocks;
      values += w.nnzBlocks * w.blockShape[0] * w.blockShape[1];
      biasLen += w.rows;
    }
    const ptr = sharedInt32(ptrLen);
    const idx = sharedInt32(slots);
    let p = 0;
    let q = 0;
    let d = 0;
    let o = 0;
    layers.forEach(({ weight: w }, i) => {
      const t = i * CHAIN.stride;
      const [R, C] = w.blockShape;
      table[t + CHAIN.outer] = w.rows;
      table[t + CHAIN.inner] = w.cols;
      table[t + CHAIN.R] = R;
      table[t + CHAIN.C] = C;
      table[t + CHAIN.ptrAt] = p;
      table[t + CHAIN.slotAt] = q;
      table[t + CHAIN.dataAt] = d;
      table[t + CHAIN.outAt] = o;
      table[t + CHAIN.blockRows] = w.blockRows;
      ptr.set(w.indptr.subarray(0, w.blockRows + 1), p);
      idx.set(w.indices.subarray(0, w.nnzBlocks), q);
      p += w.blockRows + 1;
      q += w.nnzBlocks;
      d += w.nnzBlocks * R * C;
      o += this.batch * w.rows;
    });
    this.args = {
      table,
      ptr,
      idx,
      ids: identityOf(Math.max(...layers.map((l) => l.weight.nnzBlocks))),
      data: sharedFloat32(values),
      bias: sharedFloat32(biasLen),
      x: new Float32Array(0),
      out: new Float32Array(0),
      layers: L,
      n: this.batch,
    };
    this.weights = layers.map((l) => l.weight);
  }
}
