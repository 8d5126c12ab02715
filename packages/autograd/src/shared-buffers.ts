// Reused SharedArrayBuffer memory for the big internal arrays of pooled ops (conv2d's patch
// matrix and its temporaries).
//
// Why: a pool's workers can only read shared memory, so an ordinary array handed to a pooled
// product is first copied into the pool's shared scratch (and an output copied back). For
// conv2d the patch matrix is the biggest operand of two products per step (115 MB at batch 128
// in the small CNN's second layer), and those copies were 14% of that model's epoch. Fresh
// SharedArrayBuffers per step are no way out: each new one is posted to the workers, which
// only let go of it when a FinalizationRegistry callback runs, and a synchronous training loop
// never lets it run. So these buffers are allocated once and reused from step to step.
//
// Without a pool set, everything here hands out fresh ordinary arrays, as before.
import { sharedFloat32, sharedFloat64 } from "@tessera/matrix";
import { getMatrixPool } from "./matrix-pool.ts";
import { allocLike, type FloatArray } from "./util.ts";

const sharedLike = (like: FloatArray, n: number): FloatArray =>
  like instanceof Float64Array ? sharedFloat64(n) : sharedFloat32(n);

const scratch = new Map<string, FloatArray>();

/**
 * `length` elements like `like` for a temporary that is dead when the calling op's forward (or
 * backward) returns: shared memory reused by every call with the same `role`, so the contents
 * are whatever the last call left (callers overwrite what they read). Ops run synchronously,
 * so two calls never hold the same role at once.
 */
export function temporary(role: string, like: FloatArray, length: number): FloatArray {
  if (getMatrixPool() === undefined) return allocLike(like, length);
  const key = `${role}:${like instanceof Float64Array ? "f64" : "f32"}`;
  let buf = scratch.get(key);
  if (buf === undefined || buf.length < length) {
    buf = sharedLike(like, length);
    scratch.set(key, buf);
  }
  return buf.subarray(0, length);
}

interface Saved {
  buf: FloatArray;
  inUse: boolean;
}
const savedByOwner = new WeakMap<object, Saved>();

/** An array an op keeps from its forward to its backward; `release()` when done with it. */
export interface SavedArray {
  data: FloatArray;
  release(): void;
}

/**
 * `length` elements like `like` that stay valid until `release()`: the shared buffer reused by
 * `owner` (a layer's weight) when it is free, else a fresh ordinary array. A forward whose
 * graph is still waiting for its backward (two forwards before one backward, as in gradient
 * accumulation, or a graph never backpropagated) therefore never sees its saved array
 * overwritten; it only loses the reuse.
 */
export function saveForBackward(owner: object, like: FloatArray, length: number): SavedArray {
  if (getMatrixPool() === undefined) return { data: allocLike(like, length), release() {} };
  let saved = savedByOwner.get(owner);
  if (saved?.inUse === true) return { data: allocLike(like, length), release() {} };
  if (
    saved === undefined ||
    saved.buf.length < length ||
    saved.buf instanceof Float64Array !== like instanceof Float64Array
  ) {
    saved = { buf: sharedLike(like, length), inUse: false };
    savedByOwner.set(owner, saved);
  }
  const s = saved;
  s.inUse = true;
  let released = false;
  return {
    data: s.buf.subarray(0, length),
    release() {
      if (released) return;
      released = true;
      s.inUse = false;
    },
  };
}
