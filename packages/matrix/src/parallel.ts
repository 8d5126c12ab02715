// Serial-or-pool dispatch: decides whether a product is worth splitting and cuts it into chunks
// of equal multiply-add count, which the caller and the workers take from a shared counter. Any split gives bitwise the same result
// because each output element is computed whole, by one thread, in a fixed order.
import type { SpmmArgs } from "./spmm-kernel.ts";
import { spmmRange } from "./spmm-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import { gemmRange } from "./gemm.ts";
import type { MatrixPool, Range } from "./pool.ts";
import { KIND_GEMM, KIND_SAMPLED, KIND_SPMM, MAX_CHUNKS } from "./jobs.ts";
import type { GemmArgs } from "./jobs.ts";

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
  // Split rows when B is the smaller operand to pack twice, columns otherwise. Several chunks
  // per thread, taken from the shared counter: a thread slowed by the OS (or by a colder JIT)
  // takes fewer of them instead of holding the call up. Chunks stay multiples of 4 lines, so
  // the register tiles are whole, and at least 32 lines, so repacking the other operand per
  // chunk stays a small share of the work.
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
  if (!usePool(pool, 2 * nnz * args.R * args.C * args.k)) {
    sampledRange(args, 0, nnz);
    return;
  }
  const cuts = evenCuts(nnz, Math.min(MAX_CHUNKS, 8 * pool.threads), 1);
  const chunks: Range[] = [];
  for (let t = 0; t + 1 < cuts.length; t++)
    if (cuts[t]! < cuts[t + 1]!) chunks.push([cuts[t]!, cuts[t + 1]!, 0, 0]);
  pool.run(KIND_SAMPLED, args as unknown as Record<string, unknown>, chunks);
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
