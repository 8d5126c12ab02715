// The standard layers. Each holds its parameters and calls one fused autograd op in forward;
// Sequential runs a Conv2d or a Linear (or any layer whose class defines forwardRelu) followed
// by a ReLU as one op (conv2d / linear with relu).
import { Tensor, Generator } from "@tessera/tensor";
import {
  Variable,
  avgPool2d,
  batchNorm,
  conv2d,
  dropout,
  linear,
  maxPool2d,
  relu,
  reshape,
} from "@tessera/autograd";
import { sharedFloat32 } from "@tessera/matrix";
import { defaultLayerInit } from "./init.ts";
import { Module } from "./module.ts";

// Layers created without an explicit generator draw from this one, in creation order, so a
// script that builds the same model twice after `manualSeed(s)` gets the same weights (the
// role torch.manual_seed plays). Passing `generator` is the fully explicit alternative.
let defaultGenerator = new Generator(0);

/** Reseeds the generator that layers use when none is passed. */
export function manualSeed(seed: number): void {
  defaultGenerator = new Generator(seed);
}

function gen(g: Generator | undefined): Generator {
  return g ?? defaultGenerator;
}

function checkPositiveInt(fn: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`${fn}: ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

// Parameters live on SharedArrayBuffer memory so that, when a @tessera/matrix pool is set
// (see FitOptions.pool), its workers read the weights in place instead of copying them for
// every product. Shared typed arrays behave as ordinary ones everywhere else.
function param(shape: number[], name: string): Variable {
  let n = 1;
  for (const d of shape) n *= d;
  return new Variable(new Tensor(sharedFloat32(n), shape), { requiresGrad: true, name });
}

export interface LinearOptions {
  bias?: boolean;
  generator?: Generator;
}

/** y = x W^T + b with W of shape [out, in]; PyTorch's default init (see init.ts). */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Variable;
  readonly bias: Variable | null;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    this.inFeatures = checkPositiveInt("Linear", "inFeatures", inFeatures);
    this.outFeatures = checkPositiveInt("Linear", "outFeatures", outFeatures);
    this.weight = this.registerParameter("weight", param([outFeatures, inFeatures], "weight"));
    this.bias =
      options.bias === false ? null : this.registerParameter("bias", param([outFeatures], "bias"));
    defaultLayerInit(
      this.weight.data.data as Float32Array,
      [outFeatures, inFeatures],
      this.bias === null ? null : (this.bias.data.data as Float32Array),
      gen(options.generator),
    );
  }

  forward(x: Variable): Variable {
    return this.affine("forward", x, false);
  }

  /**
   * forward followed by a ReLU as one op (autograd's linear with `relu`): the values and
   * gradients of ReLU().forward(this.forward(x)) bit for bit, with the bias and the ReLU applied
   * inside the product and the ReLU's gradient gate summed with the bias gradient in one pass.
   * Sequential runs a Linear followed by a ReLU this way.
   */
  forwardRelu(x: Variable): Variable {
    return this.affine("forwardRelu", x, true);
  }

  private affine(method: string, x: Variable, relu: boolean): Variable {
    const s = x.shape;
    if (s.length !== 2 || s[1] !== this.inFeatures) {
      throw new Error(`Linear.${method}: expected input [N, ${this.inFeatures}], got ${fmt(s)}`);
    }
    return linear(x, this.weight, this.bias, { relu });
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  generator?: Generator;
}

/** 2-d convolution over [N, C, H, W] with square kernels; weight [F, C, k, k]. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;
  readonly weight: Variable;
  readonly bias: Variable | null;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: Conv2dOptions = {},
  ) {
    super();
    this.inChannels = checkPositiveInt("Conv2d", "inChannels", inChannels);
    this.outChannels = checkPositiveInt("Conv2d", "outChannels", outChannels);
    this.kernelSize = checkPositiveInt("Conv2d", "kernelSize", kernelSize);
    this.stride = checkPositiveInt("Conv2d", "stride", options.stride ?? 1);
    const padding = options.padding ?? 0;
    if (!Number.isSafeInteger(padding) || padding < 0)
      throw new RangeError(`Conv2d: padding must be an integer >= 0, got ${padding}`);
    this.padding = padding;
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    this.weight = this.registerParameter("weight", param(shape, "weight"));
    this.bias =
      options.bias === false ? null : this.registerParameter("bias", param([outChannels], "bias"));
    defaultLayerInit(
      this.weight.data.data as Float32Array,
      shape,
      this.bias === null ? null : (this.bias.data.data as Float32Array),
      gen(options.generator),
    );
  }

  forward(x: Variable): Variable {
    return this.convolve("forward", x, false);
  }

  /**
   * forward followed by a ReLU as one op (autograd's conv2d with `relu`): the values and
   * gradients of ReLU().forward(this.forward(x)) bit for bit, without the ReLU's pass over the
   * output. Sequential runs a Conv2d followed by a ReLU this way.
   */
  forwardRelu(x: Variable): Variable {
    return this.convolve("forwardRelu", x, true);
  }

  private convolve(method: string, x: Variable, relu: boolean): Variable {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== this.inChannels) {
      throw new Error(
        `Conv2d.${method}: expected input [N, ${this.inChannels}, H, W], got ${fmt(s)}`,
      );
    }
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, relu });
  }
}

/**
 * Whether Sequential may run `m` and the ReLU after it as m.forwardRelu: only when m's own class
 * (not a parent class) defines forwardRelu, so a subclass that overrides forward is not skipped.
 */
function fusesRelu(m: Module): boolean {
  return Object.prototype.hasOwnProperty.call(Object.getPrototypeOf(m), "forwardRelu");
}

/** Max pooling with a square window; stride defaults to the window size. */
export class MaxPool2d extends Module {
  readonly kernel: number;
  readonly stride: number;
  constructor(kernel: number, stride?: number) {
    super();
    this.kernel = checkPositiveInt("MaxPool2d", "kernel", kernel);
    this.stride = checkPositiveInt("MaxPool2d", "stride", stride ?? kernel);
  }
  forward(x: Variable): Variable {
    if (x.shape.length !== 4)
      throw new Error(`MaxPool2d.forward: expected input [N, C, H, W], got ${fmt(x.shape)}`);
    return maxPool2d(x, { kernel: this.kernel, stride: this.stride });
  }
}

/** Average pooling with a square window; stride defaults to the window size. */
export class AvgPool2d extends Module {
  readonly kernel: number;
  readonly stride: number;
  constructor(kernel: number, stride?: number) {
    super();
    this.kernel = checkPositiveInt("AvgPool2d", "kernel", kernel);
    this.stride = checkPositiveInt("AvgPool2d", "stride", stride ?? kernel);
  }
  forward(x: Variable): Variable {
    if (x.shape.length !== 4)
      throw new Error(`AvgPool2d.forward: expected input [N, C, H, W], got ${fmt(x.shape)}`);
    return avgPool2d(x, { kernel: this.kernel, stride: this.stride });
  }
}

export class ReLU extends Module {
  forward(x: Variable): Variable {
    return relu(x);
  }
}

/** [N, ...] -> [N, product of the rest]. */
export class Flatten extends Module {
  forward(x: Variable): Variable {
    const s = x.shape;
    if (s.length < 1)
      throw new Error(`Flatten.forward: expected at least a batch axis, got a 0-d input`);
    if (s.length === 2) return x;
    let rest = 1;
    for (let i = 1; i < s.length; i++) rest *= s[i]!;
    return reshape(x, [s[0]!, rest]);
  }
}

/** Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p) while training. */
export class Dropout extends Module {
  readonly p: number;
  private readonly generator: Generator;
  constructor(p = 0.5, options: { generator?: Generator } = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout: p must be in [0, 1), got ${p}`);
    this.p = p;
    // Its own stream, so dropout draws never shift the draws of layers created later.
    this.generator = gen(options.generator).fork();
  }
  forward(x: Variable): Variable {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, this.generator, this.training);
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running average (PyTorch's convention). */
  momentum?: number;
  /** Learn a scale (weight) and shift (bias); default true. */
  affine?: boolean;
}

abstract class BatchNormBase extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly weight: Variable;
  readonly bias: Variable;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  protected abstract readonly rank: number;

  constructor(fn: string, numFeatures: number, options: BatchNormOptions) {
    super();
    this.numFeatures = checkPositiveInt(fn, "numFeatures", numFeatures);
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    if (!(this.eps > 0)) throw new RangeError(`${fn}: eps must be > 0, got ${this.eps}`);
    if (!(this.momentum >= 0 && this.momentum <= 1))
      throw new RangeError(`${fn}: momentum must be in [0, 1], got ${this.momentum}`);
    const affine = options.affine ?? true;
    // Non-affine batch norm keeps fixed gamma = 1, beta = 0 that are not trained or saved.
    const gamma = new Variable(new Tensor(new Float32Array(numFeatures).fill(1), [numFeatures]), {
      requiresGrad: affine,
      name: "weight",
    });
    const beta = new Variable(new Tensor(new Float32Array(numFeatures), [numFeatures]), {
      requiresGrad: affine,
      name: "bias",
    });
    this.weight = affine ? this.registerParameter("weight", gamma) : gamma;
    this.bias = affine ? this.registerParameter("bias", beta) : beta;
    this.runningMean = this.registerBuffer(
      "running_mean",
      new Tensor(new Float32Array(numFeatures), [numFeatures]),
    );
    this.runningVar = this.registerBuffer(
      "running_var",
      new Tensor(new Float32Array(numFeatures).fill(1), [numFeatures]),
    );
  }

  forward(x: Variable): Variable {
    const s = x.shape;
    if (s.length !== this.rank || s[1] !== this.numFeatures) {
      const want = this.rank === 2 ? `[N, ${this.numFeatures}]` : `[N, ${this.numFeatures}, H, W]`;
      throw new Error(`${this.constructor.name}.forward: expected input ${want}, got ${fmt(s)}`);
    }
    return batchNorm(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}

/** Batch norm over [N, C] (statistics per feature over the batch). */
export class BatchNorm1d extends BatchNormBase {
  protected readonly rank = 2;
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super("BatchNorm1d", numFeatures, options);
  }
}

/** Batch norm over [N, C, H, W] (statistics per channel over batch and space). */
export class BatchNorm2d extends BatchNormBase {
  protected readonly rank = 4;
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super("BatchNorm2d", numFeatures, options);
  }
}

/**
 * Layers applied in order. `new Sequential(a, b, c)` names them "0", "1", "2" (as PyTorch);
 * `Sequential.named({ fc1: ..., relu1: ... })` keeps the given names.
 */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = [];
    layers.forEach((m, i) => this.add(String(i), m));
  }

  static named(layers: Record<string, Module> | [string, Module][]): Sequential {
    const s = new Sequential();
    // Pass pairs when names look like integers: objects reorder integer-like keys.
    for (const [name, m] of Array.isArray(layers) ? layers : Object.entries(layers)) s.add(name, m);
    return s;
  }

  private add(name: string, m: Module): void {
    if (!(m instanceof Module)) throw new Error(`Sequential: layer "${name}" is not a Module`);
    this.registerModule(name, m);
    this.layers.push(m);
  }

  /** Keeps `layers` (what forward runs) in step with a child replaced by setSubmodule. */
  protected override childReplaced(name: string, old: Module, replacement: Module): void {
    super.childReplaced(name, old, replacement);
    // layers[i] is the i-th registered child (add() registers and pushes together); by
    // position, not indexOf, so one module registered under two names is replaced only here.
    const i = this.namedChildren().findIndex(([n]) => n === name);
    this.layers[i] = replacement;
  }

  /**
   * The layers in order; a layer whose own class defines forwardRelu (Conv2d and Linear here;
   * a layer class elsewhere may define it too) directly followed by an exact ReLU runs as one
   * fused op (forwardRelu: the same numbers, one pass over the activations fewer: the ReLU's
   * forward took 7.3-7.5 ms of a ~185-195-ms two-thread smallCnn() step on the wasm path,
   * docs/benchmarks/epoch-2026-12-03/ab-profile-smallcnn.txt). A subclass that does not define
   * forwardRelu itself runs its own forward, as it may change what forward does.
   */
  forward(x: Variable): Variable {
    let y = x;
    const ls = this.layers;
    for (let i = 0; i < ls.length; i++) {
      const m = ls[i]!;
      if (ls[i + 1]?.constructor === ReLU && fusesRelu(m)) {
        y = (m as Module & { forwardRelu(x: Variable): Variable }).forwardRelu(y);
        i++;
      } else y = m.forward(y);
    }
    return y;
  }
}
