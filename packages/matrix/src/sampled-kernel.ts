// Sampled dense-dense product (SDDMM): (A·B) evaluated only at a block pattern's stored blocks.
// This is the weight gradient of a block-sparse layer. Each stored block is independent, so a
// thread takes a contiguous range of stored-block slots; within a block, 4x4 sub-tiles keep 16
// accumulators in locals across the whole k loop (the same register tile as the dense GEMM).
import type { FloatArray } from "./types.ts";

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
  const { indptr, indices, R, C, rows, cols } = s;
  let br = blockRowOf(indptr, p0);
  for (let p = p0; p < p1; p++) {
    while (indptr[br + 1]! <= p) br++;
    const r0 = br * R;
    const c0 = indices[p]! * C;
    const hr = Math.min(R, rows - r0);
    const wc = Math.min(C, cols - c0);
    const base = p * R * C;
    s.out.fill(0, base, base + R * C);
    let r = 0;
    for (; r + 4 <= hr; r += 4) {
      let c = 0;
      for (; c + 4 <= wc; c += 4) sub4x4(s, r0 + r, c0 + c, base + r * C + c);
      for (; c < wc; c++)
        for (let q = 0; q < 4; q++) one(s, r0 + r + q, c0 + c, base + (r + q) * C + c);
    }
    for (; r + 2 <= hr; r += 2) {
      let c = 0;
      for (; c + 2 <= wc; c += 2) sub2x2(s, r0 + r, c0 + c, base + r * C + c);
      for (; c < wc; c++)
        for (let q = 0; q < 2; q++) one(s, r0 + r + q, c0 + c, base + (r + q) * C + c);
    }
    for (; r < hr; r++) for (let c = 0; c < wc; c++) one(s, r0 + r, c0 + c, base + r * C + c);
  }
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

function sub4x4(s: SampledArgs, i: number, j: number, o: number): void {
  const { a, sai, sap, b, sbp, sbj, k, C } = s;
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0;
  let c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
  let c20 = 0,
    c21 = 0,
    c22 = 0,
    c23 = 0;
  let c30 = 0,
    c31 = 0,
    c32 = 0,
    c33 = 0;
  const a1 = sai,
    a2 = 2 * sai,
    a3 = 3 * sai;
  const b1 = sbj,
    b2 = 2 * sbj,
    b3 = 3 * sbj;
  let ap = i * sai;
  let bp = j * sbj;
  for (let p = 0; p < k; p++, ap += sap, bp += sbp) {
    const x0 = a[ap]!,
      x1 = a[ap + a1]!,
      x2 = a[ap + a2]!,
      x3 = a[ap + a3]!;
    const y0 = b[bp]!,
      y1 = b[bp + b1]!,
      y2 = b[bp + b2]!,
      y3 = b[bp + b3]!;
    c00 += x0 * y0;
    c01 += x0 * y1;
    c02 += x0 * y2;
    c03 += x0 * y3;
    c10 += x1 * y0;
    c11 += x1 * y1;
    c12 += x1 * y2;
    c13 += x1 * y3;
    c20 += x2 * y0;
    c21 += x2 * y1;
    c22 += x2 * y2;
    c23 += x2 * y3;
    c30 += x3 * y0;
    c31 += x3 * y1;
    c32 += x3 * y2;
    c33 += x3 * y3;
  }
  const out = s.out;
  out[o] = c00;
  out[o + 1] = c01;
  out[o + 2] = c02;
  out[o + 3] = c03;
  o += C;
  out[o] = c10;
  out[o + 1] = c11;
  out[o + 2] = c12;
  out[o + 3] = c13;
  o += C;
  out[o] = c20;
  out[o + 1] = c21;
  out[o + 2] = c22;
  out[o + 3] = c23;
  o += C;
  out[o] = c30;
  out[o + 1] = c31;
  out[o + 2] = c32;
  out[o + 3] = c33;
}

function sub2x2(s: SampledArgs, i: number, j: number, o: number): void {
  const { a, sai, sap, b, sbp, sbj, k, C } = s;
  let c00 = 0,
    c01 = 0,
    c10 = 0,
    c11 = 0;
  let ap = i * sai;
  let bp = j * sbj;
  for (let p = 0; p < k; p++, ap += sap, bp += sbp) {
    const x0 = a[ap]!,
      x1 = a[ap + sai]!;
    const y0 = b[bp]!,
      y1 = b[bp + sbj]!;
    c00 += x0 * y0;
    c01 += x0 * y1;
    c10 += x1 * y0;
    c11 += x1 * y1;
  }
  const out = s.out;
  out[o] = c00;
  out[o + 1] = c01;
  out[o + C] = c10;
  out[o + C + 1] = c11;
}
