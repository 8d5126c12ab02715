// Packing GEMM operands into register-tile panels.
//
// A panel holds `width` lines (rows of A, or columns of B) interleaved along k: element (p, l)
// of a panel sits at p*width + l, so the micro-kernel reads one contiguous stream. Lines past
// the end of the operand are zero (the kernel then needs no edge cases). Values become
// float64 here once, instead of being converted in the inner loop.
import type { FloatArray } from "./types.ts";

/**
 * Packs panels q0..q1-1 of `count` lines, each over k in [0, kc):
 *   dst[dOff + (q - q0)*panelStride + p*width + l] = src[off + (q*width + l)*lineStride + p*kStride]
 * (zero where q*width + l >= count).
 */
export type Packer = (
  src: FloatArray,
  off: number,
  lineStride: number,
  kStride: number,
  count: number,
  q0: number,
  q1: number,
  kc: number,
  width: number,
  dst: FloatArray,
  dOff: number,
  panelStride: number,
) => void;

/** Panel widths with an unrolled copy for lines contiguous in k, and for adjacent lines. */
const CONTIGUOUS_WIDTHS = [4, 8] as const;
const STRIDED_WIDTHS = [2, 4, 8] as const;

const range = (w: number): number[] => Array.from({ length: w }, (_, l) => l);
const plus = (l: number): string => (l === 0 ? "" : ` + ${l}`);

/**
 * A whole panel of `w` lines contiguous in k, unrolled: line l read from s<l> + p, written to
 * d + l, k step by k step (one sequential write stream).
 */
function contiguousPanel(w: number): string {
  const starts = range(w).map((l) =>
    l === 0 ? "s0 = off + first * lineStride" : `s${l} = s${l - 1} + lineStride`,
  );
  const copies = range(w).map((l) => `          dst[d${plus(l)}] = src[s${l} + p];`);
  return [
    `        const ${starts.join(", ")};`,
    `        for (let p = 0, d = base; p < kc; p++, d += ${w}) {`,
    ...copies,
    "        }",
  ].join("\n");
}

/**
 * A panel of `w` lines adjacent in memory (kStride > 1), unrolled: line l read at s + l·lineStride
 * (offsets o<l> hoisted out of the loop), written to d + l.
 */
function stridedPanel(w: number): string {
  const offsets = range(w)
    .slice(1)
    .map((l) => `o${l} = ${l === 1 ? "" : `${l} * `}lineStride`);
  const copies = range(w).map(
    (l) => `        dst[d${plus(l)}] = src[s${l === 0 ? "" : ` + o${l}`}];`,
  );
  return [
    `      const ${offsets.join(", ")};`,
    "      let s = off + first * lineStride;",
    `      for (let p = 0, d = base; p < kc; p++, d += ${w}, s += kStride) {`,
    ...copies,
    "      }",
  ].join("\n");
}

/**
 * Two loop orders, chosen by which stride is 1, so the source is always read along memory:
 * lines contiguous in k (a row-major A, a transposed B) are copied k step by k step reading
 * `width` lines side by side for whole panels of 4 or 8 lines, else line by line; lines that
 * are adjacent in memory (a transposed A, a row-major B) are copied k step by k step, `width`
 * neighbours at a time. Reading the other way strides through memory by a whole row per element.
 *
 * The unrolled panels are generated for each width in CONTIGUOUS_WIDTHS / STRIDED_WIDTHS from
 * one template each (contiguousPanel, stridedPanel); other widths take the generic loops.
 * Kept as source text and compiled once per kind of source array (float32/float64, plain or
 * SharedArrayBuffer-backed) and of destination (a thread's heap, or the pool's shared panels): V8 optimises each element access for the array kinds it has seen,
 * and one packer fed both plain and shared arrays (as training does: pooled weights are shared,
 * activations are not) ran the whole product ~40% slower. Each compiled copy sees one kind.
 */
const PACK_SOURCE = `return function pack(src, off, lineStride, kStride, count, q0, q1, kc, width, dst, dOff, panelStride) {
  for (let q = q0; q < q1; q++) {
    const base = dOff + (q - q0) * panelStride;
    const first = q * width;
    const lines = Math.min(width, count - first);
    if (kStride === 1 && lines === width && (${CONTIGUOUS_WIDTHS.map((w) => `width === ${w}`).join(" || ")})) {
      // Lines contiguous in k, a whole panel: k outer, one read stream per line and one
      // sequential write stream (the per-line loop below writes with a stride of width and ran
      // 1.9x slower on LeNet-5's conv1 weight gradient, 20 x 73,728).
      ${CONTIGUOUS_WIDTHS.map((w) => `if (width === ${w}) {\n${contiguousPanel(w)}\n      }`).join(" else ")}
    } else if (kStride === 1 || lines < width) {
      for (let l = 0; l < width; l++) {
        if (l >= lines) {
          for (let p = 0, d = base + l; p < kc; p++, d += width) dst[d] = 0;
          continue;
        }
        let s = off + (first + l) * lineStride;
        for (let p = 0, d = base + l; p < kc; p++, d += width, s += kStride) dst[d] = src[s];
      }
    } else ${STRIDED_WIDTHS.map((w) => `if (width === ${w}) {\n${stridedPanel(w)}\n    } else `).join("")}{
      let s = off + first * lineStride;
      for (let p = 0, d = base; p < kc; p++, d += width, s += kStride)
        for (let l = 0; l < width; l++) dst[d + l] = src[s + l * lineStride];
    }
  }
};`;

const packers: (Packer | undefined)[] = new Array<Packer | undefined>(16).fill(undefined);

/** 0-3: float32 or float64, on an ArrayBuffer or a SharedArrayBuffer. */
export function arrayKind(x: FloatArray): number {
  return (x instanceof Float64Array ? 2 : 0) + (x.buffer instanceof SharedArrayBuffer ? 1 : 0);
}

/**
 * The packer compiled for this kind of source and destination array (see PACK_SOURCE). The
 * destination is a float64 panel (the asm.js kernel's heap, the pool's shared panels) or a
 * float32 one (the WebAssembly kernel's memory).
 */
export function packerFor(src: FloatArray, dst: FloatArray): Packer {
  const kind = arrayKind(src) + 4 * arrayKind(dst);
  return (packers[kind] ??= new Function(PACK_SOURCE)() as Packer);
}
