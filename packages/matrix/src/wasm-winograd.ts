// Winograd F(2x2, r x r) convolutions on the WebAssembly path: r = 3 or 5, stride 1, even output
// sides.
//
// The direct product (wasm-conv.ts) multiplies r² weights into every output; Winograd's minimal
// filtering algorithm computes each 2x2 output tile from an n x n input patch d (n = r + 1) with
// n² products per (filter, channel) pair instead of 4r² (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks"):
//   V = Bᵀ d B     (the input transform: n x n -> n x n)
//   U = G g Gᵀ     (the filter transform: r x r -> n x n, once per call, in float64)
//   M[ξ] = U[ξ] · V[ξ] for the n² positions ξ: a [F x C] by [C x tiles] product each
//   y = Aᵀ M A     (the output transform: n x n -> 2 x 2)
// with the matrices of winogradMatrices(r) (for r = 3: Bᵀ = [-1 0 1 0; 0 1 1 0; 0 -1 1 0;
// 0 -1 0 1], G = [-1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1], Aᵀ = [1 1 1 0; 0 1 -1 1]). The n² products run
// the dense micro-kernel of wasm-gemm.ts (2.25x fewer multiply-adds than the direct product for
// 3x3, 2.78x for 5x5); the transforms are kernels generated from the matrices, over four tiles at
// a time (f32x4 lanes = four horizontally adjacent tiles).
//
// Blocking (forward): a thread takes whole images; their tile rows go through its scratch region
// a few at a time (rowsPerBlock: V and M of the block fit the region, ~700 KB, inside L2), so V
// and M are written and read while in cache. A tile row of tw tiles occupies tw4 = tw rounded up
// to 4 slots; the extra slots read past the row (values that only reach their own columns of M,
// which the output transform never stores). The output transform adds the bias and, for a fused
// ReLU, takes max(·, +0).
//
// The weight gradient is the same algorithm's adjoint: dU[ξ] = Σ over tiles dM[ξ]·V[ξ]ᵀ with
// dM = A·dY·Aᵀ (a [F x tiles] by [tiles x C] product per position, k = tiles, only valid tiles
// stored), then dW = Gᵀ·dU·G; the tiles are summed in WINOGRAD_GRAD_CHUNKS fixed image chunks,
// each in its own dU, added in chunk order on the caller.
//
// Values: the transforms reorder the arithmetic, so outputs differ from the direct product's by
// float32 roundoff (for 3x3 the transforms' coefficients are 0, ±1, ±½ and relative errors stay
// near the direct sum's; 5x5's reach 5 and 1/24; tested against a float64 reference within the
// algorithm's bound). Each forward
// output is computed by one thread from its own tile, whatever the blocking, and the weight
// gradient's chunks do not depend on the thread count: the same bits on any thread count. A NaN
// or infinity in the input reaches the outputs the direct product's would (Bᵀ's and Aᵀ's nonzero
// pattern keeps each output to its window's patch entries); an infinity may come out as NaN.
import { I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code, Local } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, WASM_MC, WASM_TILE } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import type { ResolvedConv2d } from "./im2col.ts";
import { roundUp } from "./gemm.ts";

const MR = WASM_TILE.mr;
const NR = WASM_TILE.nr;
const NR_SHIFT = Math.log2(NR);
const MR_SHIFT = Math.log2(MR);
if (!Number.isInteger(NR_SHIFT) || NR < 4 || !Number.isInteger(MR_SHIFT) || MR < 4)
  throw new Error(
    `wasm-winograd: WASM_TILE's mr and nr must be powers of two >= 4 (four rows are transposed into one vector), got ${MR}x${NR}`,
  );

/**
 * The matrices of Winograd's F(2, r) (Lavin & Gray 2016; the Cook-Toom construction): with
 * n = r + 1 points p_0..p_{n-2} and infinity, y = Aᵀ[(G g) ⊙ (Bᵀ d)] is the correlation
 * y_i = Σ_k g_k d_{i+k} of r taps over n inputs, for 2 outputs:
 *   Aᵀ[i][j] = p_j^i (the last column: infinity, [0, 1]),
 *   G[j][k] = p_j^k / Π_{l≠j}(p_j - p_l) (the last row: [0 .. 0 1]),
 *   Bᵀ[j] = the coefficients of Π_{l≠j}(x - p_l) (the last row: of Π_l (x - p_l)).
 * 2-D tiles nest them: V = Bᵀ d B, U = G g Gᵀ, y = Aᵀ M A. The points are the small ones
 * (0, ±1, then ±2), which keep Bᵀ's entries small integers: r = 3 gives Bᵀ rows [-1 0 1 0],
 * [0 1 1 0], [0 -1 1 0], [0 -1 0 1]; r = 5 the F(4, 3)-sized 6x6 with entries up to 5.
 */
export interface WinogradMatrices {
  r: number;
  n: number;
  AT: number[][];
  G: number[][];
  BT: number[][];
}

/** Kernel sizes the route generates kernels for. */
export const WINOGRAD_SIZES: readonly number[] = [3, 5];
const POINTS = [0, 1, -1, 2, -2, 0.5, -0.5];
const matricesCache = new Map<number, WinogradMatrices>();

/** The F(2, r) matrices (r in WINOGRAD_SIZES), computed once. */
export function winogradMatrices(r: number): WinogradMatrices {
  if (!WINOGRAD_SIZES.includes(r))
    throw new RangeError(
      `winogradMatrices: r must be one of ${WINOGRAD_SIZES.join(", ")}, got ${r}`,
    );
  let w = matricesCache.get(r);
  if (w !== undefined) return w;
  const n = r + 1;
  const p = POINTS.slice(0, n - 1);
  /** Coefficients (lowest first) of Π over `roots` of (x - root). */
  const poly = (roots: number[]) =>
    roots.reduce(
      (cs, root) => cs.map((_, t) => (t > 0 ? cs[t - 1]! : 0) - root * cs[t]!),
      [1, ...new Array<number>(n - 1).fill(0)],
    );
  const AT = [0, 1].map((i) => [...p.map((pj) => pj ** i), i === 1 ? 1 : 0]);
  const G = p.map((pj, j) => {
    const f = p.reduce((acc, pl, l) => (l === j ? acc : acc * (pj - pl)), 1);
    return Array.from({ length: r }, (_, k) => pj ** k / f);
  });
  G.push(Array.from({ length: r }, (_, k) => (k === r - 1 ? 1 : 0)));
  const BT = p.map((_, j) => poly(p.filter((_, l) => l !== j)));
  BT.push(poly(p));
  w = { r, n, AT, G, BT };
  matricesCache.set(r, w);
  return w;
}

/** f32x4 splats of the coefficients a kernel multiplies by, set once at the function's start. */
class Coefficients {
  private readonly locals = new Map<number, Local>();
  constructor(
    private readonly c: Code,
    matrices: number[][][],
  ) {
    for (const m of matrices)
      for (const row of m)
        for (const v of row) {
          const a = Math.abs(v);
          if (a === 0 || a === 1 || this.locals.has(a)) continue;
          const l = c.local(V128);
          c.f32Const(a).f32x4Splat().set(l);
          this.locals.set(a, l);
        }
  }
  get(a: number): Local {
    return this.locals.get(a)!;
  }
}

/**
 * out[i] = Σ_j M[i][j]·x[j] on f32x4 locals: ±1 as adds and subtracts, other coefficients as a
 * multiply by their splat; a row starts from a positive term where it has one.
 */
function applyMatrix(c: Code, M: number[][], x: Local[], out: Local[], k: Coefficients): void {
  M.forEach((row, i) => {
    const terms = row.map((v, j) => [v, j] as const).filter(([v]) => v !== 0);
    if (terms.length === 0) {
      c.v128Zero().set(out[i]!);
      return;
    }
    const first = terms.findIndex(([v]) => v > 0);
    const order = first < 0 ? terms : [terms[first]!, ...terms.filter((_, t) => t !== first)];
    const scaled = (v: number, j: number) => {
      c.get(x[j]!);
      if (Math.abs(v) !== 1) c.get(k.get(Math.abs(v))).f32x4Mul();
    };
    order.forEach(([v, j], t) => {
      if (t === 0 && v < 0) {
        c.v128Zero();
        scaled(v, j);
        c.f32x4Sub();
      } else {
        scaled(v, j);
        if (t > 0) {
          if (v > 0) c.f32x4Add();
          else c.f32x4Sub();
        }
      }
    });
    c.set(out[i]!);
  });
}

/** Scratch locals of patchTransform. */
interface PatchLocals {
  lo: Local;
  hi: Local;
  d: Local[];
  t: Local[];
}
function patchLocals(c: Code, n: number): PatchLocals {
  return {
    lo: c.local(V128),
    hi: c.local(V128),
    d: Array.from({ length: n * n }, () => c.local(V128)),
    t: Array.from({ length: n * n }, () => c.local(V128)),
  };
}

/**
 * v[n·i + j] = (Bᵀ d B)[i][j] for four horizontally adjacent tiles (lane l = tile l) whose n x n
 * patches start at byte address a (patch rows wp bytes apart; a is moved down n - 1 rows). Each
 * patch row's columns c..c+7 (c = 0, 2, ..) are loaded and split into even and odd lanes:
 * d[row][c] = x_c x_{c+2} x_{c+4} x_{c+6}, d[row][c+1] = x_{c+1} .. x_{c+7}.
 */
function patchTransform(
  c: Code,
  W: WinogradMatrices,
  a: Local,
  wp: Local,
  l: PatchLocals,
  v: Local[],
  k: Coefficients,
): void {
  const { n, BT } = W;
  const { lo, hi, d, t } = l;
  for (let r = 0; r < n; r++) {
    for (let col = 0; col < n; col += 2) {
      c.get(a)
        .v128Load(4 * col)
        .set(lo);
      c.get(a)
        .v128Load(4 * col + 16)
        .set(hi);
      c.get(lo)
        .get(hi)
        .i32x4Shuffle([0, 2, 4, 6])
        .set(d[n * r + col]!);
      c.get(lo)
        .get(hi)
        .i32x4Shuffle([1, 3, 5, 7])
        .set(d[n * r + col + 1]!);
    }
    if (r < n - 1) c.get(a).get(wp).i32Add().set(a);
  }
  const column = (m: Local[], col: number) => Array.from({ length: n }, (_, r) => m[n * r + col]!);
  // t = Bᵀ d (down the columns), then v = t B (along the rows)
  for (let col = 0; col < n; col++) applyMatrix(c, BT, column(d, col), column(t, col), k);
  for (let row = 0; row < n; row++)
    applyMatrix(c, BT, t.slice(n * row, n * row + n), v.slice(n * row, n * row + n), k);
}

/**
 * winoIn(src, wpBytes, planeBytes, chans, dst, slot0, quads, xiBytes): the input transform of
 * one tile row for every channel. The row's patches start at byte src (channel 0, the top-left
 * of its first patch; channel c at src + c·planeBytes, patch rows wpBytes apart); quads·4 tiles,
 * two columns apart. V[ξ] of channel ch and the row's tile t (slot j = slot0 + t) goes to
 * dst + ξ·xiBytes + 4·((j >> log2 NR)·chans·NR + ch·NR + (j & (NR-1))): B panels of NR tiles
 * with k = channels, as the micro-kernel reads them.
 */
function emitIn(c: Code, W: WinogradMatrices): void {
  const [src, wp, planeBytes, chans, dst, slot0, quads, xiBytes] = c.paramTuple(8);
  const nn = W.n * W.n;
  const k = new Coefficients(c, [W.BT]);
  const ch = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const j = c.local(I32);
  const scratch = patchLocals(c, W.n);
  const v = Array.from({ length: nn }, () => c.local(V128));
  c.loop((chan) => {
    c.i32Const(0).set(qd);
    c.loop((quad) => {
      // a = src + ch·planeBytes + 32·qd: four tiles start eight input columns apart
      c.get(src).get(ch).get(planeBytes).i32Mul().i32Add();
      c.get(qd).i32Const(5).i32Shl().i32Add().set(a);
      patchTransform(c, W, a, wp, scratch, v, k);
      // o = dst + 4·((j >> log2 NR)·chans·NR + ch·NR + (j & (NR-1))), j = slot0 + 4·qd
      c.get(slot0).get(qd).i32Const(2).i32Shl().i32Add().set(j);
      c.get(j).i32Const(NR_SHIFT).i32ShrU().get(chans).i32Mul().get(ch).i32Add();
      c.i32Const(NR_SHIFT)
        .i32Shl()
        .get(j)
        .i32Const(NR - 1)
        .i32And()
        .i32Add();
      c.i32Const(2).i32Shl().get(dst).i32Add().set(o);
      for (let xi = 0; xi < nn; xi++) {
        c.get(o).get(v[xi]!).v128Store();
        if (xi < nn - 1) c.get(o).get(xiBytes).i32Add().set(o);
      }
      c.get(qd).i32Const(1).i32Add().tee(qd).get(quads).i32LtU().brIf(quad);
    });
    c.get(ch).i32Const(1).i32Add().tee(ch).get(chans).i32LtU().brIf(chan);
  });
}

/**
 * winoOut(m, nrBytes, xiBytes, rows, y, fBytes, wBytes, tw, bias): the output transform of one
 * tile row for `rows` filters. M[ξ] row f (this tile row's slots) is at m + ξ·xiBytes +
 * f·nrBytes; filter f's 2 x 2·tw outputs go to y + f·fBytes (two rows wBytes apart), each
 * plus the f32 at bias + 4·f, then max(·, +0) when `relu` (the same f32x4.max as wasm-relu.ts).
 */
function emitOut(c: Code, W: WinogradMatrices, relu: boolean): void {
  const [m, nrBytes, xiBytes, rows, y, fBytes, wBytes, tw, bias] = c.paramTuple(9);
  const { n, AT } = W;
  const nn = n * n;
  const k = new Coefficients(c, [AT]);
  const f = c.local(I32);
  const qd = c.local(I32);
  const full = c.local(I32);
  const rem = c.local(I32);
  const mp = c.local(I32);
  const yp = c.local(I32);
  const p = c.local(I32);
  const b = c.local(V128);
  const mv = Array.from({ length: nn }, () => c.local(V128));
  const s = Array.from({ length: 2 * n }, () => c.local(V128));
  const yv = Array.from({ length: 4 }, () => c.local(V128));
  const iv = Array.from({ length: 4 }, () => c.local(V128));
  /** iv = the two output rows of the four tiles at M address p, interleaved (lo0 hi0 lo1 hi1). */
  const compute = () => {
    for (let xi = 0; xi < nn; xi++) {
      c.get(p).v128Load().set(mv[xi]!);
      if (xi < nn - 1) c.get(p).get(xiBytes).i32Add().set(p);
    }
    // s = Aᵀ M (down the columns: s[n·i + col]), then y = s A (along the rows)
    for (let col = 0; col < n; col++)
      applyMatrix(
        c,
        AT,
        Array.from({ length: n }, (_, r) => mv[n * r + col]!),
        [s[col]!, s[n + col]!],
        k,
      );
    for (let i = 0; i < 2; i++)
      applyMatrix(c, AT, s.slice(n * i, n * i + n), [yv[2 * i]!, yv[2 * i + 1]!], k);
    for (const v of yv) {
      c.get(v).get(b).f32x4Add();
      if (relu) c.v128Zero().f32x4Max();
      c.set(v);
    }
    for (let r = 0; r < 2; r++) {
      c.get(yv[2 * r]!)
        .get(yv[2 * r + 1]!)
        .i32x4Shuffle([0, 4, 1, 5])
        .set(iv[2 * r]!);
      c.get(yv[2 * r]!)
        .get(yv[2 * r + 1]!)
        .i32x4Shuffle([2, 6, 3, 7])
        .set(iv[2 * r + 1]!);
    }
  };
  /** Stores vector iv[k] at yp + off (+ wBytes for the second output row). */
  const store = (k: number, off: number, half: boolean) => {
    c.get(yp);
    if (k >= 2) c.get(wBytes).i32Add();
    c.get(iv[k]!);
    if (half) c.v128Store64Lane(0, off);
    else c.v128Store(off);
  };
  c.get(tw).i32Const(2).i32ShrU().set(full);
  c.get(tw).i32Const(3).i32And().set(rem);
  c.loop((filter) => {
    c.get(bias).get(f).i32Const(2).i32Shl().i32Add().v128Load32Splat().set(b);
    c.get(m).get(f).get(nrBytes).i32Mul().i32Add().set(mp);
    c.get(y).get(f).get(fBytes).i32Mul().i32Add().set(yp);
    c.i32Const(0).set(qd);
    c.block((noFull) => {
      c.get(full).i32Eqz().brIf(noFull);
      c.loop((quad) => {
        c.get(mp).set(p);
        compute();
        store(0, 0, false);
        store(1, 16, false);
        store(2, 0, false);
        store(3, 16, false);
        c.get(mp).i32Const(16).i32Add().set(mp);
        c.get(yp).i32Const(32).i32Add().set(yp);
        c.get(qd).i32Const(1).i32Add().tee(qd).get(full).i32LtU().brIf(quad);
      });
    });
    c.block((done) => {
      c.get(rem).i32Eqz().brIf(done);
      c.get(mp).set(p);
      compute();
      // rem tiles of the last quad: 1 -> half of lo; 2 -> lo; 3 -> lo and half of hi
      c.get(rem)
        .i32Const(1)
        .i32Ne()
        .ifElse(
          () => {
            store(0, 0, false);
            store(2, 0, false);
            c.get(rem)
              .i32Const(3)
              .i32Ne()
              .i32Eqz()
              .ifElse(
                () => {
                  store(1, 16, true);
                  store(3, 16, true);
                },
                () => {},
              );
          },
          () => {
            store(0, 0, true);
            store(2, 0, true);
          },
        );
    });
    c.get(f).i32Const(1).i32Add().tee(f).get(rows).i32LtU().brIf(filter);
  });
}

/** r = the 4x4 transpose of rows a (lanes = tiles 0-3, one row per channel or filter). */
function transpose4(c: Code, a: Local[], tmp: Local[], r: Local[]): void {
  const sh = (x: Local, y: Local, lanes: [number, number, number, number], dst: Local) =>
    c.get(x).get(y).i32x4Shuffle(lanes).set(dst);
  sh(a[0]!, a[1]!, [0, 4, 1, 5], tmp[0]!);
  sh(a[0]!, a[1]!, [2, 6, 3, 7], tmp[1]!);
  sh(a[2]!, a[3]!, [0, 4, 1, 5], tmp[2]!);
  sh(a[2]!, a[3]!, [2, 6, 3, 7], tmp[3]!);
  sh(tmp[0]!, tmp[2]!, [0, 1, 4, 5], r[0]!);
  sh(tmp[0]!, tmp[2]!, [2, 3, 6, 7], r[1]!);
  sh(tmp[1]!, tmp[3]!, [0, 1, 4, 5], r[2]!);
  sh(tmp[1]!, tmp[3]!, [2, 3, 6, 7], r[3]!);
}

/**
 * The weight gradient's transforms store k = tiles: each of the n² positions' 4 x 4 blocks
 * (four rows of the operand: channels or filters, by four tiles) is transposed so that one
 * vector holds one tile's four rows, stored at that tile's k row (only the row's `tw` valid
 * tiles: the k dimension has no padding, so no value outside the images enters a sum).
 * storeTiles writes r[t] at base + t·rowBytes for the quad's tiles t with tile0 + t < tw.
 */
function storeTiles(
  c: Code,
  r: Local[],
  base: Local,
  tile0: Local,
  tw: Local,
  rowBytes: number,
): void {
  c.block((skip) => {
    for (let t = 0; t < 4; t++) {
      if (t > 0) c.get(tile0).i32Const(t).i32Add().get(tw).i32GeU().brIf(skip);
      c.get(base)
        .get(r[t]!)
        .v128Store(t * rowBytes);
    }
  });
}

/**
 * The tail of the weight gradient's transforms for one quad of tiles: o = dst + the address of
 * operand row 4·q (a quad of channels or filters; panels of `width` rows, panelBytes apart) at
 * tile 4·qd, then each position's four rows vq[·][ξ] transposed and stored at the quad's valid
 * tiles, positions xiBytes apart.
 */
function storeQuadTransposed(
  c: Code,
  width: number,
  l: { q: Local; qd: Local; tile0: Local; o: Local; dst: Local; panelBytes: Local },
  xiBytes: Local,
  tw: Local,
  vq: Local[][],
  tmp: Local[],
  r: Local[],
): void {
  const shift = Math.log2(width);
  // o = dst + ((4q) >> log2 width)·panelBytes + 4·(4qd·width + (4q & (width-1)))
  c.get(l.qd).i32Const(2).i32Shl().set(l.tile0);
  c.get(l.q).i32Const(2).i32Shl().i32Const(shift).i32ShrU().get(l.panelBytes).i32Mul();
  c.get(l.tile0).i32Const(shift).i32Shl();
  c.get(l.q)
    .i32Const(2)
    .i32Shl()
    .i32Const(width - 1)
    .i32And()
    .i32Add();
  c.i32Const(2).i32Shl().i32Add().get(l.dst).i32Add().set(l.o);
  const nn = vq[0]!.length;
  for (let xi = 0; xi < nn; xi++) {
    transpose4(
      c,
      vq.map((v) => v[xi]!),
      tmp,
      r,
    );
    storeTiles(c, r, l.o, l.tile0, tw, 4 * width);
    if (xi < nn - 1) c.get(l.o).get(xiBytes).i32Add().set(l.o);
  }
}

/**
 * winoInT(src, wpBytes, planeBytes, cquads, dst, panelBytes, xiBytes, tw): the input transform
 * of one tile row for the weight gradient, channels four at a time (cquads of them; channels
 * past C read the following planes and land in B lines past C, whose results are dropped). V[ξ]
 * of channel ch and the row's tile t goes to dst + ξ·xiBytes + (ch >> log2 NR)·panelBytes +
 * 4·(t·NR + (ch & (NR-1))): B panels of NR channels with k = tiles (dst at this row's first k).
 */
function emitInT(c: Code, W: WinogradMatrices): void {
  const [src, wp, planeBytes, cquads, dst, panelBytes, xiBytes, tw] = c.paramTuple(8);
  const k = new Coefficients(c, [W.BT]);
  const cq = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const tile0 = c.local(I32);
  const scratch = patchLocals(c, W.n);
  // V of the quad's four channels: vq[ch][ξ]
  const vq = Array.from({ length: 4 }, () =>
    Array.from({ length: W.n * W.n }, () => c.local(V128)),
  );
  const tmp = Array.from({ length: 4 }, () => c.local(V128));
  const r = Array.from({ length: 4 }, () => c.local(V128));
  c.loop((quadOfChannels) => {
    c.i32Const(0).set(qd);
    c.loop((quad) => {
      for (let ch = 0; ch < 4; ch++) {
        // a = src + (4·cq + ch)·planeBytes + 32·qd
        c.get(cq).i32Const(2).i32Shl().i32Const(ch).i32Add().get(planeBytes).i32Mul();
        c.get(src).i32Add().get(qd).i32Const(5).i32Shl().i32Add().set(a);
        patchTransform(c, W, a, wp, scratch, vq[ch]!, k);
      }
      storeQuadTransposed(c, NR, { q: cq, qd, tile0, o, dst, panelBytes }, xiBytes, tw, vq, tmp, r);
      c.get(qd).i32Const(1).i32Add().tee(qd).i32Const(2).i32Shl().get(tw).i32LtU().brIf(quad);
    });
    c.get(cq).i32Const(1).i32Add().tee(cq).get(cquads).i32LtU().brIf(quadOfChannels);
  });
}

/**
 * winoDy(src, wBytes, planeBytes, fquads, dst, panelBytes, xiBytes, tw): dM = A·dY·Aᵀ of one
 * tile row for the weight gradient, filters four at a time (src: the row's output rows 2ty and
 * 2ty + 1 of filter 0, planes planeBytes apart; filters past F land in A rows past F, dropped).
 * dM[ξ] of filter f and tile t goes to dst + ξ·xiBytes + (f >> log2 MR)·panelBytes +
 * 4·(t·MR + (f & (MR-1))): A panels of MR filters with k = tiles. q = A·dY down the columns
 * (A = Aᵀ's transpose, n x 2), then dM = q·Aᵀ along the rows.
 */
function emitDy(c: Code, W: WinogradMatrices): void {
  const [src, wBytes, planeBytes, fquads, dst, panelBytes, xiBytes, tw] = c.paramTuple(8);
  const { n } = W;
  const A = Array.from({ length: n }, (_, i) => [W.AT[0]![i]!, W.AT[1]![i]!]);
  const k = new Coefficients(c, [A]);
  const fq = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const tile0 = c.local(I32);
  const lo = c.local(V128);
  const hi = c.local(V128);
  const y = Array.from({ length: 4 }, () => c.local(V128)); // y[2·row + col]
  const q = Array.from({ length: 2 * n }, () => c.local(V128)); // q[2·i + col]
  const mq = Array.from({ length: 4 }, () => Array.from({ length: n * n }, () => c.local(V128)));
  const tmp = Array.from({ length: 4 }, () => c.local(V128));
  const r = Array.from({ length: 4 }, () => c.local(V128));
  c.loop((quadOfFilters) => {
    c.i32Const(0).set(qd);
    c.loop((quad) => {
      for (let f = 0; f < 4; f++) {
        c.get(fq).i32Const(2).i32Shl().i32Const(f).i32Add().get(planeBytes).i32Mul();
        c.get(src).i32Add().get(qd).i32Const(5).i32Shl().i32Add().set(a);
        for (let row = 0; row < 2; row++) {
          c.get(a).v128Load().set(lo);
          c.get(a).v128Load(16).set(hi);
          c.get(lo)
            .get(hi)
            .i32x4Shuffle([0, 2, 4, 6])
            .set(y[2 * row]!);
          c.get(lo)
            .get(hi)
            .i32x4Shuffle([1, 3, 5, 7])
            .set(y[2 * row + 1]!);
          if (row === 0) c.get(a).get(wBytes).i32Add().set(a);
        }
        // down the columns: q[2i + col] = (A·dY)[i][col]
        for (let col = 0; col < 2; col++)
          applyMatrix(
            c,
            A,
            [y[col]!, y[2 + col]!],
            Array.from({ length: n }, (_, i) => q[2 * i + col]!),
            k,
          );
        // along the rows: dM[i][·] = A applied to (q[i][0], q[i][1])
        for (let i = 0; i < n; i++)
          applyMatrix(c, A, [q[2 * i]!, q[2 * i + 1]!], mq[f]!.slice(n * i, n * i + n), k);
      }
      storeQuadTransposed(c, MR, { q: fq, qd, tile0, o, dst, panelBytes }, xiBytes, tw, mq, tmp, r);
      c.get(qd).i32Const(1).i32Add().tee(qd).i32Const(2).i32Shl().get(tw).i32LtU().brIf(quad);
    });
    c.get(fq).i32Const(1).i32Add().tee(fq).get(fquads).i32LtU().brIf(quadOfFilters);
  });
}

/**
 * The Winograd module of F(2, r) (r in WINOGRAD_SIZES): winoIn, winoOut, winoOutRelu, winoInT
 * and winoDy over an imported shared memory, every transform generated from winogradMatrices(r).
 */
export function winogradKernelBytes(r = 3): Uint8Array<ArrayBuffer> {
  const W = winogradMatrices(r);
  const nine = [I32, I32, I32, I32, I32, I32, I32, I32, I32] as const;
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("winoIn", nine.slice(1), [], (c) => emitIn(c, W))
    .func("winoOut", nine, [], (c) => emitOut(c, W, false))
    .func("winoOutRelu", nine, [], (c) => emitOut(c, W, true))
    .func("winoInT", nine.slice(1), [], (c) => emitInT(c, W))
    .func("winoDy", nine.slice(1), [], (c) => emitDy(c, W))
    .build();
}

type In = (...a: [number, number, number, number, number, number, number, number]) => void;
type Out = (...a: [number, number, number, number, number, number, number, number, number]) => void;
interface WinogradKernels {
  winoIn: In;
  winoOut: Out;
  winoOutRelu: Out;
  winoInT: In;
  winoDy: In;
}
const compiled = new Map<number, WebAssembly.Module>();
/** One instance per thread's kernel and kernel size (one WasmThread per memory and thread). */
const instances = new WeakMap<WasmThread, Map<number, WinogradKernels>>();
function kernelsOf(t: WasmThread, r: number): WinogradKernels {
  let perSize = instances.get(t);
  if (perSize === undefined) instances.set(t, (perSize = new Map()));
  let k = perSize.get(r);
  if (k === undefined) {
    let mod = compiled.get(r);
    if (mod === undefined) {
      mod = compileModule(`matrix wasm Winograd F(2x2, ${r}x${r}) kernel`, winogradKernelBytes(r));
      compiled.set(r, mod);
    }
    const e = new WebAssembly.Instance(mod, { env: { memory: t.memory } }).exports;
    k = {
      winoIn: e.winoIn as In,
      winoOut: e.winoOut as Out,
      winoOutRelu: e.winoOutRelu as Out,
      winoInT: e.winoInT as In,
      winoDy: e.winoDy as In,
    };
    perSize.set(r, k);
  }
  return k;
}

/** n² = (r + 1)²: the tile's positions, products per (filter, channel) pair. */
const positions = (r: number) => (r + 1) * (r + 1);

/** Floats of V and M per tile slot of a block (n² positions x (C channels + MC filters)). */
const slotFloats = (r: number, c: number, f: number) =>
  positions(r) * (c + roundUp(Math.min(f, WASM_MC), MR));

/**
 * Bytes added to the distance between consecutive V[ξ] (and M[ξ]): the input transform stores
 * to all n² at once, and with distances that are multiples of 2 KiB (C·nr·4 = 22,528 bytes for
 * smallCnn()'s conv2) its stores and loads alias in the L1 cache's 4 KiB pages. 128x32x28x28
 * to 32 filters, one thread, the input transform's time per call: no gap 10.9 ms, 16 bytes 3.1,
 * 64 bytes 2.9, 1040 bytes 2.7 (128x64x14x14: 5.6, 1.7, 1.7, 1.5; one script run).
 */
const XI_GAP = 1040;

/**
 * Tile rows per block: as many as keep the block's V and M inside a thread's scratch region;
 * 0 when one tile row does not fit (the geometry then takes the direct product).
 */
export function winogradRowsPerBlock(g: ResolvedConv2d, filters: number): number {
  const r = g.kh;
  const tw4 = roundUp(g.outW / 2, 4);
  const perRow = slotFloats(r, g.c, filters) * tw4;
  // nr rounds a block's slots up to NR: budget for that too
  const gaps = (2 * positions(r) * XI_GAP) / 4;
  const spare = SCRATCH_BYTES / 4 - gaps - slotFloats(r, g.c, filters) * NR;
  return Math.max(0, Math.floor(spare / perRow));
}

/**
 * Channels from which the Winograd route pays: with few, the n² products have k = C too short
 * for the micro-kernel (smallCnn()'s first layer, C = 1, stays on the direct product).
 */
export const WINOGRAD_MIN_CHANNELS = 8;

/**
 * Bytes the route keeps in kernel memory at once beyond the direct product's (which stages the
 * padded input too): the whole output (forward) or the output gradient's copy (weight gradient).
 * Past WINOGRAD_MAX_STAGED_BYTES, with the staged input, the shared memory (1 GiB at most) could
 * not hold them where the direct product still fits: the direct product runs instead.
 */
export function winogradStagedBytes(g: ResolvedConv2d, filters: number): number {
  const input = g.n * g.c * (g.h + 2 * g.padH) * (g.w + 2 * g.padW);
  return 4 * (input + g.n * filters * g.outH * g.outW);
}
export const WINOGRAD_MAX_STAGED_BYTES = 512 << 20;

/**
 * Whether the WebAssembly forward convolution of geometry g takes the Winograd route: a square
 * kernel of a size in WINOGRAD_SIZES (3x3 or 5x5), stride 1, dilation 1, even output height and
 * width, at least WINOGRAD_MIN_CHANNELS input channels, one tile row's block within a
 * thread's scratch region, and the staged input and output within WINOGRAD_MAX_STAGED_BYTES.
 */
export function winogradApplies(g: ResolvedConv2d, filters: number): boolean {
  return (
    winogradStagedBytes(g, filters) <= WINOGRAD_MAX_STAGED_BYTES &&
    WINOGRAD_SIZES.includes(g.kh) &&
    g.kw === g.kh &&
    g.strideH === 1 &&
    g.strideW === 1 &&
    g.dilationH === 1 &&
    g.dilationW === 1 &&
    g.outH % 2 === 0 &&
    g.outW % 2 === 0 &&
    g.outH > 0 &&
    g.outW > 0 &&
    g.c >= WINOGRAD_MIN_CHANNELS &&
    filters > 0 &&
    winogradRowsPerBlock(g, filters) > 0
  );
}

/**
 * Whether the weight gradient of geometry g (gy read as [N, F, P]) takes the Winograd route: as
 * winogradApplies, and one tile row of V and dM within a thread's scratch region.
 */
export function winogradGradApplies(g: ResolvedConv2d, filters: number): boolean {
  return winogradApplies(g, filters) && winogradGradRowsPerBlock(g, filters) > 0;
}

/** Floats of the transformed filters: n² matrices of roundUp(F, MR) x C. */
export const winogradFilterFloats = (r: number, c: number, f: number) =>
  positions(r) * roundUp(f, MR) * c;

/**
 * U = G g Gᵀ of every (filter, channel) pair of w [F, C, r, r], written into H from float index
 * `at` as n² packed A operands (position ξ's: panels of MR filters, k = channels, the rows past
 * F zero), in float32 from float64 sums.
 */
export function transformFilters(
  H: Float32Array,
  at: number,
  w: Float32Array,
  F: number,
  C: number,
  r = 3,
): void {
  const { n, G } = winogradMatrices(r);
  const fr = roundUp(F, MR);
  const U = H.subarray(at, at + winogradFilterFloats(r, C, F));
  U.fill(0);
  const gw = new Float64Array(n * r); // G·g, n x r
  for (let f = 0; f < F; f++)
    for (let ch = 0; ch < C; ch++) {
      const g = (f * C + ch) * r * r;
      for (let a = 0; a < n; a++)
        for (let col = 0; col < r; col++) {
          let v = 0;
          for (let k = 0; k < r; k++) v += G[a]![k]! * w[g + k * r + col]!;
          gw[a * r + col] = v;
        }
      // element (f, ch) of position ξ's operand: panel f / MR, k = ch, lane f % MR
      const base = Math.floor(f / MR) * C * MR + ch * MR + (f % MR);
      for (let a = 0; a < n; a++)
        for (let b = 0; b < n; b++) {
          let v = 0;
          for (let col = 0; col < r; col++) v += gw[a * r + col]! * G[b]![col]!;
          U[(n * a + b) * fr * C + base] = v;
        }
    }
}

/** A Winograd forward convolution's job (KIND_WASM_WINOGRAD), split by images. */
export interface WinogradArgs {
  /** The output [N, F, outH, outW] (written whole). */
  y: Float32Array;
  /** Byte addresses in kernel memory: the staged padded input, U, the output, F biases. */
  xpAt: number;
  uAt: number;
  yAt: number;
  biasAt: number;
  /** Input channels, filters, output sides, padded input sides. */
  c: number;
  f: number;
  outH: number;
  outW: number;
  hp: number;
  wp: number;
  /** 1: max(·, +0) after the bias. */
  relu: number;
  rowsPerBlock: number;
  /** The kernel size (F(2x2, r x r)). */
  r: number;
}

/** Images [i0, i1) of a Winograd forward convolution, through this thread's scratch region. */
export function winogradRange(t: WasmThread, a: WinogradArgs, i0: number, i1: number): void {
  if (i1 <= i0) return;
  const { winoIn, winoOut, winoOutRelu } = kernelsOf(t, a.r);
  const nn = positions(a.r);
  const out = a.relu !== 0 ? winoOutRelu : winoOut;
  const { c: C, f: F, outH, outW, hp, wp } = a;
  const th = outH / 2;
  const tw = outW / 2;
  const tw4 = roundUp(tw, 4);
  const fr = roundUp(F, MR);
  const P = outH * outW;
  const H = t.f32();
  const vAt = t.scratchAt;
  let copied = i0;
  for (let r0 = i0 * th; r0 < i1 * th; r0 += a.rowsPerBlock) {
    const r1 = Math.min(r0 + a.rowsPerBlock, i1 * th);
    const nr = roundUp((r1 - r0) * tw4, NR);
    const xiV = 4 * C * nr + XI_GAP;
    const mAt = vAt + nn * xiV;
    for (let r = r0; r < r1; r++) {
      const i = Math.floor(r / th);
      const ty = r - i * th;
      winoIn(
        a.xpAt + 4 * (i * C * hp * wp + 2 * ty * wp),
        4 * wp,
        4 * hp * wp,
        C,
        vAt,
        (r - r0) * tw4,
        tw4 / 4,
        xiV,
      );
    }
    for (let ic = 0; ic < F; ic += WASM_MC) {
      const mc = Math.min(WASM_MC, F - ic);
      const mcr = roundUp(mc, MR);
      const xiM = 4 * mcr * nr + XI_GAP;
      for (let xi = 0; xi < nn; xi++)
        t.block(a.uAt + 4 * (xi * fr * C + ic * C), vAt + xi * xiV, mAt + xi * xiM, mcr, nr, C, 0);
      for (let r = r0; r < r1; r++) {
        const i = Math.floor(r / th);
        const ty = r - i * th;
        out(
          mAt + 4 * (r - r0) * tw4,
          4 * nr,
          xiM,
          mc,
          a.yAt + 4 * (((i * F + ic) * outH + 2 * ty) * outW),
          4 * P,
          4 * outW,
          tw,
          a.biasAt + 4 * ic,
        );
      }
    }
    // images finished in this block: their planes are contiguous in NCHW, one copy while warm
    const done = Math.floor(r1 / th);
    if (done > copied) {
      a.y.set(
        H.subarray((a.yAt >> 2) + copied * F * P, (a.yAt >> 2) + done * F * P),
        copied * F * P,
      );
      copied = done;
    }
  }
}

/**
 * The weight gradient's image chunks: fixed by the batch alone (not the thread count), each
 * summed into its own dU, the chunks then added in order, so the bits are the same on any
 * number of threads.
 */
export const WINOGRAD_GRAD_CHUNKS = 8;

/** Tile rows per block of the weight gradient (V and dM of the block in a thread's scratch). */
export function winogradGradRowsPerBlock(g: ResolvedConv2d, filters: number): number {
  const nn = positions(g.kh);
  const perRow = nn * (roundUp(g.c, NR) + roundUp(filters, MR)) * (g.outW / 2);
  return Math.max(0, Math.floor((SCRATCH_BYTES / 4 - (2 * nn * XI_GAP) / 4) / perRow));
}

/** Floats of one chunk's dU: n² products of roundUp(F, MR) x roundUp(C, NR). */
export const winogradGradChunkFloats = (r: number, c: number, f: number) =>
  positions(r) * roundUp(f, MR) * roundUp(c, NR);

/** The weight gradient's job (KIND_WASM_WINOGRAD_GRAD), split by WINOGRAD_GRAD_CHUNKS chunks. */
export interface WinogradGradArgs {
  /** The output gradient [N, F, outH, outW] (read; each chunk copies its images to gyAt). */
  gy: Float32Array;
  /** Byte addresses: the staged padded input, gy's copy, the chunks' dU. */
  xpAt: number;
  gyAt: number;
  duAt: number;
  n: number;
  c: number;
  f: number;
  outH: number;
  outW: number;
  hp: number;
  wp: number;
  rowsPerBlock: number;
  chunkImages: number;
  /** The kernel size (F(2x2, r x r)). */
  r: number;
}

/**
 * Chunks [c0, c1) of a Winograd weight gradient: chunk ch sums, over its images' tiles,
 * dU[ξ] = dM[ξ]·V[ξ]ᵀ ([F x tiles] by [tiles x C] on the micro-kernel, k-blocks added in place).
 */
export function winogradGradRange(
  t: WasmThread,
  a: WinogradGradArgs,
  c0: number,
  c1: number,
): void {
  const { winoInT, winoDy } = kernelsOf(t, a.r);
  const nn = positions(a.r);
  const { c: C, f: F, outH, outW, hp, wp } = a;
  const th = outH / 2;
  const tw = outW / 2;
  const P = outH * outW;
  const fr = roundUp(F, MR);
  const cr = roundUp(C, NR);
  const H = t.f32();
  const duFloats = winogradGradChunkFloats(a.r, C, F);
  for (let ch = c0; ch < c1; ch++) {
    const du = a.duAt + 4 * ch * duFloats;
    const i0 = Math.min(a.n, ch * a.chunkImages);
    const i1 = Math.min(a.n, i0 + a.chunkImages);
    if (i1 <= i0) {
      H.fill(0, du >> 2, (du >> 2) + duFloats);
      continue;
    }
    H.set(a.gy.subarray(i0 * F * P, i1 * F * P), (a.gyAt >> 2) + i0 * F * P);
    for (let r0 = i0 * th; r0 < i1 * th; r0 += a.rowsPerBlock) {
      const r1 = Math.min(r0 + a.rowsPerBlock, i1 * th);
      const kc = (r1 - r0) * tw;
      const xiV = 4 * cr * kc + XI_GAP;
      const xiD = 4 * fr * kc + XI_GAP;
      const vAt = t.scratchAt;
      const dAt = vAt + nn * xiV;
      for (let r = r0; r < r1; r++) {
        const i = Math.floor(r / th);
        const ty = r - i * th;
        const p0 = (r - r0) * tw;
        winoInT(
          a.xpAt + 4 * (i * C * hp * wp + 2 * ty * wp),
          4 * wp,
          4 * hp * wp,
          Math.ceil(C / 4),
          vAt + 4 * p0 * NR,
          4 * kc * NR,
          xiV,
          tw,
        );
        winoDy(
          a.gyAt + 4 * (i * F * P + 2 * ty * outW),
          4 * outW,
          4 * P,
          Math.ceil(F / 4),
          dAt + 4 * p0 * MR,
          4 * kc * MR,
          xiD,
          tw,
        );
      }
      const add = r0 > i0 * th ? 1 : 0;
      for (let xi = 0; xi < nn; xi++)
        t.block(dAt + xi * xiD, vAt + xi * xiV, du + 4 * xi * fr * cr, fr, cr, kc, add);
    }
  }
}

/**
 * dW [F, C, r, r] = Gᵀ·(Σ over chunks of dU, in chunk order)·G, in float64 from the chunks'
 * float32 sums, rounded once to float32.
 */
export function winogradGradReduce(
  H: Float32Array,
  duAt: number,
  chunks: number,
  F: number,
  C: number,
  dW: Float32Array,
  r = 3,
): void {
  const { n, G } = winogradMatrices(r);
  const nn = n * n;
  const fr = roundUp(F, MR);
  const cr = roundUp(C, NR);
  const duFloats = winogradGradChunkFloats(r, C, F);
  const base = duAt >> 2;
  const U = new Float64Array(nn);
  const W1 = new Float64Array(r * n); // Gᵀ·U, r x n
  for (let f = 0; f < F; f++)
    for (let c = 0; c < C; c++) {
      U.fill(0);
      const e = f * cr + c;
      for (let ch = 0; ch < chunks; ch++) {
        const at = base + ch * duFloats + e;
        for (let xi = 0; xi < nn; xi++) U[xi] = U[xi]! + H[at + xi * fr * cr]!;
      }
      for (let k = 0; k < r; k++)
        for (let b = 0; b < n; b++) {
          let v = 0;
          for (let a = 0; a < n; a++) v += G[a]![k]! * U[n * a + b]!;
          W1[k * n + b] = v;
        }
      const o = (f * C + c) * r * r;
      for (let k = 0; k < r; k++)
        for (let l = 0; l < r; l++) {
          let v = 0;
          for (let b = 0; b < n; b++) v += W1[k * n + b]! * G[b]![l]!;
          dW[o + k * r + l] = v;
        }
    }
}
