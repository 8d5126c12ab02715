// Serial-or-pool dispatch of the sparse and dense kernels.
import type { SpmmArgs } from "./spmm-kernel.ts";
import { spmmRange } from "./spmm-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import type { MatrixPool } from "./pool.ts";

export function runSpmm(args: SpmmArgs, outerBlocks: number, pool: MatrixPool | undefined): void {
  void pool;
  spmmRange(args, 0, outerBlocks);
}

export function runSampled(args: SampledArgs, nnz: number, pool: MatrixPool | undefined): void {
  void pool;
  sampledRange(args, 0, nnz);
}
