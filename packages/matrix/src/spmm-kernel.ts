// Block-sparse times dense kernels shared by BsrMatrix, CsrMatrix and the pool workers.
//
// One generic kernel serves all four products (A·X, Aᵀ·X, X·A, X·Aᵀ): it walks "outer" block
// lines (block rows of A, or block columns through a cached transposed index) and, for a tile
// of up to 4 output lines by 4 output columns, keeps 16 accumulators in locals across every
// stored block of that line before writing once. Strides say how blocks, X and the output are
// laid out, so the transposed products need no transposed copies. Each output element is one
// float64 sum in stored-block order, written once, whatever range a thread gets.
import type { FloatArray } from "./types.ts";

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

/** Computes output lines of outer blocks [o0, o1). */
export function spmmRange(s: SpmmArgs, o0: number, o1: number): void {
  const { ob, outerLimit, n } = s;
  if (s.bsz === 1) {
    // CSR (1x1 blocks): one output line, 8 columns at a time, no block bookkeeping.
    for (let o = o0; o < o1; o++) {
      let j = 0;
      for (; j + 8 <= n; j += 8) csrLine8(s, o, j);
      for (; j + 4 <= n; j += 4) tile1x4(s, o, o, 0, j);
      for (; j < n; j++) tileHx1(s, o, o, 0, 1, j);
    }
    return;
  }
  for (let o = o0; o < o1; o++) {
    const line0 = o * ob;
    const lines = Math.min(ob, outerLimit - line0);
    let t = 0;
    for (; t + 4 <= lines; t += 4) tileRows(s, o, line0 + t, t, 4, n);
    if (t + 2 <= lines) {
      tileRows(s, o, line0 + t, t, 2, n);
      t += 2;
    }
    if (t < lines) tileRows(s, o, line0 + t, t, 1, n);
  }
}

function tileRows(s: SpmmArgs, o: number, line: number, t: number, h: number, n: number): void {
  let j = 0;
  if (h === 4) for (; j + 4 <= n; j += 4) tile4x4(s, o, line, t, j);
  else if (h === 2) for (; j + 4 <= n; j += 4) tile2x4(s, o, line, t, j);
  else for (; j + 4 <= n; j += 4) tile1x4(s, o, line, t, j);
  for (; j < n; j++) tileHx1(s, o, line, t, h, j);
}

function tile4x4(s: SpmmArgs, o: number, line: number, t: number, j: number): void {
  const { ptr, idx, ids, data, bsz, ib, eos, eis, innerLimit, x, sxi, sxj } = s;
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
  const e1 = eos,
    e2 = 2 * eos,
    e3 = 3 * eos;
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
      const a0 = data[wp]!,
        a1 = data[wp + e1]!,
        a2 = data[wp + e2]!,
        a3 = data[wp + e3]!;
      const b0 = x[xp]!,
        b1 = x[xp + x1]!,
        b2 = x[xp + x2]!,
        b3 = x[xp + x3]!;
      c00 += a0 * b0;
      c01 += a0 * b1;
      c02 += a0 * b2;
      c03 += a0 * b3;
      c10 += a1 * b0;
      c11 += a1 * b1;
      c12 += a1 * b2;
      c13 += a1 * b3;
      c20 += a2 * b0;
      c21 += a2 * b1;
      c22 += a2 * b2;
      c23 += a2 * b3;
      c30 += a3 * b0;
      c31 += a3 * b1;
      c32 += a3 * b2;
      c33 += a3 * b3;
    }
  }
  const { out, soo, soj } = s;
  let q = line * soo + j * soj;
  out[q] = c00;
  out[q + soj] = c01;
  out[q + 2 * soj] = c02;
  out[q + 3 * soj] = c03;
  q += soo;
  out[q] = c10;
  out[q + soj] = c11;
  out[q + 2 * soj] = c12;
  out[q + 3 * soj] = c13;
  q += soo;
  out[q] = c20;
  out[q + soj] = c21;
  out[q + 2 * soj] = c22;
  out[q + 3 * soj] = c23;
  q += soo;
  out[q] = c30;
  out[q + soj] = c31;
  out[q + 2 * soj] = c32;
  out[q + 3 * soj] = c33;
}

function tile2x4(s: SpmmArgs, o: number, line: number, t: number, j: number): void {
  const { ptr, idx, ids, data, bsz, ib, eos, eis, innerLimit, x, sxi, sxj } = s;
  let c00 = 0,
    c01 = 0,
    c02 = 0,
    c03 = 0;
  let c10 = 0,
    c11 = 0,
    c12 = 0,
    c13 = 0;
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
      const a0 = data[wp]!,
        a1 = data[wp + eos]!;
      const b0 = x[xp]!,
        b1 = x[xp + x1]!,
        b2 = x[xp + x2]!,
        b3 = x[xp + x3]!;
      c00 += a0 * b0;
      c01 += a0 * b1;
      c02 += a0 * b2;
      c03 += a0 * b3;
      c10 += a1 * b0;
      c11 += a1 * b1;
      c12 += a1 * b2;
      c13 += a1 * b3;
    }
  }
  const { out, soo, soj } = s;
  let q = line * soo + j * soj;
  out[q] = c00;
  out[q + soj] = c01;
  out[q + 2 * soj] = c02;
  out[q + 3 * soj] = c03;
  q += soo;
  out[q] = c10;
  out[q + soj] = c11;
  out[q + 2 * soj] = c12;
  out[q + 3 * soj] = c13;
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
