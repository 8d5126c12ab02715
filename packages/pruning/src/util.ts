// Small helpers the package's layers and group code share.
import { sharedFloat32, sharedFloat64 } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";

/** "[300,784]": shapes in error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** A copy on shared memory (parameters live there so a pool's workers read them in place). */
export function sharedCopy(a: FloatArray): FloatArray {
  const c = a instanceof Float64Array ? sharedFloat64(a.length) : sharedFloat32(a.length);
  c.set(a);
  return c;
}

export function sameInts(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
