// Max pooling on the wasm path (the forward's kernel is in wasm-pool2d.ts) and its backward: the
// gradient of each window's output goes to the input element that won the window (its flat
// index saved by the forward), gx[arg[i]] += gy[i].
//
// The forward is split over a pool by planes too (each plane's windows, values and indices are
// the same whichever thread pools it).
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
import { runMaxPoolBackward, runMaxPoolForward } from "./parallel.ts";
import { checkLen, maxPoolRange, maxPoolWhole, outSize, planesPerBlock } from "./wasm-pool2d.ts";
import type { MaxPool2dGeometry, MaxPoolArgs } from "./wasm-pool2d.ts";
import { localWasmThread } from "./wasm-gemm.ts";

/**
 * Max pooling of x [n, c, h, w] (float32) into y [n, c, outH, outW] and the flat input index of
 * each window's first maximum into arg; outH = floor((h - kh) / strideH) + 1 (likewise outW).
 * With a pool, the planes are split over its threads when x, y and arg are all on shared memory
 * (an Int32 array the pool staged would be cached by identity) and the work pays for it.
 */
export function wasmMaxPool2d(
  x: Float32Array,
  g: MaxPool2dGeometry,
  y: Float32Array,
  arg: Int32Array,
  options?: { pool?: MatrixPool },
): void {
  const fn = "wasmMaxPool2d";
  const [oh, ow] = outSize(fn, g);
  const planes = g.n * g.c;
  const size = planes * g.h * g.w;
  const count = planes * oh * ow;
  checkLen(fn, "x", x, size, `[${g.n}, ${g.c}, ${g.h}, ${g.w}]`);
  checkLen(fn, "y", y, count, `[${g.n}, ${g.c}, ${oh}, ${ow}]`);
  checkLen(fn, "arg", arg, count, `[${g.n}, ${g.c}, ${oh}, ${ow}]`);
  if (count === 0) return;
  const a: MaxPoolArgs = {
    x: x.subarray(0, size),
    y: y.subarray(0, count),
    arg: arg.subarray(0, count),
    h: g.h,
    w: g.w,
    kh: g.kh,
    kw: g.kw,
    strideH: g.strideH,
    strideW: g.strideW,
    oh,
    ow,
  };
  if (planesPerBlock(a) === 0) {
    maxPoolWhole(a, planes);
    return;
  }
  const shared = [x, y, arg].every((v) => v.buffer instanceof SharedArrayBuffer);
  runMaxPoolForward(a, planes, size, shared ? options?.pool : undefined, (lo, hi) =>
    maxPoolRange(localWasmThread(), a, lo, hi),
  );
}

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
