// Dense GEMM: packed, cache-blocked, 2x4 register-tiled (Goto-style loop nest in plain JS).
//
// Why this shape: x64 has 16 floating-point registers. A 2x4 tile needs 8 accumulators, 4 values
// of B and one of A live at once, so V8 keeps everything in registers; a 4x4 tile (16
// accumulators + operands) spills, and measured 5-15% slower on this machine kind (see
// docs/architecture.md). Each k step does 6 loads for 8 multiply-adds. Operands are first
// packed into contiguous Float64Array panels (2 rows of A or 4 columns of B interleaved along k,
// zero-padded at the edges) so the inner loop reads memory sequentially, never converts
// float32 -> float64 and has no edge cases. Transposed operands differ only in how they are packed.
//
// Summation order: every C element is sum over k-blocks (in order) of a k-ordered float64 sum,
// added to C after each k-block. It does not depend on which rows or columns a thread owns,
// which is what makes the parallel result bitwise equal to the serial one.
import type { FloatArray, Trans } from "./types.ts";

// The hot loops below spell MR = 2 and NR = 4 as literals: Node 20's V8 reloads module-level
// constants from the context instead of folding them, which cost ~20% here.
/** Rows of the register tile (lines of an A panel). */
const MR = 2;
/** Columns of the register tile (lines of a B panel). */
const NR = 4;
/** k-block length: a 4-wide panel of KC doubles is 8 KB and sits in L1 beside the A panel. */
const KC = 256;
/** Rows of A packed per block (KC*MC*8 bytes = 128 KB stays in L2). */
const MC = 64;
/** Columns of B packed per block (KC*NC*8 bytes = 1 MB). */
const NC = 512;

/** Per-thread scratch, grown on demand and reused across calls. */
let packA = new Float64Array(MC * KC);
let packB = new Float64Array(NC * KC);
const tile = new Float64Array(MR * NR);

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
      packerFor(b)(b, pc * sbp + jc * sbj, sbj, sbp, nc, kc, NR, packB);
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        packerFor(a)(a, ic * sai + pc * sap, sai, sap, mc, kc, MR, packA);
        macroKernel(mc, nc, kc, c, ic * n + jc, n, pc > 0);
      }
    }
  }
}

type Packer = (
  src: FloatArray,
  off: number,
  lineStride: number,
  kStride: number,
  count: number,
  kc: number,
  width: number,
  dst: Float64Array,
) => void;

/**
 * Packs `count` lines (rows of A or columns of B) of length kc into `width`-line panels:
 * dst[(panel*kc + p)*width + l] = src[off + (panel*width + l)*lineStride + p*kStride], zero-padded.
 *
 * Kept as source text and compiled once per kind of source array (float32/float64, plain or
 * SharedArrayBuffer-backed): V8 optimises each element access for the array kinds it has seen,
 * and one packer fed both plain and shared arrays (as training does: pooled weights are shared,
 * activations are not) ran the whole product ~40% slower. Each compiled copy sees one kind.
 */
const PACK_SOURCE = `return function pack(src, off, lineStride, kStride, count, kc, width, dst) {
  const panels = Math.ceil(count / width);
  for (let q = 0; q < panels; q++) {
    const base = q * kc * width;
    for (let l = 0; l < width; l++) {
      const line = q * width + l;
      if (line >= count) {
        for (let p = 0, d = base + l; p < kc; p++, d += width) dst[d] = 0;
        continue;
      }
      let s = off + line * lineStride;
      for (let p = 0, d = base + l; p < kc; p++, d += width, s += kStride) dst[d] = src[s];
    }
  }
};`;

const packers: (Packer | undefined)[] = [undefined, undefined, undefined, undefined];

/** The packer compiled for this kind of array (see PACK_SOURCE). */
function packerFor(src: FloatArray): Packer {
  const kind =
    (src instanceof Float64Array ? 2 : 0) + (src.buffer instanceof SharedArrayBuffer ? 1 : 0);
  return (packers[kind] ??= new Function(PACK_SOURCE)() as Packer);
}

/** Runs the 2x4 micro-kernel over an mc x nc block and adds (or stores) the results into C. */
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
  const t = tile;
  for (let jr = 0, bOff = 0; jr < nc; jr += 4, bOff += kc * 4) {
    const cols = Math.min(4, nc - jr);
    for (let ir = 0, aOff = 0; ir < mc; ir += 2, aOff += kc * 2) {
      microKernel(A, aOff, B, bOff, kc);
      const rows = Math.min(2, mc - ir);
      const o = cOff + ir * ldc + jr;
      if (rows === 2 && cols === 4) {
        const q = o + ldc;
        if (accumulate) {
          c[o] = c[o]! + t[0]!;
          c[o + 1] = c[o + 1]! + t[1]!;
          c[o + 2] = c[o + 2]! + t[2]!;
          c[o + 3] = c[o + 3]! + t[3]!;
          c[q] = c[q]! + t[4]!;
          c[q + 1] = c[q + 1]! + t[5]!;
          c[q + 2] = c[q + 2]! + t[6]!;
          c[q + 3] = c[q + 3]! + t[7]!;
        } else {
          c[o] = t[0]!;
          c[o + 1] = t[1]!;
          c[o + 2] = t[2]!;
          c[o + 3] = t[3]!;
          c[q] = t[4]!;
          c[q + 1] = t[5]!;
          c[q + 2] = t[6]!;
          c[q + 3] = t[7]!;
        }
      } else {
        for (let r = 0; r < rows; r++)
          for (let s = 0; s < cols; s++) {
            const q = o + r * ldc + s;
            c[q] = accumulate ? c[q]! + t[r * 4 + s]! : t[r * 4 + s]!;
          }
      }
    }
  }
}

/** tile[2x4] = Apanel(2 x kc) · Bpanel(kc x 4), accumulators in locals (in registers). */
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
  let bi = bOff;
  const end = aOff + kc * 2;
  for (let ai = aOff; ai < end; ai += 2, bi += 4) {
    const b0 = B[bi]!,
      b1 = B[bi + 1]!,
      b2 = B[bi + 2]!,
      b3 = B[bi + 3]!;
    const a0 = A[ai]!;
    c00 += a0 * b0;
    c01 += a0 * b1;
    c02 += a0 * b2;
    c03 += a0 * b3;
    const a1 = A[ai + 1]!;
    c10 += a1 * b0;
    c11 += a1 * b1;
    c12 += a1 * b2;
    c13 += a1 * b3;
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
}
