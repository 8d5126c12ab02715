// Serial-or-pool dispatch: decides whether a product is worth splitting and cuts it into chunks
// of equal multiply-add count, which the caller and the workers take from a shared counter. Any split gives bitwise the same result
// because each output element is computed whole, by one thread, in a fixed order.
import type { SpmmArgs, SpmmCall, SpmmChainArgs } from "./spmm-kernel.ts";
import { hasEpilogue, spmmEpilogue, spmmRange, withoutEpilogue } from "./spmm-kernel.ts";
import { SPMM_TILE_COLS } from "./spmm-asm.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { maxPoolBackwardRange } from "./pool2d-kernel.ts";
import { adamRange } from "./adam-kernel.ts";
import type { AdamJobArgs } from "./adam-kernel.ts";
import { adamWasmRange } from "./wasm-adam.ts";
import type { MaxPoolBackwardArgs } from "./pool2d-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import { gemmEpilogue, gemmRange, packedLengths, panelCounts } from "./gemm.ts";
import { epilogueMode } from "./wasm-epilogue.ts";
import type { FloatArray } from "./types.ts";
import { col2imImages, im2colRows } from "./im2col-kernel.ts";
import type { PatchArgs } from "./im2col-kernel.ts";
import { kepLines, kepRange } from "./kep-kernel.ts";
import type { KepArgs } from "./kep-kernel.ts";
import type { MatrixPool, Range } from "./pool.ts";
import {
  KIND_COL2IM,
  KIND_GEMM,
  KIND_IM2COL,
  KIND_KEP,
  KIND_GEMM_PACKED,
  KIND_PACK,
  KIND_SAMPLED,
  KIND_SPMM,
  KIND_SPMM_CHAIN,
  KIND_MAXPOOL_BACKWARD,
  KIND_ADAM,
  KIND_WASM_ADAM,
  KIND_WASM_GEMM,
  KIND_WASM_GEMM_PACKED,
  KIND_WASM_PACK,
  KIND_WASM_COL2IM,
  KIND_WASM_CONV,
  KIND_WASM_SAMPLED,
  KIND_WASM_SAMPLED_STAGE,
  KIND_WASM_SPMM,
  KIND_WASM_SPMM_COLUMNS,
  KIND_WASM_STAGE,
  KIND_WASM_WINOGRAD,
  KIND_WASM_WINOGRAD_GRAD,
  KIND_WASM_MAXPOOL,
  KIND_GEMM_PAIR,
  KIND_CHANNEL_SUMS,
  MAX_CHUNKS,
  spmmJob,
} from "./jobs.ts";
import type {
  GemmArgs,
  GemmPairArgs,
  PackArgs,
  PackedGemmArgs,
  WasmGemmArgs,
  WasmPackArgs,
  WasmPackedGemmArgs,
  WasmSampledArgs,
  WasmSpmmArgs,
} from "./jobs.ts";
import {
  sampledLayout,
  sampledPanelsArgs,
  stageSampledSlots,
  unstageSampled,
  wasmSampledSerial,
} from "./wasm-sampled.ts";
import {
  SPMM_COLS,
  spmmColumnsApplies,
  spmmColumnsArgs,
  spmmColumnsLayout,
  spmmLayout,
  stageSpmm,
  stageSpmmColumns,
  unstageSpmm,
  wasmSpmmColumnsSerial,
  wasmSpmmSerial,
} from "./wasm-spmm.ts";
import type { KernelPath } from "./kernels.ts";
import {
  SCRATCH_BYTES,
  WASM_TILE,
  localWasmThread,
  wasmGemmSerial,
  wasmPackImagesFirstA,
  wasmPackRange,
  wasmPackedBytes,
  wasmPanelCounts,
} from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import {
  chunkBytesFor,
  chunkImagesFor,
  col2imRange,
  convStageLayout,
  convTables,
  implicitRange,
  padArgs,
  stagePlanes,
  stageTables,
} from "./wasm-conv.ts";
import type { Col2imArgs, ConvStage, ConvTables, ImplicitArgs } from "./wasm-conv.ts";
import type { ResolvedConv2d } from "./im2col.ts";
import {
  WINOGRAD_GRAD_CHUNKS,
  transformFilters,
  winogradFilterFloats,
  winogradGradChunkFloats,
  winogradGradRange,
  winogradGradReduce,
  winogradGradRowsPerBlock,
  winogradRange,
  winogradRowsPerBlock,
} from "./wasm-winograd.ts";
import type { WinogradArgs, WinogradGradArgs } from "./wasm-winograd.ts";
import { TRANS_A, TRANS_NONE } from "./types.ts";
import { channelSumsRange } from "./channel-sums-kernel.ts";
import type { ChannelSumsArgs } from "./channel-sums-kernel.ts";

function usePool(pool: MatrixPool | undefined, flops: number): pool is MatrixPool {
  return pool !== undefined && pool.threads > 1 && flops >= pool.minParallelFlops;
}

/**
 * The sparse products' flops are divided by these before the comparison with minParallelFlops
 * (default 300 000): a pooled sparse product stages its operands before any thread starts, which
 * a dense one amortises over far more work. Measured by bench/pool-threshold.ts (4x4 blocks,
 * batch 128, bias + ReLU, one thread against two with the threshold off; the runs of 2026-12-02
 * on an idle machine are in docs/benchmarks/matrix.md):
 * - wasm batch-major products split by batch rows (wasmColumns; every copy in the chunks, the
 *   caller staging only the blocks), run at 1ce3874: 0.11 MFLOP 0.87x, 0.22 MFLOP 1.21x,
 *   0.43 MFLOP 1.19x, 0.83 MFLOP 1.27x, 1.7 MFLOP 1.59x, 6.5 MFLOP 1.61x: pooled from 0.3
 *   MFLOP (discount 1), as asm.js, between the loss at 0.11 and the gain at 0.22 (one run; the
 *   threshold left where asm.js has it rather than fitted to it). The line-split route below is
 *   the wasm path's other products now.
 * - asm.js, where each chunk copies its own batch rows of X: 0.11 MFLOP 0.39x, 0.22 MFLOP 0.93x,
 *   0.43 MFLOP 1.05x, 0.83 MFLOP 1.19x, 1.7 MFLOP 1.50x, 3.4 MFLOP 1.98x, 6.5 MFLOP 1.69x:
 *   pooled from 0.3 MFLOP (discount 1). The earlier 12 came from runs on a busy machine, before
 *   each chunk ran its own epilogue, where 3.4 MFLOP lost.
 * - wasm, where the caller stages X, the blocks and the output serially around the pooled
 *   kernel: 0.65-1.25x up to 13.4 MFLOP (0.90x or less in 6 of 8), at 26.8 MFLOP 1.03x (x·Wᵀ)
 *   and 1.32x (W·X): pooled from 15 MFLOP (discount 50).
 */
const SPMM_FLOP_DISCOUNT = { asm: 1, wasm: 50, wasmColumns: 1 } as const;
/** The sampled product's (weight gradient) discount, from the earlier busy-machine runs. */
const SAMPLED_FLOP_DISCOUNT = 12;

/** Cuts [0, count) into `parts` pieces at multiples of `align`, as equal as possible. */
function evenCuts(count: number, parts: number, align: number): number[] {
  const units = Math.ceil(count / align);
  const cuts = [0];
  for (let t = 1; t < parts; t++)
    cuts.push(Math.min(count, Math.round((units * t) / parts) * align));
  cuts.push(count);
  return cuts;
}

/** A dense product's epilogue: a bias per column of C and a ReLU (gemm.ts, gemmEpilogue). */
export interface GemmEpilogue {
  bias: FloatArray | null;
  relu: boolean;
}

/**
 * A dense product on the kernels `path` names (float64 operands always take the asm.js kernel,
 * the WebAssembly one is float32 only), then the epilogue, if any: inside the WebAssembly
 * product on each C block while it is in kernel memory, else one pass over C after it.
 */
export function runGemm(
  g: GemmArgs,
  pool: MatrixPool | undefined,
  path: KernelPath,
  epi?: GemmEpilogue,
): void {
  if (path === "wasm" && g.a instanceof Float32Array) {
    if (runWasmGemm(g as WasmGemmArgs, pool, epi)) return;
  } else runAsmGemm(g, pool);
  if (epi !== undefined) gemmEpilogue(g.c, g.n, 0, g.m, 0, g.n, epi.bias, epi.relu);
}

/**
 * Products of at most this many flops each may run as a pair (runGemmPair). LeNet-300-100's
 * 7.7-MFLOP fc2 gradients: 0.35-0.38 ms split over two threads, 0.27 as a pair
 * (bench/lenet300100-products.ts, docs/benchmarks/epoch-2026-12-03-s20/lenet300100-products-pair.txt);
 * its 60-MFLOP fc1 products gain 1.6-1.7x from a split, which a pair could not give them.
 */
export const PAIR_MAX_FLOPS = 32e6;

/**
 * Two independent dense products (neither reads the other's output). On a pool of two or more
 * threads, when both are worth a pool job but small (at most PAIR_MAX_FLOPS) and within 2x of
 * each other's size, each runs whole on one thread at the same time (one job of two chunks,
 * KIND_GEMM_PAIR) instead of one after the other, each split: at these sizes a split's packing,
 * barriers and the cache lines crossing between cores cost about what the second thread saves.
 * Either way each product's bits are those of runGemm (a pooled product is bitwise the serial
 * one on both paths).
 */
export function runGemmPair(
  g0: GemmArgs,
  g1: GemmArgs,
  pool: MatrixPool | undefined,
  path: KernelPath,
): void {
  const f0 = 2 * g0.m * g0.k * g0.n;
  const f1 = 2 * g1.m * g1.k * g1.n;
  const wasm = path === "wasm" && g0.a instanceof Float32Array;
  if (
    !usePool(pool, Math.min(f0, f1)) ||
    Math.max(f0, f1) > PAIR_MAX_FLOPS ||
    Math.max(f0, f1) > 2 * Math.min(f0, f1)
  ) {
    runGemm(g0, pool, path);
    runGemm(g1, pool, path);
    return;
  }
  // fullWrite: hand the job exactly each C's m*n elements
  const c0 = g0.c.length === g0.m * g0.n ? g0.c : g0.c.subarray(0, g0.m * g0.n);
  const c1 = g1.c.length === g1.m * g1.n ? g1.c : g1.c.subarray(0, g1.m * g1.n);
  const args: GemmPairArgs = {
    wasm: wasm ? 1 : 0,
    trans0: g0.trans,
    a0: g0.a,
    b0: g0.b,
    c0,
    m0: g0.m,
    k0: g0.k,
    n0: g0.n,
    trans1: g1.trans,
    a1: g1.a,
    b1: g1.b,
    c1,
    m1: g1.m,
    k1: g1.k,
    n1: g1.n,
  };
  // the larger product first: the caller takes chunk 0 as soon as it has posted the job
  const chunks: Range[] =
    f0 >= f1
      ? [
          [0, 1, 0, 0],
          [1, 2, 0, 0],
        ]
      : [
          [1, 2, 0, 0],
          [0, 1, 0, 0],
        ];
  pool.run(KIND_GEMM_PAIR, args as unknown as Record<string, unknown>, chunks);
}

function runAsmGemm(g: GemmArgs, pool: MatrixPool | undefined): void {
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
  pool.run(
    KIND_PACK,
    pack as unknown as Record<string, unknown>,
    packChunks(pa, pb, pool.threads, 2, 4),
  );
  const product: PackedGemmArgs = { ap, bp, c: g.c, m, k, n };
  // Split C's rows when B is the smaller operand (every chunk streams all of B), columns
  // otherwise. Chunks are whole multiples of 4 lines (panel boundaries of both operands), several
  // per thread and shrinking, taken from the shared counter: a thread slowed by the OS takes
  // fewer, and the wait for the last one is short (it halved the caller's waiting in an epoch).
  pool.run(
    KIND_GEMM_PACKED,
    product as unknown as Record<string, unknown>,
    productChunks(m, n, pool.threads, 4, 4),
  );
}

/**
 * Chunks of C for the product over whole-operand panels: C's rows when B is the smaller operand
 * (every chunk streams all of B), columns otherwise, cut on panel boundaries (multiples of
 * rowAlign rows or colAlign columns).
 */
function productChunks(
  m: number,
  n: number,
  threads: number,
  rowAlign: number,
  colAlign: number,
): Range[] {
  const byRows = n <= m;
  const ranges: Range[] = [];
  for (const [lo, hi] of guidedCuts(byRows ? m : n, threads, byRows ? rowAlign : colAlign)) {
    ranges.push(byRows ? [lo, hi, 0, n] : [0, m, lo, hi]);
  }
  return ranges;
}

/**
 * The WebAssembly product. Serial: this thread's own kernel memory. Pooled: the threads pack both
 * operands once into the pool's shared kernel memory, then every thread's kernel reads those
 * panels in place (no per-thread copies, unlike the asm.js heaps); products whose panels exceed
 * maxPackedBytes have every chunk pack its own blocks in its thread's scratch region. Returns
 * whether it applied `epi` (false only on that last route: runGemm then passes over C).
 */
function runWasmGemm(
  g: WasmGemmArgs,
  pool: MatrixPool | undefined,
  epi: GemmEpilogue | undefined,
): boolean {
  const { m, k, n } = g;
  const bias = (epi?.bias ?? null) as Float32Array | null;
  const mode = epilogueMode(bias, epi?.relu);
  if (!usePool(pool, 2 * m * k * n)) {
    wasmGemmSerial(g.trans, g.a, g.b, g.c, m, k, n, bias, mode);
    return true;
  }
  if (g.c.length !== m * n) g = { ...g, c: g.c.subarray(0, m * n) };
  const { mr, nr } = WASM_TILE;
  const [la, lb] = wasmPackedBytes(m, k, n);
  if (la + lb > pool.maxPackedBytes) {
    pool.run(
      KIND_WASM_GEMM,
      g as unknown as Record<string, unknown>,
      repackingChunks(m, k, n, pool.threads, mr, nr),
    );
    return false;
  }
  const { panelsAt } = pool.kernelMemory(la + lb);
  const [pa, pb] = wasmPanelCounts(m, n);
  const pack: WasmPackArgs = {
    trans: g.trans,
    a: g.a,
    b: g.b,
    apAt: panelsAt,
    bpAt: panelsAt + la,
    m,
    k,
    n,
    P: 0,
  };
  pool.run(
    KIND_WASM_PACK,
    pack as unknown as Record<string, unknown>,
    packChunks(pa, pb, pool.threads, mr, nr),
  );
  const product: WasmPackedGemmArgs = {
    c: g.c,
    apAt: panelsAt,
    bpAt: panelsAt + la,
    m,
    k,
    n,
    bias: bias ?? g.c.subarray(0, 0),
    epi: mode,
  };
  pool.run(
    KIND_WASM_GEMM_PACKED,
    product as unknown as Record<string, unknown>,
    productChunks(m, n, pool.threads, mr, nr),
  );
  return true;
}

/**
 * Cuts [0, lines) into chunks that shrink as the work runs out ("guided" scheduling): each takes
 * a 1/(2*threads) share of what is left, in multiples of `align` lines (the kernel's tile), at
 * least `least` lines (default two tiles). Threads take
 * them in order from the shared counter, so the big chunks go first and the last ones are small:
 * whichever thread finishes last waits on a small chunk, not a big one.
 */
function guidedCuts(
  lines: number,
  threads: number,
  align: number,
  least = 2 * align,
): [number, number][] {
  const out: [number, number][] = [];
  let lo = 0;
  while (lo < lines && out.length < MAX_CHUNKS - 1) {
    const size = Math.max(least, Math.ceil((lines - lo) / (2 * threads) / align) * align);
    const hi = Math.min(lines, lo + size);
    out.push([lo, hi]);
    lo = hi;
  }
  if (lo < lines) out.push([lo, lines]);
  return out;
}

/** Splits the pa A panels (of mr rows) and pb B panels (of nr columns) into per-thread pieces of equal work. */
function packChunks(pa: number, pb: number, threads: number, mr: number, nr: number): Range[] {
  const total = mr * pa + nr * pb;
  const parts = Math.min(MAX_CHUNKS, 2 * threads);
  const ranges: Range[] = [];
  let u = 0;
  for (let t = 1; t <= parts; t++) {
    const target = (total * t) / parts;
    const start = u;
    while (u < pa + pb && (u < pa ? mr * (u + 1) : mr * pa + nr * (u + 1 - pa)) <= target) u++;
    if (t === parts) u = pa + pb;
    if (u > start) ranges.push([start, u, 0, 0]);
  }
  return ranges;
}

/** The pooled product for very large operands: each chunk packs its own cache blocks. */
function runGemmRepacking(g: GemmArgs, pool: MatrixPool): void {
  const chunks = repackingChunks(g.m, g.k, g.n, pool.threads, 4, 4);
  pool.run(KIND_GEMM, g as unknown as Record<string, unknown>, chunks);
}

/**
 * Chunks for products packed chunk by chunk: rows when B is the smaller operand to pack twice,
 * columns otherwise. Chunks stay on tile boundaries (rowAlign, colAlign), so the register tiles
 * are whole, and at least 32 lines, so repacking the other operand per chunk stays a small
 * share of the work.
 */
function repackingChunks(
  m: number,
  k: number,
  n: number,
  threads: number,
  rowAlign: number,
  colAlign: number,
): Range[] {
  const byRows = k * n <= m * k;
  const lines = byRows ? m : n;
  const parts = Math.min(
    MAX_CHUNKS,
    Math.max(threads, Math.min(4 * threads, Math.floor(lines / 32))),
  );
  const cuts = evenCuts(lines, parts, byRows ? rowAlign : colAlign);
  const ranges: Range[] = [];
  for (let t = 0; t < parts; t++) {
    if (cuts[t]! >= cuts[t + 1]!) continue;
    ranges.push(byRows ? [cuts[t]!, cuts[t + 1]!, 0, n] : [0, m, cuts[t]!, cuts[t + 1]!]);
  }
  return ranges;
}

/**
 * Splits outer block lines by stored-block count (plus one per line), so skewed patterns stay
 * balanced. On the "wasm" path (float32 data) the product is staged in kernel memory: this
 * thread's own without a pool, else the pool's shared memory, which every thread's kernel reads
 * in place. The batch-major products (x·Aᵀ, x·A) split by batch rows instead (runSpmmColumns:
 * each chunk stages its rows of X and copies its rows out); the others by lines, each thread
 * writing its own output lines there, the caller copying them out once.
 * An epilogue (args.bias / args.relu) runs inside the asm.js kernel (bsz > 1) and the CSR loop,
 * serial or in each pooled chunk over the chunk's outputs; on the wasm path inside each chunk of
 * a batch-major product (an f32x4 pass in kernel memory), else once over the whole output after
 * the product.
 */
export function runSpmm(
  args: SpmmCall,
  outerBlocks: number,
  pool: MatrixPool | undefined,
  path: KernelPath,
): void {
  const nnz = args.ptr[outerBlocks]!;
  const wasm = path === "wasm" && args.data instanceof Float32Array;
  const columns = wasm && spmmColumnsApplies(args);
  const discount = SPMM_FLOP_DISCOUNT[columns ? "wasmColumns" : wasm ? "wasm" : "asm"];
  const parallel = usePool(pool, (2 * nnz * args.bsz * args.n) / discount);
  if (columns) {
    runSpmmColumns(args, outerBlocks, parallel ? pool : undefined);
    return;
  }
  if (hasEpilogue(args) && wasm) {
    runSpmmProduct(withoutEpilogue(args), outerBlocks, pool, path, parallel);
    spmmEpilogue(args, 0, args.outerLimit, 0, args.n);
    return;
  }
  runSpmmProduct(args, outerBlocks, pool, path, parallel);
}

/**
 * The batch-major products on the wasm path (wasm-spmm.ts spmmColumnsRange), epilogue included:
 * the caller stages the blocks, each chunk its own panels of X and its columns of the output.
 */
function runSpmmColumns(args: SpmmCall, outerBlocks: number, pool: MatrixPool | undefined): void {
  if (pool === undefined || outerBlocks === 0) {
    wasmSpmmColumnsSerial(args, outerBlocks);
    return;
  }
  const { panelsAt, caller } = pool.kernelMemory(spmmColumnsLayout(args, outerBlocks, 0).bytes);
  const l = spmmColumnsLayout(args, outerBlocks, panelsAt);
  stageSpmmColumns(args, outerBlocks, l, caller.memory.buffer);
  const job = spmmColumnsArgs(args, outerBlocks, l);
  const panels = l.nPad / SPMM_COLS;
  const chunks = lineChunks(panels, Math.min(MAX_CHUNKS, 2 * pool.threads));
  pool.run(KIND_WASM_SPMM_COLUMNS, job as unknown as Record<string, unknown>, chunks);
}

function runSpmmProduct(
  args: SpmmCall,
  outerBlocks: number,
  pool: MatrixPool | undefined,
  path: KernelPath,
  parallel: boolean,
): void {
  if (path === "wasm" && args.data instanceof Float32Array) {
    if (!parallel || outerBlocks === 0 || pool === undefined) {
      wasmSpmmSerial(args, outerBlocks);
      return;
    }
    const l = spmmLayout(args, outerBlocks, 0);
    const { panelsAt, caller } = pool.kernelMemory(l.bytes);
    const at = spmmLayout(args, outerBlocks, panelsAt);
    const buf = caller.memory.buffer;
    stageSpmm(args, outerBlocks, at, buf);
    const job: WasmSpmmArgs = { ob: args.ob, ib: args.ib, eos: args.eos, eis: args.eis, ...at };
    const chunks = weightedChunks(args.ptr, outerBlocks, Math.min(MAX_CHUNKS, 8 * pool.threads));
    pool.run(KIND_WASM_SPMM, job as unknown as Record<string, unknown>, chunks);
    unstageSpmm(args, at, buf, 0, args.outerLimit);
    return;
  }
  if (!parallel || pool === undefined) {
    spmmRange(args, 0, outerBlocks);
    return;
  }
  // The jobs write every element of the output (fullWrite: an ordinary `out` is not copied into
  // the shared staging first), so hand them exactly its outerLimit*n elements. Each chunk runs
  // the epilogue on its own outputs (SpmmJobArgs).
  const size = args.outerLimit * args.n;
  const job = spmmJob(
    args.out.length === size ? args : { ...args, out: args.out.subarray(0, size) },
  );
  pool.run(
    KIND_SPMM,
    job as unknown as Record<string, unknown>,
    spmmChunks(args, outerBlocks, pool),
  );
}

/**
 * The smallest chunk of batch rows of the asm.js sparse products: a chunk is cut in whole tiles
 * of the widest width (SPMM_TILE_COLS, 8), and the last chunks are one such tile, so the thread
 * that finishes last waits on 8 rows at most (the 4-wide tiles' 2 x 4 before).
 */
const SPMM_LEAST_ROWS = Math.max(8, SPMM_TILE_COLS);

/**
 * Whether a forward chain of these layers (chain.ts) runs as one pooled job: a pool of two or
 * more threads, at least 8 batch rows per thread, and the chain's flops (all layers' kept
 * weights) at least the pool's minParallelFlops, the threshold of one sparse product.
 */
export function chainPays(
  layers: readonly { weight: { nnzBlocks: number; blockShape: readonly [number, number] } }[],
  n: number,
  pool: MatrixPool | undefined,
): pool is MatrixPool {
  let flops = 0;
  for (const { weight: w } of layers)
    flops += 2 * n * w.nnzBlocks * w.blockShape[0] * w.blockShape[1];
  return usePool(pool, flops) && n >= 8 * pool.threads;
}

/**
 * A forward chain of BSR layers (spmm-kernel.ts SpmmChainArgs, chain.ts) as one pooled job, split
 * by batch rows as the batch-major products are (guidedCuts, whole tiles): each chunk carries
 * its rows through every layer, so the layers need no barrier, no hand-over between threads and
 * no serial step between them.
 */
export function runSpmmChain(c: SpmmChainArgs, pool: MatrixPool): void {
  const chunks = guidedCuts(c.n, pool.threads, SPMM_TILE_COLS, SPMM_LEAST_ROWS).map(
    ([j0, j1]) => [j0, j1, 0, 0] as const,
  );
  pool.run(KIND_SPMM_CHAIN, c as unknown as Record<string, unknown>, chunks);
}

/**
 * Chunks of the asm.js/JavaScript sparse product. Batch-major operands (X [n, inner], out
 * [n, outer]) with at least 8 batch rows per thread are split by batch rows, in multiples of the
 * asm.js kernel's widest tile (SPMM_TILE_COLS, 8), shrinking as the work runs out (guidedCuts): every row costs the
 * same whatever the pattern, each thread copies only its rows of X into its asm.js heap (a split
 * by lines copies all of X into every thread's heap) and writes one contiguous run of the output.
 * Otherwise outer block lines are split by stored-block count (weightedChunks).
 */
export function spmmChunks(args: SpmmArgs, outerBlocks: number, pool: MatrixPool): Range[] {
  const { n } = args;
  if (args.sxi === 1 && args.soo === 1 && n >= 8 * pool.threads)
    return guidedCuts(n, pool.threads, SPMM_TILE_COLS, SPMM_LEAST_ROWS).map(
      ([j0, j1]) => [0, outerBlocks, j0, j1] as const,
    );
  return weightedChunks(args.ptr, outerBlocks, Math.min(MAX_CHUNKS, 8 * pool.threads)).map(
    ([o0, o1]) => [o0, o1, 0, n] as const,
  );
}

/**
 * The sampled product over stored-block slots. On the "wasm" path (float32) it is staged in
 * kernel memory like runSpmm: this thread's own, or the pool's shared memory whose staging every
 * thread's kernel reads in place (each writing its own slots), copied out once by the caller.
 */
export function runSampled(
  args: SampledArgs,
  nnz: number,
  pool: MatrixPool | undefined,
  path: KernelPath,
): void {
  const flops = (2 * nnz * args.R * args.C * args.k) / SAMPLED_FLOP_DISCOUNT;
  if (path === "wasm" && args.a instanceof Float32Array) {
    if (!usePool(pool, flops) || nnz < 2) {
      wasmSampledSerial(args);
      return;
    }
    const { panelsAt, caller } = pool.kernelMemory(sampledLayout(args, 0).bytes);
    const l = sampledLayout(args, panelsAt);
    const buf = caller.memory.buffer;
    // The panels of A and B staged by the threads (half of fc1's weight gradient at 10.8%, one
    // thread, when the caller staged them), then the kernel over the slots.
    stageSampledSlots(args, l, buf);
    const panels = sampledPanelsArgs(args, l);
    pool.run(
      KIND_WASM_SAMPLED_STAGE,
      panels as unknown as Record<string, unknown>,
      lineChunks(panels.blockRows + panels.blockCols, Math.min(MAX_CHUNKS, 2 * pool.threads)),
    );
    const job: WasmSampledArgs = { R: args.R, C: args.C, k: args.k, ...l };
    pool.run(
      KIND_WASM_SAMPLED,
      job as unknown as Record<string, unknown>,
      lineChunks(nnz, Math.min(MAX_CHUNKS, 8 * pool.threads)),
    );
    unstageSampled(args, l, buf);
    return;
  }
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

/**
 * Adam's update (adam.ts) split over the pool by element ranges; an element costs about as much
 * as 16 flops of a product (four arrays read, three written, a square root and a division).
 */
export function runAdam(
  args: AdamJobArgs,
  n: number,
  pool: MatrixPool | undefined,
  wasm = false,
): void {
  if (wasm)
    runByLines(KIND_WASM_ADAM, args, n, 16 * n, 2, pool, (lo, hi) =>
      adamWasmRange(localWasmThread(), args, lo, hi),
    );
  else runByLines(KIND_ADAM, args, n, 16 * n, 2, pool, (lo, hi) => adamRange(args, lo, hi));
}

/**
 * Max pooling's backward scatter by planes (pool2d.ts); a pooled output costs about as much as
 * 8 flops of a product (a read of gy and arg and a read-modify-write of gx, scattered).
 */
export function runMaxPoolBackward(
  args: MaxPoolBackwardArgs,
  planes: number,
  pool: MatrixPool | undefined,
): void {
  const flops = 8 * planes * args.outPlane;
  runByLines(KIND_MAXPOOL_BACKWARD, args, planes, flops, 2, pool, (lo, hi) =>
    maxPoolBackwardRange(args, lo, hi),
  );
}

/**
 * A ReLU job over n elements split over the pool in `lines` pieces: the forward and backward
 * (KIND_WASM_RELU / KIND_WASM_RELU_BACKWARD) by elements (lines = n), the backward with plane
 * sums (KIND_WASM_RELU_BACKWARD_SUMS) by planes, with column sums
 * (KIND_WASM_RELU_BACKWARD_COLUMNS) by columns. An element costs about as much as 4 flops of a
 * product (a copy into kernel memory and one out, per operand).
 */
export function runRelu(
  kind: number,
  args: object,
  lines: number,
  n: number,
  pool: MatrixPool | undefined,
  serial: (lo: number, hi: number) => void,
): void {
  runByLines(kind, args, lines, 4 * n, 2, pool, serial);
}

/**
 * Max pooling's forward (KIND_WASM_MAXPOOL) by planes; an input element costs about as much as
 * 4 flops of a product (copied into kernel memory, compared once or more).
 */
export function runMaxPoolForward(
  args: object,
  planes: number,
  size: number,
  pool: MatrixPool | undefined,
  serial: (lo: number, hi: number) => void,
): void {
  runByLines(KIND_WASM_MAXPOOL, args, planes, 4 * size, 2, pool, serial);
}

/** Per-channel sums (channel-sums.ts) by channels; an element costs about one flop of a product. */
export function runChannelSums(
  args: ChannelSumsArgs,
  elements: number,
  pool: MatrixPool | undefined,
): void {
  runByLines(KIND_CHANNEL_SUMS, args, args.c, elements, 2, pool, (lo, hi) =>
    channelSumsRange(args, lo, hi),
  );
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

/**
 * KEP jobs count their flops divided by this against minParallelFlops (with the default, pooled
 * from 7.2 MFLOP): the plain-JavaScript KEP loops run at ~2-3 GFLOP/s, so a small job is over
 * before a pooled one has staged its arrays and woken a worker. Forward, serial against a
 * 2-thread pool, medians on an idle machine (sweeps stopped), n = 3 of 9: 32 -> 64 channels at
 * 14x14, batch 1 / 2 / 4 / 8 (2.4 / 4.8 / 9.6 / 19.3 MFLOP): 1.10 vs 2.00, 2.13 vs 3.18, 3.27 vs
 * 2.94, 6.44 vs 5.27 ms; 32 -> 32 at 28x28, batch 1 / 2 (4.8 / 9.6 MFLOP): 1.57 vs 1.53, 3.89 vs
 * 3.64 ms. bench/kep-conv.ts in @tessera/pruning times whole layers.
 */
const KEP_FLOP_DISCOUNT = 24;

/** The KEP convolution, split over the pool by lines (each output plane or filter whole on one thread). */
export function runKep(args: KepArgs, flops: number, pool: MatrixPool | undefined): void {
  runByLines(KIND_KEP, args, kepLines(args), flops / KEP_FLOP_DISCOUNT, 4, pool, (lo, hi) =>
    kepRange(args, lo, hi),
  );
}

/**
 * `bytes` of kernel memory after the scratch regions: the pool's shared memory (its caller's
 * kernel) when pooled, else this thread's own, grown as needed. Returns the kernel and the
 * first byte of the area.
 */
function kernelArea(pool: MatrixPool | undefined, bytes: number): { t: WasmThread; at: number } {
  if (pool !== undefined) {
    const k = pool.kernelMemory(bytes);
    return { t: k.caller, at: k.panelsAt };
  }
  const t = localWasmThread();
  const need = SCRATCH_BYTES + bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  return { t, at: SCRATCH_BYTES };
}

/**
 * Kernel memory for a convolution product: `bytes` after the scratch regions, in the pool's
 * shared memory (pooled) or this thread's own (serial). Returns the caller's kernel, where the
 * free bytes start, and the stage (tables and padded input) written there.
 */
function convMemory(
  pool: MatrixPool | undefined,
  g: ResolvedConv2d,
  extra: (stageEnd: number) => number,
): { t: WasmThread; T: ConvTables; stage: ConvStage; H: Float32Array } {
  const T = convTables(g);
  const rel = convStageLayout(T, 0);
  const { t, at } = kernelArea(pool, rel.end + extra(rel.end) + 64);
  const stage = convStageLayout(T, at);
  const H = t.f32();
  stageTables(H.buffer, T, stage);
  return { t, T, stage, H };
}

/** Packs A (m x k, `trans` as the dense products take it) whole at apAt: the pool's threads share it. */
function packWhole(
  t: WasmThread,
  pool: MatrixPool | undefined,
  trans: typeof TRANS_NONE | typeof TRANS_A,
  a: Float32Array,
  apAt: number,
  m: number,
  k: number,
  imagesFirstP = 0,
): void {
  const [pa] = wasmPanelCounts(m, 1);
  if (pool === undefined || pa < 2 * pool.threads) {
    if (imagesFirstP > 0) wasmPackImagesFirstA(t, a, apAt, m, k, imagesFirstP, 0, pa);
    else wasmPackRange(t, trans, a, a, apAt, apAt, m, k, 1, 0, pa);
    return;
  }
  const pack: WasmPackArgs = { trans, a, b: a, apAt, bpAt: apAt, m, k, n: 1, P: imagesFirstP };
  const ranges = evenCuts(pa, 2 * pool.threads, 1).slice(1);
  const chunks: Range[] = ranges.map((hi, i) => [i === 0 ? 0 : ranges[i - 1]!, hi, 0, 0]);
  pool.run(
    KIND_WASM_PACK,
    pack as unknown as Record<string, unknown>,
    chunks.filter((r) => r[1] > r[0]),
  );
}

/**
 * The convolution's forward product (y [F, N·P] = W·cols) or weight gradient
 * (dW [F, K] = G·colsᵀ) on the WebAssembly kernels, B gathered from the staged input.
 */
export function runWasmConvProduct(
  which: "forward" | "weight",
  a: Float32Array,
  x: Float32Array,
  c: Float32Array,
  g: ResolvedConv2d,
  F: number,
  pool: MatrixPool | undefined,
  imagesFirst = false,
  bias?: Float32Array,
  relu = false,
): void {
  const K = g.c * g.kh * g.kw;
  const NP = g.n * g.outH * g.outW;
  // imagesFirst: the forward writes y as [N, F, P]; the weight gradient reads G as [N, F, P].
  const [m, k, n] = which === "forward" ? [F, K, NP] : [F, NP, K];
  const pooled = usePool(pool, 2 * m * k * n) ? pool : undefined;
  const [la] = wasmPackedBytes(m, k, n);
  const epilogue = bias !== undefined || relu;
  const { t, stage, H } = convMemory(pooled, g, () => la + (epilogue ? roundUp16(4 * m) : 0));
  // The padded copy of x, split by planes over the pool when the product is (its memory is the
  // pool's then); an element costs about as much as 4 flops of a product.
  const pad = padArgs(x, g, stage.xpAt);
  runByLines(KIND_WASM_STAGE, pad, g.n * g.c, 4 * convTables(g).xpLength, 2, pooled, (lo, hi) =>
    stagePlanes(t, pad, lo, hi),
  );
  const apAt = stage.end;
  // The bias (one per row of C) after the A panels, zeros for a ReLU alone; -1: neither.
  const biasAt = epilogue ? apAt + la : -1;
  if (bias) H.set(bias.subarray(0, m), biasAt >> 2);
  else if (relu) H.fill(0, biasAt >> 2, (biasAt >> 2) + m);
  const forward = which === "forward";
  packWhole(t, pooled, TRANS_NONE, a, apAt, m, k, !forward && imagesFirst ? g.outH * g.outW : 0);
  const args: ImplicitArgs = {
    c: c.length === m * n ? c : c.subarray(0, m * n),
    apAt,
    xpAt: stage.xpAt,
    kTabAt: forward ? stage.rowAt : stage.colAt,
    lTabAt: forward ? stage.colAt : stage.rowAt,
    lFlagsAt: forward ? stage.colFlagsAt : stage.rowFlagsAt,
    m,
    k,
    n,
    P: forward && imagesFirst ? g.outH * g.outW : 0,
    biasAt,
    relu: relu ? 1 : 0,
    kQuadsAt: forward ? -1 : stage.colQuadsAt,
  };
  if (pooled === undefined) implicitRange(t, args, 0, m, 0, n);
  else
    pool!.run(
      KIND_WASM_CONV,
      args as unknown as Record<string, unknown>,
      productChunks(m, n, pooled.threads, WASM_TILE.mr, WASM_TILE.nr),
    );
}

/**
 * The convolution's input gradient dx = col2im(Wᵀ·G) on the WebAssembly kernels (out: [N, C, H, W]);
 * G is [F, N·P], or [N, F, P] with `imagesFirst`.
 */
export function runWasmConvInput(
  w: Float32Array,
  gy: Float32Array,
  out: Float32Array,
  g: ResolvedConv2d,
  F: number,
  pool: MatrixPool | undefined,
  imagesFirst = false,
): void {
  const K = g.c * g.kh * g.kw;
  const P = g.outH * g.outW;
  const NP = g.n * P;
  const pooled = usePool(pool, 2 * K * F * NP) && g.n > 1 ? pool : undefined;
  const [la] = wasmPackedBytes(K, F, NP);
  const chunkBytes = chunkBytesFor(K, P);
  const threads = pooled?.threads ?? 1;
  const { t, stage } = convMemory(pooled, g, () => la + threads * chunkBytes);
  const apAt = stage.end;
  packWhole(t, pooled, TRANS_A, w, apAt, K, F);
  const args: Col2imArgs = {
    b: gy,
    apAt,
    xpAt: stage.xpAt,
    rowAt: stage.rowAt,
    colAt: stage.colAt,
    K,
    F,
    P,
    NP,
    chunkImages: chunkImagesFor(P),
    chunksAt: roundUp16(apAt + la),
    chunkBytes,
    imagesFirst: imagesFirst ? 1 : 0,
    dx: out.length === g.n * g.c * g.h * g.w ? out : out.subarray(0, g.n * g.c * g.h * g.w),
    C: g.c,
    H: g.h,
    W: g.w,
    padH: g.padH,
    padW: g.padW,
  };
  if (pooled === undefined) col2imRange(t, args, 0, g.n);
  else
    pooled.run(
      KIND_WASM_COL2IM,
      args as unknown as Record<string, unknown>,
      lineChunks(g.n, Math.min(MAX_CHUNKS, 4 * pooled.threads)),
    );
}

const roundUp16 = (v: number) => Math.ceil(v / 16) * 16;

/**
 * The forward convolution y [N, F, outH, outW] = conv(x, w) (+ bias, then ReLU with `relu`) by
 * Winograd F(2x2, r x r) on the WebAssembly kernels (wasm-winograd.ts; the geometry must pass
 * winogradApplies), split over the pool by images.
 */
export function runWasmWinograd(
  w: Float32Array,
  x: Float32Array,
  y: Float32Array,
  g: ResolvedConv2d,
  F: number,
  pool: MatrixPool | undefined,
  bias?: Float32Array,
  relu = false,
): void {
  const hp = g.h + 2 * g.padH;
  const wp = g.w + 2 * g.padW;
  const P = g.outH * g.outW;
  const xpFloats = g.n * g.c * hp * wp;
  // 16/36 of the direct product's multiply-adds
  const pooled = usePool(pool, (2 * F * g.c * 16 * g.n * P) / 4) && g.n > 1 ? pool : undefined;
  // the input transform reads up to 6 floats past a tile row's end: slack after xp
  const uOff = roundUp16(4 * xpFloats + 64);
  const biasOff = uOff + roundUp16(4 * winogradFilterFloats(g.kh, g.c, F));
  const yOff = biasOff + roundUp16(4 * F);
  const bytes = yOff + 4 * g.n * F * P + 64;
  const { t, at } = kernelArea(pooled, bytes);
  const xpAt = roundUp16(at);
  const pad = padArgs(x, g, xpAt);
  runByLines(KIND_WASM_STAGE, pad, g.n * g.c, 4 * xpFloats, 2, pooled, (lo, hi) =>
    stagePlanes(t, pad, lo, hi),
  );
  const H = t.f32();
  const uAt = xpAt + uOff;
  transformFilters(H, uAt >> 2, w, F, g.c, g.kh);
  const biasAt = xpAt + biasOff;
  if (bias) H.set(bias.subarray(0, F), biasAt >> 2);
  else H.fill(0, biasAt >> 2, (biasAt >> 2) + F);
  const args: WinogradArgs = {
    y: y.length === g.n * F * P ? y : y.subarray(0, g.n * F * P),
    xpAt,
    uAt,
    yAt: xpAt + yOff,
    biasAt,
    c: g.c,
    f: F,
    outH: g.outH,
    outW: g.outW,
    hp,
    wp,
    relu: relu ? 1 : 0,
    rowsPerBlock: winogradRowsPerBlock(g, F),
    r: g.kh,
  };
  if (pooled === undefined) winogradRange(t, args, 0, g.n);
  else
    pooled.run(
      KIND_WASM_WINOGRAD,
      args as unknown as Record<string, unknown>,
      lineChunks(g.n, Math.min(MAX_CHUNKS, 4 * pooled.threads)),
    );
}

/**
 * The weight gradient dW [F, C·9] of a convolution whose forward takes the Winograd route, from
 * gy [N, F, outH, outW] (wasm-winograd.ts; the geometry must pass winogradGradApplies): the
 * WINOGRAD_GRAD_CHUNKS image chunks over the pool, then their sums added in order and
 * transformed back on the caller.
 */
export function runWasmWinogradGrad(
  gy: Float32Array,
  x: Float32Array,
  dW: Float32Array,
  g: ResolvedConv2d,
  F: number,
  pool: MatrixPool | undefined,
): void {
  const hp = g.h + 2 * g.padH;
  const wp = g.w + 2 * g.padW;
  const P = g.outH * g.outW;
  const planeX = hp * wp;
  const pooled = usePool(pool, (2 * F * g.c * 16 * g.n * P) / 4) ? pool : undefined;
  // the transforms read up to three planes past the last (channel and filter quads) and six
  // floats past a row's end: slack after each staged array
  const gyOff = roundUp16(4 * (g.n * g.c + 3) * planeX + 64);
  const duOff = gyOff + roundUp16(4 * (g.n * F + 3) * P + 64);
  const bytes = duOff + 4 * WINOGRAD_GRAD_CHUNKS * winogradGradChunkFloats(g.kh, g.c, F) + 64;
  const { t, at } = kernelArea(pooled, bytes);
  const xpAt = roundUp16(at);
  const pad = padArgs(x, g, xpAt);
  runByLines(KIND_WASM_STAGE, pad, g.n * g.c, 4 * g.n * g.c * planeX, 2, pooled, (lo, hi) =>
    stagePlanes(t, pad, lo, hi),
  );
  // the slack is read (by lanes whose results are dropped): keep it finite
  let H = t.f32();
  H.fill(0, (xpAt >> 2) + g.n * g.c * planeX, (xpAt + gyOff) >> 2);
  H.fill(0, ((xpAt + gyOff) >> 2) + g.n * F * P, (xpAt + duOff) >> 2);
  const args: WinogradGradArgs = {
    gy: gy.length === g.n * F * P ? gy : gy.subarray(0, g.n * F * P),
    xpAt,
    gyAt: xpAt + gyOff,
    duAt: xpAt + duOff,
    n: g.n,
    c: g.c,
    f: F,
    outH: g.outH,
    outW: g.outW,
    hp,
    wp,
    rowsPerBlock: winogradGradRowsPerBlock(g, F),
    chunkImages: Math.ceil(g.n / WINOGRAD_GRAD_CHUNKS),
    r: g.kh,
  };
  if (pooled === undefined) winogradGradRange(t, args, 0, WINOGRAD_GRAD_CHUNKS);
  else
    pooled.run(
      KIND_WASM_WINOGRAD_GRAD,
      args as unknown as Record<string, unknown>,
      lineChunks(WINOGRAD_GRAD_CHUNKS, WINOGRAD_GRAD_CHUNKS),
    );
  H = t.f32();
  winogradGradReduce(H, args.duAt, WINOGRAD_GRAD_CHUNKS, F, g.c, dW, g.kh);
}
