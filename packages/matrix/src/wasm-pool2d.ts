// Max pooling (NCHW, no padding) on generated WebAssembly kernels, for the "wasm" kernel path.
//
// The JavaScript loops of @tessera/autograd's maxPool2d (the reference, and the asm path) cost
// ~11 ns per input element in a LeNet-5 epoch profile, 8-13% of the epoch on the wasm path once
// the convolutions were fast (docs/benchmarks/epoch-profile.md). Here the input is copied into
// this thread's kernel memory, one kernel walks every window (unrolled for windows of up to
// UNROLL_TAPS taps, one module per window size), and the maxima and their flat input indices
// are copied out. Same rule as the JS loop: the first maximum of a window in
// row-major order wins (a strictly greater value replaces it; a NaN never does), so the outputs
// are bitwise the JS loop's. Serial on the calling thread (the work is a copy's worth; a pool's
// dispatch would cost as much). There is no backward kernel: autograd's scatter loop
// (gx[arg[i]] += gy[i]) reads 2 and writes 1 array once, where a kernel needs gx zeroed and
// copied in and out of kernel memory, and ran 2.4x slower (bench/lenet5-step.ts).
import { I32, ModuleBuilder, compileModule } from "./wasm-builder.ts";
import type { Code, Local } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";
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
 * maxpool(x, y, arg, planes, h, w, kh, kw, sh, sw, oh, ow): byte addresses x, y, arg; for each
 * of `planes` h x w planes and each output (oy, ox), y = the window's first maximum and arg = its
 * flat index into x (elements).
 *
 * With `window` given, the module is for that window size only (kh, kw are then ignored): the
 * window's kh·kw loads are unrolled, each at a constant offset from its row's address, and the
 * winner is tracked as an offset (u·w + v, computed once per call) added to the window's first
 * index at the end. The generic loop over u and v cost ~20 ns per 2x2 window (LeNet-5's first
 * pooling: 7 ms of a 115 ms step); the comparisons, in the same order, give the same bits.
 */
function emitForward(c: Code, window?: { kh: number; kw: number }): void {
  const [xAt, yAt, argAt, planes, h, w, kh, kw, sh, sw, oh, ow] = c.paramTuple(12);
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
    c.get(pl).get(h).i32Mul().get(w).i32Mul().set(base);
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
    .func("maxpool", new Array<typeof I32>(12).fill(I32), [], (c) => emitForward(c, window))
    .build();
}

interface PoolKernels {
  memory: WebAssembly.Memory;
  maxpool: (...args: number[]) => void;
}
/** Compiled modules by window ("generic", or "kh x kw" when unrolled) and their instances. */
const compiled = new Map<string, WebAssembly.Module>();
const instances = new Map<string, PoolKernels>();
/** This thread's instance on its own kernel memory (localWasmThread's), for a window size. */
function poolKernels(kh = 0, kw = 0): PoolKernels {
  const memory = localWasmThread().memory;
  const unrolled = kh >= 1 && kw >= 1 && kh * kw <= UNROLL_TAPS;
  const key = unrolled ? `${kh}x${kw}` : "generic";
  let k = instances.get(key);
  if (k === undefined || k.memory !== memory) {
    let mod = compiled.get(key);
    if (mod === undefined) {
      mod = compileModule(
        "matrix wasm max-pooling kernel",
        maxPoolKernelBytes(unrolled ? { kh, kw } : undefined),
      );
      compiled.set(key, mod);
    }
    const e = new WebAssembly.Instance(mod, { env: { memory } }).exports;
    k = { memory, maxpool: e.maxpool as PoolKernels["maxpool"] };
    instances.set(key, k);
  }
  return k;
}

/** This thread's kernel memory grown to SCRATCH_BYTES + bytes; returns the first free byte. */
function reserve(bytes: number): number {
  const t = localWasmThread();
  const need = SCRATCH_BYTES + bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  return SCRATCH_BYTES;
}

function outSize(fn: string, g: MaxPool2dGeometry): [number, number] {
  for (const key of ["n", "c", "h", "w", "kh", "kw", "strideH", "strideW"] as const)
    checkDim(fn, key, g[key]);
  for (const key of ["kh", "kw", "strideH", "strideW"] as const)
    if (g[key] < 1) throw new RangeError(`${fn}: ${key} must be at least 1, got ${g[key]}`);
  if (g.h < g.kh || g.w < g.kw)
    throw new RangeError(`${fn}: window ${g.kh}x${g.kw} does not fit input ${g.h}x${g.w}`);
  return [Math.floor((g.h - g.kh) / g.strideH) + 1, Math.floor((g.w - g.kw) / g.strideW) + 1];
}

function checkLen(fn: string, name: string, a: ArrayLike<number>, n: number, shape: string): void {
  if (a.length < n)
    throw new RangeError(`${fn}: ${name} has ${a.length} elements, need ${n} for ${shape}`);
}

/**
 * Max pooling of x [n, c, h, w] (float32) into y [n, c, outH, outW] and the flat input index of
 * each window's first maximum into arg; outH = floor((h - kh) / strideH) + 1 (likewise outW).
 */
export function wasmMaxPool2d(
  x: Float32Array,
  g: MaxPool2dGeometry,
  y: Float32Array,
  arg: Int32Array,
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
  const k = poolKernels(g.kh, g.kw);
  const xAt = reserve(4 * (size + 2 * count));
  const yAt = xAt + 4 * size;
  const argAt = yAt + 4 * count;
  const buf = k.memory.buffer;
  new Float32Array(buf).set(x.subarray(0, size), xAt >> 2);
  k.maxpool(xAt, yAt, argAt, planes, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, oh, ow);
  y.set(new Float32Array(buf, yAt, count));
  arg.set(new Int32Array(buf, argAt, count));
}
