// Max pooling's backward: the gradient of each window's output goes to the input element that
// won the window (its flat index saved by the forward), gx[arg[i]] += gy[i].
//
// Split over a pool by planes (an image's channel): a plane's windows only reach its own input
// plane, so threads write disjoint parts of gx, and within a plane the order of the additions
// is the serial loop's: the same bits on any thread count. On one thread this loop was 7% of a
// two-thread LeNet-5 step on the wasm path (the calling thread's samples, both poolings, while
// the worker waited; docs/benchmarks/epoch-profile.md), the largest serial piece left.
import type { FloatArray } from "./types.ts";
import { checkDim, checkFloatArray, checkSameType } from "./types.ts";
import type { MaxPoolBackwardArgs } from "./pool2d-kernel.ts";
import type { MatrixPool } from "./pool.ts";
import { runMaxPoolBackward } from "./parallel.ts";

/**
 * Adds max pooling's input gradient onto `gx` ([planes, inPlane], usually zeros): for every
 * output i of `planes` planes of `outPlane` outputs, gx[arg[i]] += gy[i], where arg[i] (from the
 * forward) is a flat index into plane floor(i / outPlane) of gx. With a pool, planes are split
 * over its threads when gy, arg and gx are all on shared memory (an Int32 array staged by the
 * pool would be cached by identity, and arg changes every step) and the work pays for it.
 */
export function maxPool2dBackward(
  gy: FloatArray,
  arg: Int32Array,
  gx: FloatArray,
  planes: number,
  inPlane: number,
  outPlane: number,
  options?: { pool?: MatrixPool },
): void {
  const fn = "maxPool2dBackward";
  checkDim(fn, "planes", planes);
  checkDim(fn, "inPlane", inPlane);
  checkDim(fn, "outPlane", outPlane);
  checkFloatArray(fn, "gy", gy);
  checkFloatArray(fn, "gx", gx);
  checkSameType(fn, "gx", gy, gx);
  if (!(arg instanceof Int32Array))
    throw new TypeError(`${fn}: arg must be an Int32Array of window maxima's input indices`);
  const outs = planes * outPlane;
  if (gy.length < outs || arg.length < outs)
    throw new RangeError(
      `${fn}: gy has ${gy.length} and arg ${arg.length} values, expected planes*outPlane = ${planes}*${outPlane} = ${outs} each`,
    );
  if (gx.length < planes * inPlane)
    throw new RangeError(
      `${fn}: gx has ${gx.length} values, expected planes*inPlane = ${planes}*${inPlane} = ${planes * inPlane}`,
    );
  const args: MaxPoolBackwardArgs = { gy, arg, gx, inPlane, outPlane };
  const shared = [gy, arg, gx].every((a) => a.buffer instanceof SharedArrayBuffer);
  runMaxPoolBackward(args, planes, shared ? options?.pool : undefined);
}
