// ReLU and its gradient on generated WebAssembly SIMD kernels, for the "wasm" kernel path.
//
// After the convolutions were fused, autograd's relu loops were 12% of a smallCnn() epoch on
// that path (docs/benchmarks/epoch-profile.md). Here the operands are copied into this thread's
// kernel memory and one f32x4 loop runs over them: forward max(x, +0) (f32x4.max: -0 gives +0,
// NaN stays NaN, as the JS loop), backward (g + 0) where y > 0 else +0 (a compare mask ANDed
// with g + 0, which turns -0 into +0 and keeps NaN where the gate is open, as the JS loop).
//
// The operands go through the thread's scratch region RELU_BLOCK elements at a time (copy in,
// kernel, copy out while the block is in cache) instead of whole arrays through kernel memory,
// and with a pool the element range is split over its threads (each in its own scratch region).
import { F32, F64, I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, copyRows } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";

/** relu(x, y, end): y = max(x, 0) for vectors from x up to byte address end of x's range. */
function emitForward(c: Code): void {
  const [x, y, end] = c.paramTuple(3);
  c.loop((top) => {
    c.get(y).get(x).v128Load().v128Zero().f32x4Max().v128Store();
    c.get(y).i32Const(16).i32Add().set(y);
    c.get(x).i32Const(16).i32Add().tee(x).get(end).i32LtU().brIf(top);
  });
}

/** reluBack(g, y, gx, end): gx = (g + 0) & (y > 0), vectors of g up to byte address end. */
function emitBackward(c: Code): void {
  const [g, y, gx, end] = c.paramTuple(4);
  c.loop((top) => {
    c.get(gx).get(g).v128Load().v128Zero().f32x4Add();
    c.get(y).v128Load().v128Zero().f32x4Gt().v128And().v128Store();
    c.get(gx).i32Const(16).i32Add().set(gx);
    c.get(y).i32Const(16).i32Add().set(y);
    c.get(g).i32Const(16).i32Add().tee(g).get(end).i32LtU().brIf(top);
  });
}

/**
 * reluBackSums(g, y, gx, planes, p, sums): the backward's gate over `planes` planes of p floats
 * (g, y, gx byte addresses, planes back to back), and each plane's gated sum in float64 at
 * sums + 8·plane: s = +0, then s + gx[q] for q = 0, 1, .. in order, each float32 promoted
 * exactly: the additions channel-sums-kernel.ts makes, so the bias gradient's bits are its.
 * Vectors of four, then a scalar tail (the same gate: g + 0 where y > 0, else +0).
 */
function emitBackwardSums(c: Code): void {
  const [g, y, gx, planes, p, sums] = c.paramTuple(6);
  const pl = c.local(I32);
  const q = c.local(I32);
  const vecEnd = c.local(I32);
  const s = c.local(F64);
  const v = c.local(V128);
  const one = c.local(F32);
  c.loop((plane) => {
    c.f64Const(0).set(s);
    c.i32Const(0).set(q);
    c.get(p).i32Const(-4).i32And().set(vecEnd);
    c.block((noVectors) => {
      c.get(vecEnd).i32Eqz().brIf(noVectors);
      c.loop((vec) => {
        c.get(g).v128Load().v128Zero().f32x4Add();
        c.get(y).v128Load().v128Zero().f32x4Gt().v128And().set(v);
        c.get(gx).get(v).v128Store();
        for (let lane = 0; lane < 4; lane++)
          c.get(s).get(v).f32x4ExtractLane(lane).f64PromoteF32().f64Add().set(s);
        for (const a of [g, y, gx]) c.get(a).i32Const(16).i32Add().set(a);
        c.get(q).i32Const(4).i32Add().tee(q).get(vecEnd).i32LtU().brIf(vec);
      });
    });
    c.block((done) => {
      c.get(q).get(p).i32GeU().brIf(done);
      c.loop((tail) => {
        // gx = y > 0 ? g + 0 : +0
        c.get(g).f32Load().f32Const(0).f32Add().f32Const(0);
        c.get(y).f32Load().f32Const(0).f32Gt().select().set(one);
        c.get(gx).get(one).f32Store();
        c.get(s).get(one).f64PromoteF32().f64Add().set(s);
        for (const a of [g, y, gx]) c.get(a).i32Const(4).i32Add().set(a);
        c.get(q).i32Const(1).i32Add().tee(q).get(p).i32LtU().brIf(tail);
      });
    });
    c.get(sums).get(s).f64Store();
    c.get(sums).i32Const(8).i32Add().set(sums);
    c.get(pl).i32Const(1).i32Add().tee(pl).get(planes).i32LtU().brIf(plane);
  });
}

/**
 * reluBackCols(g, y, gx, rows, width, sums): the backward's gate over a [rows, width] block (g,
 * y, gx byte addresses, rows back to back, width a multiple of 4) and each column's gated values
 * added in float64 into sums (width doubles at byte sums), row after row: column j's additions
 * are sums[j] + gx[0, j] + gx[1, j] + ..., in that order, each float32 promoted exactly (the
 * additions channel-sums-kernel.ts makes for p = 1, as a Linear layer's bias gradient). Four
 * columns a step: the gate as reluBack, then two f64x2 adds (a NaN sum, e.g. after Infinity -
 * Infinity, is NaN, but its sign may differ from the JavaScript loop's: neither language fixes
 * a NaN's bits).
 */
function emitBackwardColumns(c: Code): void {
  const [g, y, gx, rows, width, sums] = c.paramTuple(6);
  const r = c.local(I32);
  const s = c.local(I32);
  const rowEnd = c.local(I32);
  const v = c.local(V128);
  c.block((done) => {
    c.get(rows).i32Eqz().brIf(done);
    c.get(width).i32Eqz().brIf(done);
    c.loop((row) => {
      c.get(sums).set(s);
      c.get(g).get(width).i32Const(2).i32Shl().i32Add().set(rowEnd);
      c.loop((vec) => {
        c.get(g).v128Load().v128Zero().f32x4Add();
        c.get(y).v128Load().v128Zero().f32x4Gt().v128And().set(v);
        c.get(gx).get(v).v128Store();
        c.get(s).get(s).v128Load().get(v).f64x2PromoteLowF32x4().f64x2Add().v128Store();
        c.get(s).get(s).v128Load(16);
        c.get(v).get(v).i32x4Shuffle([2, 3, 0, 1]).f64x2PromoteLowF32x4().f64x2Add();
        c.v128Store(16);
        c.get(s).i32Const(32).i32Add().set(s);
        for (const a of [y, gx]) c.get(a).i32Const(16).i32Add().set(a);
        c.get(g).i32Const(16).i32Add().tee(g).get(rowEnd).i32LtU().brIf(vec);
      });
      c.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(row);
    });
  });
}

/** The ReLU module's bytes (four functions over an imported shared memory). */
export function reluKernelBytes(): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("relu", [I32, I32, I32], [], emitForward)
    .func("reluBack", [I32, I32, I32, I32], [], emitBackward)
    .func("reluBackSums", [I32, I32, I32, I32, I32, I32], [], emitBackwardSums)
    .func("reluBackCols", [I32, I32, I32, I32, I32, I32], [], emitBackwardColumns)
    .build();
}

type Relu = (x: number, y: number, end: number) => void;
type ReluBack = (g: number, y: number, gx: number, end: number) => void;
type ReluBackSums = (
  g: number,
  y: number,
  gx: number,
  planes: number,
  p: number,
  sums: number,
) => void;
interface ReluKernels {
  relu: Relu;
  reluBack: ReluBack;
  reluBackSums: ReluBackSums;
  /** The same parameters: (g, y, gx, rows, width, sums). */
  reluBackCols: ReluBackSums;
}
let compiled: WebAssembly.Module | undefined;
/** One instance per thread's kernel (one WasmThread per memory and thread). */
const instances = new WeakMap<WasmThread, ReluKernels>();
function kernelsOf(t: WasmThread): ReluKernels {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm ReLU kernel", reluKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    k = {
      relu: e.relu as Relu,
      reluBack: e.reluBack as ReluBack,
      reluBackSums: e.reluBackSums as ReluBackSums,
      reluBackCols: e.reluBackCols as ReluBackSums,
    };
    instances.set(t, k);
  }
  return k;
}

/**
 * Elements per trip through the scratch region: three arrays of it (the backward's g, y, gx)
 * take 48 KiB, well inside SCRATCH_BYTES and the L2 cache.
 */
export const RELU_BLOCK = 4096;
if (3 * 4 * RELU_BLOCK > SCRATCH_BYTES)
  throw new Error("wasm-relu: RELU_BLOCK exceeds a thread's scratch region");

/** The forward's operands (a pool job: KIND_WASM_RELU). */
export interface ReluArgs {
  x: Float32Array;
  y: Float32Array;
}
/** The backward's operands (KIND_WASM_RELU_BACKWARD). */
export interface ReluBackwardArgs {
  g: Float32Array;
  y: Float32Array;
  gx: Float32Array;
}

/** y = max(x, +0) over elements [lo, hi), through t's scratch region. */
export function reluRange(t: WasmThread, a: ReluArgs, lo: number, hi: number): void {
  const { relu } = kernelsOf(t);
  const H = t.f32();
  const xAt = t.scratchAt;
  const yAt = xAt + 4 * RELU_BLOCK;
  for (let s = lo; s < hi; s += RELU_BLOCK) {
    const len = Math.min(RELU_BLOCK, hi - s);
    H.set(a.x.subarray(s, s + len), xAt >> 2);
    relu(xAt, yAt, xAt + 16 * Math.ceil(len / 4));
    a.y.set(H.subarray(yAt >> 2, (yAt >> 2) + len), s);
  }
}

/** gx = (g + 0) where y > 0, else +0, over elements [lo, hi), through t's scratch region. */
export function reluBackwardRange(
  t: WasmThread,
  a: ReluBackwardArgs,
  lo: number,
  hi: number,
): void {
  const { reluBack } = kernelsOf(t);
  const H = t.f32();
  const gAt = t.scratchAt;
  const yAt = gAt + 4 * RELU_BLOCK;
  const gxAt = yAt + 4 * RELU_BLOCK;
  for (let s = lo; s < hi; s += RELU_BLOCK) {
    const len = Math.min(RELU_BLOCK, hi - s);
    H.set(a.g.subarray(s, s + len), gAt >> 2);
    H.set(a.y.subarray(s, s + len), yAt >> 2);
    reluBack(gAt, yAt, gxAt, gAt + 16 * Math.ceil(len / 4));
    a.gx.set(H.subarray(gxAt >> 2, (gxAt >> 2) + len), s);
  }
}

/**
 * The backward with the bias gradient's plane sums (KIND_WASM_RELU_BACKWARD_SUMS): g, y, gx as
 * [planes, p], and sums (planes float64) receiving each plane's gated sum.
 */
export interface ReluBackwardSumsArgs {
  g: Float32Array;
  y: Float32Array;
  gx: Float32Array;
  sums: Float64Array;
  p: number;
}

/**
 * Planes [p0, p1): gx gated as reluBackwardRange does, and sums[plane] = the plane's gx summed in
 * float64 in order; through t's scratch region, a whole number of planes (at least one) a trip.
 */
export function reluBackwardSumsRange(
  t: WasmThread,
  a: ReluBackwardSumsArgs,
  p0: number,
  p1: number,
): void {
  const { reluBackSums } = kernelsOf(t);
  const { p } = a;
  const H = t.f32();
  // three float32 arrays of `per` planes and their sums inside the scratch region
  const per = Math.max(1, Math.floor((SCRATCH_BYTES - 64) / (12 * p + 8)));
  for (let s = p0; s < p1; s += per) {
    const planes = Math.min(per, p1 - s);
    const len = planes * p;
    const gAt = t.scratchAt;
    const yAt = gAt + 4 * len;
    const gxAt = yAt + 4 * len;
    const sumsAt = Math.ceil((gxAt + 4 * len) / 8) * 8;
    H.set(a.g.subarray(s * p, s * p + len), gAt >> 2);
    H.set(a.y.subarray(s * p, s * p + len), yAt >> 2);
    reluBackSums(gAt, yAt, gxAt, planes, p, sumsAt);
    a.gx.set(H.subarray(gxAt >> 2, (gxAt >> 2) + len), s * p);
    a.sums.set(new Float64Array(H.buffer, sumsAt, planes), s);
  }
}

/**
 * The backward with a Linear layer's bias gradient (KIND_WASM_RELU_BACKWARD_COLUMNS): g, y, gx as
 * [rows, c] and acc (c float64 sums, added into), split by columns.
 */
export interface ReluBackwardColumnsArgs {
  g: Float32Array;
  y: Float32Array;
  gx: Float32Array;
  acc: Float64Array;
  rows: number;
  c: number;
}

/** Columns a trip through the scratch region at most (wider ranges go in several). */
const COLUMN_BLOCK = 1024;

/**
 * Columns [j0, j1): gx gated as reluBackwardRange does, and acc[j] += column j of gx, row by row
 * in float64 (channelSums' additions for p = 1): through t's scratch region, blocks of rows by
 * at most COLUMN_BLOCK columns (rows stored four-column aligned; the padding is gated and summed
 * but never copied out).
 */
export function reluBackwardColumnsRange(
  t: WasmThread,
  a: ReluBackwardColumnsArgs,
  j0: number,
  j1: number,
): void {
  const { reluBackCols } = kernelsOf(t);
  const { rows, c } = a;
  const H = t.f32();
  for (let b0 = j0; b0 < j1; b0 += COLUMN_BLOCK) {
    const w = Math.min(COLUMN_BLOCK, j1 - b0);
    const w4 = Math.ceil(w / 4) * 4;
    const sumsAt = t.scratchAt;
    const gAt = sumsAt + 8 * w4;
    // g, y, gx blocks of `per` rows after the sums
    const per = Math.max(1, Math.floor((SCRATCH_BYTES - 8 * w4) / (12 * w4)));
    const yAt = gAt + 4 * per * w4;
    const gxAt = yAt + 4 * per * w4;
    const S = new Float64Array(H.buffer, sumsAt, w4);
    S.set(a.acc.subarray(b0, b0 + w));
    for (let r0 = 0; r0 < rows; r0 += per) {
      const n = Math.min(per, rows - r0);
      copyRows(a.g, r0 * c + b0, c, H, gAt >> 2, w4, n, w);
      copyRows(a.y, r0 * c + b0, c, H, yAt >> 2, w4, n, w);
      reluBackCols(gAt, yAt, gxAt, n, w4, sumsAt);
      copyRows(H, gxAt >> 2, w4, a.gx, r0 * c + b0, c, n, w);
    }
    a.acc.set(S.subarray(0, w), b0);
  }
}
