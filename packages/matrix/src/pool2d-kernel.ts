// The kernel of max pooling's backward (pool2d.ts): no imports beyond types, as the pool's
// workers load it.
import type { FloatArray } from "./types.ts";

/** The job's fields: `planes` planes of outPlane outputs, each scattering into inPlane inputs. */
export interface MaxPoolBackwardArgs {
  gy: FloatArray;
  arg: Int32Array;
  gx: FloatArray;
  inPlane: number;
  outPlane: number;
}

/**
 * Planes [p0, p1): gx[arg[i]] += gy[i] for their outputs, in order. An index outside its own
 * plane throws: on a pool it would race with the thread that owns the other plane.
 */
export function maxPoolBackwardRange(a: MaxPoolBackwardArgs, p0: number, p1: number): void {
  const { gy, arg, gx, inPlane, outPlane } = a;
  for (let p = p0; p < p1; p++) {
    const lo = p * inPlane;
    const hi = lo + inPlane;
    for (let i = p * outPlane, end = i + outPlane; i < end; i++) {
      const k = arg[i]!;
      if (!(k >= lo && k < hi))
        throw new RangeError(
          `maxPool2dBackward: arg[${i}] = ${k} is outside its plane ${p} (inputs ${lo}..${hi - 1})`,
        );
      gx[k] = gx[k]! + gy[i]!;
    }
  }
}
