// Sampled dense-dense product (SDDMM): (A·B) evaluated only at a block pattern's stored blocks.
// This is the weight gradient of a block-sparse layer. Each stored block is independent, so a
// thread takes a contiguous range of stored-block slots; within a block, 4x4 sub-tiles keep 16
// accumulators in locals across the whole k loop (the same register tile as the dense GEMM).
// Blocks larger than 1x1 run that loop as asm.js (sampled-asm.ts; each thread copies the
// operands into its own heap once per job); 1x1 blocks (CSR) keep the JavaScript kernel below.
import type { FloatArray } from "./types.ts";
import { SAMPLED_HEADER, SAMPLED_HEADER_BYTES, sampledModules } from "./sampled-asm.ts";
import type { SampledKernel } from "./sampled-asm.ts";

export interface SampledArgs {
  indptr: Int32Array;
  indices: Int32Array;
  R: number;
  C: number;
  rows: number;
  cols: number;
  /** A(i, p) = a[i*sai + p*sap] for logical i < rows, p < k. */
  a: FloatArray;
  sai: number;
  sap: number;
  /** B(p, j) = b[p*sbp + j*sbj] for p < k, logical j < cols. */
  b: FloatArray;
  sbp: number;
  sbj: number;
  k: number;
  /** Output block data, slot-ordered like the pattern (R*C per slot, row-major inside). */
  out: FloatArray;
}

/** First block row whose slot range contains slot `p` (binary search over indptr). */
function blockRowOf(indptr: Int32Array, p: number): number {
  let lo = 0;
  let hi = indptr.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (indptr[mid]! <= p) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Fills the out blocks of slots [p0, p1). */
export function sampledRange(s: SampledArgs, p0: number, p1: number): void {
  if (p1 <= p0) return;
  if (s.R === 1 && s.C === 1) {
    sampledCsrRange(s, p0, p1);
    return;
  }
  sampledRangeAsm(s, p0, p1);
}

/**
 * The block kernel through asm.js: once per job this thread copies the pattern and both operands
 * into its own heap (asm.js heaps cannot be shared); each chunk then fills its slots there and
 * copies them out.
 */
function sampledRangeAsm(s: SampledArgs, p0: number, p1: number): void {
  const st = stageSampledJob(s);
  st.kernel.run(p0, p1, blockRowOf(s.indptr, p0));
  const rc = s.R * s.C;
  const F = st.es === 8 ? st.f64 : st.f32;
  const base = st.outAt / st.es;
  s.out.set(F.subarray(base + p0 * rc, base + p1 * rc) as never, p0 * rc);
}

const align8 = (b: number) => (b + 7) & ~7;

interface StagedSampled {
  f32: Float32Array;
  f64: Float64Array;
  kernel: SampledKernel;
  es: number;
  outAt: number;
}

/** This thread's heap and kernels for the sampled product (re-created when a job needs more). */
let heapState:
  { heap: ArrayBuffer; kernels: Partial<Record<"f32" | "f64", SampledKernel>> } | undefined;
/**
 * The job whose operands are in the heap now (args objects are made anew for every call and
 * job), held strongly: one job's arguments per thread. A WeakRef here kept every job's
 * arguments alive instead, since an engine keeps a WeakRef's target until the current
 * synchronous job ends, and a pool worker's loop (like a caller's timing loop) never ends it:
 * each worker's heap grew by every job's views and the scavenges, copying them, took 5-16 ms
 * instead of 0.2-0.6 (--trace-gc over 2000 two-thread BSR plan runs, 2026-12-02).
 */
let stagedFor: SampledArgs | undefined;
let staged: StagedSampled | undefined;

/** asm.js heap sizes: a power of two from 64 KiB, or a multiple of 16 MiB. */
function heapSize(bytes: number): number {
  if (bytes <= 1 << 24) return Math.max(1 << 16, 2 ** Math.ceil(Math.log2(bytes)));
  return Math.ceil(bytes / (1 << 24)) * (1 << 24);
}

/** Copies the job's pattern and operands into this thread's heap (once per job) and writes the header. */
function stageSampledJob(s: SampledArgs): StagedSampled {
  if (staged !== undefined && stagedFor === s) return staged;
  const es = s.a instanceof Float64Array ? 8 : 4;
  const { R, C, rows, cols, k } = s;
  const br = s.indptr.length - 1;
  const nnz = s.indptr[br]!;
  // Both layouts of each operand span exactly rows*k (cols*k) elements.
  const aLen = rows * k;
  const bLen = k * cols;
  const outLen = nnz * R * C;
  const ptrAt = SAMPLED_HEADER_BYTES;
  const idxAt = ptrAt + 4 * (br + 1);
  const aAt = align8(idxAt + 4 * nnz);
  const bAt = align8(aAt + es * aLen);
  const outAt = align8(bAt + es * bLen);
  const need = outAt + es * outLen;
  if (heapState === undefined || heapState.heap.byteLength < need) {
    heapState = { heap: new ArrayBuffer(heapSize(need)), kernels: {} };
  }
  const { heap, kernels } = heapState;
  const type = es === 8 ? "f64" : "f32";
  const kernel = (kernels[type] ??= sampledModules[type](globalThis, {}, heap));
  const st: StagedSampled = {
    f32: new Float32Array(heap),
    f64: new Float64Array(heap),
    kernel,
    es,
    outAt,
  };
  const F = es === 8 ? st.f64 : st.f32;
  F.set(s.a.subarray(0, aLen) as never, aAt / es);
  F.set(s.b.subarray(0, bLen) as never, bAt / es);
  const I = new Int32Array(heap);
  I.set(s.indptr.subarray(0, br + 1), ptrAt >> 2);
  I.set(s.indices.subarray(0, nnz), idxAt >> 2);
  const H = SAMPLED_HEADER;
  I[H.R] = R;
  I[H.C] = C;
  I[H.rows] = rows;
  I[H.cols] = cols;
  I[H.sai] = s.sai;
  I[H.sap] = s.sap;
  I[H.sbp] = s.sbp;
  I[H.sbj] = s.sbj;
  I[H.k] = k;
  I[H.ptrAt] = ptrAt;
  I[H.idxAt] = idxAt;
  I[H.aAt] = aAt;
  I[H.bAt] = bAt;
  I[H.outAt] = outAt;
  staged = st;
  stagedFor = s;
  return st;
}

/** 1x1 blocks (CSR): four stored entries of one row share each load of A's row. */
export function sampledCsrRange(s: SampledArgs, p0: number, p1: number): void {
  if (p1 <= p0) return;
  const { indptr, indices, a, sai, sap, b, sbp, sbj, k, out } = s;
  let i = blockRowOf(indptr, p0);
  let p = p0;
  while (p < p1) {
    while (indptr[i + 1]! <= p) i++;
    const end = Math.min(p1, indptr[i + 1]!);
    for (; p + 4 <= end; p += 4) {
      let c0 = 0,
        c1 = 0,
        c2 = 0,
        c3 = 0;
      let ap = i * sai;
      let b0 = indices[p]! * sbj,
        b1 = indices[p + 1]! * sbj,
        b2 = indices[p + 2]! * sbj,
        b3 = indices[p + 3]! * sbj;
      for (let q = 0; q < k; q++, ap += sap, b0 += sbp, b1 += sbp, b2 += sbp, b3 += sbp) {
        const x = a[ap]!;
        c0 += x * b[b0]!;
        c1 += x * b[b1]!;
        c2 += x * b[b2]!;
        c3 += x * b[b3]!;
      }
      out[p] = c0;
      out[p + 1] = c1;
      out[p + 2] = c2;
      out[p + 3] = c3;
    }
    for (; p < end; p++) one(s, i, indices[p]!, p);
  }
}

function one(s: SampledArgs, i: number, j: number, o: number): void {
  const { a, sai, sap, b, sbp, sbj, k } = s;
  let acc = 0;
  let ap = i * sai;
  let bp = j * sbj;
  for (let p = 0; p < k; p++, ap += sap, bp += sbp) acc += a[ap]! * b[bp]!;
  s.out[o] = acc;
}
