// BufferArena: reuse of the arrays one training step allocates, from step to step.
//
// Why: every op allocates its outputs and gradients fresh. On the project's VM a fresh
// [128, 300] float32 array costs ~36 minor page faults (the allocator maps new pages for
// large backing stores and hands them back when they are collected), and the collections
// come in bursts every few steps: the mean fine-tuning step of the pruned LeNet-300-100 paid
// ~2.4 ms of bursts on a 3.8 ms median (docs/benchmarks/bsr-linear.md). A training step
// allocates the same arrays in the same sizes every time, so an arena that takes them back
// when the step ends and hands them out again in the next step allocates nothing new after
// the first step.
//
// Ownership rule (also in the README): inside `arena.step(fn)`, every array autograd's ops
// allocate (outputs, saved temporaries, gradients, through util.ts's allocLike) belongs to
// the arena and is recycled when `step` returns, except
//   - arrays passed to `keep()` (or inside a Tensor / Variable passed to it),
//   - the array(s) of what `fn` returns when it returns a Variable, Tensor or typed array,
//   - gradients still held in a Variable's .grad when the step ends (a leaf's accumulated
//     gradient that nobody cleared: gradient accumulation across steps stays correct).
// Everything else made inside the step (the graph's saved tensors, the loss Variable, the
// logits) must not be read after `step` returns. With `{ poison: true }` recycled arrays are
// filled with NaN, so such a stale read shows up as NaN instead of silently wrong numbers.
// Arrays handed out are zero-filled, like fresh ones (several ops, like pooling's backward and
// the bias sums, add into their output), except where an op asks for an array it writes whole
// before reading (util.ts allocOutputLike: pointwise ops, the convolution's output and input
// gradient); that fill was 4.5% of the calling thread in a two-thread smallCnn() step. While a
// matrix pool is set they are on SharedArrayBuffers (util.ts asks), which the pool's workers
// use in place.
//
// The arena is an ordinary object the caller creates and passes (fit's `arena` option).
// While `step` runs it is the active arena of this module (a dynamic scope like noGrad's
// switch), because ops have no argument through which a model's forward could pass it.
import { Tensor } from "@tessera/tensor";
// Type only: variable.ts -> engine.ts -> util.ts -> arena.ts would otherwise be a cycle.
import type { Variable } from "./variable.ts";

type FloatArray = Float32Array | Float64Array;

export interface BufferArenaOptions {
  /** Fill recycled arrays with NaN so a read after the step ends shows. Default false. */
  poison?: boolean;
}

/** Counts since the arena was made (or since clear()). */
export interface BufferArenaStats {
  /** Arrays created because no free one of that type and length was left. */
  allocated: number;
  /** Arrays handed out again from the free lists. */
  reused: number;
  /** Arrays currently waiting in the free lists. */
  free: number;
  /** Bytes held in the free lists. */
  freeBytes: number;
}

let active: BufferArena | null = null;

/** Makes `arena` the active one; returns the one active before. */
function enter(arena: BufferArena | null): BufferArena | null {
  const prev = active;
  active = arena;
  return prev;
}

/** The arena whose step() is running, if any (autograd's allocLike asks). */
export function activeArena(): BufferArena | null {
  return active;
}

/** A Variable without importing its class: an object whose .data is a Tensor and has .grad. */
function isVariable(x: unknown): x is Variable {
  return (
    typeof x === "object" &&
    x !== null &&
    (x as Variable).data instanceof Tensor &&
    "grad" in x &&
    "requiresGrad" in x
  );
}

/** Free-list key: element type, memory (SharedArrayBuffer or not) and length. */
const keyOf = (f64: boolean, shared: boolean, n: number): string =>
  `${f64 ? "d" : "f"}${shared ? "s" : ""}${n}`;

export class BufferArena {
  readonly poison: boolean;
  private readonly free = new Map<string, FloatArray[]>();
  /** Arrays handed out during the running step. */
  private live: FloatArray[] = [];
  /** Buffers (by their ArrayBuffer) that must not be recycled at the end of this step. */
  private readonly kept = new Set<ArrayBufferLike>();
  /** Variables whose .grad adopted an arena array during this step. */
  private gradHolders: Variable[] = [];
  private running = false;
  private allocated = 0;
  private reused = 0;

  constructor(options: BufferArenaOptions = {}) {
    if (options === null || typeof options !== "object") {
      throw new TypeError(`BufferArena: options must be an object, got ${String(options)}`);
    }
    const poison = options.poison ?? false;
    if (typeof poison !== "boolean") {
      throw new TypeError(`BufferArena: options.poison must be a boolean, got ${typeof poison}`);
    }
    this.poison = poison;
  }

  /**
   * Runs `fn` (one training step: forward, loss, backward, optimizer step) with this arena
   * active, then recycles what it allocated (see the ownership rule above). If `fn` returns a
   * Variable, Tensor or float array, its array is kept. Not re-entrant: a step of this arena
   * inside another step of it throws. The previously active arena (if any) is restored, also
   * when `fn` throws (then everything the step allocated is left to the garbage collector:
   * the graph of a failed step may still be referenced).
   */
  step<T>(fn: () => T): T {
    if (typeof fn !== "function") {
      throw new TypeError(`BufferArena.step: expected a function, got ${typeof fn}`);
    }
    if (this.running) {
      throw new Error(
        "BufferArena.step: this arena's step is already running (steps of one arena do not nest)",
      );
    }
    const prev = enter(this);
    this.running = true;
    let ok = false;
    try {
      const result = fn();
      if (typeof (result as { then?: unknown } | null)?.then === "function") {
        // the arena stops being active when this call returns, before any awaited work runs
        throw new TypeError(
          "BufferArena.step: fn returned a promise; a step must run synchronously (await outside it)",
        );
      }
      if (
        isVariable(result) ||
        result instanceof Tensor ||
        result instanceof Float32Array ||
        result instanceof Float64Array
      ) {
        this.keep(result);
      }
      ok = true;
      return result;
    } finally {
      enter(prev);
      this.running = false;
      if (ok) this.recycle();
      else this.forget();
    }
  }

  /**
   * Marks `x` (a float array, or a Tensor's / Variable's data and gradient) as outliving the
   * running step: its memory is never recycled. Returns `x`. Outside a step it does nothing.
   */
  keep<T extends Variable | Tensor | FloatArray>(x: T): T {
    if (isVariable(x)) {
      this.kept.add(x.data.data.buffer);
      if (x.grad !== null) this.kept.add(x.grad.data.buffer);
    } else if (x instanceof Tensor) this.kept.add(x.data.buffer);
    else if (x instanceof Float32Array || x instanceof Float64Array) this.kept.add(x.buffer);
    else {
      throw new TypeError(
        `BufferArena.keep: expected a Variable, Tensor, Float32Array or Float64Array, got ${x === null ? "null" : typeof x}`,
      );
    }
    return x;
  }

  /** Drops the free lists (their memory goes to the garbage collector) and zeroes the counts. */
  clear(): void {
    this.free.clear();
    this.allocated = 0;
    this.reused = 0;
  }

  get stats(): BufferArenaStats {
    let free = 0;
    let freeBytes = 0;
    for (const list of this.free.values()) {
      free += list.length;
      for (const a of list) freeBytes += a.byteLength;
    }
    return { allocated: this.allocated, reused: this.reused, free, freeBytes };
  }

  /**
   * @internal A zero-filled array of `n` elements of `like`'s type, owned by the running step;
   * on a SharedArrayBuffer when `shared` (a matrix pool is set: its workers then read and write
   * the array in place instead of through staging copies, and since the arena reuses it from
   * step to step, it is posted to the workers once, not every step). With `zero` false a reused
   * array keeps its old contents (poison mode: NaN), for ops that write every element first.
   */
  take(f64: boolean, n: number, shared = false, zero = true): FloatArray {
    const list = this.free.get(keyOf(f64, shared, n));
    let a = list?.pop();
    if (a === undefined) {
      const bytes = (f64 ? 8 : 4) * n;
      const buf = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
      a = f64 ? new Float64Array(buf) : new Float32Array(buf);
      this.allocated++;
    } else {
      if (zero) this.clearForReuse(a);
      this.reused++;
    }
    this.live.push(a);
    return a;
  }

  /** @internal `v.grad` now holds an array that may be the arena's (engine.ts calls this). */
  noteGrad(v: Variable): void {
    this.gradHolders.push(v);
  }

  /** Zero-fills an array taken from a free list (fresh arrays are zero already). */
  protected clearForReuse(a: FloatArray): void {
    a.fill(0);
  }

  private recycle(): void {
    for (const v of this.gradHolders) if (v.grad !== null) this.kept.add(v.grad.data.buffer);
    for (const a of this.live) {
      if (this.kept.has(a.buffer)) continue;
      if (this.poison) a.fill(NaN);
      const key = keyOf(a instanceof Float64Array, a.buffer instanceof SharedArrayBuffer, a.length);
      const list = this.free.get(key);
      if (list === undefined) this.free.set(key, [a]);
      else list.push(a);
    }
    this.forget();
  }

  private forget(): void {
    this.live = [];
    this.gradHolders = [];
    this.kept.clear();
  }
}
