// Dense GEMM: packed, cache-blocked, 4x4 register-tiled (Goto-style loop nest in plain JS).
//
// Why this shape: V8 keeps the 16 accumulators of a 4x4 tile in registers, so each step of the
// inner loop does 8 loads for 16 multiply-adds. Operands are first packed into contiguous
// Float64Array panels (4 rows of A or 4 columns of B interleaved along k, zero-padded at the
// edges) so the inner loop reads memory sequentially, never converts float32 -> float64 and
// has no edge cases. Transposed operands differ only in how they are packed.
//
// Summation order: every C element is sum over k-blocks (in order) of a k-ordered float64 sum,
// added to C after each k-block. It does not depend on which rows or columns a thread owns,
// which is what makes the parallel result bitwise equal to the serial one.
import type { FloatArray, Trans } from "./types.ts";

/** k-block length: a 4-wide panel of KC doubles is 8 KB, two of them sit in L1. */
const KC = 256;
/** Rows of A packed per block (KC*MC*8 bytes = 128 KB stays in L2). */
const MC = 64;
/** Columns of B packed per block (KC*NC*8 bytes = 1 MB). */
const NC = 512;

/** Per-thread scratch, grown on demand and reused across calls. */
let packA = new Float64Array(MC * KC);
let packB = new Float64Array(NC * KC);
const tile = new Float64Array(16);

/** Element strides of the logical A[i,p] and B[p,j] for a given transposition. */
function strides(trans: Trans, m: number, k: number, n: number): [number, number, number, number] {
  // [A row stride, A k stride, B k stride, B column stride]
  return [trans === 1 ? 1 : k, trans === 1 ? m : 1, trans === 2 ? 1 : n, trans === 2 ? k : 1];
}

/**
 * C[i, j] for i in [r0, r1), j in [c0, c1) (the pool splits rows or columns; serial calls pass the
 * whole range). Overwrites those entries of C.
 */
export function gemmRange(
  trans: Trans,
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  m: number,
  k: number,
  n: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
): void {
  if (r1 <= r0 || c1 <= c0) return;
  const [sai, sap, sbp, sbj] = strides(trans, m, k, n);
  if (k === 0) {
    for (let i = r0; i < r1; i++) c.fill(0, i * n + c0, i * n + c1);
    return;
  }
  if (packA.length < MC * KC) packA = new Float64Array(MC * KC);
  if (packB.length < NC * KC) packB = new Float64Array(NC * KC);
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = Math.min(NC, c1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      packPanels(b, pc * sbp + jc * sbj, sbj, sbp, nc, kc, packB);
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        packPanels(a, ic * sai + pc * sap, sai, sap, mc, kc, packA);
        macroKernel(mc, nc, kc, c, ic * n + jc, n, pc > 0);
      }
    }
  }
}

/**
 * Packs `count` lines (rows of A or columns of B) of length kc into 4-line panels:
 * dst[(panel*kc + p)*4 + l] = src[off + (panel*4 + l)*lineStride + p*kStride], zero-padded.
 */
function packPanels(
  src: FloatArray,
  off: number,
  lineStride: number,
  kStride: number,
  count: number,
  kc: number,
  dst: Float64Array,
): void {
  const panels = (count + 3) >> 2;
  for (let q = 0; q < panels; q++) {
    const base = q * kc * 4;
    for (let l = 0; l < 4; l++) {
      const line = q * 4 + l;
      if (line >= count) {
        for (let p = 0; p < kc; p++) dst[base + p * 4 + l] = 0;
        continue;
      }
      let s = off + line * lineStride;
      for (let p = 0, d = base + l; p < kc; p++, d += 4, s += kStride) dst[d] = src[s]!;
    }
  }
}

/** Runs the 4x4 micro-kernel over an mc x nc block and adds (or stores) the results into C. */
function macroKernel(
  mc: number,
  nc: number,
  kc: number,
  c: FloatArray,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  const A = packA;
  const B = packB;
  for (let jr = 0; jr < nc; jr += 4) {
    const bOff = (jr >> 2) * kc * 4;
    const cols = Math.min(4, nc - jr);
    for (let ir = 0; ir < mc; ir += 4) {
      microKernel(A, (ir >> 2) * kc * 4, B, bOff, kc);
      const rows = Math.min(4, mc - ir);
      const o = cOff + ir * ldc + jr;
      if (rows === 4 && cols === 4) {
        if (accumulate) {
          for (let r = 0; r < 4; r++) {
            const q = o + r * ldc;
            c[q] = c[q]! + tile[r * 4]!;
            c[q + 1] = c[q + 1]! + tile[r * 4 + 1]!;
            c[q + 2] = c[q + 2]! + tile[r * 4 + 2]!;
            c[q + 3] = c[q + 3]! + tile[r * 4 + 3]!;
          }
        } else {
          for (let r = 0; r < 4; r++) {
            const q = o + r * ldc;
            c[q] = tile[r * 4]!;
            c[q + 1] = tile[r * 4 + 1]!;
            c[q + 2] = tile[r * 4 + 2]!;
            c[q + 3] = tile[r * 4 + 3]!;
          }
        }
      } else {
        for (let r = 0; r < rows; r++)
          for (let s = 0; s < cols; s++) {
            const q = o + r * ldc + s;
            c[q] = accumulate ? c[q]! + tile[r * 4 + s]! : tile[r * 4 + s]!;
          }
      }
    }
  }
}

/** tile[4x4] = Apanel(4 x kc) · Bpanel(kc x 4), accumulators in locals. */
function microKernel(
  A: Float64Array,
  aOff: number,
  B: Float64Array,
  bOff: number,
  kc: number,
): void {
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
  let ai = aOff;
  let bi = bOff;
  const end = aOff + kc * 4;
  for (; ai < end; ai += 4, bi += 4) {
    const a0 = A[ai]!,
      a1 = A[ai + 1]!,
      a2 = A[ai + 2]!,
      a3 = A[ai + 3]!;
    const b0 = B[bi]!,
      b1 = B[bi + 1]!,
      b2 = B[bi + 2]!,
      b3 = B[bi + 3]!;
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
  const t = tile;
  t[0] = c00;
  t[1] = c01;
  t[2] = c02;
  t[3] = c03;
  t[4] = c10;
  t[5] = c11;
  t[6] = c12;
  t[7] = c13;
  t[8] = c20;
  t[9] = c21;
  t[10] = c22;
  t[11] = c23;
  t[12] = c30;
  t[13] = c31;
  t[14] = c32;
  t[15] = c33;
}
