// The loops of the kernel-element-pruned (KEP) convolution (layout and entry points: kep.ts),
// cut into ranges of "lines" so a pool can split them. Every output element is computed whole by
// one line, in a fixed order, so any split gives bitwise the serial result:
//   forward       line = (image, filter)        y[img, f]   = Σ_c Σ_kept w · shifted xp[img, c]
//   input grad    line = (image, channel)       dx[img, c]  = Σ_f Σ_kept w · shifted dy[img, f]
//   weight grad   line = filter                 dw[f, c, e] = Σ_img Σ_oy,ox dy · shifted xp
// Inputs arrive zero-padded (xp [N, C, H + 2 padH, W + 2 padW]), so no sweep tests for the
// padding. Loop order: the inner loop runs over output columns (contiguous in y, dx and dy, unit
// or `stride` apart in xp), and the kept elements of one output plane, across all its input
// channels, are taken four at a time: one sweep loads and stores the float64 accumulator once
// per 4 multiply-adds instead of once per multiply-add (docs/benchmarks/kep-conv.md measures
// this against one sweep per kept element and against a per-pixel loop over the kept elements).
import type { FloatArray } from "./types.ts";

/** Job modes (one pool job kind carries all four). */
export const KEP_FORWARD = 0;
/** Input gradient for stride 1: a gather over dy padded by (kernel - 1) on every side. */
export const KEP_INPUT_GATHER = 1;
/** Input gradient for any stride: a scatter into a padded accumulator, then cropped. */
export const KEP_INPUT_SCATTER = 2;
export const KEP_WEIGHT = 3;

/** Everything a KEP job carries (numbers and arrays only, see jobs.ts). */
export interface KepArgs {
  mode: number;
  n: number;
  c: number;
  h: number;
  w: number;
  f: number;
  kh: number;
  kw: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
  /** Plane (f·C + c) holds kept elements ptr[plane] .. ptr[plane + 1] - 1. */
  ptr: Int32Array;
  /** Kept position u·kw + v of each kept element, ascending within its plane. */
  pos: Int32Array;
  /** The kept weights, in the order of `pos`. */
  values: FloatArray;
  /**
   * forward: xp [N, C, H+2padH, W+2padW]; input gather: dy padded by (kh-1, kw-1)
   * [N, F, outH+2kh-2, outW+2kw-2]; input scatter: dy [N, F, outH, outW]; weight: dy.
   */
  a: FloatArray;
  /** weight: xp; other modes ignore it. */
  b: FloatArray;
  /** forward: y [N, F, outH, outW]; input: dx [N, C, H, W]; weight: dValues [nnz]. */
  out: FloatArray;
}

/** Runs lines [t0, t1) of the job's mode. */
export function kepRange(g: KepArgs, t0: number, t1: number): void {
  if (g.mode === KEP_FORWARD) kepForwardLines(g, t0, t1);
  else if (g.mode === KEP_INPUT_GATHER) kepInputGatherLines(g, t0, t1);
  else if (g.mode === KEP_INPUT_SCATTER) kepInputScatterLines(g, t0, t1);
  else if (g.mode === KEP_WEIGHT) kepWeightLines(g, t0, t1);
  else throw new Error(`kepRange: unknown mode ${g.mode}`);
}

/** Number of lines of a mode (what a pool splits). */
export function kepLines(g: KepArgs): number {
  if (g.mode === KEP_FORWARD) return g.n * g.f;
  if (g.mode === KEP_WEIGHT) return g.f;
  return g.n * g.c;
}

/** Offset of every kept element's window origin inside one padded input image. */
function inputOffsets(g: KepArgs): Int32Array {
  const { ptr, pos, c, kw, f } = g;
  const wp = g.w + 2 * g.padW;
  const planeSize = (g.h + 2 * g.padH) * wp;
  const off = new Int32Array(pos.length);
  for (let p = 0; p < f * c; p++) {
    const base = (p % c) * planeSize;
    for (let e = ptr[p]!; e < ptr[p + 1]!; e++) {
      const q = pos[e]!;
      off[e] = base + Math.floor(q / kw) * wp + (q % kw);
    }
  }
  return off;
}

function kepForwardLines(g: KepArgs, t0: number, t1: number): void {
  const { f, c, outH, outW, strideH, strideW, ptr, values } = g;
  const xp = g.a;
  const y = g.out;
  const wp = g.w + 2 * g.padW;
  const imageSize = c * (g.h + 2 * g.padH) * wp;
  const P = outH * outW;
  const off = inputOffsets(g);
  const acc = new Float64Array(P);
  const rowStep = strideH * wp;
  for (let t = t0; t < t1; t++) {
    const img = Math.floor(t / f);
    const fo = t - img * f;
    acc.fill(0);
    const base = img * imageSize;
    const end = ptr[(fo + 1) * c]!;
    let e = ptr[fo * c]!;
    for (; e + 4 <= end; e += 4) {
      const o0 = base + off[e]!;
      const o1 = base + off[e + 1]!;
      const o2 = base + off[e + 2]!;
      const o3 = base + off[e + 3]!;
      const w0 = values[e]!;
      const w1 = values[e + 1]!;
      const w2 = values[e + 2]!;
      const w3 = values[e + 3]!;
      for (let oy = 0, a = 0, r = 0; oy < outH; oy++, r += rowStep) {
        if (strideW === 1) {
          for (let ox = 0; ox < outW; ox++, a++) {
            const i = r + ox;
            acc[a] =
              acc[a]! + (w0 * xp[o0 + i]! + w1 * xp[o1 + i]! + w2 * xp[o2 + i]! + w3 * xp[o3 + i]!);
          }
        } else {
          for (let ox = 0, i = r; ox < outW; ox++, a++, i += strideW) {
            acc[a] =
              acc[a]! + (w0 * xp[o0 + i]! + w1 * xp[o1 + i]! + w2 * xp[o2 + i]! + w3 * xp[o3 + i]!);
          }
        }
      }
    }
    // The last 1-3 kept elements of the plane list: one sweep each.
    for (; e < end; e++) {
      const o0 = base + off[e]!;
      const w0 = values[e]!;
      for (let oy = 0, a = 0, r = o0; oy < outH; oy++, r += rowStep) {
        for (let ox = 0, i = r; ox < outW; ox++, a++, i += strideW) acc[a] = acc[a]! + w0 * xp[i]!;
      }
    }
    const dst = t * P;
    for (let a = 0; a < P; a++) y[dst + a] = acc[a]!;
  }
}

/**
 * Input gradient, stride 1: dx[img, c, y, x] = Σ_f Σ_kept(u,v) w · dyq[img, f, y + padH + kh-1-u,
 * x + padW + kw-1-v] with dyq = dy zero-padded by (kh-1, kw-1): a gather with the same four-wide
 * sweeps as the forward. Lists per input channel are built once per range.
 */
function kepInputGatherLines(g: KepArgs, t0: number, t1: number): void {
  const { f, c, h, w, kh, kw, ptr, pos, values } = g;
  const dyq = g.a;
  const dx = g.out;
  const hq = g.outH + 2 * (kh - 1);
  const wq = g.outW + 2 * (kw - 1);
  const qPlane = hq * wq;
  // Kept elements grouped by input channel (counting sort, f ascending within a channel).
  const cptr = new Int32Array(c + 1);
  for (let p = 0; p < f * c; p++) cptr[(p % c) + 1] = cptr[(p % c) + 1]! + ptr[p + 1]! - ptr[p]!;
  for (let ch = 0; ch < c; ch++) cptr[ch + 1] = cptr[ch + 1]! + cptr[ch]!;
  const fill = cptr.slice(0, c);
  const off = new Int32Array(pos.length);
  const wv = new Float64Array(pos.length);
  const shift = g.padH * wq + g.padW;
  for (let p = 0; p < f * c; p++) {
    const ch = p % c;
    const fBase = Math.floor(p / c) * qPlane + shift;
    for (let e = ptr[p]!; e < ptr[p + 1]!; e++) {
      const q = pos[e]!;
      const u = Math.floor(q / kw);
      const v = q % kw;
      const k = fill[ch]!++;
      off[k] = fBase + (kh - 1 - u) * wq + (kw - 1 - v);
      wv[k] = values[e]!;
    }
  }
  const HW = h * w;
  const acc = new Float64Array(HW);
  for (let t = t0; t < t1; t++) {
    const img = Math.floor(t / c);
    const ch = t - img * c;
    acc.fill(0);
    const base = img * f * qPlane;
    const end = cptr[ch + 1]!;
    let e = cptr[ch]!;
    for (; e + 4 <= end; e += 4) {
      const o0 = base + off[e]!;
      const o1 = base + off[e + 1]!;
      const o2 = base + off[e + 2]!;
      const o3 = base + off[e + 3]!;
      const w0 = wv[e]!;
      const w1 = wv[e + 1]!;
      const w2 = wv[e + 2]!;
      const w3 = wv[e + 3]!;
      for (let yy = 0, a = 0, r = 0; yy < h; yy++, r += wq) {
        for (let xx = 0; xx < w; xx++, a++) {
          const i = r + xx;
          acc[a] =
            acc[a]! +
            (w0 * dyq[o0 + i]! + w1 * dyq[o1 + i]! + w2 * dyq[o2 + i]! + w3 * dyq[o3 + i]!);
        }
      }
    }
    for (; e < end; e++) {
      const o0 = base + off[e]!;
      const w0 = wv[e]!;
      for (let yy = 0, a = 0, r = o0; yy < h; yy++, r += wq) {
        for (let xx = 0; xx < w; xx++, a++) acc[a] = acc[a]! + w0 * dyq[r + xx]!;
      }
    }
    const dst = t * HW;
    for (let a = 0; a < HW; a++) dx[dst + a] = acc[a]!;
  }
}

/**
 * Input gradient, any stride: every kept element scatters w · dy[img, f] into a padded float64
 * accumulator at its shift; the padding is cropped away at the end. Planes are visited f
 * ascending, elements in stored order, so each pixel's sum has a fixed order.
 */
function kepInputScatterLines(g: KepArgs, t0: number, t1: number): void {
  const { f, c, h, w, kw, outH, outW, strideH, strideW, padH, padW, ptr, pos, values } = g;
  const dy = g.a;
  const dx = g.out;
  const wp = w + 2 * padW;
  const acc = new Float64Array((h + 2 * padH) * wp);
  const P = outH * outW;
  const rowStep = strideH * wp;
  for (let t = t0; t < t1; t++) {
    const img = Math.floor(t / c);
    const ch = t - img * c;
    acc.fill(0);
    for (let fo = 0; fo < f; fo++) {
      const p = fo * c + ch;
      const src = (img * f + fo) * P;
      for (let e = ptr[p]!; e < ptr[p + 1]!; e++) {
        const q = pos[e]!;
        const w0 = values[e]!;
        const o = Math.floor(q / kw) * wp + (q % kw);
        for (let oy = 0, s = src, r = o; oy < outH; oy++, r += rowStep) {
          for (let ox = 0, i = r; ox < outW; ox++, s++, i += strideW)
            acc[i] = acc[i]! + w0 * dy[s]!;
        }
      }
    }
    for (let yy = 0, d = t * h * w; yy < h; yy++) {
      for (let xx = 0, i = (yy + padH) * wp + padW; xx < w; xx++, i++, d++) dx[d] = acc[i]!;
    }
  }
}

/**
 * Weight gradient at kept positions only: for each kept element of filter f, the dot product of
 * dy[img, f] with the shifted xp[img, c] over every image, four elements per sweep of dy (one dy
 * load per 4 multiply-adds, sums in registers). Each sum runs over images, then rows, then
 * columns, in that order, whatever the split.
 */
function kepWeightLines(g: KepArgs, t0: number, t1: number): void {
  const { n, f, c, outH, outW, strideH, strideW, ptr } = g;
  const dy = g.a;
  const xp = g.b;
  const dv = g.out;
  const wp = g.w + 2 * g.padW;
  const imageSize = c * (g.h + 2 * g.padH) * wp;
  const P = outH * outW;
  const off = inputOffsets(g);
  const rowStep = strideH * wp;
  for (let fo = t0; fo < t1; fo++) {
    const begin = ptr[fo * c]!;
    const end = ptr[(fo + 1) * c]!;
    if (end === begin) continue;
    const acc = new Float64Array(end - begin);
    for (let img = 0; img < n; img++) {
      const base = img * imageSize;
      const src = (img * f + fo) * P;
      let e = begin;
      for (; e + 4 <= end; e += 4) {
        const o0 = base + off[e]!;
        const o1 = base + off[e + 1]!;
        const o2 = base + off[e + 2]!;
        const o3 = base + off[e + 3]!;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let oy = 0, s = src, r = 0; oy < outH; oy++, r += rowStep) {
          for (let ox = 0, i = r; ox < outW; ox++, s++, i += strideW) {
            const d = dy[s]!;
            s0 += d * xp[o0 + i]!;
            s1 += d * xp[o1 + i]!;
            s2 += d * xp[o2 + i]!;
            s3 += d * xp[o3 + i]!;
          }
        }
        acc[e - begin] = acc[e - begin]! + s0;
        acc[e + 1 - begin] = acc[e + 1 - begin]! + s1;
        acc[e + 2 - begin] = acc[e + 2 - begin]! + s2;
        acc[e + 3 - begin] = acc[e + 3 - begin]! + s3;
      }
      for (; e < end; e++) {
        const o0 = base + off[e]!;
        let s0 = 0;
        for (let oy = 0, s = src, r = o0; oy < outH; oy++, r += rowStep) {
          for (let ox = 0, i = r; ox < outW; ox++, s++, i += strideW) s0 += dy[s]! * xp[i]!;
        }
        acc[e - begin] = acc[e - begin]! + s0;
      }
    }
    for (let e = begin; e < end; e++) dv[e] = acc[e - begin]!;
  }
}
