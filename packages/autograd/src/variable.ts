// Variable: a tensor plus the record of how it was made. Leaves (parameters, inputs) have no
// record; an op's result keeps its op name, its inputs and a backward closure until
// backward() has run through it.
import { Tensor } from "@tessera/tensor";
import type { DType, SliceArg } from "@tessera/tensor";
import { runBackward } from "./engine.ts";
import { fmt, sameShape } from "./util.ts";
import type { Input } from "./record.ts";

/** Maps the gradient of an op's result to one gradient (or null) per input. */
export type BackwardFn = (grad: Tensor) => readonly (Tensor | null | undefined)[];

/** The record an op result keeps until backward frees it. */
export interface GradNode {
  op: string;
  parents: readonly Variable[];
  backward: BackwardFn;
}

export interface VariableOptions {
  /** Whether gradients flow to (and accumulate in) this Variable. Default false. */
  requiresGrad?: boolean;
  name?: string;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Variable {
  /** The value; optimizers update data.data (the typed array) in place. */
  data: Tensor;
  /**
   * Accumulated gradient: same shape and dtype as data, packed, with its own memory; null
   * until a backward pass reaches this Variable. Set only on leaves (and on results that
   * called retainGrad()).
   */
  grad: Tensor | null = null;
  requiresGrad: boolean;
  name?: string;
  /** @internal the op record; null for leaves and once backward has freed it. */
  _node: GradNode | null = null;
  /** @internal true once backward has freed this result's record. */
  _freed = false;
  /** @internal keep .grad on this non-leaf. */
  _retain = false;

  constructor(data: Tensor, options: VariableOptions = {}) {
    if (!(data instanceof Tensor)) {
      throw new TypeError(
        `Variable: data must be a @tessera/tensor Tensor, got ${data === null ? "null" : typeof data}`,
      );
    }
    const requiresGrad = options.requiresGrad ?? false;
    if (typeof requiresGrad !== "boolean") {
      throw new TypeError(`Variable: requiresGrad must be a boolean, got ${typeof requiresGrad}`);
    }
    if (requiresGrad && data.dtype === "int32") {
      throw new TypeError("Variable: only float32/float64 data can require gradients, got int32");
    }
    this.data = data;
    this.requiresGrad = requiresGrad;
    if (options.name !== undefined) this.name = options.name;
  }

  get shape(): readonly number[] {
    return this.data.shape;
  }
  get dtype(): DType {
    return this.data.dtype;
  }
  get ndim(): number {
    return this.data.ndim;
  }
  get size(): number {
    return this.data.size;
  }
  /** True for Variables not made by a recorded op (parameters, inputs, constants). */
  get isLeaf(): boolean {
    return this._node === null && !this._freed;
  }
  /** Name of the op that made this Variable, or null for a leaf / freed result. */
  get op(): string | null {
    return this._node === null ? null : this._node.op;
  }

  /**
   * Back-propagates from this Variable: adds d(this)/d(leaf) · seed into the .grad of every
   * leaf that requires grad, then frees the graph (a second backward through it throws).
   * seed defaults to 1 when this Variable has exactly one element; otherwise it is required.
   */
  backward(seed?: Tensor): void {
    if (!this.requiresGrad) {
      throw new Error(
        "backward: this Variable does not require grad (no input required grad, or it was computed under noGrad)",
      );
    }
    let s: Tensor;
    if (seed === undefined) {
      if (this.data.size !== 1) {
        throw new Error(
          `backward: a seed gradient is required for a non-scalar Variable of shape ${fmt(this.data.shape)} (implicit seeds exist only for one-element outputs)`,
        );
      }
      const one = this.data.dtype === "float64" ? Float64Array.of(1) : Float32Array.of(1);
      s = new Tensor(one, []).reshape(this.data.shape);
    } else {
      if (!(seed instanceof Tensor)) throw new TypeError("backward: seed must be a Tensor");
      if (!sameShape(seed.shape, this.data.shape)) {
        throw new RangeError(
          `backward: seed has shape ${fmt(seed.shape)} but this Variable has shape ${fmt(this.data.shape)}`,
        );
      }
      s = seed.dtype === this.data.dtype ? seed : seed.astype(this.data.dtype);
    }
    runBackward(this, s);
  }

  /** Drops the accumulated gradient (grad = null; the next backward allocates a fresh one). */
  zeroGrad(): void {
    this.grad = null;
  }

  /** A new leaf sharing this data, with no history and requiresGrad = false. */
  detach(): Variable {
    return new Variable(this.data, this.name === undefined ? {} : { name: this.name });
  }

  /** Keeps the gradient of this non-leaf result in .grad during backward (for inspection). */
  retainGrad(): this {
    this._retain = true;
    return this;
  }

  /** The value of a one-element Variable. */
  item(): number {
    return this.data.item();
  }

  toString(): string {
    const head = `Variable(${this.name ? `${this.name}, ` : ""}shape=${fmt(this.data.shape)}, dtype=${this.data.dtype}${
      this.requiresGrad ? ", requiresGrad" : ""
    }${this._node ? `, op=${this._node.op}` : ""})`;
    return `${head}\n${this.data.toString()}`;
  }
}

// ---- method sugar: x.add(y), x.relu(), ... ----
// Declared here, installed by methods.ts (imported by index.ts). Importing the ops here made
// variable.ts -> ops/* -> record.ts -> variable.ts a cycle, so an op file that built a
// Variable at top level ran before this class existed and the package failed to load.
// The interface merges into the class: same name, types only.
export interface VariableMethods {
  add(b: Input): Variable;
  sub(b: Input): Variable;
  mul(b: Input): Variable;
  div(b: Input): Variable;
  pow(b: Input): Variable;
  neg(): Variable;
  exp(): Variable;
  log(): Variable;
  sqrt(): Variable;
  sigmoid(): Variable;
  tanh(): Variable;
  relu(): Variable;
  leakyRelu(slope?: number): Variable;
  matmul(b: Variable): Variable;
  sum(axes?: number | readonly number[], keepdims?: boolean): Variable;
  mean(axes?: number | readonly number[], keepdims?: boolean): Variable;
  max(axes?: number | readonly number[], keepdims?: boolean): Variable;
  min(axes?: number | readonly number[], keepdims?: boolean): Variable;
  reshape(shape: readonly number[]): Variable;
  flatten(startAxis?: number, endAxis?: number): Variable;
  transpose(axes?: readonly number[]): Variable;
  permute(axes: readonly number[]): Variable;
  broadcastTo(shape: readonly number[]): Variable;
  unsqueeze(axis: number): Variable;
  squeeze(axes?: number | readonly number[]): Variable;
  slice(...specs: SliceArg[]): Variable;
  logSoftmax(axis?: number): Variable;
  softmax(axis?: number): Variable;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface Variable extends VariableMethods {}
