// Dense GEMM: packed, cache-blocked, 2x4 register-tiled (Goto-style loop nest).
//
// Operands are packed into float64 panels (pack.ts: 2 rows of A or 4 columns of B interleaved
// along k, zero-padded at the edges) inside this thread's asm.js heap, and the micro-kernel
// (micro-kernel.ts) multiplies a whole cache block of panels into a float64 block of C sums,
// which is then stored or added into C. Transposed operands differ only in how they are packed.
// A 2x4 tile keeps 8 accumulators, 4 values of B and 2 of A in registers; 4x4, 3x4, 2x6 and
// unrolled variants all measured slower here (docs/architecture.md).
//
// Summation order: every C element is sum over k-blocks (in order) of a k-ordered float64 sum,
// added to C after each k-block. It does not depend on which rows or columns a thread owns, or
// on whether the panels were packed by this thread or by the pool beforehand, which is what
// makes the parallel result bitwise equal to the serial one.
import type { FloatArray, Trans } from "./types.ts";
import { arrayKind, packerFor } from "./pack.ts";
import { createMicroKernel } from "./micro-kernel.ts";

/** Rows of the register tile (lines of an A panel). */
const MR = 2;
/** Columns of the register tile (lines of a B panel). */
const NR = 4;
/** k-block length: a 4-wide panel of KC doubles is 8 KB and sits in L1 beside the A panel. */
const KC = 256;
/** Rows of A per block (KC*MC*8 bytes = 128 KB stays in L2). */
const MC = 64;
/** Columns of B per block (KC*NC*8 bytes = 1 MB). */
const NC = 512;

// This thread's asm.js heap (asm.js cannot use a SharedArrayBuffer, so each thread has its own):
// the A block, the B block and the C block of sums, in float64 elements.
const A_AT = 0;
const B_AT = A_AT + MC * KC;
const C_AT = B_AT + NC * KC;
const HEAP_BYTES = 1 << 21; // a power of two, as asm.js requires; holds (C_AT + MC*NC) doubles
const heap = new ArrayBuffer(HEAP_BYTES);
const H = new Float64Array(heap);
const kernel = createMicroKernel(heap);

/** Element strides of the logical A[i,p] and B[p,j] for a given transposition. */
export function strides(
  trans: Trans,
  m: number,
  k: number,
  n: number,
): [number, number, number, number] {
  // [A row stride, A k stride, B k stride, B column stride]
  return [trans === 1 ? 1 : k, trans === 1 ? m : 1, trans === 2 ? 1 : n, trans === 2 ? k : 1];
}

export const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/**
 * Multiplies the packed A block (mc rows) by the packed B block (nc columns) already in the heap
 * and stores (k-block 0) or adds the mc x nc result into C at cOff.
 */
function multiplyBlock(
  mc: number,
  nc: number,
  kc: number,
  c: FloatArray,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  const nr = roundUp(nc, NR);
  kernel.block(8 * A_AT, 8 * B_AT, 8 * C_AT, roundUp(mc, MR), nr, kc);
  storerFor(c, H)(H, C_AT, nr, c, cOff, ldc, mc, nc, accumulate);
}

/**
 * C[i, j] for i in [r0, r1), j in [c0, c1) (the pool splits rows or columns; serial calls pass the
 * whole range). Overwrites those entries of C. Packs each cache block as it goes, so it needs
 * only this thread's fixed heap.
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
  const packForA = packerFor(a, H);
  const packForB = packerFor(b, H);
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = Math.min(NC, c1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      packForB(
        b,
        pc * sbp + jc * sbj,
        sbj,
        sbp,
        nc,
        0,
        Math.ceil(nc / NR),
        kc,
        NR,
        H,
        B_AT,
        NR * kc,
      );
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        packForA(
          a,
          ic * sai + pc * sap,
          sai,
          sap,
          mc,
          0,
          Math.ceil(mc / MR),
          kc,
          MR,
          H,
          A_AT,
          MR * kc,
        );
        multiplyBlock(mc, nc, kc, c, ic * n + jc, n, pc > 0);
      }
    }
  }
}

/** Panels of the whole operands: ceil(m/2) two-row panels of A and ceil(n/4) four-column panels of B. */
export function panelCounts(m: number, n: number): [number, number] {
  return [Math.ceil(m / MR), Math.ceil(n / NR)];
}

/**
 * Lengths of the whole-operand panel buffers packRange fills. Both are stored k-block by
 * k-block: for the k-block starting at pc (length kc), the A panels sit at pc*2*pa, panel q at
 * + q*2*kc (B: pc*4*pb and + q*4*kc), so the panels of one cache block are one contiguous run.
 */
export function packedLengths(m: number, k: number, n: number): [number, number] {
  const [pa, pb] = panelCounts(m, n);
  return [pa * MR * k, pb * NR * k];
}

/**
 * Packs panels [u0, u1) of the whole operands into the shared buffers ap and bp: units below
 * ceil(m/2) are A panels, the rest B panels. The pool's threads pack disjoint units once per
 * product, instead of every column chunk repacking the operand it shares with the others.
 */
export function packRange(
  trans: Trans,
  a: FloatArray,
  b: FloatArray,
  ap: Float64Array,
  bp: Float64Array,
  m: number,
  k: number,
  n: number,
  u0: number,
  u1: number,
): void {
  const [pa, pb] = panelCounts(m, n);
  const [sai, sap, sbp, sbj] = strides(trans, m, k, n);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = Math.min(KC, k - pc);
    if (u0 < pa) {
      const q1 = Math.min(u1, pa);
      const at = pc * MR * pa + u0 * MR * kc;
      packerFor(a, ap)(a, pc * sap, sai, sap, m, u0, q1, kc, MR, ap, at, MR * kc);
    }
    if (u1 > pa) {
      const q0 = Math.max(u0, pa) - pa;
      const at = pc * NR * pb + q0 * NR * kc;
      packerFor(b, bp)(b, pc * sbp, sbj, sbp, n, q0, u1 - pa, kc, NR, bp, at, NR * kc);
    }
  }
}

/**
 * gemmRange over operands packed whole by packRange: copies each cache block of panels into
 * this thread's heap (one memcpy each) instead of packing it. r0 must be even and c0 a multiple
 * of 4 (panel boundaries). Same blocks and summation order as gemmRange: bitwise the same result.
 */
export function gemmPackedRange(
  ap: Float64Array,
  bp: Float64Array,
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
  if (r0 % MR !== 0 || c0 % NR !== 0)
    throw new RangeError(`gemmPackedRange: range must start on a panel (row ${r0}, column ${c0})`);
  if (k === 0) {
    for (let i = r0; i < r1; i++) c.fill(0, i * n + c0, i * n + c1);
    return;
  }
  const [pa, pb] = panelCounts(m, n);
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = Math.min(NC, c1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = Math.min(KC, k - pc);
      const bAt = pc * NR * pb + jc * kc;
      H.set(bp.subarray(bAt, bAt + roundUp(nc, NR) * kc), B_AT);
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        const aAt = pc * MR * pa + ic * kc;
        H.set(ap.subarray(aAt, aAt + roundUp(mc, MR) * kc), A_AT);
        multiplyBlock(mc, nc, kc, c, ic * n + jc, n, pc > 0);
      }
    }
  }
}

type Storer = (
  H: FloatArray,
  hOff: number,
  ldh: number,
  c: FloatArray,
  cOff: number,
  ldc: number,
  mc: number,
  nc: number,
  accumulate: boolean,
) => void;

/**
 * Stores or adds the mc x nc block of sums into C. Compiled once per kind of C (float32/float64,
 * plain or shared), like the packers, so each copy's element access stays monomorphic.
 */
const STORE_SOURCE = `return function store(H, hOff, ldh, c, cOff, ldc, mc, nc, accumulate) {
  for (let r = 0; r < mc; r++) {
    let h = hOff + r * ldh;
    const o0 = cOff + r * ldc;
    const end = o0 + nc;
    if (accumulate) for (let o = o0; o < end; o++, h++) c[o] += H[h];
    else for (let o = o0; o < end; o++, h++) c[o] = H[h];
  }
};`;

/**
 * The dense products' epilogue on C[r0:r1, c0:c1] (row stride n), in place: bias[j] added to
 * column j when bias is given, then max(v, +0) when relu (+0 for -0 and -Infinity, NaN kept:
 * the values of autograd's relu). The sum is formed in double and stored rounded, which for
 * float32 C is the float32 sum (the WebAssembly epilogue's f32x4.add gives the same bits).
 */
export function gemmEpilogue(
  c: FloatArray,
  n: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  bias: FloatArray | null,
  relu: boolean,
): void {
  if (bias === null && !relu) return;
  for (let i = r0; i < r1; i++) {
    const o = i * n;
    if (bias !== null) for (let j = c0; j < c1; j++) c[o + j] = c[o + j]! + bias[j]!;
    if (relu)
      for (let j = c0; j < c1; j++) {
        const v = c[o + j]!;
        if (!(v > 0) && v === v) c[o + j] = 0;
      }
  }
}

const storers: (Storer | undefined)[] = new Array<Storer | undefined>(16).fill(undefined);

/** The storer compiled for this kind of C and of block (float64 asm.js heap, float32 wasm memory). */
export function storerFor(c: FloatArray, block: FloatArray): Storer {
  const kind = arrayKind(c) + 4 * arrayKind(block);
  return (storers[kind] ??= new Function(STORE_SOURCE)() as Storer);
}
