// Serial-or-pool dispatch: decides whether a product is worth splitting and cuts it into chunks
// of equal multiply-add count, which the caller and the workers take from a shared counter. Any split gives bitwise the same result
// because each output element is computed whole, by one thread, in a fixed order.
import type { SpmmArgs } from "./spmm-kernel.ts";
import { spmmRange } from "./spmm-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import { gemmRange, packedLengths, panelCounts } from "./gemm.ts";
import { col2imImages, im2colRows } from "./im2col-kernel.ts";
import type { PatchArgs } from "./im2col-kernel.ts";
import type { MatrixPool, Range } from "./pool.ts";
import {
  KIND_COL2IM,
  KIND_GEMM,
  KIND_IM2COL,
  KIND_GEMM_PACKED,
  KIND_PACK,
  KIND_SAMPLED,
  KIND_SPMM,
  MAX_CHUNKS,
} from "./jobs.ts";
import type { GemmArgs, PackArgs, PackedGemmArgs } from "./jobs.ts";

function usePool(pool: MatrixPool | undefined, flops: number): pool is MatrixPool {
  return pool !== undefined && pool.threads > 1 && flops >= pool.minParallelFlops;
}

/** Cuts [0, count) into `parts` pieces at multiples of `align`, as equal as possible. */
function evenCuts(count: number, parts: number, align: number): number[] {
  const units = Math.ceil(count / align);
  const cuts = [0];
  for (let t = 1; t < parts; t++)
    cuts.push(Math.min(count, Math.round((units * t) / parts) * align));
  cuts.push(count);
  return cuts;
}

export function runGemm(g: GemmArgs, pool: MatrixPool | undefined): void {
  const { m, k, n } = g;
  if (!usePool(pool, 2 * m * k * n)) {
    gemmRange(g.trans, g.a, g.b, g.c, m, k, n, 0, m, 0, n);
    return;
  }
  // The jobs write every element of C (schema fullWrite: a staged C is not copied in first), so
  // hand them exactly C's m*n elements, never a longer `out`.
  if (g.c.length !== m * n) g = { ...g, c: g.c.subarray(0, m * n) };
  const [la, lb] = packedLengths(m, k, n);
  if (8 * (la + lb) > pool.maxPackedBytes) {
    runGemmRepacking(g, pool);
    return;
  }
  // Two jobs: the threads pack both operands whole into shared panels (once, instead of once per
  // chunk), then multiply disjoint row or column ranges of C out of them.
  const ap = pool.scratchFloat64("gemm.ap", la);
  const bp = pool.scratchFloat64("gemm.bp", lb);
  const [pa, pb] = panelCounts(m, n);
  const pack: PackArgs = { trans: g.trans, a: g.a, b: g.b, ap, bp, m, k, n };
  pool.run(KIND_PACK, pack as unknown as Record<string, unknown>, packChunks(pa, pb, pool.threads));
  const product: PackedGemmArgs = { ap, bp, c: g.c, m, k, n };
  // Split C's rows when B is the smaller operand (every chunk streams all of B), columns
  // otherwise. Chunks are whole multiples of 4 lines (panel boundaries of both operands), several
  // per thread and shrinking, taken from the shared counter: a thread slowed by the OS takes
  // fewer, and the wait for the last one is short (it halved the caller's waiting in an epoch).
  const byRows = n <= m;
  const lines = byRows ? m : n;
  const ranges: Range[] = [];
  for (const [lo, hi] of guidedCuts(lines, pool.threads)) {
    ranges.push(byRows ? [lo, hi, 0, n] : [0, m, lo, hi]);
  }
  pool.run(KIND_GEMM_PACKED, product as unknown as Record<string, unknown>, ranges);
}

/**
 * Cuts [0, lines) into chunks that shrink as the work runs out ("guided" scheduling): each takes
 * a 1/(2*threads) share of what is left, in multiples of 4 lines, at least 8 lines. Threads take
 * them in order from the shared counter, so the big chunks go first and the last ones are small:
 * whichever thread finishes last waits on a small chunk, not a big one.
 */
function guidedCuts(lines: number, threads: number): [number, number][] {
  const out: [number, number][] = [];
  let lo = 0;
  while (lo < lines && out.length < MAX_CHUNKS - 1) {
    const size = Math.max(8, Math.ceil((lines - lo) / (2 * threads) / 4) * 4);
    const hi = Math.min(lines, lo + size);
    out.push([lo, hi]);
    lo = hi;
  }
  if (lo < lines) out.push([lo, lines]);
  return out;
}

/** Splits the pa A panels and pb B panels (a B panel is twice the work) into per-thread pieces. */
function packChunks(pa: number, pb: number, threads: number): Range[] {
  const total = 2 * pa + 4 * pb;
  const parts = Math.min(MAX_CHUNKS, 2 * threads);
  const ranges: Range[] = [];
  let u = 0;
  for (let t = 1; t <= parts; t++) {
    const target = (total * t) / parts;
    const start = u;
    while (u < pa + pb && (u < pa ? 2 * (u + 1) : 2 * pa + 4 * (u + 1 - pa)) <= target) u++;
    if (t === parts) u = pa + pb;
    if (u > start) ranges.push([start, u, 0, 0]);
  }
  return ranges;
}

/** The pooled product for very large operands: each chunk packs its own cache blocks. */
function runGemmRepacking(g: GemmArgs, pool: MatrixPool): void {
  const { m, k, n } = g;
  // Split rows when B is the smaller operand to pack twice, columns otherwise. Chunks stay
  // multiples of 4 lines, so the register tiles are whole, and at least 32 lines, so repacking
  // the other operand per chunk stays a small share of the work.
  const byRows = k * n <= m * k;
  const lines = byRows ? m : n;
  const parts = Math.min(
    MAX_CHUNKS,
    Math.max(pool.threads, Math.min(4 * pool.threads, Math.floor(lines / 32))),
  );
  const cuts = evenCuts(lines, parts, 4);
  const ranges: Range[] = [];
  for (let t = 0; t < parts; t++) {
    if (cuts[t]! >= cuts[t + 1]!) continue;
    ranges.push(byRows ? [cuts[t]!, cuts[t + 1]!, 0, n] : [0, m, cuts[t]!, cuts[t + 1]!]);
  }
  pool.run(KIND_GEMM, g as unknown as Record<string, unknown>, ranges);
}

/** Splits outer block lines by stored-block count (plus one per line), so skewed patterns stay balanced. */
export function runSpmm(args: SpmmArgs, outerBlocks: number, pool: MatrixPool | undefined): void {
  const nnz = args.ptr[outerBlocks]!;
  if (!usePool(pool, 2 * nnz * args.bsz * args.n)) {
    spmmRange(args, 0, outerBlocks);
    return;
  }
  const chunks = weightedChunks(args.ptr, outerBlocks, Math.min(MAX_CHUNKS, 8 * pool.threads));
  pool.run(KIND_SPMM, args as unknown as Record<string, unknown>, chunks);
}

export function runSampled(args: SampledArgs, nnz: number, pool: MatrixPool | undefined): void {
  const flops = 2 * nnz * args.R * args.C * args.k;
  runByLines(KIND_SAMPLED, args, nnz, flops, 8, pool, (lo, hi) => sampledRange(args, lo, hi));
}

/**
 * Cuts outer block lines [0, outerBlocks) into at most `parts` contiguous chunks of about equal
 * weight, where a line weighs its stored-block count plus one: a pattern whose blocks crowd into
 * a few lines still gives every chunk the same work.
 */
export function weightedChunks(ptr: Int32Array, outerBlocks: number, parts: number): Range[] {
  const total = ptr[outerBlocks]! + outerBlocks;
  const chunks: Range[] = [];
  let o = 0;
  for (let t = 1; t <= parts; t++) {
    const target = (total * t) / parts;
    const start = o;
    while (o < outerBlocks && ptr[o + 1]! + o + 1 <= target) o++;
    if (t === parts) o = outerBlocks;
    if (o > start) chunks.push([start, o, 0, 0]);
  }
  return chunks;
}

/** [0, count) cut into at most `parts` even, non-empty chunks of lines of equal work. */
function lineChunks(count: number, parts: number): Range[] {
  const cuts = evenCuts(count, parts, 1);
  const chunks: Range[] = [];
  for (let t = 0; t + 1 < cuts.length; t++)
    if (cuts[t]! < cuts[t + 1]!) chunks.push([cuts[t]!, cuts[t + 1]!, 0, 0]);
  return chunks;
}

/**
 * Runs `serial` over all `lines` on the calling thread, or, when the work pays for the dispatch,
 * `kind` over even chunks of lines (`perThread` chunks per thread) on the pool.
 */
function runByLines(
  kind: number,
  args: object,
  lines: number,
  flops: number,
  perThread: number,
  pool: MatrixPool | undefined,
  serial: (lo: number, hi: number) => void,
): void {
  if (!usePool(pool, flops) || lines < 2) {
    serial(0, lines);
    return;
  }
  const chunks = lineChunks(lines, Math.min(MAX_CHUNKS, perThread * pool.threads));
  pool.run(kind, args as Record<string, unknown>, chunks);
}

/** im2col, split over the pool by patch rows (each written by one thread). */
export function runIm2col(args: PatchArgs, pool: MatrixPool | undefined): void {
  const rows = args.c * args.kh * args.kw;
  const flops = 2 * rows * args.n * args.outH * args.outW;
  runByLines(KIND_IM2COL, args, rows, flops, 4, pool, (lo, hi) => im2colRows(args, lo, hi));
}

/** col2im, split over the pool by images (each pixel summed by one thread, in a fixed order). */
export function runCol2im(args: PatchArgs, pool: MatrixPool | undefined): void {
  const flops = 2 * args.c * args.kh * args.kw * args.n * args.outH * args.outW;
  runByLines(KIND_COL2IM, args, args.n, flops, 4, pool, (lo, hi) => col2imImages(args, lo, hi));
}
