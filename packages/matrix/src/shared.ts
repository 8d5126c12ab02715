// Typed arrays on SharedArrayBuffer memory, which pool workers can read and write in place.
import type { FloatArray } from "./types.ts";

/** A Float32Array whose memory is shared with pool workers (zero-filled). */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * n));
}

/** A Float64Array whose memory is shared with pool workers (zero-filled). */
export function sharedFloat64(n: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(8 * n));
}

/** An Int32Array whose memory is shared with pool workers (zero-filled). */
export function sharedInt32(n: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * n));
}

/** True when the array's memory is a SharedArrayBuffer (the pool can use it without copying). */
export function isShared(arr: FloatArray | Int32Array): boolean {
  return arr.buffer instanceof SharedArrayBuffer;
}

/** Returns `arr` itself when already shared, else a shared copy of it (same element type). */
export function toShared<T extends FloatArray | Int32Array>(arr: T): T {
  if (isShared(arr)) return arr;
  const Ctor = arr.constructor as { new (b: SharedArrayBuffer): T };
  const copy = new Ctor(new SharedArrayBuffer(arr.byteLength));
  copy.set(arr as never);
  return copy;
}

/** Shared array of the same element type as `like`. */
export function sharedLike<T extends FloatArray>(like: T, n: number): T {
  return (like instanceof Float32Array ? sharedFloat32(n) : sharedFloat64(n)) as T;
}
