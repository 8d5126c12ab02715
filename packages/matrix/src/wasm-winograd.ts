// Winograd F(2x2, 3x3) convolutions on the WebAssembly path: 3x3, stride 1, even output sides.
//
// The direct product (wasm-conv.ts) multiplies 9 weights into every output; Winograd's minimal
// filtering algorithm computes each 2x2 output tile from a 4x4 input patch d with 16 products
// per (filter, channel) pair instead of 36 (Lavin & Gray 2016, "Fast Algorithms for
// Convolutional Neural Networks"):
//   V = Bᵀ d B     (the input transform: 4x4 -> 4x4, additions only)
//   U = G g Gᵀ     (the filter transform: 3x3 -> 4x4, once per call)
//   M[ξ] = U[ξ] · V[ξ] for the 16 positions ξ: a [F x C] by [C x tiles] product each
//   y = Aᵀ M A     (the output transform: 4x4 -> 2x2, additions only)
// with Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1] and
// Aᵀ = [1 1 1 0; 0 1 -1 -1]. The 16 products run the dense micro-kernel of wasm-gemm.ts (so
// 2.25x fewer multiply-adds than the direct product); the transforms are generated kernels over
// four tiles at a time (f32x4 lanes = four horizontally adjacent tiles).
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
// float32 roundoff (the transforms' coefficients are 0, ±1, ±½: relative errors stay near the
// direct sum's; tested against a float64 reference within the algorithm's bound). Each forward
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

/** dst = a op b on f32x4 locals. */
function vop(c: Code, a: Local, op: "+" | "-", b: Local, dst: Local): void {
  c.get(a).get(b);
  if (op === "+") c.f32x4Add();
  else c.f32x4Sub();
  c.set(dst);
}

/** The four outputs of Bᵀ·x on four values: [x0 - x2, x1 + x2, x2 - x1, x1 - x3]. */
function bt(c: Code, x: Local[], out: Local[]): void {
  vop(c, x[0]!, "-", x[2]!, out[0]!);
  vop(c, x[1]!, "+", x[2]!, out[1]!);
  vop(c, x[2]!, "-", x[1]!, out[2]!);
  vop(c, x[1]!, "-", x[3]!, out[3]!);
}

/** Scratch locals of patchTransform. */
interface PatchLocals {
  lo: Local;
  hi: Local;
  d: Local[];
  t: Local[];
}
function patchLocals(c: Code): PatchLocals {
  return {
    lo: c.local(V128),
    hi: c.local(V128),
    d: Array.from({ length: 16 }, () => c.local(V128)),
    t: Array.from({ length: 16 }, () => c.local(V128)),
  };
}

/**
 * v[4i + j] = (Bᵀ d B)[i][j] for four horizontally adjacent tiles (lane l = tile l) whose 4x4
 * patches start at byte address a (patch rows wp bytes apart; a is moved down three rows).
 * Columns 0..7 and 2..9 of each patch row are loaded and split into even and odd lanes:
 * d[r][0] = x0 x2 x4 x6, d[r][1] = x1 x3 x5 x7, d[r][2] = x2 x4 x6 x8, d[r][3] = x3 x5 x7 x9.
 */
function patchTransform(c: Code, a: Local, wp: Local, l: PatchLocals, v: Local[]): void {
  const { lo, hi, d, t } = l;
  for (let r = 0; r < 4; r++) {
    for (const [off, dc] of [
      [0, 0],
      [8, 2],
    ] as const) {
      c.get(a).v128Load(off).set(lo);
      c.get(a)
        .v128Load(off + 16)
        .set(hi);
      c.get(lo)
        .get(hi)
        .i32x4Shuffle([0, 2, 4, 6])
        .set(d[4 * r + dc]!);
      c.get(lo)
        .get(hi)
        .i32x4Shuffle([1, 3, 5, 7])
        .set(d[4 * r + dc + 1]!);
    }
    if (r < 3) c.get(a).get(wp).i32Add().set(a);
  }
  // t = Bᵀ d (down the columns), then v = t B (along the rows)
  for (let col = 0; col < 4; col++)
    bt(
      c,
      [0, 1, 2, 3].map((r) => d[4 * r + col]!),
      [0, 1, 2, 3].map((r) => t[4 * r + col]!),
    );
  for (let row = 0; row < 4; row++)
    bt(c, t.slice(4 * row, 4 * row + 4), v.slice(4 * row, 4 * row + 4));
}

/**
 * winoIn(src, wpBytes, planeBytes, chans, dst, slot0, quads, xiBytes): the input transform of
 * one tile row for every channel. The row's patches start at byte src (channel 0, the top-left
 * of its first patch; channel c at src + c·planeBytes, patch rows wpBytes apart); quads·4 tiles,
 * two columns apart. V[ξ] of channel ch and the row's tile t (slot j = slot0 + t) goes to
 * dst + ξ·xiBytes + 4·((j >> log2 NR)·chans·NR + ch·NR + (j & (NR-1))): B panels of NR tiles
 * with k = channels, as the micro-kernel reads them.
 */
function emitIn(c: Code): void {
  const [src, wp, planeBytes, chans, dst, slot0, quads, xiBytes] = c.paramTuple(8);
  const ch = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const j = c.local(I32);
  const scratch = patchLocals(c);
  const v = Array.from({ length: 16 }, () => c.local(V128));
  c.loop((chan) => {
    c.i32Const(0).set(qd);
    c.loop((quad) => {
      // a = src + ch·planeBytes + 32·qd: four tiles cover eight input columns
      c.get(src).get(ch).get(planeBytes).i32Mul().i32Add();
      c.get(qd).i32Const(5).i32Shl().i32Add().set(a);
      patchTransform(c, a, wp, scratch, v);
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
      for (let xi = 0; xi < 16; xi++) {
        c.get(o).get(v[xi]!).v128Store();
        if (xi < 15) c.get(o).get(xiBytes).i32Add().set(o);
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
function emitOut(c: Code, relu: boolean): void {
  const [m, nrBytes, xiBytes, rows, y, fBytes, wBytes, tw, bias] = c.paramTuple(9);
  const f = c.local(I32);
  const qd = c.local(I32);
  const full = c.local(I32);
  const rem = c.local(I32);
  const mp = c.local(I32);
  const yp = c.local(I32);
  const p = c.local(I32);
  const b = c.local(V128);
  const mv = Array.from({ length: 16 }, () => c.local(V128));
  const s = Array.from({ length: 8 }, () => c.local(V128));
  const yv = Array.from({ length: 4 }, () => c.local(V128));
  const iv = Array.from({ length: 4 }, () => c.local(V128));
  /** iv = the two output rows of the four tiles at M address p, interleaved (lo0 hi0 lo1 hi1). */
  const compute = () => {
    for (let xi = 0; xi < 16; xi++) {
      c.get(p).v128Load().set(mv[xi]!);
      if (xi < 15) c.get(p).get(xiBytes).i32Add().set(p);
    }
    // s[j] = m0j + m1j + m2j, s[4 + j] = m1j - m2j - m3j (Aᵀ down the columns)
    for (let j = 0; j < 4; j++) {
      vop(c, mv[j]!, "+", mv[4 + j]!, s[j]!);
      vop(c, s[j]!, "+", mv[8 + j]!, s[j]!);
      vop(c, mv[4 + j]!, "-", mv[8 + j]!, s[4 + j]!);
      vop(c, s[4 + j]!, "-", mv[12 + j]!, s[4 + j]!);
    }
    // then along the rows: y_r0 = s0 + s1 + s2, y_r1 = s1 - s2 - s3
    for (let r = 0; r < 2; r++) {
      const [s0, s1, s2, s3] = s.slice(4 * r, 4 * r + 4) as [Local, Local, Local, Local];
      vop(c, s0, "+", s1, yv[2 * r]!);
      vop(c, yv[2 * r]!, "+", s2, yv[2 * r]!);
      vop(c, s1, "-", s2, yv[2 * r + 1]!);
      vop(c, yv[2 * r + 1]!, "-", s3, yv[2 * r + 1]!);
    }
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
 * The weight gradient's transforms store k = tiles: each of the 16 positions' 4 x 4 blocks
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
  for (let xi = 0; xi < 16; xi++) {
    transpose4(
      c,
      vq.map((v) => v[xi]!),
      tmp,
      r,
    );
    storeTiles(c, r, l.o, l.tile0, tw, 4 * width);
    if (xi < 15) c.get(l.o).get(xiBytes).i32Add().set(l.o);
  }
}

/**
 * winoInT(src, wpBytes, planeBytes, cquads, dst, panelBytes, xiBytes, tw): the input transform
 * of one tile row for the weight gradient, channels four at a time (cquads of them; channels
 * past C read the following planes and land in B lines past C, whose results are dropped). V[ξ]
 * of channel ch and the row's tile t goes to dst + ξ·xiBytes + (ch >> log2 NR)·panelBytes +
 * 4·(t·NR + (ch & (NR-1))): B panels of NR channels with k = tiles (dst at this row's first k).
 */
function emitInT(c: Code): void {
  const [src, wp, planeBytes, cquads, dst, panelBytes, xiBytes, tw] = c.paramTuple(8);
  const cq = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const tile0 = c.local(I32);
  const scratch = patchLocals(c);
  // V of the quad's four channels: vq[ch][ξ]
  const vq = Array.from({ length: 4 }, () => Array.from({ length: 16 }, () => c.local(V128)));
  const tmp = Array.from({ length: 4 }, () => c.local(V128));
  const r = Array.from({ length: 4 }, () => c.local(V128));
  c.loop((quadOfChannels) => {
    c.i32Const(0).set(qd);
    c.loop((quad) => {
      for (let ch = 0; ch < 4; ch++) {
        // a = src + (4·cq + ch)·planeBytes + 32·qd
        c.get(cq).i32Const(2).i32Shl().i32Const(ch).i32Add().get(planeBytes).i32Mul();
        c.get(src).i32Add().get(qd).i32Const(5).i32Shl().i32Add().set(a);
        patchTransform(c, a, wp, scratch, vq[ch]!);
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
 * 4·(t·MR + (f & (MR-1))): A panels of MR filters with k = tiles. With A = [1 0; 1 1; 1 -1; 0 -1]:
 * q = A·dY (rows y0, y0 + y1, y0 - y1, -y1), then dM = q·Aᵀ along the rows likewise.
 */
function emitDy(c: Code): void {
  const [src, wBytes, planeBytes, fquads, dst, panelBytes, xiBytes, tw] = c.paramTuple(8);
  const fq = c.local(I32);
  const qd = c.local(I32);
  const a = c.local(I32);
  const o = c.local(I32);
  const tile0 = c.local(I32);
  const lo = c.local(V128);
  const hi = c.local(V128);
  const y = Array.from({ length: 4 }, () => c.local(V128)); // y[2·row + col]
  const q = Array.from({ length: 8 }, () => c.local(V128)); // q[2·i + col]
  const mq = Array.from({ length: 4 }, () => Array.from({ length: 16 }, () => c.local(V128)));
  const tmp = Array.from({ length: 4 }, () => c.local(V128));
  const r = Array.from({ length: 4 }, () => c.local(V128));
  const zero = c.local(V128);
  /** out[0..3] = [x0, x0 + x1, x0 - x1, 0 - x1] (A applied to the pair x0, x1). */
  const aPair = (x0: Local, x1: Local, out: Local[]) => {
    c.get(x0).set(out[0]!);
    vop(c, x0, "+", x1, out[1]!);
    vop(c, x0, "-", x1, out[2]!);
    vop(c, zero, "-", x1, out[3]!);
  };
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
        for (let col = 0; col < 2; col++) {
          const out = [0, 1, 2, 3].map((i) => q[2 * i + col]!);
          aPair(y[col]!, y[2 + col]!, out);
        }
        // along the rows: dM[i][0..3] = A applied to (q[i][0], q[i][1])
        for (let i = 0; i < 4; i++) aPair(q[2 * i]!, q[2 * i + 1]!, mq[f]!.slice(4 * i, 4 * i + 4));
      }
      storeQuadTransposed(c, MR, { q: fq, qd, tile0, o, dst, panelBytes }, xiBytes, tw, mq, tmp, r);
      c.get(qd).i32Const(1).i32Add().tee(qd).i32Const(2).i32Shl().get(tw).i32LtU().brIf(quad);
    });
    c.get(fq).i32Const(1).i32Add().tee(fq).get(fquads).i32LtU().brIf(quadOfFilters);
  });
}

/** The Winograd module's bytes: winoIn, winoOut and winoOutRelu over an imported shared memory. */
export function winogradKernelBytes(): Uint8Array<ArrayBuffer> {
  const nine = [I32, I32, I32, I32, I32, I32, I32, I32, I32] as const;
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("winoIn", nine.slice(1), [], emitIn)
    .func("winoOut", nine, [], (c) => emitOut(c, false))
    .func("winoOutRelu", nine, [], (c) => emitOut(c, true))
    .func("winoInT", nine.slice(1), [], emitInT)
    .func("winoDy", nine.slice(1), [], emitDy)
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
let compiled: WebAssembly.Module | undefined;
/** One instance per thread's kernel (one WasmThread per memory and thread). */
const instances = new WeakMap<WasmThread, WinogradKernels>();
function kernelsOf(t: WasmThread): WinogradKernels {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm Winograd kernel", winogradKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    k = {
      winoIn: e.winoIn as In,
      winoOut: e.winoOut as Out,
      winoOutRelu: e.winoOutRelu as Out,
      winoInT: e.winoInT as In,
      winoDy: e.winoDy as In,
    };
    instances.set(t, k);
  }
  return k;
}

/** Floats of V and M per tile slot of a block (16 positions x (C channels + MC filters)). */
const slotFloats = (c: number, f: number) => 16 * (c + roundUp(Math.min(f, WASM_MC), MR));

/**
 * Bytes added to the distance between consecutive V[ξ] (and M[ξ]): the input transform stores
 * to all 16 at once, and with distances that are multiples of 2 KiB (C·nr·4 = 22,528 bytes for
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
  const tw4 = roundUp(g.outW / 2, 4);
  const perRow = slotFloats(g.c, filters) * tw4;
  // nr rounds a block's slots up to NR: budget for that too
  const gaps = (32 * XI_GAP) / 4;
  const rows = Math.floor((SCRATCH_BYTES / 4 - gaps - slotFloats(g.c, filters) * NR) / perRow);
  return Math.max(0, rows);
}

/**
 * Channels from which the Winograd route pays: with few, the 16 products have k = C too short
 * for the micro-kernel (smallCnn()'s first layer, C = 1, stays on the direct product).
 */
export const WINOGRAD_MIN_CHANNELS = 8;

/**
 * Whether the WebAssembly forward convolution of geometry g takes the Winograd route: a 3x3
 * kernel, stride 1, dilation 1, even output height and width, at least WINOGRAD_MIN_CHANNELS
 * input channels, and one tile row's block within a thread's scratch region.
 */
export function winogradApplies(g: ResolvedConv2d, filters: number): boolean {
  return (
    g.kh === 3 &&
    g.kw === 3 &&
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

/** Floats of the transformed filters: 16 matrices of roundUp(F, MR) x C. */
export const winogradFilterFloats = (c: number, f: number) => 16 * roundUp(f, MR) * c;

/**
 * U = G g Gᵀ of every (filter, channel) pair of w [F, C, 3, 3], written into H from float
 * index `at` as 16 packed A operands (position ξ's: panels of MR filters, k = channels, the
 * rows past F zero), in float32 from float64 sums.
 */
export function transformFilters(
  H: Float32Array,
  at: number,
  w: Float32Array,
  F: number,
  C: number,
): void {
  const fr = roundUp(F, MR);
  const U = H.subarray(at, at + winogradFilterFloats(C, F));
  U.fill(0);
  const gw = new Float64Array(12); // G·g, 4 x 3
  for (let f = 0; f < F; f++)
    for (let ch = 0; ch < C; ch++) {
      const g = (f * C + ch) * 9;
      for (let col = 0; col < 3; col++) {
        const g0 = w[g + col]!;
        const g1 = w[g + 3 + col]!;
        const g2 = w[g + 6 + col]!;
        gw[col] = g0;
        gw[3 + col] = 0.5 * (g0 + g1 + g2);
        gw[6 + col] = 0.5 * (g0 - g1 + g2);
        gw[9 + col] = g2;
      }
      // element (f, ch) of position ξ's operand: panel f / MR, k = ch, lane f % MR
      const base = Math.floor(f / MR) * C * MR + ch * MR + (f % MR);
      for (let r = 0; r < 4; r++) {
        const a0 = gw[3 * r]!;
        const a1 = gw[3 * r + 1]!;
        const a2 = gw[3 * r + 2]!;
        const row = [a0, 0.5 * (a0 + a1 + a2), 0.5 * (a0 - a1 + a2), a2];
        for (let col = 0; col < 4; col++) U[(4 * r + col) * fr * C + base] = row[col]!;
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
}

/** Images [i0, i1) of a Winograd forward convolution, through this thread's scratch region. */
export function winogradRange(t: WasmThread, a: WinogradArgs, i0: number, i1: number): void {
  if (i1 <= i0) return;
  const { winoIn, winoOut, winoOutRelu } = kernelsOf(t);
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
    const mAt = vAt + 16 * xiV;
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
      for (let xi = 0; xi < 16; xi++)
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
  const perRow = 16 * (roundUp(g.c, NR) + roundUp(filters, MR)) * (g.outW / 2);
  return Math.max(0, Math.floor((SCRATCH_BYTES / 4 - (32 * XI_GAP) / 4) / perRow));
}

/** Floats of one chunk's dU: 16 products of roundUp(F, MR) x roundUp(C, NR). */
export const winogradGradChunkFloats = (c: number, f: number) =>
  16 * roundUp(f, MR) * roundUp(c, NR);

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
  const { winoInT, winoDy } = kernelsOf(t);
  const { c: C, f: F, outH, outW, hp, wp } = a;
  const th = outH / 2;
  const tw = outW / 2;
  const P = outH * outW;
  const fr = roundUp(F, MR);
  const cr = roundUp(C, NR);
  const H = t.f32();
  const duFloats = winogradGradChunkFloats(C, F);
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
      const dAt = vAt + 16 * xiV;
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
      for (let xi = 0; xi < 16; xi++)
        t.block(dAt + xi * xiD, vAt + xi * xiV, du + 4 * xi * fr * cr, fr, cr, kc, add);
    }
  }
}

/**
 * dW [F, C, 3, 3] = Gᵀ·(Σ over chunks of dU, in chunk order)·G, in float64 from the chunks' float32
 * sums, rounded once to float32.
 */
export function winogradGradReduce(
  H: Float32Array,
  duAt: number,
  chunks: number,
  F: number,
  C: number,
  dW: Float32Array,
): void {
  const fr = roundUp(F, MR);
  const cr = roundUp(C, NR);
  const duFloats = winogradGradChunkFloats(C, F);
  const base = duAt >> 2;
  const U = new Float64Array(16);
  const W1 = new Float64Array(12); // Gᵀ·U, 3 x 4
  for (let f = 0; f < F; f++)
    for (let c = 0; c < C; c++) {
      U.fill(0);
      const e = f * cr + c;
      for (let ch = 0; ch < chunks; ch++) {
        const at = base + ch * duFloats + e;
        for (let xi = 0; xi < 16; xi++) U[xi] = U[xi]! + H[at + xi * fr * cr]!;
      }
      // Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1]
      for (let b = 0; b < 4; b++) {
        const u0 = U[b]!;
        const u1 = U[4 + b]!;
        const u2 = U[8 + b]!;
        const u3 = U[12 + b]!;
        W1[b] = u0 + 0.5 * (u1 + u2);
        W1[4 + b] = 0.5 * (u1 - u2);
        W1[8 + b] = 0.5 * (u1 + u2) + u3;
      }
      const o = (f * C + c) * 9;
      for (let r = 0; r < 3; r++) {
        const w0 = W1[4 * r]!;
        const w1 = W1[4 * r + 1]!;
        const w2 = W1[4 * r + 2]!;
        const w3 = W1[4 * r + 3]!;
        dW[o + 3 * r] = w0 + 0.5 * (w1 + w2);
        dW[o + 3 * r + 1] = 0.5 * (w1 - w2);
        dW[o + 3 * r + 2] = 0.5 * (w1 + w2) + w3;
      }
    }
}
