// Block-sparse times dense kernels shared by BsrMatrix, CsrMatrix and the pool workers.
//
// One generic kernel serves all four products (A·X, Aᵀ·X, X·A, X·Aᵀ): it walks "outer" block
// lines (block rows of A, or block columns through a cached transposed index) and, for a tile
// of up to 4 output lines by 4 output columns (8 in the asm.js build: SPMM_TILE_WIDTHS), keeps
// the tile's accumulators in locals across every stored block of that line before writing once. Strides say how blocks, X and the output are
// laid out, so the transposed products need no transposed copies. Each output element is one
// float64 sum in stored-block order, written once, whatever range a thread gets.
//
// Blocks larger than 1x1 run through the same kernel written in asm.js (spmm-asm.ts: 1.6-2.6x
// faster in ad-hoc A/B runs of 2x2-16x16 blocks at 90-95% sparsity, 1024x1024 by 1024x128);
// 1x1 blocks (CSR) keep the plain-JS kernel below (not ported yet).
import type { FloatArray } from "./types.ts";
import { HEADER, HEADER_BYTES, spmmModules } from "./spmm-asm.ts";
import type { SpmmKernel, SpmmModules } from "./spmm-asm.ts";

/** Everything the kernel needs besides the outer-line range; plain numbers and arrays so it can cross to workers. */
export interface SpmmArgs {
  /** ptr[o]..ptr[o+1] are the stored-block slots of outer line o. */
  ptr: Int32Array;
  /** Inner block index of each slot. */
  idx: Int32Array;
  /** Block number (into data) of each slot. */
  ids: Int32Array;
  data: FloatArray;
  /** Elements per block (R*C). */
  bsz: number;
  /** Lines per outer block (R for A, C for Aᵀ) and inner width (C for A, R for Aᵀ). */
  ob: number;
  ib: number;
  /** Element strides inside a block along the outer and inner direction. */
  eos: number;
  eis: number;
  /** Logical sizes along the outer and inner direction (ragged edges are clipped to these). */
  outerLimit: number;
  innerLimit: number;
  x: FloatArray;
  /** X[inner i, column j] = x[i*sxi + j*sxj]. */
  sxi: number;
  sxj: number;
  out: FloatArray;
  /** Out[outer o, column j] = out[o*soo + j*soj]. */
  soo: number;
  soj: number;
  n: number;
}

/**
 * A product's optional epilogue: add bias[line] to every output of outer line `line` (an output
 * feature of the forward product), then, with `relu`, take max(v, +0). The serial asm.js kernel
 * applies it to each outer block's lines right after computing them, the serial CSR loop after
 * its range; the other routes run spmmEpilogue over the whole output after the product. Kept
 * out of SpmmArgs, which is what a pooled job carries: a pooled product's workers never see it.
 */
export interface SpmmEpilogue {
  bias?: FloatArray | null;
  relu?: boolean;
}

/** A product's arguments with its epilogue. */
export type SpmmCall = SpmmArgs & SpmmEpilogue;

/** Whether `s` asks for an epilogue. */
export function hasEpilogue(s: SpmmCall): boolean {
  return (s.bias !== undefined && s.bias !== null) || s.relu === true;
}

/** `s` without its epilogue fields (what a pooled job carries). */
export function withoutEpilogue(s: SpmmCall): SpmmArgs {
  if (!hasEpilogue(s)) return s;
  const { bias: _bias, relu: _relu, ...rest } = s;
  return rest;
}

/**
 * The epilogue of `s` over output lines [line0, line1) and columns [j0, j1), in place: the bias
 * sum formed in double and stored rounded (the float32 sum, as autograd's linear adds its
 * bias), then relu's branch-free max(v, +0) with its fix-up for non-finite values. The asm.js
 * kernel's epilogue computes the same values.
 */
export function spmmEpilogue(
  s: SpmmCall,
  line0: number,
  line1: number,
  j0: number,
  j1: number,
): void {
  const { out, soo, soj } = s;
  const bias = s.bias ?? null;
  const relu = s.relu === true;
  if (bias === null && !relu) return;
  for (let l = line0; l < line1; l++) {
    const b = bias === null ? 0 : bias[l]!;
    for (let j = j0, o = l * soo + j0 * soj; j < j1; j++, o += soj) {
      const v = bias === null ? out[o]! : out[o]! + b;
      if (!relu) {
        out[o] = v;
        continue;
      }
      let m = (v + Math.abs(v)) * 0.5;
      if (m - m !== 0) m = v > 0 ? v : v === v ? 0 : v;
      out[o] = m;
    }
  }
}

/**
 * Computes the output of outer blocks [o0, o1) in columns [j0, j1) of X and the output (the
 * batch rows of the batch-major products). Every element is the same sum in the same order
 * whichever range computes it, so a product split by lines or by columns gives the same bits.
 */
export function spmmRange(s: SpmmCall, o0: number, o1: number, j0 = 0, j1 = s.n, slot = 0): void {
  if (o1 <= o0 || j1 <= j0) return;
  if (s.bsz === 1) {
    // CSR (1x1 blocks): one output line, 8 columns at a time, no block bookkeeping.
    for (let o = o0; o < o1; o++) {
      let j = j0;
      for (; j + 8 <= j1; j += 8) csrLine8(s, o, j);
      for (; j + 4 <= j1; j += 4) tile1x4(s, o, o, 0, j);
      for (; j < j1; j++) tileHx1(s, o, o, 0, 1, j);
    }
    if (hasEpilogue(s)) spmmEpilogue(s, o0, Math.min(o1, s.outerLimit), j0, j1);
    return;
  }
  spmmRangeAsm(s, o0, o1, j0, j1, slot);
}

/**
 * The same product through the asm.js kernel (spmm-asm.ts), which gives bit-identical sums.
 * Once per job, this thread copies the blocks and the index arrays into its own heap (asm.js
 * heaps cannot be shared), and X: whole for a chunk of lines, or only the chunk's columns for
 * a chunk of columns (the batch rows of a batch-major X, one contiguous copy), so threads that
 * split the batch copy one share of X each; each chunk then runs and copies its output out.
 */
function spmmRangeAsm(
  s: SpmmCall,
  o0: number,
  o1: number,
  j0: number,
  j1: number,
  slot: number,
): void {
  const st = stageJob(s, slot);
  stageColumns(st, s, j0, j1);
  st.kernel.run(o0, o1, j0, j1);
  const { out, soo, soj, ob, outerLimit, n } = s;
  const line0 = o0 * ob;
  const line1 = Math.min(o1 * ob, outerLimit);
  if (line1 <= line0) return;
  const F = st.es === 8 ? st.f64 : st.f32;
  const base = st.outAt / st.es;
  if (soj === 1 && soo === n && j0 === 0 && j1 === n) {
    out.set(F.subarray(base + line0 * n, base + line1 * n), line0 * n);
  } else if (soj === 1) {
    for (let l = line0; l < line1; l++)
      out.set(F.subarray(base + l * soo + j0, base + l * soo + j1), l * soo + j0);
  } else if (soo === 1 && soj === outerLimit && line0 === 0 && line1 === outerLimit) {
    // Batch-major output, all lines of columns [j0, j1): one contiguous run.
    out.set(F.subarray(base + j0 * soj, base + j1 * soj), j0 * soj);
  } else if (soo === 1) {
    for (let j = j0; j < j1; j++)
      out.set(F.subarray(base + j * soj + line0, base + j * soj + line1), j * soj + line0);
  } else {
    for (let l = line0; l < line1; l++)
      for (let j = j0; j < j1; j++) out[l * soo + j * soj] = F[base + l * soo + j * soj]!;
  }
}

/**
 * Puts X's columns [j0, j1) into this thread's heap unless the job already holds them: all of X
 * once when a chunk spans every column, else exactly the chunk's columns (chunks of columns are
 * disjoint, so no column is copied twice).
 */
function stageColumns(st: Staged, s: SpmmArgs, j0: number, j1: number): void {
  if (st.xWhole) return;
  const { x, sxi, sxj, innerLimit, n } = s;
  if (innerLimit === 0 || n === 0) return;
  const F = st.f64;
  const at = st.xAt / 8;
  if (j0 === 0 && j1 === n) {
    const len = (innerLimit - 1) * sxi + (n - 1) * sxj + 1;
    F.set(x.subarray(0, len), at);
    st.xWhole = true;
  } else if (sxi === 1) {
    // X [n, inner] (batch-major): columns j0..j1-1 are rows of the array, one contiguous run.
    const from = j0 * sxj;
    F.set(x.subarray(from, (j1 - 1) * sxj + innerLimit), at + from);
  } else {
    for (let i = 0; i < innerLimit; i++)
      for (let j = j0; j < j1; j++) F[at + i * sxi + j * sxj] = x[i * sxi + j * sxj]!;
  }
}

const align8 = (b: number) => (b + 7) & ~7;

interface Staged {
  f32: Float32Array;
  f64: Float64Array;
  kernel: SpmmKernel;
  es: number;
  outAt: number;
  xAt: number;
  /** All of X is in the heap (stageColumns copied it whole for this job). */
  xWhole: boolean;
}

/**
 * This thread's heaps, one per slot: slot 0 for ordinary products, slot l for layer l of a
 * chain (spmmChainRange), so a chain's layers stay staged across its chunks. Each holds its
 * kernels (re-created when a job needs a bigger heap), the job whose operands are in it now
 * (args objects are made anew for every call and job), held strongly: one job's arguments per
 * slot. A WeakRef here kept every job's arguments alive instead, since an engine keeps a
 * WeakRef's target until the current synchronous job ends, and a pool worker's loop (like a
 * caller's timing loop) never ends it: each worker's heap grew by every job's views and the
 * scavenges, copying them, took 5-16 ms instead of 0.2-0.6 (--trace-gc over 2000 two-thread BSR
 * plan runs, 2026-12-02).
 */
interface HeapSlot {
  heap: ArrayBuffer;
  kernels: Partial<Record<"f32" | "f64", SpmmKernel>>;
  stagedFor: SpmmArgs | undefined;
  staged: Staged | undefined;
}
const heaps: HeapSlot[] = [];
/** How many times this thread has staged a job (stageJob's cache misses), for tests. */
let stagings = 0;
/** The kernel this thread's products run: spmmModules unless a test installs another. */
let modules: SpmmModules = spmmModules;

/**
 * @internal Test hook: this thread's asm.js sparse products run `m` (other tile widths from
 * compileSpmmModules; undefined: the default) from the next product on.
 */
export function useSpmmModules(m: SpmmModules | undefined): void {
  modules = m ?? spmmModules;
  heaps.length = 0;
}

/** @internal Jobs staged into this thread's asm.js heaps so far (a job's chunks share one). */
export function spmmStagings(): number {
  return stagings;
}

/** asm.js heap sizes: a power of two from 64 KiB, or a multiple of 16 MiB. */
function heapSize(bytes: number): number {
  if (bytes <= 1 << 24) return Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes)));
  return Math.ceil(bytes / (1 << 24)) * (1 << 24);
}

/**
 * Copies the job's blocks and index arrays into this thread's heap (once per job) and writes the
 * header; X follows chunk by chunk (stageColumns).
 */
function stageJob(s: SpmmCall, slot: number): Staged {
  const current = heaps[slot];
  if (current?.staged !== undefined && current.stagedFor === s) return current.staged;
  const es = s.x instanceof Float64Array ? 8 : 4;
  const { n, innerLimit, outerLimit, sxi, sxj, soo, soj, ob, bsz } = s;
  const xLen = innerLimit > 0 && n > 0 ? (innerLimit - 1) * sxi + (n - 1) * sxj + 1 : 0;
  const outLen = outerLimit > 0 && n > 0 ? (outerLimit - 1) * soo + (n - 1) * soj + 1 : 0;
  const outerBlocks = Math.ceil(outerLimit / ob);
  const slots = s.ptr[outerBlocks]!;
  let blocks = 0;
  for (let q = 0; q < slots; q++) blocks = Math.max(blocks, s.ids[q]! + 1);
  const xAt = HEADER_BYTES;
  const outAt = align8(xAt + 8 * xLen);
  const dataAt = align8(outAt + es * outLen);
  const ptrAt = align8(dataAt + 8 * blocks * bsz);
  const idxAt = ptrAt + 4 * (outerBlocks + 1);
  const idsAt = idxAt + 4 * slots;
  const bias = s.bias ?? null;
  const biasAt = bias === null ? 0 : align8(idsAt + 4 * slots);
  const need = bias === null ? idsAt + 4 * slots : biasAt + es * outerLimit;
  let hs = current;
  if (hs === undefined || hs.heap.byteLength < need) {
    hs = {
      heap: new ArrayBuffer(heapSize(need)),
      kernels: {},
      stagedFor: undefined,
      staged: undefined,
    };
    heaps[slot] = hs;
  }
  const { heap, kernels } = hs;
  const type = es === 8 ? "f64" : "f32";
  const kernel = (kernels[type] ??= modules[type](globalThis, {}, heap));
  const st: Staged = {
    f32: new Float32Array(heap),
    f64: new Float64Array(heap),
    kernel,
    es,
    outAt,
    xAt,
    xWhole: false,
  };
  st.f64.set(s.data.subarray(0, blocks * bsz), dataAt / 8);
  const F = es === 8 ? st.f64 : st.f32;
  const I = new Int32Array(heap);
  I.set(s.ptr.subarray(0, outerBlocks + 1), ptrAt >> 2);
  I.set(s.idx.subarray(0, slots), idxAt >> 2);
  I.set(s.ids.subarray(0, slots), idsAt >> 2);
  if (bias !== null) F.set(bias.subarray(0, outerLimit) as never, biasAt / es);
  I[HEADER.ob] = ob;
  I[HEADER.ib] = s.ib;
  I[HEADER.eos] = s.eos;
  I[HEADER.eis] = s.eis;
  I[HEADER.bsz] = bsz;
  I[HEADER.outerLimit] = outerLimit;
  I[HEADER.innerLimit] = innerLimit;
  I[HEADER.sxi] = sxi;
  I[HEADER.sxj] = sxj;
  I[HEADER.soo] = soo;
  I[HEADER.soj] = soj;
  I[HEADER.n] = n;
  I[HEADER.ptrAt] = ptrAt;
  I[HEADER.idxAt] = idxAt;
  I[HEADER.idsAt] = idsAt;
  I[HEADER.dataAt] = dataAt;
  I[HEADER.xAt] = xAt;
  I[HEADER.outAt] = outAt;
  I[HEADER.biasAt] = biasAt;
  I[HEADER.epi] = (bias === null ? 0 : 1) | (s.relu === true ? 2 : 0);
  hs.staged = st;
  hs.stagedFor = s;
  stagings++;
  return st;
}

function tile1x4(s: SpmmArgs, o: number, line: number, t: number, j: number): void {
  const { ptr, idx, ids, data, bsz, ib, eos, eis, innerLimit, x, sxi, sxj } = s;
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0;
  const x1 = sxj,
    x2 = 2 * sxj,
    x3 = 3 * sxj;
  const p1 = ptr[o + 1]!;
  for (let p = ptr[o]!; p < p1; p++) {
    const i0 = idx[p]! * ib;
    const w = Math.min(ib, innerLimit - i0);
    let wp = ids[p]! * bsz + t * eos;
    let xp = i0 * sxi + j * sxj;
    for (let c = 0; c < w; c++, wp += eis, xp += sxi) {
      const a0 = data[wp]!;
      c00 += a0 * x[xp]!;
      c01 += a0 * x[xp + x1]!;
      c02 += a0 * x[xp + x2]!;
      c03 += a0 * x[xp + x3]!;
    }
  }
  const { out, soo, soj } = s;
  const q = line * soo + j * soj;
  out[q] = c00;
  out[q + soj] = c01;
  out[q + 2 * soj] = c02;
  out[q + 3 * soj] = c03;
}

/** Edge columns (n not a multiple of 4): h lines by one column, same summation order. */
function tileHx1(s: SpmmArgs, o: number, line: number, t: number, h: number, j: number): void {
  const { ptr, idx, ids, data, bsz, ib, eos, eis, innerLimit, x, sxi, out, soo, soj } = s;
  for (let r = 0; r < h; r++) {
    let acc = 0;
    const p1 = ptr[o + 1]!;
    for (let p = ptr[o]!; p < p1; p++) {
      const i0 = idx[p]! * ib;
      const w = Math.min(ib, innerLimit - i0);
      let wp = ids[p]! * bsz + (t + r) * eos;
      let xp = i0 * sxi + j * s.sxj;
      for (let c = 0; c < w; c++, wp += eis, xp += sxi) acc += data[wp]! * x[xp]!;
    }
    out[(line + r) * soo + j * soj] = acc;
  }
}

/** 1x1 blocks: out[o, j..j+7] = sum over stored entries p of line o of data[ids[p]] * X[idx[p], j..j+7]. */
function csrLine8(s: SpmmArgs, o: number, j: number): void {
  const { ptr, idx, ids, data, x, sxi, sxj } = s;
  let c0 = 0,
    c1 = 0,
    c2 = 0,
    c3 = 0,
    c4 = 0,
    c5 = 0,
    c6 = 0,
    c7 = 0;
  const p1 = ptr[o + 1]!;
  const j0 = j * sxj;
  for (let p = ptr[o]!; p < p1; p++) {
    const a = data[ids[p]!]!;
    const xp = idx[p]! * sxi + j0;
    c0 += a * x[xp]!;
    c1 += a * x[xp + sxj]!;
    c2 += a * x[xp + 2 * sxj]!;
    c3 += a * x[xp + 3 * sxj]!;
    c4 += a * x[xp + 4 * sxj]!;
    c5 += a * x[xp + 5 * sxj]!;
    c6 += a * x[xp + 6 * sxj]!;
    c7 += a * x[xp + 7 * sxj]!;
  }
  const { out, soo, soj } = s;
  const q = o * soo + j * soj;
  out[q] = c0;
  out[q + soj] = c1;
  out[q + 2 * soj] = c2;
  out[q + 3 * soj] = c3;
  out[q + 4 * soj] = c4;
  out[q + 5 * soj] = c5;
  out[q + 6 * soj] = c6;
  out[q + 7 * soj] = c7;
}

/**
 * Layer table of a forward chain (SpmmChainArgs.table): CHAIN.stride Int32 slots per layer, at
 * these offsets. The one definition both the encoder (chain.ts) and the kernel side read.
 */
export const CHAIN = {
  /** Output features (W's rows) and input features (W's columns). */
  outer: 0,
  inner: 1,
  /** Block shape R x C. */
  R: 2,
  C: 3,
  /** Start of the layer's indptr in `ptr`, of its slots in `idx`, of its blocks in `data`. */
  ptrAt: 4,
  slotAt: 5,
  dataAt: 6,
  /** Start of its bias in `bias`, or -1 without one. */
  biasAt: 7,
  /** 1: ReLU after the bias. */
  relu: 8,
  /** Start of its [n, outer] output in `out`. */
  outAt: 9,
  /** W's block rows. */
  blockRows: 10,
  stride: 11,
} as const;

/**
 * Consecutive batch-major BSR layers run as one product each on a chunk of batch rows:
 * y_l = relu_l?(y_{l-1}·W_lᵀ + b_l), y_{-1} = x, every y_l written to `out` at its outAt.
 * Row j of y_l needs only row j of y_{l-1}, so a chunk carries its rows through every layer
 * with no other thread's rows (chain.ts).
 */
export interface SpmmChainArgs {
  table: Int32Array;
  ptr: Int32Array;
  idx: Int32Array;
  /** 0, 1, 2, ...: every layer's slots hold its blocks in order (at least the largest layer's slots). */
  ids: Int32Array;
  data: Float32Array;
  bias: Float32Array;
  x: Float32Array;
  out: Float32Array;
  layers: number;
  n: number;
}

/** The calls of the last chain job this thread ran (a job's chunks share them; see stageJob). */
let lastChain: SpmmChainArgs | undefined;
let chainCalls: SpmmCall[] = [];

/** Each layer's call (views into the chain's arrays), as BsrMatrix.rmatmulTranspose makes it. */
export function chainLayerCalls(c: SpmmChainArgs): SpmmCall[] {
  const { table, n } = c;
  const calls: SpmmCall[] = [];
  for (let l = 0; l < c.layers; l++) {
    const t = l * CHAIN.stride;
    const outer = table[t + CHAIN.outer]!;
    const inner = table[t + CHAIN.inner]!;
    const R = table[t + CHAIN.R]!;
    const C = table[t + CHAIN.C]!;
    const rows = table[t + CHAIN.blockRows]!;
    const ptrAt = table[t + CHAIN.ptrAt]!;
    const slotAt = table[t + CHAIN.slotAt]!;
    const dataAt = table[t + CHAIN.dataAt]!;
    const biasAt = table[t + CHAIN.biasAt]!;
    const outAt = table[t + CHAIN.outAt]!;
    const ptr = c.ptr.subarray(ptrAt, ptrAt + rows + 1);
    const slots = ptr[rows]!;
    // Layer l reads layer l-1's output rows, which the same chunk has just written.
    const x = l === 0 ? c.x : calls[l - 1]!.out;
    calls.push({
      ptr,
      idx: c.idx.subarray(slotAt, slotAt + slots),
      ids: c.ids.subarray(0, slots),
      data: c.data.subarray(dataAt, dataAt + slots * R * C),
      bsz: R * C,
      ob: R,
      ib: C,
      eos: C,
      eis: 1,
      outerLimit: outer,
      innerLimit: inner,
      x,
      sxi: 1,
      sxj: inner,
      out: c.out.subarray(outAt, outAt + n * outer),
      soo: 1,
      soj: outer,
      n,
      bias: biasAt < 0 ? null : c.bias.subarray(biasAt, biasAt + outer),
      relu: table[t + CHAIN.relu] === 1,
    });
  }
  return calls;
}

/**
 * Batch rows [j0, j1) of every layer of the chain, layer after layer, each on its own heap slot
 * (its blocks staged once per job and thread). Same sums as each layer's own product.
 */
export function spmmChainRange(c: SpmmChainArgs, j0: number, j1: number): void {
  if (c !== lastChain) {
    chainCalls = chainLayerCalls(c);
    lastChain = c;
  }
  for (let l = 0; l < chainCalls.length; l++) {
    const s = chainCalls[l]!;
    spmmRange(s, 0, s.ptr.length - 1, j0, j1, l);
  }
}
