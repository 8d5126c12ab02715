// Inference plans: a feed-forward model (Linear, BsrLinear, ReLU, Flatten inside Sequentials)
// compiled once for a batch size and a pool into a list of products that write straight into
// buffers the plan owns, with each layer's bias and a following ReLU applied as the product's
// epilogue: inside the sparse product (BsrMatrix's bias / relu options: on the asm.js path in
// the kernel over each block row's outputs right after they are computed, in each pooled chunk
// when split; on the wasm path in each chunk's rows of a batch-major product, an f32x4 pass in
// kernel memory), and for a dense layer the GEMM's (matmulTransB's bias / relu options: on the
// wasm path the same f32x4 pass on each block of the output in kernel memory, on the asm.js path
// one pass after the product). Two or more consecutive BsrLinear layers run as one BsrChain (@tessera/matrix): on a
// pool, one job in which each thread takes its batch rows through all of them, instead of a job
// and a barrier per layer (1.094 -> 1.030 ms for the whole 10.8%-dense LeNet-300-100 at batch
// 128 on two threads, scratch A/B, 2026-12-02).
// A call allocates no array: on this 2-core VM a fresh
// [128, 300] float32 output cost ~0.6 ms of page faults, more than the sparse products of the
// whole pruned LeNet-300-100 at 10% density once the layers, the bias and the ReLU each made
// one (docs/benchmarks/bsr-linear.md). It lives in @tessera/pruning because it runs BsrLinear;
// dense models get the same plan so that dense / sparse ratios compare like with like.
//
// The products are the layers' own (matmulTransB for Linear, BsrMatrix.rmatmulTranspose for
// BsrLinear) on the same pool and kernels as autograd's linear / bsrLinear, and the epilogue
// rounds as those ops and relu do, so a plan's output equals model.forward's under noGrad bit
// for bit (tested).
import { BsrChain, matmulTransB, sharedFloat32 } from "@tessera/matrix";
import type { BsrChainLayer, MatrixPool, BsrMatrix } from "@tessera/matrix";
import { Flatten, Linear, Module, ReLU, Sequential } from "@tessera/nn";
import { Tensor } from "@tessera/tensor";
import { BsrLinear } from "./bsr.ts";
import { fmt } from "./util.ts";

export interface InferencePlanOptions {
  /** Rows (examples) of every run. */
  batch: number;
  /** Runs the products on this pool (the caller keeps ownership); default: the calling thread. */
  pool?: MatrixPool;
  /**
   * Where a layer's bias and following ReLU run: "fused" (default) hands them to the product as
   * its epilogue (the sparse product's, run over each block row's or each chunk's outputs right
   * after they are computed, and the dense GEMM's, on each block of the output in kernel memory
   * on the wasm path: the matrix README's "epilogue"), "pass" runs them as one pass over the
   * output after the product. Same values either way; "pass" is there to measure the difference.
   */
  epilogue?: "fused" | "pass";
}

/** One step of a plan, as `InferencePlan.steps` describes it. */
export interface PlanStep {
  /** "dense": a Linear's product; "bsr": a BsrLinear's; "relu": a ReLU not fused into one. */
  kind: "dense" | "bsr" | "relu";
  /** Module path(s) the step runs, e.g. "fc1+relu1". */
  modules: string;
  inFeatures: number;
  outFeatures: number;
  /** Whether the layer's bias is added in the epilogue. */
  bias: boolean;
  /** Whether a following ReLU runs in the epilogue (fused). */
  relu: boolean;
  /**
   * Where bias and ReLU run: "product" hands them to the product (its epilogue, run over the
   * outputs each kernel call, block or chunk computed, or on the asm.js dense product and the
   * wasm path's row-major sparse products as its own pass after it), "pass" is a pass after
   * the product, "none" when the layer has neither.
   */
  epilogue: "product" | "pass" | "none";
  /**
   * Runs in one BsrChain with the BSR layers next to it (a fused plan's runs of two or more
   * consecutive BsrLinear layers): on a pool, each thread carries its batch rows through all of
   * them in one job instead of one job per layer. Same values.
   */
  chained: boolean;
}

interface Product {
  kind: "dense" | "bsr";
  layer: Linear | BsrLinear;
  inF: number;
  outF: number;
  relu: boolean;
  out: Float32Array;
}
interface LoneRelu {
  kind: "relu";
  width: number;
  out: Float32Array;
}
/** Consecutive BSR products run as one BsrChain; their outputs are views into `out`. */
interface Chain {
  kind: "chain";
  products: Product[];
  chain: BsrChain;
  /** The chain's layers, refreshed from the products' modules at every run (no allocation). */
  layers: { weight: BsrMatrix<Float32Array>; bias: Float32Array | null; relu: boolean }[];
  out: Float32Array;
}
type Step = (Product | LoneRelu) & { modules: string };
type Op = Step | (Chain & { modules: string });

/**
 * y[r, j] = relu?(y[r, j] + b[j]) over rows x cols, in place. The sum is formed in double and
 * stored as float32, which is the float32 sum (double rounding is harmless for one addition),
 * as autograd's linear adds its bias; the ReLU is relu()'s branch-free max(v, +0) (a branch
 * mispredicts on activations of random sign), with the same fix-up for non-finite values.
 */
export function biasReluEpilogue(
  y: Float32Array,
  bias: Float32Array | null,
  rows: number,
  cols: number,
  relu: boolean,
): void {
  if (bias === null && !relu) return;
  if (!relu) {
    for (let r = 0, o = 0; r < rows; r++)
      for (let j = 0; j < cols; j++, o++) y[o] = y[o]! + bias![j]!;
    return;
  }
  for (let r = 0, o = 0; r < rows; r++)
    for (let j = 0; j < cols; j++, o++) {
      const v = bias === null ? y[o]! : y[o]! + bias[j]!;
      let m = (v + Math.abs(v)) * 0.5;
      if (m - m !== 0) m = v > 0 ? v : v === v ? 0 : v;
      y[o] = m;
    }
}

/** The leaves of a model in forward order with their paths (Sequentials opened, recursively). */
function leaves(fn: string, model: Module, prefix: string): [string, Module][] {
  if (!(model instanceof Sequential)) return [[prefix === "" ? "(model)" : prefix, model]];
  const names = model.namedChildren().map(([n]) => n);
  const out: [string, Module][] = [];
  model.layers.forEach((m, i) => {
    const name = names[i];
    if (name === undefined)
      throw new Error(`${fn}: Sequential "${prefix}" runs a layer it did not register`);
    out.push(...leaves(fn, m, prefix === "" ? name : `${prefix}.${name}`));
  });
  return out;
}

const float32 = (fn: string, path: string, what: string, a: unknown): Float32Array => {
  if (!(a instanceof Float32Array))
    throw new TypeError(`${fn}: ${what} of "${path}" is not float32; plans run float32 models`);
  return a;
};

/**
 * A model compiled for `batch` rows: `run(x)` computes the logits into a buffer the plan owns
 * (overwritten by the next run) without allocating. The plan reads the layers' weights at every
 * run, so values trained in place are seen; a BsrLinear whose pattern changes (new indices
 * loaded) is seen too, as its `weight` is.
 */
export class InferencePlan {
  readonly batch: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly pool: MatrixPool | undefined;
  /** What runs, in order. */
  readonly steps: readonly PlanStep[];
  private readonly program: Op[];
  private readonly inputShape: readonly number[] | null;
  private readonly options: { pool: MatrixPool } | undefined;
  private readonly output: Float32Array;
  private readonly fused: boolean;

  /** @internal Use planInference. */
  constructor(
    batch: number,
    pool: MatrixPool | undefined,
    program: Step[],
    inFeatures: number,
    flattens: boolean,
    fused: boolean,
  ) {
    this.batch = batch;
    this.fused = fused;
    this.pool = pool;
    this.options = pool === undefined ? undefined : { pool };
    const chained = new Set<Step>();
    this.program = fused ? withChains(program, batch, chained) : program;
    this.inFeatures = inFeatures;
    const last = program[program.length - 1]!;
    this.outFeatures = last.kind === "relu" ? last.width : last.outF;
    this.output = last.out;
    this.inputShape = flattens ? null : [batch, inFeatures];
    this.steps = program.map((s) =>
      s.kind === "relu"
        ? {
            kind: "relu",
            modules: s.modules,
            inFeatures: s.width,
            outFeatures: s.width,
            bias: false,
            relu: true,
            epilogue: "pass",
            chained: false,
          }
        : {
            kind: s.kind,
            modules: s.modules,
            inFeatures: s.inF,
            outFeatures: s.outF,
            bias: s.layer.bias !== null,
            relu: s.relu,
            epilogue: s.layer.bias === null && !s.relu ? "none" : fused ? "product" : "pass",
            chained: chained.has(s),
          },
    );
  }

  /**
   * The model's output for `x` ([batch, ...] whose trailing sizes multiply to inFeatures, or
   * the row-major values of one): a [batch, outFeatures] row-major array owned by the plan.
   */
  run(x: Float32Array | Tensor): Float32Array {
    const fn = "InferencePlan.run";
    let input: Float32Array;
    if (x instanceof Tensor) {
      const s = x.shape;
      const size = s.slice(1).reduce((a, b) => a * b, 1);
      const ok =
        this.inputShape === null
          ? s.length >= 2 && s[0] === this.batch && size === this.inFeatures
          : s.length === 2 && s[0] === this.batch && s[1] === this.inFeatures;
      if (!ok)
        throw new RangeError(
          `${fn}: x has shape ${fmt(s)}, expected ${this.inputShape === null ? `[${this.batch}, ...] of ${this.inFeatures} features per row` : fmt(this.inputShape)}`,
        );
      const d = x.contiguous().data;
      if (!(d instanceof Float32Array))
        throw new TypeError(`${fn}: x is ${x.dtype}, expected float32`);
      input = d;
    } else if (x instanceof Float32Array) {
      if (x.length !== this.batch * this.inFeatures)
        throw new RangeError(
          `${fn}: x has ${x.length} values, expected batch x inFeatures = ${this.batch} x ${this.inFeatures} = ${this.batch * this.inFeatures}`,
        );
      input = x;
    } else throw new TypeError(`${fn}: x must be a Float32Array or a float32 Tensor`);
    const n = this.batch;
    let cur = input;
    for (const s of this.program) {
      if (s.kind === "chain") {
        s.products.forEach((p, i) => {
          const l = s.layers[i]!;
          l.weight = (p.layer as BsrLinear).weight as BsrMatrix<Float32Array>;
          l.bias = biasOf(p.layer);
        });
        s.chain.forward(s.layers, cur, s.out, this.options);
        cur = s.products[s.products.length - 1]!.out;
        continue;
      }
      if (s.kind === "relu") {
        if (cur !== s.out) s.out.set(cur);
        biasReluEpilogue(s.out, null, n, s.width, true);
      } else if (s.kind === "dense") {
        const l = s.layer as Linear;
        const w = l.weight.data.data as Float32Array;
        if (this.fused)
          matmulTransB(cur, w, n, s.inF, s.outF, s.out, {
            pool: this.pool,
            bias: biasOf(l),
            relu: s.relu,
          });
        else {
          matmulTransB(cur, w, n, s.inF, s.outF, s.out, this.options);
          biasReluEpilogue(s.out, biasOf(l), n, s.outF, s.relu);
        }
      } else {
        const l = s.layer as BsrLinear;
        const w = l.weight as BsrMatrix<Float32Array>;
        if (this.fused)
          w.rmatmulTranspose(cur, n, {
            out: s.out,
            pool: this.pool,
            bias: biasOf(l),
            relu: s.relu,
          });
        else {
          w.rmatmulTranspose(cur, n, { out: s.out, pool: this.pool });
          biasReluEpilogue(s.out, biasOf(l), n, s.outF, s.relu);
        }
      }
      cur = s.out;
    }
    return this.output;
  }
}

/**
 * `program` with every run of two or more consecutive BSR products replaced by one BsrChain
 * step (their outputs become views into the chain's buffer, and a ReLU step writing into one
 * of them follows it there); the products chained are added to `chained`.
 */
function withChains(program: Step[], batch: number, chained: Set<Step>): Op[] {
  const ops: Op[] = [];
  const moved = new Map<Float32Array, Float32Array>();
  for (let i = 0; i < program.length;) {
    let j = i;
    while (j < program.length && program[j]!.kind === "bsr") j++;
    if (j - i < 2) {
      const s = program[i]!;
      if (s.kind === "relu") s.out = moved.get(s.out) ?? s.out;
      ops.push(s);
      i++;
      continue;
    }
    const products = program.slice(i, j) as (Product & { modules: string })[];
    const out = sharedFloat32(products.reduce((t, p) => t + batch * p.outF, 0));
    let at = 0;
    for (const p of products) {
      const view = out.subarray(at, at + batch * p.outF);
      moved.set(p.out, view);
      p.out = view;
      at += view.length;
      chained.add(p);
    }
    ops.push({
      kind: "chain",
      products,
      chain: new BsrChain(batch),
      layers: products.map((p) => ({
        weight: (p.layer as BsrLinear).weight as BsrMatrix<Float32Array>,
        bias: biasOf(p.layer),
        relu: p.relu,
      })) satisfies BsrChainLayer[],
      out,
      modules: products.map((p) => p.modules).join(","),
    });
    i = j;
  }
  return ops;
}

const biasOf = (l: Linear | BsrLinear): Float32Array | null =>
  l.bias === null ? null : (l.bias.data.data as Float32Array);

/**
 * Compiles `model` (a Sequential, possibly nested, of Linear, BsrLinear, ReLU and Flatten, in
 * eval mode or not: none of them differ) for `batch` rows on `pool`. A ReLU right after a
 * Linear or BsrLinear runs in that layer's epilogue; Flatten moves no data (the plan's
 * activations are [batch, features] arrays). Throws naming the first module it cannot plan.
 */
export function planInference(model: Module, options: InferencePlanOptions): InferencePlan {
  const fn = "planInference";
  if (!(model instanceof Module)) throw new TypeError(`${fn}: model must be an nn Module`);
  const batch = options?.batch;
  if (!Number.isSafeInteger(batch) || batch < 1)
    throw new RangeError(`${fn}: options.batch must be a positive integer, got ${String(batch)}`);
  const program: Step[] = [];
  let width: number | null = null;
  let inFeatures: number | null = null;
  let flattens = false;
  for (const [path, m] of leaves(fn, model, "")) {
    if (m instanceof Flatten) {
      // Only a Flatten before any layer changes what the input may look like.
      if (width === null) flattens = true;
      continue;
    }
    if (m instanceof ReLU) {
      if (width === null)
        throw new Error(
          `${fn}: ReLU "${path}" comes before any Linear or BsrLinear; the plan cannot know its width`,
        );
      const prev = program[program.length - 1]!;
      if (prev.kind !== "relu" && !prev.relu) {
        prev.relu = true;
        prev.modules += `+${path}`;
      } else program.push({ kind: "relu", width, out: prev.out, modules: path });
      continue;
    }
    let kind: "dense" | "bsr";
    let inF: number;
    let outF: number;
    if (m instanceof Linear) {
      kind = "dense";
      inF = m.inFeatures;
      outF = m.outFeatures;
      float32(fn, path, "the weight", m.weight.data.data);
    } else if (m instanceof BsrLinear) {
      kind = "bsr";
      inF = m.inFeatures;
      outF = m.outFeatures;
      float32(fn, path, "the weight", m.weight.data);
    } else
      throw new Error(
        `${fn}: cannot plan module "${path}" (${m.constructor.name}); a plan runs Linear, BsrLinear, ReLU and Flatten inside Sequential models`,
      );
    if (m.bias !== null) float32(fn, path, "the bias", m.bias.data.data);
    if (width !== null && inF !== width)
      throw new RangeError(
        `${fn}: "${path}" takes ${inF} features but the layer before gives ${width}`,
      );
    inFeatures ??= inF;
    program.push({
      kind,
      layer: m,
      inF,
      outF,
      relu: false,
      out: sharedFloat32(batch * outF),
      modules: path,
    });
    width = outF;
  }
  if (inFeatures === null)
    throw new Error(`${fn}: the model has no Linear or BsrLinear layer to plan`);
  const epilogue = options.epilogue ?? "fused";
  if (epilogue !== "fused" && epilogue !== "pass")
    throw new RangeError(
      `${fn}: options.epilogue must be "fused" or "pass", got ${JSON.stringify(epilogue)}`,
    );
  return new InferencePlan(
    batch,
    options.pool,
    program,
    inFeatures,
    flattens,
    epilogue === "fused",
  );
}
