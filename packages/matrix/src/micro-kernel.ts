// The GEMM micro-kernel, written in the asm.js subset of JavaScript.
//
// Why asm.js: V8 validates a "use asm" function and compiles it ahead of time, through its
// WebAssembly pipeline, to machine code working on one ArrayBuffer (the heap) with plain integer
// offsets. Ordinary JS reading typed arrays pays, on every element, a map check of the array,
// reloads of its length and data pointer, an overflow check on the index and a bounds check:
// ~80 instructions per 16 flops in the 2x4 inner loop we measured, against ~35 here, and the
// block runs ~1.6x faster (docs/architecture.md). It is still JavaScript: if V8 ever refused to
// validate it, it would run as ordinary (slower) code with the same results, and a test checks
// that it validates (test/micro-kernel.test.ts).
//
// asm.js heaps cannot be SharedArrayBuffers, so every thread has its own heap; the callers copy
// or pack operand blocks into it (gemm.ts).
//
// block(aOff, bOff, cOff, mr, nr, kc): byte offsets into the heap. A holds mr/2 panels of 2 rows
// (element (p, l) of panel i at aOff + 8*(i*2*kc + 2*p + l)), B holds nr/4 panels of 4 columns
// (panel j at bOff + 8*j*4*kc), and the mr x nr block of float64 sums over p < kc is stored, not
// added, row-major (row stride nr) at cOff. Each sum runs over p in order, in float64.
//
// Kept as source text so no compiler step can alter the validated subset (a type-stripper or
// formatter that rewrote one coercion would silently turn validation off).
const KERNEL_SOURCE = `return function TesseraGemmKernel(stdlib, foreign, heap) {
  "use asm";
  var H = new stdlib.Float64Array(heap);
  var imul = stdlib.Math.imul;
  function block(aOff, bOff, cOff, mr, nr, kc) {
    aOff = aOff | 0;
    bOff = bOff | 0;
    cOff = cOff | 0;
    mr = mr | 0;
    nr = nr | 0;
    kc = kc | 0;
    var i = 0, j = 0, a = 0, b = 0, bPanel = 0, end = 0, o = 0, row = 0, aStride = 0, bStride = 0;
    var c00 = 0.0, c01 = 0.0, c02 = 0.0, c03 = 0.0, c10 = 0.0, c11 = 0.0, c12 = 0.0, c13 = 0.0;
    var a0 = 0.0, a1 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    row = nr << 3;
    aStride = kc << 4;
    bStride = kc << 5;
    bPanel = bOff;
    for (j = 0; (j | 0) < (nr | 0); j = (j + 4) | 0) {
      a = aOff;
      for (i = 0; (i | 0) < (mr | 0); i = (i + 2) | 0) {
        c00 = 0.0; c01 = 0.0; c02 = 0.0; c03 = 0.0;
        c10 = 0.0; c11 = 0.0; c12 = 0.0; c13 = 0.0;
        b = bPanel;
        end = (a + aStride) | 0;
        while ((a | 0) < (end | 0)) {
          b0 = +H[b >> 3];
          b1 = +H[(b + 8) >> 3];
          b2 = +H[(b + 16) >> 3];
          b3 = +H[(b + 24) >> 3];
          a0 = +H[a >> 3];
          c00 = c00 + a0 * b0;
          c01 = c01 + a0 * b1;
          c02 = c02 + a0 * b2;
          c03 = c03 + a0 * b3;
          a1 = +H[(a + 8) >> 3];
          c10 = c10 + a1 * b0;
          c11 = c11 + a1 * b1;
          c12 = c12 + a1 * b2;
          c13 = c13 + a1 * b3;
          a = (a + 16) | 0;
          b = (b + 32) | 0;
        }
        o = (cOff + (((imul(i, nr) | 0) + j) << 3)) | 0;
        H[o >> 3] = c00;
        H[(o + 8) >> 3] = c01;
        H[(o + 16) >> 3] = c02;
        H[(o + 24) >> 3] = c03;
        o = (o + row) | 0;
        H[o >> 3] = c10;
        H[(o + 8) >> 3] = c11;
        H[(o + 16) >> 3] = c12;
        H[(o + 24) >> 3] = c13;
      }
      bPanel = (bPanel + bStride) | 0;
    }
  }
  return { block: block };
};`;

export interface MicroKernel {
  /** See the file comment: stores the mr x nr float64 block A·B at byte offset cOff. */
  block(aOff: number, bOff: number, cOff: number, mr: number, nr: number, kc: number): void;
}

type KernelModule = (stdlib: typeof globalThis, foreign: object, heap: ArrayBuffer) => MicroKernel;

/** The kernel's module function (for the validation test). */
export const kernelModule = new Function(KERNEL_SOURCE)() as KernelModule;

/**
 * A kernel instance on `heap`: an ArrayBuffer (not shared) whose byte length is a power of two
 * from 4 KiB, or a multiple of 16 MiB, as asm.js requires.
 */
export function createMicroKernel(heap: ArrayBuffer): MicroKernel {
  return kernelModule(globalThis, {}, heap);
}
