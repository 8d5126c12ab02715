// Serial-or-pool dispatch: decides whether a product is worth splitting and how to split it so
// every thread gets an equal share of the multiply-adds. Any split gives bitwise the same result
// because each output element is computed whole, by one thread, in a fixed order.
import type { SpmmArgs } from "./spmm-kernel.ts";
import { spmmRange } from "./spmm-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import { gemmRange } from "./gemm.ts";
import type { MatrixPool, Range } from "./pool.ts";
import { KIND_GEMM, KIND_SAMPLED, KIND_SPMM } from "./jobs.ts";
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
  // Split rows when B is the smaller operand to pack twice, columns otherwise.
  const byRows = k * n <= m * k;
  const cuts = evenCuts(byRows ? m : n, pool.threads, 4);
  const ranges: Range[] = [];
  for (let t = 0; t < pool.threads; t++)
    ranges.push(byRows ? [cuts[t]!, cuts[t + 1]!, 0, n] : [0, m, cuts[t]!, cuts[t + 1]!]);
  pool.run(KIND_GEMM, g as unknown as Record<string, unknown>, ranges);
}

/** Splits outer block lines by stored-block count (plus one per line), so skewed patterns stay balanced. */
export function runSpmm(args: SpmmArgs, outerBlocks: number, pool: MatrixPool | undefined): void {
  const nnz = args.ptr[outerBlocks]!;
  if (!usePool(pool, 2 * nnz * args.bsz * args.n)) {
    spmmRange(args, 0, outerBlocks);
    return;
  }
  const { ptr } = args;
  const total = nnz + outerBlocks;
  const ranges: Range[] = [];
  let o = 0;
  for (let t = 1; t <= pool.threads; t++) {
    const target = t === pool.threads ? total : (total * t) / pool.threads;
    const start = o;
    while (o < outerBlocks && ptr[o + 1]! + o + 1 <= target) o++;
    if (t === pool.threads) o = outerBlocks;
    ranges.push([start, o, 0, 0]);
  }
  pool.run(KIND_SPMM, args as unknown as Record<string, unknown>, ranges);
}

export function runSampled(args: SampledArgs, nnz: number, pool: MatrixPool | undefined): void {
  if (!usePool(pool, 2 * nnz * args.R * args.C * args.k)) {
    sampledRange(args, 0, nnz);
    return;
  }
  const cuts = evenCuts(nnz, pool.threads, 1);
  const ranges: Range[] = [];
  for (let t = 0; t < pool.threads; t++) ranges.push([cuts[t]!, cuts[t + 1]!, 0, 0]);
  pool.run(KIND_SAMPLED, args as unknown as Record<string, unknown>, ranges);
}
