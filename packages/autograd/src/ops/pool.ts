// 2-D max and average pooling over NCHW input, no padding. Max pooling remembers the flat
// input index of each window's maximum (first one on ties) and its backward scatters the
// gradient there; average pooling spreads each output gradient evenly over its window.
// On the WebAssembly kernel path (float32) max pooling's forward runs @tessera/matrix's
// generated kernel instead of the loop below (same first-maximum rule: the same bits); the loop
// stays as the reference and the asm.js path. The backward's scatter loop (@tessera/matrix's
// maxPool2dBackward) serves both paths: it passes over its arrays once, where a wasm kernel
// (which needs gx zeroed, copied in and out of kernel memory) ran 2.4x slower on LeNet-5's
// first pooling (matrix's bench/lenet5-step.ts); with a pool and the arena's shared arrays it
// is split by planes over the threads.
import { kernelPath, maxPool2dBackward, wasmMaxPool2d } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { gemmOptions } from "../matrix-pool.ts";
import { allocLike, denseFloat, fmt, freshGrad, pair, wrap } from "../util.ts";

/** Any float32 array: tells allocLike the element type wanted. */
const F32_LIKE = new Float32Array(0);

export interface Pool2dOptions {
  /** Window size: one number or [kh, kw]. */
  kernel: number | readonly [number, number];
  /** Step between windows; defaults to the kernel size (non-overlapping windows). */
  stride?: number | readonly [number, number];
}

interface PoolGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  oh: number;
  ow: number;
}

function poolGeometry(fn: string, x: Variable, options: Pool2dOptions): PoolGeometry {
  checkVariable(fn, "x", x);
  const xs = x.data.shape;
  if (xs.length !== 4)
    throw new RangeError(`${fn}: x must be 4-d [N, C, H, W], got shape ${fmt(xs)}`);
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${fn}: options must be an object { kernel, stride? }`);
  }
  const [kh, kw] = pair(fn, "kernel", options.kernel, 1);
  const [sh, sw] = pair(fn, "stride", options.stride ?? [kh, kw], 1);
  const [n, c, h, w] = xs as [number, number, number, number];
  if (h < kh || w < kw) {
    throw new RangeError(
      `${fn}: kernel ${kh}x${kw} does not fit input of shape ${fmt(xs)} (H=${h}, W=${w})`,
    );
  }
  return {
    n,
    c,
    h,
    w,
    kh,
    kw,
    sh,
    sw,
    oh: Math.floor((h - kh) / sh) + 1,
    ow: Math.floor((w - kw) / sw) + 1,
  };
}

/** Maximum over each kh x kw window: [N, C, H, W] -> [N, C, outH, outW]. */
export function maxPool2d(x: Variable, options: Pool2dOptions): Variable {
  const fn = "maxPool2d";
  const { n, c, h, w, kh, kw, sh, sw, oh, ow } = poolGeometry(fn, x, options);
  const X = denseFloat(x.data);
  const planes = n * c;
  const y = allocLike(X, planes * oh * ow);
  // The window maxima's indices, kept for the backward: int32 on the bytes of a float32 array
  // from allocLike, so inside a BufferArena's step they are reused like the op's other arrays
  // (LeNet-5's two poolings: 1.9 MB a step that would otherwise be fresh).
  const argStore = allocLike(F32_LIKE, planes * oh * ow);
  const arg = new Int32Array(argStore.buffer, argStore.byteOffset, planes * oh * ow);
  const wasm = X instanceof Float32Array && kernelPath(gemmOptions()) === "wasm";
  let o = 0;
  if (wasm) {
    const g = { n, c, h, w, kh, kw, strideH: sh, strideW: sw };
    wasmMaxPool2d(X, g, y as Float32Array, arg, gemmOptions());
  } else
    for (let pl = 0; pl < planes; pl++) {
      const base = pl * h * w;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++, o++) {
          const top = base + oy * sh * w + ox * sw;
          let best = top;
          let bv = X[top]!;
          for (let u = 0; u < kh; u++) {
            const row = top + u * w;
            for (let v = 0; v < kw; v++) {
              const val = X[row + v]!;
              if (val > bv) {
                bv = val;
                best = row + v;
              }
            }
          }
          y[o] = bv;
          arg[o] = best;
        }
      }
    }
  const size = x.data.size;
  return record(fn, wrap(y, [n, c, oh, ow]), [x], (g) => {
    const G = denseFloat(g);
    const gx = allocLike(y, size);
    // gx[arg[i]] += G[i], split over the pool by planes when the arrays are shared (a pool
    // inside a BufferArena's step); the same bits either way.
    maxPool2dBackward(G, arg, gx, planes, h * w, oh * ow, gemmOptions());
    return [freshGrad(gx, x.data.shape)];
  });
}

/** Mean over each kh x kw window: [N, C, H, W] -> [N, C, outH, outW]. */
export function avgPool2d(x: Variable, options: Pool2dOptions): Variable {
  const fn = "avgPool2d";
  const { n, c, h, w, kh, kw, sh, sw, oh, ow } = poolGeometry(fn, x, options);
  const X = denseFloat(x.data);
  const planes = n * c;
  const y = allocLike(X, planes * oh * ow);
  const inv = 1 / (kh * kw);
  let o = 0;
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * h * w;
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++, o++) {
        const top = base + oy * sh * w + ox * sw;
        let s = 0;
        for (let u = 0; u < kh; u++) {
          const row = top + u * w;
          for (let v = 0; v < kw; v++) s += X[row + v]!;
        }
        y[o] = s * inv;
      }
    }
  }
  const size = x.data.size;
  return record(fn, wrap(y, [n, c, oh, ow]), [x], (g) => {
    const G = denseFloat(g);
    const gx = allocLike(y, size);
    let q = 0;
    for (let pl = 0; pl < planes; pl++) {
      const base = pl * h * w;
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++, q++) {
          const top = base + oy * sh * w + ox * sw;
          const d = G[q]! * inv;
          for (let u = 0; u < kh; u++) {
            const row = top + u * w;
            for (let v = 0; v < kw; v++) gx[row + v] = gx[row + v]! + d;
          }
        }
      }
    }
    return [freshGrad(gx, x.data.shape)];
  });
}
