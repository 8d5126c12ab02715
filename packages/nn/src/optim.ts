// Optimizers that update parameters in place on their typed arrays: one fused loop per
// parameter per step, state buffers allocated once on first use, no tensors created per step.
//
// Gradient masks (for pruning): `setMask(param, mask)` registers a 0/1 mask of the parameter's
// size. On every step the gradient is multiplied by the mask before anything else (so momentum
// and Adam moments only ever see zero gradient at pruned positions), and after the update the
// positions where mask == 0 are set to exactly 0, so stale momentum from before pruning (or
// weight decay arithmetic) cannot revive a pruned weight. Registering a mask also clears the
// parameter's state buffers (momentum, Adam moments) at its masked-out positions, so nothing
// stale is left to revive a pruned weight once the mask is removed (pruning's strip()).
//
// Ownership: the optimizer only applies masks. The pruning state (@tessera/pruning) owns them
// and saves them; optimizer checkpoints leave them out.
import { getMatrixPool } from "@tessera/autograd";
import { adamUpdate } from "@tessera/matrix";
import type { TensorRecord } from "./safetensors.ts";
import { toSchedule, type Schedule } from "./schedules.ts";

import type { FloatArray } from "./types.ts";
export type MaskArray = Float32Array | Float64Array | Uint8Array | Int32Array;

/** What an optimizer needs from a parameter; @tessera/autograd's Variable satisfies it. */
export interface ParamLike {
  data: { data: ArrayLike<number>; shape: readonly number[] };
  grad: { data: ArrayLike<number> } | null;
  requiresGrad: boolean;
  name?: string;
}

export interface OptimizerOptions {
  /** A fixed learning rate or a schedule of the optimizer step (see schedules.ts). */
  lr: number | Schedule;
}

function describe(p: ParamLike, i: number): string {
  return p.name !== undefined ? `parameter ${i} ("${p.name}")` : `parameter ${i}`;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export abstract class Optimizer {
  readonly params: ParamLike[];
  readonly schedule: Schedule;
  /** Number of step() calls so far; the schedule is evaluated at this value. */
  stepCount = 0;
  private readonly masks = new Map<ParamLike, MaskArray>();
  protected readonly fnName: string;

  constructor(fnName: string, params: Iterable<ParamLike>, options: OptimizerOptions) {
    this.fnName = fnName;
    if (params === null || typeof params !== "object" || !(Symbol.iterator in params)) {
      throw new Error(
        `${fnName}: params must be an iterable of parameters (e.g. model.parameters())`,
      );
    }
    this.params = [...params];
    const seen = new Set<ParamLike>();
    this.params.forEach((p, i) => {
      if (
        p === null ||
        typeof p !== "object" ||
        p.data === undefined ||
        p.data.data === undefined
      ) {
        throw new Error(`${fnName}: ${describe(p, i)} is not a parameter (expected a Variable)`);
      }
      const d = p.data.data;
      if (!(d instanceof Float32Array) && !(d instanceof Float64Array)) {
        throw new Error(`${fnName}: ${describe(p, i)} must hold float32 or float64 data`);
      }
      if (d.length !== sizeOf(p.data.shape)) {
        // A view into a larger buffer would be updated at the wrong positions.
        throw new Error(
          `${fnName}: ${describe(p, i)} must own contiguous storage (data length ${d.length}, shape [${p.data.shape.join(",")}])`,
        );
      }
      if (seen.has(p)) throw new Error(`${fnName}: ${describe(p, i)} appears twice in params`);
      seen.add(p);
    });
    if (
      options === undefined ||
      options === null ||
      (typeof options.lr !== "number" && typeof options.lr !== "function")
    ) {
      throw new Error(`${fnName}: options.lr must be a number or a schedule function`);
    }
    this.schedule = toSchedule(options.lr);
  }

  /** The learning rate the next step() will use. */
  get lr(): number {
    return this.schedule(this.stepCount);
  }

  /**
   * Registers (or with null removes) a gradient mask for one of this optimizer's parameters,
   * and clears the parameter's state (momentum, Adam moments) where the mask is 0. The array
   * is kept by reference: after changing its contents (a further pruning round), call
   * setMask again so the newly masked positions' state is cleared too.
   */
  setMask(param: ParamLike, mask: MaskArray | null): void {
    const i = this.params.indexOf(param);
    if (i < 0)
      throw new Error(`${this.fnName}.setMask: the parameter is not managed by this optimizer`);
    if (mask === null) {
      this.masks.delete(param);
      return;
    }
    const n = param.data.data.length;
    if (!ArrayBuffer.isView(mask) || (mask as MaskArray).length !== n) {
      throw new Error(
        `${this.fnName}.setMask: mask for ${describe(param, i)} must be a typed array of ${n} elements, got ${ArrayBuffer.isView(mask) ? (mask as MaskArray).length : typeof mask}`,
      );
    }
    this.masks.set(param, mask);
    for (const arrays of Object.values(this.stateBuffers())) {
      const a = arrays[i] ?? null;
      if (a !== null) for (let k = 0; k < n; k++) if (mask[k] === 0) a[k] = 0;
    }
  }

  getMask(param: ParamLike): MaskArray | undefined {
    return this.masks.get(param);
  }

  /** Clears every parameter's gradient (sets it to null, as Variable.zeroGrad does). */
  zeroGrad(): void {
    for (const p of this.params) {
      const z = (p as { zeroGrad?: () => void }).zeroGrad;
      if (typeof z === "function") z.call(p);
      else p.grad = null;
    }
  }

  /** One update of every parameter that requires grad and has a gradient. */
  step(): void {
    const lr = this.schedule(this.stepCount);
    if (!Number.isFinite(lr) || lr < 0) {
      throw new RangeError(
        `${this.fnName}.step: the schedule gave lr = ${lr} at step ${this.stepCount}; expected a finite number >= 0`,
      );
    }
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i]!;
      if (!p.requiresGrad || p.grad === null) continue;
      const w = p.data.data as FloatArray;
      const g = p.grad.data as FloatArray;
      if (g.length !== w.length) {
        throw new Error(
          `${this.fnName}.step: gradient of ${describe(p, i)} has ${g.length} elements, expected ${w.length}`,
        );
      }
      const mask = this.masks.get(p);
      if (mask !== undefined) for (let k = 0; k < g.length; k++) g[k]! *= mask[k]!;
      this.update(i, w, g, lr);
      if (mask !== undefined) for (let k = 0; k < w.length; k++) if (mask[k] === 0) w[k] = 0;
    }
    this.stepCount++;
  }

  /** Updates parameter `index` (weights `w`, gradient `g`) in place with learning rate `lr`. */
  protected abstract update(index: number, w: FloatArray, g: FloatArray, lr: number): void;

  /** Per-parameter state buffers by key (null until the parameter's first update). */
  protected abstract stateBuffers(): Record<string, (FloatArray | null)[]>;

  /** Per-parameter scalar counters by key (e.g. Adam's step count). */
  protected stateCounters(): Record<string, number[]> {
    return {};
  }

  /**
   * The optimizer's state as safetensors records, keyed "<param index>.<state>" (as in
   * PyTorch's optimizer state_dict) plus "step_count"; save it with saveSafetensors to
   * resume training exactly. Masks are not included (the pruning code owns them).
   */
  stateDict(): Map<string, TensorRecord> {
    const out = new Map<string, TensorRecord>();
    out.set("step_count", { dtype: "F64", shape: [], data: new Float64Array([this.stepCount]) });
    for (const [key, arrays] of Object.entries(this.stateBuffers())) {
      arrays.forEach((a, i) => {
        if (a === null) return;
        out.set(`${i}.${key}`, {
          dtype: a instanceof Float32Array ? "F32" : "F64",
          shape: [...this.params[i]!.data.shape],
          data: a.slice(),
        });
      });
    }
    for (const [key, values] of Object.entries(this.stateCounters())) {
      values.forEach((v, i) =>
        out.set(`${i}.${key}`, { dtype: "F64", shape: [], data: new Float64Array([v]) }),
      );
    }
    return out;
  }

  /** Restores state written by stateDict() for the same parameter list; checks keys and sizes first. */
  loadStateDict(state: Map<string, TensorRecord>): void {
    const fn = `${this.fnName}.loadStateDict`;
    const own = new Set<string>(["step_count"]);
    const buffers = this.stateBuffers();
    const counters = this.stateCounters();
    for (const [key, arrays] of Object.entries(buffers))
      arrays.forEach((_, i) => own.add(`${i}.${key}`));
    for (const [key, values] of Object.entries(counters))
      values.forEach((_, i) => own.add(`${i}.${key}`));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    if (unexpected.length > 0) throw new Error(`${fn}: unexpected keys: ${unexpected.join(", ")}`);
    const scalar = (key: string): number | undefined => {
      const r = state.get(key);
      if (r === undefined) return undefined;
      if (r.data.length !== 1)
        throw new Error(`${fn}: "${key}" must hold one number, got ${r.data.length}`);
      return Number(r.data[0]);
    };
    const stepCount = scalar("step_count");
    if (stepCount === undefined || !Number.isSafeInteger(stepCount) || stepCount < 0) {
      throw new Error(`${fn}: "step_count" must be present and a non-negative integer`);
    }
    const plan: (() => void)[] = [];
    for (const [key, arrays] of Object.entries(buffers)) {
      arrays.forEach((_, i) => {
        const r = state.get(`${i}.${key}`);
        if (r === undefined) {
          plan.push(() => (arrays[i] = null));
          return;
        }
        const w = this.params[i]!.data.data as FloatArray;
        if (r.data.length !== w.length || (r.dtype !== "F32" && r.dtype !== "F64")) {
          throw new Error(
            `${fn}: "${i}.${key}" has ${r.data.length} ${r.dtype} values, parameter ${i} has ${w.length} float values`,
          );
        }
        plan.push(() => {
          const a = this.newState(w);
          a.set(r.data as FloatArray);
          arrays[i] = a;
        });
      });
    }
    for (const [key, values] of Object.entries(counters)) {
      values.forEach((_, i) => {
        const v = scalar(`${i}.${key}`) ?? 0;
        plan.push(() => (values[i] = v));
      });
    }
    for (const apply of plan) apply();
    this.stepCount = stepCount;
  }

  /** A zeroed state buffer like `w`, on shared memory when `w` is (so a pool can update it in place). */
  protected newState(w: FloatArray): FloatArray {
    const bytes = (w instanceof Float32Array ? 4 : 8) * w.length;
    const buf =
      w.buffer instanceof SharedArrayBuffer ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    return w instanceof Float32Array ? new Float32Array(buf) : new Float64Array(buf);
  }
}

function checkNonNegative(fn: string, name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0)
    throw new RangeError(`${fn}: ${name} must be a finite number >= 0, got ${v}`);
}

export interface SGDOptions extends OptimizerOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient: g += weightDecay * w. */
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with PyTorch's update rule:
 *   g = g + wd * w;  b = momentum * b + (1 - dampening) * g  (b = g on the first step);
 *   d = nesterov ? g + momentum * b : b;  w = w - lr * d.
 */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private readonly buffers: (FloatArray | null)[];

  constructor(params: Iterable<ParamLike>, options: SGDOptions) {
    super("SGD", params, options);
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.weightDecay = options.weightDecay ?? 0;
    checkNonNegative("SGD", "momentum", this.momentum);
    checkNonNegative("SGD", "dampening", this.dampening);
    checkNonNegative("SGD", "weightDecay", this.weightDecay);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new RangeError(
        `SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got momentum=${this.momentum}, dampening=${this.dampening}`,
      );
    }
    this.buffers = this.params.map(() => null);
  }

  protected stateBuffers(): Record<string, (FloatArray | null)[]> {
    return { momentum_buffer: this.buffers };
  }

  protected update(index: number, w: FloatArray, g: FloatArray, lr: number): void {
    const wd = this.weightDecay;
    const mu = this.momentum;
    const n = w.length;
    if (mu === 0) {
      for (let k = 0; k < n; k++) w[k] = w[k]! - lr * (g[k]! + wd * w[k]!);
      return;
    }
    let b = this.buffers[index] ?? null;
    const first = b === null;
    if (b === null) {
      b = this.newState(w);
      this.buffers[index] = b;
    }
    const damp = first ? 1 : 1 - this.dampening;
    const nest = this.nesterov;
    for (let k = 0; k < n; k++) {
      const gk = g[k]! + wd * w[k]!;
      const bk = mu * b[k]! + damp * gk;
      b[k] = bk;
      w[k] = w[k]! - lr * (nest ? gk + mu * bk : bk);
    }
  }
}

export interface AdamOptions extends OptimizerOptions {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

function checkBeta(fn: string, name: string, v: number): void {
  if (!(v >= 0 && v < 1)) throw new RangeError(`${fn}: ${name} must be in [0, 1), got ${v}`);
}

/**
 * Adam (Kingma & Ba 2015) in PyTorch's form, per parameter with its own step count t:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *   w = w - (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
 * `decoupled` selects AdamW (Loshchilov & Hutter 2019): w = w * (1 - lr * wd) before the step,
 * instead of Adam's L2 term g = g + wd * w.
 */
class AdamBase extends Optimizer {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly decoupled: boolean;
  private readonly m: (FloatArray | null)[];
  private readonly v: (FloatArray | null)[];
  private readonly t: number[];

  constructor(
    fnName: string,
    params: Iterable<ParamLike>,
    options: AdamOptions,
    decoupled: boolean,
    defaultWd: number,
  ) {
    super(fnName, params, options);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? defaultWd;
    checkBeta(fnName, "beta1", this.beta1);
    checkBeta(fnName, "beta2", this.beta2);
    if (!(this.eps > 0) || !Number.isFinite(this.eps))
      throw new RangeError(`${fnName}: eps must be a finite number > 0, got ${this.eps}`);
    checkNonNegative(fnName, "weightDecay", this.weightDecay);
    this.decoupled = decoupled;
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
    this.t = this.params.map(() => 0);
  }

  protected stateBuffers(): Record<string, (FloatArray | null)[]> {
    return { exp_avg: this.m, exp_avg_sq: this.v };
  }

  protected override stateCounters(): Record<string, number[]> {
    return { step: this.t };
  }

  protected update(index: number, w: FloatArray, g: FloatArray, lr: number): void {
    let m = this.m[index] ?? null;
    let v = this.v[index] ?? null;
    if (m === null || v === null) {
      m = this.newState(w);
      v = this.newState(w);
      this.m[index] = m;
      this.v[index] = v;
    }
    const t = (this.t[index] = this.t[index]! + 1);
    // The loop is @tessera/matrix's adamUpdate: split over the matrix pool (autograd's
    // setMatrixPool) when the arrays are shared, with the same bits either way; on the pool's
    // (or the process's) wasm kernel path float32 parameters take its f32x4 kernel.
    adamUpdate(
      w,
      g,
      m,
      v,
      {
        beta1: this.beta1,
        beta2: this.beta2,
        eps: this.eps,
        stepSize: lr / (1 - Math.pow(this.beta1, t)),
        bc2sqrt: Math.sqrt(1 - Math.pow(this.beta2, t)),
        l2: this.decoupled ? 0 : this.weightDecay,
        shrink: this.decoupled ? 1 - lr * this.weightDecay : 1,
      },
      { pool: getMatrixPool() },
    );
  }
}

/** Adam; `weightDecay` (default 0) is an L2 term added to the gradient. */
export class Adam extends AdamBase {
  constructor(params: Iterable<ParamLike>, options: AdamOptions) {
    super("Adam", params, options, false, 0);
  }
}

/** AdamW; `weightDecay` (default 0.01, as PyTorch) is decoupled: w *= 1 - lr * wd each step. */
export class AdamW extends AdamBase {
  constructor(params: Iterable<ParamLike>, options: AdamOptions) {
    super("AdamW", params, options, true, 0.01);
  }
}
