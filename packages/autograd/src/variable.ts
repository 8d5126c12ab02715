// Variable: a tensor plus the record of how it was made. Leaves (parameters, inputs) have no
// record; an op's result keeps its op name, its inputs and a backward closure until
// backward() has run through it.
import { Tensor } from "@tessera/tensor";
import type { DType, SliceArg } from "@tessera/tensor";
import { runBackward } from "./engine.ts";
import { fmt, sameShape } from "./util.ts";
import * as arith from "./ops/arith.ts";
import * as unary from "./ops/unary.ts";
import * as act from "./ops/relu.ts";
import * as red from "./ops/reduce.ts";
import * as shp from "./ops/shape.ts";
import * as sl from "./ops/slice.ts";
import * as mm from "./ops/matmul.ts";
import * as sm from "./ops/softmax.ts";
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

  // ---- method sugar: each delegates to the op function of the same name ----
  add(b: Input): Variable {
    return arith.add(this, b);
  }
  sub(b: Input): Variable {
    return arith.sub(this, b);
  }
  mul(b: Input): Variable {
    return arith.mul(this, b);
  }
  div(b: Input): Variable {
    return arith.div(this, b);
  }
  pow(b: Input): Variable {
    return arith.pow(this, b);
  }
  neg(): Variable {
    return unary.neg(this);
  }
  exp(): Variable {
    return unary.exp(this);
  }
  log(): Variable {
    return unary.log(this);
  }
  sqrt(): Variable {
    return unary.sqrt(this);
  }
  sigmoid(): Variable {
    return unary.sigmoid(this);
  }
  tanh(): Variable {
    return unary.tanh(this);
  }
  relu(): Variable {
    return act.relu(this);
  }
  leakyRelu(slope?: number): Variable {
    return act.leakyRelu(this, slope);
  }
  matmul(b: Variable): Variable {
    return mm.matmul(this, b);
  }
  sum(axes?: number | readonly number[], keepdims = false): Variable {
    return red.sum(this, axes, keepdims);
  }
  mean(axes?: number | readonly number[], keepdims = false): Variable {
    return red.mean(this, axes, keepdims);
  }
  max(axes?: number | readonly number[], keepdims = false): Variable {
    return red.max(this, axes, keepdims);
  }
  min(axes?: number | readonly number[], keepdims = false): Variable {
    return red.min(this, axes, keepdims);
  }
  reshape(shape: readonly number[]): Variable {
    return shp.reshape(this, shape);
  }
  flatten(startAxis?: number, endAxis?: number): Variable {
    return shp.flatten(this, startAxis, endAxis);
  }
  transpose(axes?: readonly number[]): Variable {
    return shp.transpose(this, axes);
  }
  permute(axes: readonly number[]): Variable {
    return shp.permute(this, axes);
  }
  broadcastTo(shape: readonly number[]): Variable {
    return shp.broadcastTo(this, shape);
  }
  unsqueeze(axis: number): Variable {
    return shp.unsqueeze(this, axis);
  }
  squeeze(axes?: number | readonly number[]): Variable {
    return shp.squeeze(this, axes);
  }
  slice(...specs: SliceArg[]): Variable {
    return sl.slice(this, ...specs);
  }
  logSoftmax(axis?: number): Variable {
    return sm.logSoftmax(this, axis);
  }
  softmax(axis?: number): Variable {
    return sm.softmax(this, axis);
  }
}
