// Kernel-element-pruned (KEP) convolution: inside every k x k plane W[f, c] of a conv weight
// [F, C, kh, kw] only some positions are kept; the convolution visits only those, one shifted
// multiply-accumulate per kept element instead of a sliding window over all kh·kw positions.
//
// Storage (KepLayout): planes in f-major order (plane p = f·C + c); plane p keeps elements
// ptr[p] .. ptr[p+1]-1, each a position u·kw + v (ascending within the plane) and one value in
// a separate values array of the same order. A fixed count n per plane (ptr[p] = p·n) is the
// regular case KEP builds; any count per plane (0 .. kh·kw) is accepted. Saved, a position takes
// ceil(log2(kh·kw)) bits (4 for 3x3, 5 for 5x5), bit-packed (packPositions / fromPacked).
//
// Convolution (loops: kep-kernel.ts). x is NCHW; the caller pads it once (kepPad) and keeps the
// padded copy for the weight gradient:
//   kepForward(xp, values, layout, g)         y  [N, F, outH, outW]
//   kepBackwardInput(dy, values, layout, g)   dx [N, C, H, W]
//   kepBackwardWeight(dy, xp, layout, g)      dValues [nnz] (kept positions only)
import type { DenseOptions } from "./dense.ts";
import type { Conv2dGeometry, ResolvedConv2d } from "./im2col.ts";
import { conv2dGeometry } from "./im2col.ts";
import type { KepArgs } from "./kep-kernel.ts";
import { KEP_FORWARD, KEP_INPUT_GATHER, KEP_INPUT_SCATTER, KEP_WEIGHT } from "./kep-kernel.ts";
import { runKep } from "./parallel.ts";
import type { MatrixPool } from "./pool.ts";
import type { FloatArray, SameFloat } from "./types.ts";
import { allocLike, checkDim, checkFloatArray, checkLength, checkSameType } from "./types.ts";

function shapeText(f: number, c: number, kh: number, kw: number): string {
  return `[F=${f}, C=${c}, kh=${kh}, kw=${kw}]`;
}

/** The kept positions of a KEP convolution weight [F, C, kh, kw] (see the file header). */
export class KepLayout {
  readonly f: number;
  readonly c: number;
  readonly kh: number;
  readonly kw: number;
  /** Length F·C + 1: plane p keeps elements ptr[p] .. ptr[p+1]-1. */
  readonly ptr: Int32Array;
  /** Position u·kw + v of every kept element, strictly ascending within a plane. */
  readonly pos: Int32Array;

  /** Validates and adopts the arrays (no copy). */
  constructor(f: number, c: number, kh: number, kw: number, ptr: Int32Array, pos: Int32Array) {
    const fn = "KepLayout";
    checkDim(fn, "f", f);
    checkDim(fn, "c", c);
    checkDim(fn, "kh", kh);
    checkDim(fn, "kw", kw);
    if (kh < 1 || kw < 1)
      throw new RangeError(`${fn}: kh and kw must be at least 1, got ${kh}x${kw}`);
    if (!(ptr instanceof Int32Array) || !(pos instanceof Int32Array))
      throw new TypeError(`${fn}: ptr and pos must be Int32Arrays`);
    const planes = f * c;
    if (ptr.length !== planes + 1) {
      throw new RangeError(
        `${fn}: ptr must have F·C + 1 = ${planes + 1} entries for weight ${shapeText(f, c, kh, kw)}, got ${ptr.length}`,
      );
    }
    if (ptr[0] !== 0 || ptr[planes] !== pos.length) {
      throw new RangeError(
        `${fn}: ptr must run from 0 to pos.length = ${pos.length}, got ${ptr[0]} .. ${ptr[planes]}`,
      );
    }
    const k2 = kh * kw;
    for (let p = 0; p < planes; p++) {
      if (ptr[p + 1]! < ptr[p]! || ptr[p + 1]! - ptr[p]! > k2) {
        throw new RangeError(
          `${fn}: plane ${p} (f=${Math.floor(p / c)}, c=${p % c}) keeps ${ptr[p + 1]! - ptr[p]!} elements; expected 0..${k2}`,
        );
      }
      for (let e = ptr[p]!; e < ptr[p + 1]!; e++) {
        const q = pos[e]!;
        if (q < 0 || q >= k2 || (e > ptr[p]! && q <= pos[e - 1]!)) {
          throw new RangeError(
            `${fn}: positions of plane ${p} must be strictly ascending in 0..${k2 - 1}, got ${Array.from(pos.subarray(ptr[p]!, ptr[p + 1]!)).join(",")}`,
          );
        }
      }
    }
    this.f = f;
    this.c = c;
    this.kh = kh;
    this.kw = kw;
    this.ptr = ptr;
    this.pos = pos;
  }

  /** Keeps every element where `mask` [F, C, kh, kw] is nonzero. */
  static fromMask(
    mask: ArrayLike<number>,
    f: number,
    c: number,
    kh: number,
    kw: number,
  ): KepLayout {
    const fn = "KepLayout.fromMask";
    for (const [name, v] of [
      ["f", f],
      ["c", c],
      ["kh", kh],
      ["kw", kw],
    ] as const)
      checkDim(fn, name, v);
    const k2 = kh * kw;
    const total = f * c * k2;
    if (mask === null || typeof mask !== "object" || mask.length !== total) {
      throw new RangeError(
        `${fn}: mask must have ${total} entries for weight ${shapeText(f, c, kh, kw)}, got ${mask === null || typeof mask !== "object" ? String(mask) : mask.length}`,
      );
    }
    const ptr = new Int32Array(f * c + 1);
    let nnz = 0;
    for (let i = 0; i < total; i++) if (mask[i] !== 0) nnz++;
    const pos = new Int32Array(nnz);
    let e = 0;
    for (let p = 0; p < f * c; p++) {
      for (let q = 0; q < k2; q++) if (mask[p * k2 + q] !== 0) pos[e++] = q;
      ptr[p + 1] = e;
    }
    return new KepLayout(f, c, kh, kw, ptr, pos);
  }

  /**
   * Rebuilds a layout from per-plane counts (one number for all planes, or F·C of them) and the
   * bit-packed positions of packPositions().
   */
  static fromPacked(
    f: number,
    c: number,
    kh: number,
    kw: number,
    counts: number | ArrayLike<number>,
    packed: Uint8Array,
  ): KepLayout {
    const fn = "KepLayout.fromPacked";
    const planes = f * c;
    const ptr = new Int32Array(planes + 1);
    if (typeof counts === "number") {
      checkDim(fn, "counts", counts);
      for (let p = 0; p < planes; p++) ptr[p + 1] = ptr[p]! + counts;
    } else {
      if (counts.length !== planes)
        throw new RangeError(
          `${fn}: counts must have F·C = ${planes} entries, got ${counts.length}`,
        );
      for (let p = 0; p < planes; p++) ptr[p + 1] = ptr[p]! + counts[p]!;
    }
    const nnz = ptr[planes]!;
    const bits = positionBits(kh, kw);
    const need = Math.ceil((nnz * bits) / 8);
    if (!(packed instanceof Uint8Array) || packed.length !== need) {
      throw new RangeError(
        `${fn}: ${nnz} positions of ${bits} bits need ${need} packed bytes, got ${packed instanceof Uint8Array ? packed.length : typeof packed}`,
      );
    }
    const pos = new Int32Array(nnz);
    for (let e = 0; e < nnz; e++) {
      let q = 0;
      for (let b = 0; b < bits; b++) {
        const bit = e * bits + b;
        q |= ((packed[bit >> 3]! >> (bit & 7)) & 1) << b;
      }
      pos[e] = q;
    }
    return new KepLayout(f, c, kh, kw, ptr, pos);
  }

  /** Number of kept elements (the length of the values array). */
  get nnz(): number {
    return this.pos.length;
  }

  /** Elements a plane keeps when every plane keeps the same number, else null. */
  get uniformCount(): number | null {
    const planes = this.f * this.c;
    if (planes === 0) return 0;
    const n = this.ptr[1]!;
    for (let p = 1; p < planes; p++) if (this.ptr[p + 1]! - this.ptr[p]! !== n) return null;
    return n;
  }

  /** Kept elements per plane (F·C entries). */
  counts(): Int32Array {
    const out = new Int32Array(this.f * this.c);
    for (let p = 0; p < out.length; p++) out[p] = this.ptr[p + 1]! - this.ptr[p]!;
    return out;
  }

  /** The positions bit-packed, positionBits() each, least significant bit first. */
  packPositions(): Uint8Array {
    const bits = positionBits(this.kh, this.kw);
    const out = new Uint8Array(Math.ceil((this.nnz * bits) / 8));
    for (let e = 0; e < this.nnz; e++) {
      const q = this.pos[e]!;
      for (let b = 0; b < bits; b++) {
        const bit = e * bits + b;
        if ((q >> b) & 1) out[bit >> 3] = out[bit >> 3]! | (1 << (bit & 7));
      }
    }
    return out;
  }

  /**
   * Bytes of the saved index: the packed positions, plus one count per plane (1 byte each up to
   * 255 kept per plane, else 2) unless every plane keeps the same number.
   */
  indexBytes(): number {
    const packed = Math.ceil((this.nnz * positionBits(this.kh, this.kw)) / 8);
    if (this.uniformCount !== null) return packed;
    return packed + this.f * this.c * (this.kh * this.kw < 256 ? 1 : 2);
  }

  /** The kept weights of a dense weight [F, C, kh, kw], in layout order. */
  gather<T extends FloatArray>(weight: T, out?: SameFloat<T>): SameFloat<T> {
    const fn = "KepLayout.gather";
    const k2 = this.kh * this.kw;
    checkFloatArray(fn, "weight", weight);
    checkLength(
      fn,
      "weight",
      weight,
      this.f * this.c * k2,
      shapeText(this.f, this.c, this.kh, this.kw),
    );
    const values = out ?? allocLike(weight, this.nnz);
    checkFloatArray(fn, "out", values);
    checkSameType(fn, "out", weight, values);
    checkLength(fn, "out", values, this.nnz, `[nnz=${this.nnz}]`);
    for (let p = 0; p < this.f * this.c; p++) {
      for (let e = this.ptr[p]!; e < this.ptr[p + 1]!; e++)
        values[e] = weight[p * k2 + this.pos[e]!]!;
    }
    return values as SameFloat<T>;
  }

  /** The dense weight [F, C, kh, kw]: `values` at kept positions, 0 elsewhere. */
  scatter<T extends FloatArray>(values: T, out?: SameFloat<T>): SameFloat<T> {
    const fn = "KepLayout.scatter";
    const k2 = this.kh * this.kw;
    checkFloatArray(fn, "values", values);
    checkLength(fn, "values", values, this.nnz, `[nnz=${this.nnz}]`);
    const total = this.f * this.c * k2;
    const weight = out ?? allocLike(values, total);
    checkFloatArray(fn, "out", weight);
    checkSameType(fn, "out", values, weight);
    checkLength(fn, "out", weight, total, shapeText(this.f, this.c, this.kh, this.kw));
    weight.fill(0, 0, total);
    for (let p = 0; p < this.f * this.c; p++) {
      for (let e = this.ptr[p]!; e < this.ptr[p + 1]!; e++)
        weight[p * k2 + this.pos[e]!] = values[e]!;
    }
    return weight as SameFloat<T>;
  }

  /** The 0/1 mask [F, C, kh, kw] of the kept positions. */
  toMask(): Float32Array {
    const k2 = this.kh * this.kw;
    const mask = new Float32Array(this.f * this.c * k2);
    for (let p = 0; p < this.f * this.c; p++) {
      for (let e = this.ptr[p]!; e < this.ptr[p + 1]!; e++) mask[p * k2 + this.pos[e]!] = 1;
    }
    return mask;
  }
}

/** Bits per saved position: ceil(log2(kh·kw)), at least 1 (4 for 3x3, 5 for 5x5). */
export function positionBits(kh: number, kw: number): number {
  return Math.max(1, Math.ceil(Math.log2(kh * kw)));
}

/** Geometry of a KEP convolution: no dilation (the kept positions are the taps). */
export type KepGeometry = Omit<Conv2dGeometry, "dilationH" | "dilationW">;

function resolve(fn: string, g: KepGeometry, layout: KepLayout): ResolvedConv2d {
  if (!(layout instanceof KepLayout))
    throw new TypeError(
      `${fn}: layout must be a KepLayout, got ${layout === null ? "null" : typeof layout}`,
    );
  const r = conv2dGeometry(fn, { ...g, dilationH: 1, dilationW: 1 });
  if (r.c !== layout.c || r.kh !== layout.kh || r.kw !== layout.kw) {
    throw new RangeError(
      `${fn}: geometry has C=${r.c}, kernel ${r.kh}x${r.kw} but the layout is for weight ${shapeText(layout.f, layout.c, layout.kh, layout.kw)}`,
    );
  }
  return r;
}

function args(
  mode: number,
  r: ResolvedConv2d,
  layout: KepLayout,
  values: FloatArray,
  a: FloatArray,
  b: FloatArray,
  out: FloatArray,
): KepArgs {
  const { n, c, h, w, kh, kw, strideH, strideW, padH, padW, outH, outW } = r;
  return {
    mode,
    n,
    c,
    h,
    w,
    f: layout.f,
    kh,
    kw,
    strideH,
    strideW,
    padH,
    padW,
    outH,
    outW,
    ptr: layout.ptr,
    pos: layout.pos,
    values,
    a,
    b,
    out,
  };
}

/** Runs a job on the calling thread, or split by lines over the pool when the work pays. */
function run(g: KepArgs, nnz: number, options: DenseOptions | undefined): void {
  // Every mode does one multiply-add per kept element per output position of every image.
  runKep(g, 2 * g.n * g.outH * g.outW * nnz, options?.pool);
}

/**
 * A zeroed ordinary array like `like` for an output, with or without a pool: a pooled job reads
 * and writes it through the pool's reused shared scratch (one copy in or out). Outputs used to
 * be fresh SharedArrayBuffers, which a synchronous loop never gives back (each is posted to the
 * workers, who hold it until a finalizer runs; autograd's shared-buffers.ts): 300 pooled
 * kepPad + kepForward calls on a 32 -> 64 channel 14x14 layer at batch 32 grew the process from
 * 91 to 928 MB, 2.7 MB a call, which a training loop would have run out of memory on.
 */
function alloc<T extends FloatArray>(like: T, n: number): SameFloat<T> {
  return allocLike(like, n) as SameFloat<T>;
}

/** `n` elements like `like` for a temporary that dies in this call: the pool's reused scratch. */
function temporary<T extends FloatArray>(
  like: T,
  n: number,
  pool: MatrixPool | undefined,
): SameFloat<T> {
  if (pool === undefined) return allocLike(like, n) as SameFloat<T>;
  return (
    like instanceof Float32Array
      ? pool.scratchFloat32("kep.dyq", n)
      : pool.scratchFloat64("kep.dyq", n)
  ) as SameFloat<T>;
}

/**
 * The caller's `out` checked (and cut to exactly `need` elements: pool jobs write every element
 * of their output, so they must not be handed a longer one), or a new array.
 */
function output<T extends FloatArray>(
  fn: string,
  like: T,
  out: FloatArray | undefined,
  need: number,
  shape: string,
): SameFloat<T> {
  if (out === undefined) return alloc(like, need);
  checkFloatArray(fn, "out", out);
  checkSameType(fn, "out", like, out);
  checkLength(fn, "out", out, need, shape);
  return out.subarray(0, need) as SameFloat<T>;
}

/**
 * Copies x [N, C, H, W] into a zero border: [N, C, H + 2·padH, W + 2·padW], on the calling
 * thread, into `out` or a new ordinary array.
 */
export function kepPad<T extends FloatArray>(
  x: T,
  geometry: KepGeometry,
  out?: SameFloat<T>,
): SameFloat<T> {
  const fn = "kepPad";
  const r = conv2dGeometry(fn, { ...geometry, dilationH: 1, dilationW: 1 });
  checkFloatArray(fn, "x", x);
  checkLength(fn, "x", x, r.n * r.c * r.h * r.w, `[N=${r.n}, C=${r.c}, H=${r.h}, W=${r.w}]`);
  const hp = r.h + 2 * r.padH;
  const wp = r.w + 2 * r.padW;
  const xp = output(fn, x, out, r.n * r.c * hp * wp, `[N=${r.n}, C=${r.c}, Hp=${hp}, Wp=${wp}]`);
  padPlanes(x, xp, r.n * r.c, r.h, r.w, r.padH, r.padW);
  return xp;
}

/** planes planes of h x w into a border of (ph, pw) zeros. */
function padPlanes(
  src: FloatArray,
  dst: FloatArray,
  planes: number,
  h: number,
  w: number,
  ph: number,
  pw: number,
): void {
  const wp = w + 2 * pw;
  const hp = h + 2 * ph;
  dst.fill(0, 0, planes * hp * wp);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < h; y++) {
      const s = (p * h + y) * w;
      dst.set(src.subarray(s, s + w), (p * hp + y + ph) * wp + pw);
    }
  }
}

/**
 * y [N, F, outH, outW] = the convolution of xp (x padded by kepPad) with the kept weights
 * `values` at `layout`'s positions (no bias). Overwrites and returns `out`.
 */
export function kepForward<T extends FloatArray>(
  xp: T,
  values: SameFloat<T>,
  layout: KepLayout,
  geometry: KepGeometry,
  out?: SameFloat<T>,
  options?: DenseOptions,
): SameFloat<T> {
  const fn = "kepForward";
  const r = resolve(fn, geometry, layout);
  checkFloatArray(fn, "xp", xp);
  const hp = r.h + 2 * r.padH;
  const wp = r.w + 2 * r.padW;
  checkLength(
    fn,
    "xp",
    xp,
    r.n * r.c * hp * wp,
    `[N=${r.n}, C=${r.c}, H+2padH=${hp}, W+2padW=${wp}]`,
  );
  checkFloatArray(fn, "values", values);
  checkSameType(fn, "values", xp, values);
  checkLength(fn, "values", values, layout.nnz, `[nnz=${layout.nnz}]`);
  const P = r.outH * r.outW;
  const y = output(
    fn,
    xp,
    out,
    r.n * layout.f * P,
    `[N=${r.n}, F=${layout.f}, outH=${r.outH}, outW=${r.outW}]`,
  );
  run(args(KEP_FORWARD, r, layout, values, xp, xp, y), layout.nnz, options);
  return y;
}

/**
 * dx [N, C, H, W] of the convolution for output gradient dy [N, F, outH, outW]. Overwrites and
 * returns `out`.
 */
export function kepBackwardInput<T extends FloatArray>(
  dy: T,
  values: SameFloat<T>,
  layout: KepLayout,
  geometry: KepGeometry,
  out?: SameFloat<T>,
  options?: DenseOptions,
): SameFloat<T> {
  const fn = "kepBackwardInput";
  const r = resolve(fn, geometry, layout);
  checkFloatArray(fn, "dy", dy);
  checkLength(
    fn,
    "dy",
    dy,
    r.n * layout.f * r.outH * r.outW,
    `[N=${r.n}, F=${layout.f}, outH=${r.outH}, outW=${r.outW}]`,
  );
  checkFloatArray(fn, "values", values);
  checkSameType(fn, "values", dy, values);
  checkLength(fn, "values", values, layout.nnz, `[nnz=${layout.nnz}]`);
  const dx = output(fn, dy, out, r.n * r.c * r.h * r.w, `[N=${r.n}, C=${r.c}, H=${r.h}, W=${r.w}]`);
  if (r.strideH === 1 && r.strideW === 1) {
    // Gather form (four kept elements per sweep): needs dy with a (kh-1, kw-1) zero border.
    const dyq = temporary(
      dy,
      r.n * layout.f * (r.outH + 2 * r.kh - 2) * (r.outW + 2 * r.kw - 2),
      options?.pool,
    );
    padPlanes(dy, dyq, r.n * layout.f, r.outH, r.outW, r.kh - 1, r.kw - 1);
    run(args(KEP_INPUT_GATHER, r, layout, values, dyq, dyq, dx), layout.nnz, options);
  } else run(args(KEP_INPUT_SCATTER, r, layout, values, dy, dy, dx), layout.nnz, options);
  return dx;
}

/**
 * The weight gradient at kept positions only: dValues [nnz] for output gradient dy
 * [N, F, outH, outW] and the padded input xp of the forward. Overwrites and returns `out`.
 */
export function kepBackwardWeight<T extends FloatArray>(
  dy: T,
  xp: SameFloat<T>,
  layout: KepLayout,
  geometry: KepGeometry,
  out?: SameFloat<T>,
  options?: DenseOptions,
): SameFloat<T> {
  const fn = "kepBackwardWeight";
  const r = resolve(fn, geometry, layout);
  checkFloatArray(fn, "dy", dy);
  checkLength(
    fn,
    "dy",
    dy,
    r.n * layout.f * r.outH * r.outW,
    `[N=${r.n}, F=${layout.f}, outH=${r.outH}, outW=${r.outW}]`,
  );
  checkFloatArray(fn, "xp", xp);
  checkSameType(fn, "xp", dy, xp);
  const hp = r.h + 2 * r.padH;
  const wp = r.w + 2 * r.padW;
  checkLength(
    fn,
    "xp",
    xp,
    r.n * r.c * hp * wp,
    `[N=${r.n}, C=${r.c}, H+2padH=${hp}, W+2padW=${wp}]`,
  );
  const dv = output(fn, dy, out, layout.nnz, `[nnz=${layout.nnz}]`);
  // Filters with nothing kept own no entries; every kept entry is written by its filter's line.
  run(args(KEP_WEIGHT, r, layout, dv, dy, xp, dv), layout.nnz, options);
  return dv;
}
