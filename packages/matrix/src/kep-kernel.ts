// The loops of the kernel-element-pruned (KEP) convolution (layout and entry points: kep.ts),
// cut into ranges of "lines" so a pool can split them. Every output element is computed whole by
// one line, in a fixed order, so any split gives bitwise the serial result:
//   forward       line = (image, filter)        y[img, f]   = Σ_c Σ_kept w · shifted xp[img, c]
//   input grad    line = (image, channel)       dx[img, c]  = Σ_f Σ_kept w · shifted dy[img, f]
//   weight grad   line = filter                 dw[f, c, e] = Σ_img Σ_oy,ox dy · shifted xp
// Inputs arrive zero-padded (xp [N, C, H + 2 padH, W + 2 padW]), so no sweep tests for the
// padding. Loop order: the inner loop runs over output columns (contiguous in y, dx and dy, unit
// or `stride` apart in xp), and the kept elements of one output plane, across all its input
// channels, are taken several at a time (SWEEP_WIDTHS: 8, then 4, then 1): one sweep loads and
// stores the float64 accumulator once per 8 multiply-adds instead of once per multiply-add
// (docs/benchmarks/kep-conv.md measures 4 per sweep against one sweep per kept element and
// against a per-pixel loop over the kept elements; 8 per sweep ran the forward 1.29-1.53x
// faster than 4 on the small CNN's conv2 and conv3 shapes, n = 2 and 3, one thread, idle).
// The sweeps of the forward, the gathered input gradient and the weight gradient are generated
// from one template each for every width, as source text compiled once per kind of array
// (float32/float64, plain or shared: V8 specialises element access to the kinds it has seen,
// see pack.ts).
import type { FloatArray } from "./types.ts";
import { arrayKind } from "./pack.ts";

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
  compiled(FORWARD, g.a, g.out)(g, t0, t1, inputOffsets(g));
}

/**
 * Input gradient, stride 1: dx[img, c, y, x] = Σ_f Σ_kept(u,v) w · dyq[img, f, y + padH + kh-1-u,
 * x + padW + kw-1-v] with dyq = dy zero-padded by (kh-1, kw-1): a gather with the same four-wide
 * sweeps as the forward. Lists per input channel are built once per range.
 */
function kepInputGatherLines(g: KepArgs, t0: number, t1: number): void {
  const { f, c, kh, kw, ptr, pos, values } = g;
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
  compiled(GATHER, dyq, dx)(g, t0, t1, off, wv, cptr);
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
  compiled(WEIGHT, g.b, g.out)(g, t0, t1, inputOffsets(g));
}

/** Kept elements per sweep, widest first: a plane list is taken 8 at a time, then 4, then 1. */
const SWEEP_WIDTHS = [8, 4, 1] as const;

const range = (w: number): number[] => Array.from({ length: w }, (_, k) => k);
/** `const o0 = base + off[e], ...` and `const w0 = values[e], ...` for a sweep of width w. */
const offsets = (w: number): string =>
  `const ${range(w)
    .map((k) => `o${k} = base + off[e${k === 0 ? "" : ` + ${k}`}]`)
    .join(", ")};`;
const weights = (w: number, from: string): string =>
  `const ${range(w)
    .map((k) => `w${k} = ${from}[e${k === 0 ? "" : ` + ${k}`}]`)
    .join(", ")};`;
/**
 * The w products of one sweep, w0 · src[o0 + i] + ...: in groups of four, each summed left to
 * right, the groups added left to right (two independent chains for the CPU at width 8).
 */
function products(w: number, src: string): string {
  const groups: string[] = [];
  for (let k = 0; k < w; k += 4)
    groups.push(
      range(Math.min(4, w - k))
        .map((j) => `w${k + j} * ${src}[o${k + j} + i]`)
        .join(" + "),
    );
  return groups.map((x, j) => (j === 0 ? x : `(${x})`)).join(" + ");
}
/** The loop over a plane list's kept elements in sweeps of each width, `body(w)` per sweep. */
const sweeps = (body: (w: number) => string): string =>
  SWEEP_WIDTHS.map((w) => `for (; e + ${w} <= end; e += ${w}) {\n${body(w)}\n}`).join("\n");

type ForwardSweeps = (g: KepArgs, t0: number, t1: number, off: Int32Array) => void;
type GatherSweeps = (
  g: KepArgs,
  t0: number,
  t1: number,
  off: Int32Array,
  wv: Float64Array,
  cptr: Int32Array,
) => void;
type WeightSweeps = (g: KepArgs, t0: number, t1: number, off: Int32Array) => void;

/** y[t] for lines t (image, filter): the accumulator row swept once per group of kept elements. */
const FORWARD = {
  name: "forward",
  source: `return function kepForwardSweeps(g, t0, t1, off) {
  const f = g.f, c = g.c, outH = g.outH, outW = g.outW, strideW = g.strideW;
  const ptr = g.ptr, values = g.values, xp = g.a, y = g.out;
  const wp = g.w + 2 * g.padW;
  const imageSize = c * (g.h + 2 * g.padH) * wp;
  const P = outH * outW;
  const acc = new Float64Array(P);
  const rowStep = g.strideH * wp;
  for (let t = t0; t < t1; t++) {
    const img = Math.floor(t / f);
    const fo = t - img * f;
    acc.fill(0);
    const base = img * imageSize;
    const end = ptr[(fo + 1) * c];
    let e = ptr[fo * c];
    ${sweeps(
      (w) => `${offsets(w)}
      ${weights(w, "values")}
      for (let oy = 0, a = 0, r = 0; oy < outH; oy++, r += rowStep) {
        if (strideW === 1) {
          for (let ox = 0; ox < outW; ox++, a++) {
            const i = r + ox;
            acc[a] = acc[a] + (${products(w, "xp")});
          }
        } else {
          for (let ox = 0, i = r; ox < outW; ox++, a++, i += strideW)
            acc[a] = acc[a] + (${products(w, "xp")});
        }
      }`,
    )}
    const dst = t * P;
    for (let a = 0; a < P; a++) y[dst + a] = acc[a];
  }
};`,
  cache: new Map<number, ForwardSweeps>(),
};

/** dx[t] for lines t (image, channel) from the channel's gathered lists (kepInputGatherLines). */
const GATHER = {
  name: "input gather",
  source: `return function kepGatherSweeps(g, t0, t1, off, wv, cptr) {
  const f = g.f, c = g.c, h = g.h, w = g.w, kh = g.kh, kw = g.kw;
  const dyq = g.a, dx = g.out;
  const wq = g.outW + 2 * (kw - 1);
  const qPlane = (g.outH + 2 * (kh - 1)) * wq;
  const HW = h * w;
  const acc = new Float64Array(HW);
  for (let t = t0; t < t1; t++) {
    const img = Math.floor(t / c);
    const ch = t - img * c;
    acc.fill(0);
    const base = img * f * qPlane;
    const end = cptr[ch + 1];
    let e = cptr[ch];
    ${sweeps(
      (k) => `${offsets(k)}
      ${weights(k, "wv")}
      for (let yy = 0, a = 0, r = 0; yy < h; yy++, r += wq) {
        for (let xx = 0; xx < w; xx++, a++) {
          const i = r + xx;
          acc[a] = acc[a] + (${products(k, "dyq")});
        }
      }`,
    )}
    const dst = t * HW;
    for (let a = 0; a < HW; a++) dx[dst + a] = acc[a];
  }
};`,
  cache: new Map<number, GatherSweeps>(),
};

/**
 * dValues of filters t0..t1-1: per image, the dot products of dy[img, f] with the shifted xp of
 * a group of kept elements in one sweep of dy (one dy load per group, sums in registers), added
 * to the element's float64 sum; each sum runs over images, then rows, then columns.
 */
const WEIGHT = {
  name: "weight",
  source: `return function kepWeightSweeps(g, t0, t1, off) {
  const n = g.n, f = g.f, c = g.c, outH = g.outH, outW = g.outW, strideW = g.strideW;
  const ptr = g.ptr, dy = g.a, xp = g.b, dv = g.out;
  const wp = g.w + 2 * g.padW;
  const imageSize = c * (g.h + 2 * g.padH) * wp;
  const P = outH * outW;
  const rowStep = g.strideH * wp;
  for (let fo = t0; fo < t1; fo++) {
    const begin = ptr[fo * c];
    const end = ptr[(fo + 1) * c];
    if (end === begin) continue;
    const acc = new Float64Array(end - begin);
    for (let img = 0; img < n; img++) {
      const base = img * imageSize;
      const src = (img * f + fo) * P;
      let e = begin;
      ${sweeps(
        (w) => `${offsets(w)}
        ${range(w)
          .map((k) => `let s${k} = 0;`)
          .join(" ")}
        for (let oy = 0, s = src, r = 0; oy < outH; oy++, r += rowStep) {
          for (let ox = 0, i = r; ox < outW; ox++, s++, i += strideW) {
            const d = dy[s];
            ${range(w)
              .map((k) => `s${k} += d * xp[o${k} + i];`)
              .join("\n            ")}
          }
        }
        ${range(w)
          .map((k) => `acc[e${k === 0 ? "" : ` + ${k}`} - begin] += s${k};`)
          .join("\n        ")}`,
      )}
    }
    for (let e = begin; e < end; e++) dv[e] = acc[e - begin];
  }
};`,
  cache: new Map<number, WeightSweeps>(),
};

/** The sweeps of `k` compiled for these kinds of source and output array (see pack.ts). */
function compiled<F>(
  k: { source: string; cache: Map<number, F> },
  src: FloatArray,
  out: FloatArray,
): F {
  const kind = arrayKind(src) + 4 * arrayKind(out);
  let fn = k.cache.get(kind);
  if (fn === undefined) {
    fn = new Function(k.source)() as F;
    k.cache.set(kind, fn);
  }
  return fn;
}

/** @internal The generated source of each sweep template (for tests). */
export const KEP_SWEEP_SOURCES = {
  forward: FORWARD.source,
  gather: GATHER.source,
  weight: WEIGHT.source,
};
