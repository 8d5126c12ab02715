// Max pooling (NCHW, no padding) on generated WebAssembly kernels, for the "wasm" kernel path.
//
// The JavaScript loops of @tessera/autograd's maxPool2d (the reference, and the asm path) cost
// ~11 ns per input element in a LeNet-5 epoch profile, 8-13% of the epoch on the wasm path once
// the convolutions were fast (docs/benchmarks/epoch-profile.md). Here the input is copied into
// this thread's kernel memory, one kernel walks every window (unrolled for windows of up to
// UNROLL_TAPS taps, one module per window size), and the maxima and their flat input indices
// are copied out. Same rule as the JS loop: the first maximum of a window in
// row-major order wins (a strictly greater value replaces it; a NaN never does), so the outputs
// are bitwise the JS loop's. The planes go through the thread's scratch region a block at a
// time, and pool2d.ts splits them over a pool (when x, y and arg are shared and the work pays:
// 1.8% + 2.1% of the calling thread in a two-thread smallCnn() step when serial). There is no
// backward kernel: the scatter loop (maxPool2dBackward in pool2d.ts, gx[arg[i]] += gy[i]) reads
// 2 and writes 1 array once, where a kernel needs gx zeroed and copied in and out of kernel
// memory, and ran 2.4x slower (bench/lenet5-step.ts).
import { I32, ModuleBuilder, compileModule } from "./wasm-builder.ts";
import type { Code, Local } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import { checkDim } from "./types.ts";

/** Pooling geometry: input [n, c, h, w], window kh x kw moved by strideH, strideW. */
export interface MaxPool2dGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
}

/**
 * maxpool(x, y, arg, planes, h, w, kh, kw, sh, sw, oh, ow, first): byte addresses x, y, arg; for
 * each of `planes` h x w planes and each output (oy, ox), y = the window's first maximum and arg
 * = its flat index into x (elements) plus `first`. Plane p is read at element first + p·h·w of
 * x, so a caller holding planes from `first` on at byte s passes x = s - 4·first (i32
 * arithmetic wraps) and gets indices into the whole input.
 *
 * With `window` given, the module is for that window size only (kh, kw are then ignored): the
 * window's kh·kw loads are unrolled, each at a constant offset from its row's address, and the
 * winner is tracked as an offset (u·w + v, computed once per call) added to the window's first
 * index at the end. The generic loop over u and v cost ~20 ns per 2x2 window (LeNet-5's first
 * pooling: 7 ms of a 115 ms step); the comparisons, in the same order, give the same bits.
 */
function emitForward(c: Code, window?: { kh: number; kw: number }): void {
  const [xAt, yAt, argAt, planes, h, w, kh, kw, sh, sw, oh, ow, first] = c.paramTuple(13);
  const [pl, oy, ox, u, v, base, top, row, idx, best, rowStep] = Array.from({ length: 11 }, () =>
    c.local(I32),
  ) as [Local, Local, Local, Local, Local, Local, Local, Local, Local, Local, Local];
  const gt = c.local(I32);
  // Unrolled window: the byte address of each window row, and each tap's offset u·w + v.
  const rows = window ? Array.from({ length: window.kh }, () => c.local(I32)) : [];
  const offs = window
    ? Array.from({ length: window.kh * window.kw }, () => c.local(I32))
    : ([] as Local[]);
  const wBytes = c.local(I32);
  const bvBits = c.local(I32);
  const valBits = c.local(I32);
  if (window)
    for (let uu = 0; uu < window.kh; uu++)
      for (let vv = 0; vv < window.kw; vv++)
        c.get(w)
          .i32Const(uu)
          .i32Mul()
          .i32Const(vv)
          .i32Add()
          .set(offs[uu * window.kw + vv]!);
  c.get(w).i32Const(2).i32Shl().set(wBytes);
  c.get(sh).get(w).i32Mul().set(rowStep);
  c.loop((planeLoop) => {
    c.get(pl).get(h).i32Mul().get(w).i32Mul().get(first).i32Add().set(base);
    c.i32Const(0).set(oy);
    c.loop((oyLoop) => {
      c.i32Const(0).set(ox);
      c.loop((oxLoop) => {
        c.get(base).get(oy).get(rowStep).i32Mul().i32Add().get(ox).get(sw).i32Mul().i32Add();
        c.tee(top).set(best);
        // One tap: a strictly greater value (compared as f32) replaces the running maximum.
        // The maximum is kept as its bits and chosen with an i32 select: V8 turns an i32 select
        // into a conditional move but an f32 select into a branch, which random data
        // mispredicts (the f32 version ran at ~16 ns per 2x2 window, this one ~4).
        const tap = (load: () => void, candidate: () => void) => {
          load();
          c.set(valBits);
          c.get(valBits).f32ReinterpretI32().get(bvBits).f32ReinterpretI32().f32Gt().set(gt);
          c.get(valBits).get(bvBits).get(gt).select().set(bvBits);
          candidate();
          c.get(best).get(gt).select().set(best);
        };
        if (window) {
          c.get(top).i32Const(2).i32Shl().get(xAt).i32Add().set(rows[0]!);
          for (let uu = 1; uu < window.kh; uu++)
            c.get(rows[uu - 1]!)
              .get(wBytes)
              .i32Add()
              .set(rows[uu]!);
          c.get(rows[0]!).i32Load().set(bvBits);
          c.i32Const(0).set(best);
          for (let uu = 0; uu < window.kh; uu++)
            for (let vv = uu === 0 ? 1 : 0; vv < window.kw; vv++)
              tap(
                () => c.get(rows[uu]!).i32Load(4 * vv),
                () => c.get(offs[uu * window.kw + vv]!),
              );
          c.get(best).get(top).i32Add().set(best);
        } else {
          c.get(top).i32Const(2).i32Shl().get(xAt).i32Add().i32Load().set(bvBits);
          c.get(top).set(row);
          c.i32Const(0).set(u);
          c.loop((uLoop) => {
            c.i32Const(0).set(v);
            c.loop((vLoop) => {
              tap(
                () =>
                  c
                    .get(row)
                    .get(v)
                    .i32Add()
                    .tee(idx)
                    .i32Const(2)
                    .i32Shl()
                    .get(xAt)
                    .i32Add()
                    .i32Load(),
                () => c.get(idx),
              );
              c.get(v).i32Const(1).i32Add().tee(v).get(kw).i32LtU().brIf(vLoop);
            });
            c.get(row).get(w).i32Add().set(row);
            c.get(u).i32Const(1).i32Add().tee(u).get(kh).i32LtU().brIf(uLoop);
          });
        }
        c.get(yAt).get(bvBits).i32Store();
        c.get(argAt).get(best).i32Store();
        c.get(yAt).i32Const(4).i32Add().set(yAt);
        c.get(argAt).i32Const(4).i32Add().set(argAt);
        c.get(ox).i32Const(1).i32Add().tee(ox).get(ow).i32LtU().brIf(oxLoop);
      });
      c.get(oy).i32Const(1).i32Add().tee(oy).get(oh).i32LtU().brIf(oyLoop);
    });
    c.get(pl).i32Const(1).i32Add().tee(pl).get(planes).i32LtU().brIf(planeLoop);
  });
}

/** Windows of at most this many taps get a module of their own with the taps unrolled. */
export const UNROLL_TAPS = 16;

/**
 * The max-pooling module's bytes (one exported function over an imported shared memory); with
 * `window`, maxpool is unrolled for that window size (see emitForward).
 */
export function maxPoolKernelBytes(window?: { kh: number; kw: number }): Uint8Array<ArrayBuffer> {
  if (window && !(window.kh >= 1 && window.kw >= 1 && window.kh * window.kw <= UNROLL_TAPS))
    throw new RangeError(
      `maxPoolKernelBytes: an unrolled window needs 1 to ${UNROLL_TAPS} taps, got ${window.kh}x${window.kw}`,
    );
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("maxpool", new Array<typeof I32>(13).fill(I32), [], (c) => emitForward(c, window))
    .build();
}

type MaxPoolFn = (...args: number[]) => void;
/** Compiled modules by window ("generic", or "kh x kw" when unrolled). */
const compiled = new Map<string, WebAssembly.Module>();
/** Instances per thread's kernel (one WasmThread per memory and thread), by window. */
const instances = new WeakMap<WasmThread, Map<string, MaxPoolFn>>();
/** t's instance of the module for a window size. */
function poolKernel(t: WasmThread, kh: number, kw: number): MaxPoolFn {
  const unrolled = kh >= 1 && kw >= 1 && kh * kw <= UNROLL_TAPS;
  const key = unrolled ? `${kh}x${kw}` : "generic";
  let byKey = instances.get(t);
  if (byKey === undefined) instances.set(t, (byKey = new Map()));
  let k = byKey.get(key);
  if (k === undefined) {
    let mod = compiled.get(key);
    if (mod === undefined) {
      mod = compileModule(
        "matrix wasm max-pooling kernel",
        maxPoolKernelBytes(unrolled ? { kh, kw } : undefined),
      );
      compiled.set(key, mod);
    }
    k = new WebAssembly.Instance(mod, { env: { memory: t.memory } }).exports.maxpool as MaxPoolFn;
    byKey.set(key, k);
  }
  return k;
}

/** A pooling job's operands (KIND_WASM_MAXPOOL): x [planes, h, w] into y and arg [planes, oh, ow]. */
export interface MaxPoolArgs extends Omit<MaxPool2dGeometry, "n" | "c"> {
  x: Float32Array;
  y: Float32Array;
  arg: Int32Array;
  oh: number;
  ow: number;
}

/** Planes per trip through a thread's scratch region (0: one plane does not fit). */
export function planesPerBlock(a: { h: number; w: number; oh: number; ow: number }): number {
  return Math.floor(SCRATCH_BYTES / (4 * (a.h * a.w + 2 * a.oh * a.ow)));
}

/**
 * Pools planes [p0, p1) through t's scratch region, planesPerBlock planes at a time (which must
 * be at least 1): copy the planes in, run the kernel, copy y and arg (indices into all of x) out.
 */
export function maxPoolRange(t: WasmThread, a: MaxPoolArgs, p0: number, p1: number): void {
  const per = planesPerBlock(a);
  const plane = a.h * a.w;
  const outs = a.oh * a.ow;
  const k = poolKernel(t, a.kh, a.kw);
  const H = t.f32();
  const xAt = t.scratchAt;
  for (let q0 = p0; q0 < p1; q0 += per) {
    const q1 = Math.min(p1, q0 + per);
    const yAt = xAt + 4 * (q1 - q0) * plane;
    const argAt = yAt + 4 * (q1 - q0) * outs;
    H.set(a.x.subarray(q0 * plane, q1 * plane), xAt >> 2);
    const first = q0 * plane;
    k(
      xAt - 4 * first,
      yAt,
      argAt,
      q1 - q0,
      a.h,
      a.w,
      a.kh,
      a.kw,
      a.strideH,
      a.strideW,
      a.oh,
      a.ow,
      first,
    );
    a.y.set(H.subarray(yAt >> 2, (yAt >> 2) + (q1 - q0) * outs), q0 * outs);
    a.arg.set(new Int32Array(H.buffer, argAt, (q1 - q0) * outs), q0 * outs);
  }
}

/**
 * All planes on this thread in one call over memory past its scratch region (for planes too large
 * for the scratch region).
 */
export function maxPoolWhole(a: MaxPoolArgs, planes: number): void {
  const t = localWasmThread();
  const size = planes * a.h * a.w;
  const count = planes * a.oh * a.ow;
  const need = SCRATCH_BYTES + 4 * (size + 2 * count);
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  const k = poolKernel(t, a.kh, a.kw);
  const xAt = SCRATCH_BYTES;
  const yAt = xAt + 4 * size;
  const argAt = yAt + 4 * count;
  const buf = t.memory.buffer;
  new Float32Array(buf).set(a.x.subarray(0, size), xAt >> 2);
  k(xAt, yAt, argAt, planes, a.h, a.w, a.kh, a.kw, a.strideH, a.strideW, a.oh, a.ow, 0);
  a.y.set(new Float32Array(buf, yAt, count));
  a.arg.set(new Int32Array(buf, argAt, count));
}

export function outSize(fn: string, g: MaxPool2dGeometry): [number, number] {
  for (const key of ["n", "c", "h", "w", "kh", "kw", "strideH", "strideW"] as const)
    checkDim(fn, key, g[key]);
  for (const key of ["kh", "kw", "strideH", "strideW"] as const)
    if (g[key] < 1) throw new RangeError(`${fn}: ${key} must be at least 1, got ${g[key]}`);
  if (g.h < g.kh || g.w < g.kw)
    throw new RangeError(`${fn}: window ${g.kh}x${g.kw} does not fit input ${g.h}x${g.w}`);
  return [Math.floor((g.h - g.kh) / g.strideH) + 1, Math.floor((g.w - g.kw) / g.strideW) + 1];
}

export function checkLen(
  fn: string,
  name: string,
  a: ArrayLike<number>,
  n: number,
  shape: string,
): void {
  if (a.length < n)
    throw new RangeError(`${fn}: ${name} has ${a.length} elements, need ${n} for ${shape}`);
}
