// The loops of im2col / col2im (layouts: im2col.ts), cut into ranges so a pool can split them:
// im2col by patch rows (each row is written by one thread), col2im by images (each input pixel
// belongs to one image, and its contributions are summed in the same order whatever the range,
// so a split gives bitwise the serial result).
import type { ResolvedConv2d } from "./im2col.ts";
import type { FloatArray } from "./types.ts";

/**
 * Resolved geometry plus arrays, as a pool job carries them (see jobs.ts: the job sends only
 * these numbers, so the loops must not read `patchSize` or `positions`).
 */
export interface PatchArgs extends Omit<ResolvedConv2d, "patchSize" | "positions"> {
  x: FloatArray;
  cols: FloatArray;
  /** 1 for the "batched" layout [K, N*P], 0 for "per-image" [N, K, P]. */
  batched: number;
}

/**
 * Distance between consecutive images and between consecutive patch rows in cols: each
 * (image, row) pair owns P contiguous entries in either layout.
 */
function strides(g: PatchArgs): [image: number, row: number] {
  const P = g.outH * g.outW;
  return g.batched === 1 ? [P, g.n * P] : [g.c * g.kh * g.kw * P, P];
}

/**
 * The output columns ox in [lo, hi) whose input column x0 + ox·stride falls inside [0, w);
 * the others read the zero padding.
 */
function insideColumns(x0: number, stride: number, w: number, outW: number): [number, number] {
  const lo = Math.min(outW, x0 >= 0 ? 0 : Math.ceil(-x0 / stride));
  const hi = x0 > w - 1 ? 0 : Math.min(outW, Math.floor((w - 1 - x0) / stride) + 1);
  return [lo, Math.max(lo, hi)];
}

/** Writes patch rows [r0, r1) of every image into cols. */
export function im2colRows(g: PatchArgs, r0: number, r1: number): void {
  const { x, cols, h, w, kh, kw, strideH, strideW, padH, padW, dilationH, dilationW } = g;
  const { outH, outW } = g;
  const [imageStride, rowStride] = strides(g);
  // Patch row outermost: in the "batched" layout the writes then run straight through cols.
  for (let r = r0; r < r1; r++) {
    const ch = Math.floor(r / (kh * kw));
    const u = Math.floor(r / kw) % kh;
    const v = r % kw;
    const x0 = v * dilationW - padW;
    const [lo, hi] = insideColumns(x0, strideW, w, outW);
    for (let img = 0; img < g.n; img++) {
      const plane = (img * g.c + ch) * h * w;
      let o = img * imageStride + r * rowStride;
      for (let oy = 0; oy < outH; oy++) {
        const y = oy * strideH - padH + u * dilationH;
        if (y < 0 || y >= h) {
          cols.fill(0, o, o + outW);
          o += outW;
          continue;
        }
        // Zeros left and right of the columns that land inside the row; no test per pixel.
        for (let ox = 0; ox < lo; ox++) cols[o++] = 0;
        for (let ox = lo, src = plane + y * w + x0 + lo * strideW; ox < hi; ox++) {
          cols[o++] = x[src]!;
          src += strideW;
        }
        for (let ox = hi; ox < outW; ox++) cols[o++] = 0;
      }
    }
  }
}

/** Overwrites images [i0, i1) of x with the sums of their patch entries in cols. */
export function col2imImages(g: PatchArgs, i0: number, i1: number): void {
  const { x, cols, h, w, kh, kw, strideH, strideW, padH, padW, dilationH, dilationW } = g;
  const { outH, outW } = g;
  const [imageStride, rowStride] = strides(g);
  const plane = h * w;
  x.fill(0, i0 * g.c * plane, i1 * g.c * plane);
  let r = 0;
  for (let ch = 0; ch < g.c; ch++) {
    for (let u = 0; u < kh; u++) {
      for (let v = 0; v < kw; v++, r++) {
        const x0 = v * dilationW - padW;
        const [lo, hi] = insideColumns(x0, strideW, w, outW);
        for (let img = i0; img < i1; img++) {
          const base = (img * g.c + ch) * plane;
          let o = img * imageStride + r * rowStride;
          for (let oy = 0; oy < outH; oy++) {
            const y = oy * strideH - padH + u * dilationH;
            if (y >= 0 && y < h) {
              for (let ox = lo, dst = base + y * w + x0 + lo * strideW; ox < hi; ox++) {
                x[dst]! += cols[o + ox]!;
                dst += strideW;
              }
            }
            o += outW;
          }
        }
      }
    }
  }
}
