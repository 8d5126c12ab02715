// Convolution products on the WebAssembly path without a patch matrix in JavaScript memory.
//
// On the asm.js path a convolution is im2col (a JS loop writing the patch matrix cols [K, N·P])
// followed by dense products that pack cols again into panels; for LeNet-5 and the 3x3 CNN those
// two copies cost more than the multiplications (docs/benchmarks/epoch-profile.md). Here the
// input is staged once, zero-padded, into kernel memory (xp [N, C, H+2padH, W+2padW]; one copy
// of the raw planes, padded in place by a generated kernel, "spread"), and every patch-matrix
// entry is an address: cols[r, j] = xp[rowOff[r] + colOff[j]] with
//   rowOff[(ch·kh + u)·kw + v] = ch·Hp·Wp + u·dilationH·Wp + v·dilationW
//   colOff[(i·outH + oy)·outW + ox] = i·C·Hp·Wp + oy·strideH·Wp + ox·strideW.
// A generated kernel ("gather"; for the weight gradient, whose k runs along input rows,
// "gatherT", which transposes four positions at a time) packs the GEMM's B panels straight from
// xp through these two offset tables, so the forward product W·cols and the weight gradient
// G·colsᵀ run the dense micro-kernel of wasm-gemm.ts on panels that hold exactly the values
// packing cols would give: the results are bitwise those of matmul / matmulTransB on im2col's
// output (tested). The input gradient is Wᵀ·G computed a few images at a time into kernel
// memory, then summed onto a zero-padded dxp by a second generated kernel ("scatter") in col2im's
// order (patch row outer, then position), so it is bitwise col2im(matmulTransA(W, G)). (conv.ts
// sends the input gradient of "same" stride-1 convolutions to the forward product instead:
// inputGradAsForward.)
//
// Determinism: each output element of the two products is one float32 sum over k in the dense
// kernel's order whatever the chunk (the pool cuts C on panel boundaries); each input pixel of
// dx is summed by one thread (the pool cuts by images), in patch-row order.
import { I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code, Local } from "./wasm-builder.ts";
import {
  A_BYTES,
  B_BYTES,
  MAX_PAGES,
  SCRATCH_BYTES,
  WASM_KC,
  WASM_MC,
  WASM_NC,
  WASM_TILE,
  copyRows,
} from "./wasm-gemm.ts";
import type { GemmTile, WasmThread } from "./wasm-gemm.ts";
import type { ResolvedConv2d } from "./im2col.ts";
import { roundUp, storerFor } from "./gemm.ts";
import { packerFor } from "./pack.ts";

const MR = WASM_TILE.mr;
const NR = WASM_TILE.nr;

/** base[l] = src + 4·lTab[l] for the panel's lines (gather and gatherT, at each panel's start). */
function loadBases(c: Code, src: Local, lTab: Local, base: Local[]): void {
  base.forEach((b, l) =>
    c
      .get(lTab)
      .i32Load(4 * l)
      .i32Const(2)
      .i32Shl()
      .get(src)
      .i32Add()
      .set(b),
  );
}

/** lTab moved on to the next panel's lines. */
function nextLines(c: Code, lTab: Local, width: number): void {
  c.get(lTab)
    .i32Const(4 * width)
    .i32Add()
    .set(lTab);
}

/**
 * gather(src, kTab, lTab, dst, panels, kc, flags): B panels of `width` lines for one k-block.
 * Panel q, element (p, l) = f32 at src + 4·(kTab[p] + lTab[q·width + l]) goes to
 * dst + 4·(q·width·kc + p·width + l) (all addresses in bytes, tables int32 element offsets).
 * flags[q] != 0 says panel q's lines are consecutive in memory (lTab[q·width + l] =
 * lTab[q·width] + l): then each k step is width/4 vector copies instead of width scalar ones.
 */
function emitGather(c: Code, width: number): void {
  const [src, kTab, lTab, dst, panels, kc, flags] = c.paramTuple(7);
  const q = c.local(I32);
  const p = c.local(I32);
  const end = c.local(I32);
  const kb = c.local(I32);
  const d = c.local(I32);
  const base = Array.from({ length: width }, () => c.local(I32));
  c.get(dst).set(d);
  c.i32Const(0).set(q);
  c.loop((panel) => {
    loadBases(c, src, lTab, base);
    c.get(kTab).set(p);
    c.get(kTab).get(kc).i32Const(2).i32Shl().i32Add().set(end);
    const step = (body: () => void) =>
      c.loop((top) => {
        c.get(p).i32Load().i32Const(2).i32Shl().set(kb);
        body();
        c.get(d)
          .i32Const(4 * width)
          .i32Add()
          .set(d);
        c.get(p).i32Const(4).i32Add().tee(p).get(end).i32LtU().brIf(top);
      });
    c.get(flags)
      .i32Load()
      .ifElse(
        () =>
          step(() => {
            c.get(base[0]!).get(kb).i32Add().set(kb);
            for (let v = 0; v < width / 4; v++)
              c.get(d)
                .get(kb)
                .v128Load(16 * v)
                .v128Store(16 * v);
          }),
        () =>
          step(() => {
            for (let l = 0; l < width; l++)
              c.get(d)
                .get(base[l]!)
                .get(kb)
                .i32Add()
                .f32Load()
                .f32Store(4 * l);
          }),
      );
    nextLines(c, lTab, width);
    c.get(flags).i32Const(4).i32Add().set(flags);
    c.get(q).i32Const(1).i32Add().tee(q).get(panels).i32LtU().brIf(panel);
  });
}

/**
 * gatherT(src, kTab, lTab, dst, panels, kc, quads): the same panels as gather, for products whose
 * k runs along rows of the input (the weight gradient: k = positions, lines = patch rows), where
 * gather reads one float per line and k step. quads[i] != 0 says kTab[4i..4i+3] are consecutive
 * (four positions along an output row, stride 1): then each line's four values are one f32x4
 * load, and a 4x4 transpose (eight shuffles) turns four lines' loads into four positions' panel
 * rows. Other groups of four, and the k steps after the last whole group, are scalar as in
 * gather. Same values in the same places as gather. Weight gradients at batch 128, side by side
 * against gather (one / two threads): smallCnn()'s 3x3 layers 1.02-1.03x / 1.00-1.06x, LeNet-5's
 * 5x5 layers 1.08-1.11x / 1.04-1.06x: the gather was a smaller part of the product than its
 * scalar loads suggested.
 */
function emitGatherT(c: Code, width: number): void {
  const [src, kTab, lTab, dst, panels, kc, quads] = c.paramTuple(7);
  const q = c.local(I32);
  const p = c.local(I32);
  const fq = c.local(I32);
  const end = c.local(I32);
  const end4 = c.local(I32);
  const kb = c.local(I32);
  const d = c.local(I32);
  const base = Array.from({ length: width }, () => c.local(I32));
  const r = Array.from({ length: 4 }, () => c.local(V128));
  const t = Array.from({ length: 4 }, () => c.local(V128));
  /** Position j of the group (k step p + j): width scalar copies into its panel row. */
  const scalarStep = (j: number) => {
    c.get(p)
      .i32Load(4 * j)
      .i32Const(2)
      .i32Shl()
      .set(kb);
    for (let l = 0; l < width; l++)
      c.get(d)
        .get(base[l]!)
        .get(kb)
        .i32Add()
        .f32Load()
        .f32Store(4 * (j * width + l));
  };
  c.get(dst).set(d);
  c.i32Const(0).set(q);
  c.loop((panel) => {
    loadBases(c, src, lTab, base);
    c.get(kTab).set(p);
    c.get(quads).set(fq);
    c.get(kTab).get(kc).i32Const(2).i32Shl().i32Add().set(end);
    c.get(kTab).get(kc).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end4);
    c.block((done4) => {
      c.get(p).get(end4).i32GeU().brIf(done4);
      c.loop((group) => {
        c.get(fq)
          .i32Load()
          .ifElse(
            () => {
              c.get(p).i32Load().i32Const(2).i32Shl().set(kb);
              for (let h = 0; h < width / 4; h++) {
                // r[i] = line 4h+i at positions p..p+3
                for (let i = 0; i < 4; i++)
                  c.get(base[4 * h + i]!)
                    .get(kb)
                    .i32Add()
                    .v128Load()
                    .set(r[i]!);
                c.get(r[0]!).get(r[1]!).i32x4Shuffle([0, 4, 1, 5]).set(t[0]!);
                c.get(r[2]!).get(r[3]!).i32x4Shuffle([0, 4, 1, 5]).set(t[1]!);
                c.get(r[0]!).get(r[1]!).i32x4Shuffle([2, 6, 3, 7]).set(t[2]!);
                c.get(r[2]!).get(r[3]!).i32x4Shuffle([2, 6, 3, 7]).set(t[3]!);
                // position j's lines 4h..4h+3 -> panel row j, columns 4h..4h+3
                const rows: [number, number, [number, number, number, number]][] = [
                  [0, 1, [0, 1, 4, 5]],
                  [0, 1, [2, 3, 6, 7]],
                  [2, 3, [0, 1, 4, 5]],
                  [2, 3, [2, 3, 6, 7]],
                ];
                rows.forEach(([a, b, lanes], j) =>
                  c
                    .get(d)
                    .get(t[a]!)
                    .get(t[b]!)
                    .i32x4Shuffle(lanes)
                    .v128Store(4 * (j * width + 4 * h)),
                );
              }
            },
            () => {
              for (let j = 0; j < 4; j++) scalarStep(j);
            },
          );
        c.get(d)
          .i32Const(16 * width)
          .i32Add()
          .set(d);
        c.get(fq).i32Const(4).i32Add().set(fq);
        c.get(p).i32Const(16).i32Add().tee(p).get(end4).i32LtU().brIf(group);
      });
    });
    c.block((done) => {
      c.get(p).get(end).i32GeU().brIf(done);
      c.loop((top) => {
        scalarStep(0);
        c.get(d)
          .i32Const(4 * width)
          .i32Add()
          .set(d);
        c.get(p).i32Const(4).i32Add().tee(p).get(end).i32LtU().brIf(top);
      });
    });
    nextLines(c, lTab, width);
    c.get(q).i32Const(1).i32Add().tee(q).get(panels).i32LtU().brIf(panel);
  });
}

/**
 * scatter(cols, ldc, dxp, rowTab, rows, colTab, count): for r in [0, rows), then j in
 * [0, count): dxp[rowTab[r] + colTab[j]] += cols[r·ldc + j] (float32 adds; cols and dxp byte
 * addresses, ldc in bytes, tables int32 element offsets). rows, count >= 1.
 *
 * Four j at a time: where their offsets are consecutive (positions along an output row, stride
 * 1) the four adds are one f32x4 add; elsewhere four scalar ones. The addresses of one row r are
 * distinct, so each dxp element gets the same adds in the same order (r ascending) either way.
 */
function emitScatter(c: Code): void {
  const [cols, ldc, dxp, rowTab, rows, colTab, count] = c.paramTuple(7);
  const r = c.local(I32);
  const ro = c.local(I32);
  const s = c.local(I32);
  const jt = c.local(I32);
  const end = c.local(I32);
  const end4 = c.local(I32);
  const a = c.local(I32);
  const first = c.local(I32);
  const iota = c.local(V128);
  c.v128ConstI32([0, 1, 2, 3]).set(iota);
  c.get(colTab).get(count).i32Const(2).i32Shl().i32Add().set(end);
  c.get(colTab).get(count).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end4);
  /** dxp[ro + 4·colTab entry at jt + 4q] += cols at s + 4q, scalar. */
  const one = (q: number) => {
    c.get(jt)
      .i32Load(4 * q)
      .i32Const(2)
      .i32Shl()
      .get(ro)
      .i32Add()
      .tee(a);
    c.get(a)
      .f32Load()
      .get(s)
      .f32Load(4 * q)
      .f32Add()
      .f32Store();
  };
  c.i32Const(0).set(r);
  c.loop((row) => {
    c.get(rowTab).get(r).i32Const(2).i32Shl().i32Add().i32Load().i32Const(2).i32Shl();
    c.get(dxp).i32Add().set(ro);
    c.get(cols).get(r).get(ldc).i32Mul().i32Add().set(s);
    c.get(colTab).set(jt);
    c.block((done4) => {
      c.get(jt).get(end4).i32GeU().brIf(done4);
      c.loop((step4) => {
        c.get(jt).i32Load().set(first);
        c.get(jt).v128Load().get(first).i32x4Splat().get(iota).i32x4Add().i32x4Eq().i32x4AllTrue();
        c.ifElse(
          () => {
            c.get(first).i32Const(2).i32Shl().get(ro).i32Add().tee(a);
            c.get(a).v128Load().get(s).v128Load().f32x4Add().v128Store();
          },
          () => {
            for (let q = 0; q < 4; q++) one(q);
          },
        );
        c.get(s).i32Const(16).i32Add().set(s);
        c.get(jt).i32Const(16).i32Add().tee(jt).get(end4).i32LtU().brIf(step4);
      });
    });
    c.block((done) => {
      c.get(jt).get(end).i32GeU().brIf(done);
      c.loop((step) => {
        one(0);
        c.get(s).i32Const(4).i32Add().set(s);
        c.get(jt).i32Const(4).i32Add().tee(jt).get(end).i32LtU().brIf(step);
      });
    });
    c.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(row);
  });
}

/**
 * addRows(c, rowBytes, v, rows, vecs): for r in [0, rows): the vecs·4 floats at c + r·rowBytes
 * each get v[r] added (float32; c, v byte addresses; rows, vecs >= 1). The bias of a block of
 * the forward product, added in kernel memory before the block is copied out; with `relu`
 * (addRowsRelu) then max(·, +0), the f32x4.max of wasm-relu.ts (a fused ReLU).
 */
function emitAddRows(c: Code, relu: boolean): void {
  const [cAt, rowBytes, vAt, rows, vecs] = c.paramTuple(5);
  const r = c.local(I32);
  const o = c.local(I32);
  const end = c.local(I32);
  const b = c.local(V128);
  c.loop((row) => {
    c.get(vAt).get(r).i32Const(2).i32Shl().i32Add().v128Load32Splat().set(b);
    c.get(cAt).get(r).get(rowBytes).i32Mul().i32Add().tee(o);
    c.get(vecs).i32Const(4).i32Shl().i32Add().set(end);
    c.loop((step) => {
      c.get(o).get(o).v128Load().get(b).f32x4Add();
      if (relu) c.v128Zero().f32x4Max();
      c.v128Store();
      c.get(o).i32Const(16).i32Add().tee(o).get(end).i32LtU().brIf(step);
    });
    c.get(r).i32Const(1).i32Add().tee(r).get(rows).i32LtU().brIf(row);
  });
}

/**
 * spread(src, dst, planes, h, w, padH, padW): planes of h x w floats at byte address src written
 * zero-padded at dst as planes of (h + 2padH) x (w + 2padW), in one forward pass (zeros and row
 * copies in address order; f32x4 copies and stores where 4 floats remain, scalar ones after).
 * stagePlanes puts the raw planes at the end of the padded planes' own range, where every
 * element is at or after the place it moves to, so the pass never overwrites a value it has yet
 * to read (the argument is at stagePlanes).
 */
function emitSpread(c: Code): void {
  const [src, dst, planes, h, w, padH, padW] = c.paramTuple(7);
  const pl = c.local(I32);
  const y = c.local(I32);
  const end = c.local(I32);
  const end4 = c.local(I32);
  const padRows = c.local(I32);
  /** end = dst + 4·count, end4 = dst + 16·⌊count / 4⌋ (count: floats, on the stack). */
  const bounds = () => {
    c.i32Const(2).i32Shl().get(dst).i32Add().set(end);
    c.get(end).get(dst).i32Sub().i32Const(-16).i32And().get(dst).i32Add().set(end4);
  };
  /** Runs `vec` while dst < end4, then `one` while dst < end; both advance dst. */
  const run = (vec: () => void, one: () => void) => {
    c.block((done) => {
      c.get(dst).get(end4).i32GeU().brIf(done);
      c.loop((top) => {
        vec();
        c.get(dst).i32Const(16).i32Add().tee(dst).get(end4).i32LtU().brIf(top);
      });
    });
    c.block((done) => {
      c.get(dst).get(end).i32GeU().brIf(done);
      c.loop((top) => {
        one();
        c.get(dst).i32Const(4).i32Add().tee(dst).get(end).i32LtU().brIf(top);
      });
    });
  };
  const zeros = () =>
    run(
      () => c.get(dst).v128Zero().v128Store(),
      () => c.get(dst).f32Const(0).f32Store(),
    );
  const copy = () =>
    run(
      () => {
        c.get(dst).get(src).v128Load().v128Store();
        c.get(src).i32Const(16).i32Add().set(src);
      },
      () => {
        c.get(dst).get(src).f32Load().f32Store();
        c.get(src).i32Const(4).i32Add().set(src);
      },
    );
  // padRows = padH·(w + 2padW) floats
  c.get(w).get(padW).i32Const(1).i32Shl().i32Add().get(padH).i32Mul().set(padRows);
  c.i32Const(0).set(pl);
  c.loop((plane) => {
    c.get(padRows);
    bounds();
    zeros();
    c.i32Const(0).set(y);
    c.loop((row) => {
      c.get(padW);
      bounds();
      zeros();
      c.get(w);
      bounds();
      copy();
      c.get(padW);
      bounds();
      zeros();
      c.get(y).i32Const(1).i32Add().tee(y).get(h).i32LtU().brIf(row);
    });
    c.get(padRows);
    bounds();
    zeros();
    c.get(pl).i32Const(1).i32Add().tee(pl).get(planes).i32LtU().brIf(plane);
  });
}

/** The convolution module for a tile (gather packs B panels of tile.nr lines) over shared memory. */
export function convKernelBytes(tile: GemmTile = WASM_TILE): Uint8Array<ArrayBuffer> {
  if (!(tile.nr >= 4 && tile.nr % 4 === 0))
    throw new RangeError(
      `convKernelBytes: tile.nr must be a positive multiple of 4, got ${tile.mr}x${tile.nr}`,
    );
  const seven = [I32, I32, I32, I32, I32, I32, I32] as const;
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("gather", seven, [], (c) => emitGather(c, tile.nr))
    .func("scatter", seven, [], emitScatter)
    .func("addRows", [I32, I32, I32, I32, I32], [], (c) => emitAddRows(c, false))
    .func("addRowsRelu", [I32, I32, I32, I32, I32], [], (c) => emitAddRows(c, true))
    .func("spread", seven, [], emitSpread)
    .func("gatherT", seven, [], (c) => emitGatherT(c, tile.nr))
    .build();
}

type Seven = (a: number, b: number, c: number, d: number, e: number, f: number, g: number) => void;
interface ConvKernels {
  gather: Seven;
  scatter: Seven;
  addRows: (c: number, rowBytes: number, v: number, rows: number, vecs: number) => void;
  addRowsRelu: (c: number, rowBytes: number, v: number, rows: number, vecs: number) => void;
  spread: Seven;
  gatherT: Seven;
}

let compiled: WebAssembly.Module | undefined;
/** One instance per thread's kernel (keyed by the WasmThread, which is one per memory and thread). */
const instances = new WeakMap<WasmThread, ConvKernels>();
function kernelsOf(t: WasmThread): ConvKernels {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm convolution kernel", convKernelBytes());
    const inst = new WebAssembly.Instance(compiled, { env: { memory: t.memory } });
    k = {
      gather: inst.exports.gather as Seven,
      scatter: inst.exports.scatter as Seven,
      addRows: inst.exports.addRows as ConvKernels["addRows"],
      addRowsRelu: inst.exports.addRowsRelu as ConvKernels["addRows"],
      spread: inst.exports.spread as Seven,
      gatherT: inst.exports.gatherT as Seven,
    };
    instances.set(t, k);
  }
  return k;
}

/** The offset tables of a geometry (see the file header), each padded to whole panels. */
export interface ConvTables {
  /** Patch rows K = C·kh·kw and positions NP = N·outH·outW. */
  K: number;
  NP: number;
  /** Elements of the padded input xp. */
  xpLength: number;
  /** rowOff, roundUp(K, NR) long (the pad repeats the last entry), and its panel flags. */
  rowOff: Int32Array;
  rowFlags: Int32Array;
  /** colOff, roundUp(NP, NR) long, and its panel flags. */
  colOff: Int32Array;
  colFlags: Int32Array;
  /** colOff's groups of four: 1 where consecutive (gatherT's vector groups). */
  colQuads: Int32Array;
}

/** 1 for each panel of `width` entries that are consecutive integers, else 0. */
function panelFlags(off: Int32Array, width: number): Int32Array {
  const flags = new Int32Array(off.length / width);
  for (let q = 0; q < flags.length; q++) {
    let ok = 1;
    for (let l = 1; l < width && ok === 1; l++)
      if (off[q * width + l] !== off[q * width]! + l) ok = 0;
    flags[q] = ok;
  }
  return flags;
}

/**
 * The offset tables of a geometry, kept for the last few geometries: a training step asks for
 * the same ones in every convolution call (LeNet-5's first layer: 73,728 column offsets and
 * their flags, rebuilt five times a step before, 2% of its epoch profile). Callers only read
 * them (stageTables copies them into kernel memory).
 */
export function convTables(g: ResolvedConv2d): ConvTables {
  const key = [g.n, g.c, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW, g.padH, g.padW]
    .concat([g.dilationH, g.dilationW, g.outH, g.outW])
    .join(",");
  let t = tableCache.get(key);
  if (t === undefined) {
    t = buildConvTables(g);
    if (tableCache.size >= TABLE_CACHE_SIZE) tableCache.delete(tableCache.keys().next().value!);
    tableCache.set(key, t);
  }
  return t;
}
const TABLE_CACHE_SIZE = 16;
const tableCache = new Map<string, ConvTables>();

function buildConvTables(g: ResolvedConv2d): ConvTables {
  const Hp = g.h + 2 * g.padH;
  const Wp = g.w + 2 * g.padW;
  const K = g.c * g.kh * g.kw;
  const P = g.outH * g.outW;
  const NP = g.n * P;
  const rowOff = new Int32Array(roundUp(Math.max(K, 1), NR));
  let r = 0;
  for (let ch = 0; ch < g.c; ch++)
    for (let u = 0; u < g.kh; u++)
      for (let v = 0; v < g.kw; v++)
        rowOff[r++] = ch * Hp * Wp + u * g.dilationH * Wp + v * g.dilationW;
  rowOff.fill(K > 0 ? rowOff[K - 1]! : 0, K);
  const colOff = new Int32Array(roundUp(Math.max(NP, 1), NR));
  let j = 0;
  for (let i = 0; i < g.n; i++)
    for (let oy = 0; oy < g.outH; oy++)
      for (let ox = 0; ox < g.outW; ox++)
        colOff[j++] = i * g.c * Hp * Wp + oy * g.strideH * Wp + ox * g.strideW;
  colOff.fill(NP > 0 ? colOff[NP - 1]! : 0, NP);
  return {
    K,
    NP,
    xpLength: g.n * g.c * Hp * Wp,
    rowOff,
    rowFlags: panelFlags(rowOff, NR),
    colOff,
    colFlags: panelFlags(colOff, NR),
    colQuads: panelFlags(colOff, 4),
  };
}

/** Byte offsets of the staged tables and input (and their total) from `at` on. */
export interface ConvStage {
  xpAt: number;
  rowAt: number;
  rowFlagsAt: number;
  colAt: number;
  colFlagsAt: number;
  colQuadsAt: number;
  /** First free byte after the staging (16-aligned). */
  end: number;
}

export function convStageLayout(t: ConvTables, at: number): ConvStage {
  const xpAt = roundUp(at, 16);
  const rowAt = roundUp(xpAt + 4 * t.xpLength, 16);
  const rowFlagsAt = roundUp(rowAt + 4 * t.rowOff.length, 16);
  const colAt = roundUp(rowFlagsAt + 4 * t.rowFlags.length, 16);
  const colFlagsAt = roundUp(colAt + 4 * t.colOff.length, 16);
  const colQuadsAt = roundUp(colFlagsAt + 4 * t.colFlags.length, 16);
  const end = roundUp(colQuadsAt + 4 * t.colQuads.length, 16);
  return { xpAt, rowAt, rowFlagsAt, colAt, colFlagsAt, colQuadsAt, end };
}

/** Writes the tables at their places in the memory `buf`. */
export function stageTables(buf: ArrayBufferLike, t: ConvTables, s: ConvStage): void {
  const I = new Int32Array(buf);
  I.set(t.rowOff, s.rowAt >> 2);
  I.set(t.rowFlags, s.rowFlagsAt >> 2);
  I.set(t.colOff, s.colAt >> 2);
  I.set(t.colFlags, s.colFlagsAt >> 2);
  I.set(t.colQuads, s.colQuadsAt >> 2);
}

/**
 * The padded input's planes: x [N·C planes of h x w] and its zero-padded copy xp at byte xpAt
 * of kernel memory ([N·C planes of (h + 2padH) x (w + 2padW)]). A pooled staging job carries
 * these (KIND_WASM_STAGE), each thread writing whole planes.
 */
export interface PadArgs {
  x: Float32Array;
  xpAt: number;
  h: number;
  w: number;
  padH: number;
  padW: number;
}

/** The PadArgs of geometry g (x [N, C, H, W]). */
export function padArgs(x: Float32Array, g: ResolvedConv2d, xpAt: number): PadArgs {
  return { x, xpAt, h: g.h, w: g.w, padH: g.padH, padW: g.padW };
}

/**
 * Writes planes [p0, p1) of xp from x, padding included: one copy of the raw planes into kernel
 * memory, then a generated kernel (spread) writes every padded element once. The rows are short
 * (28 or 14 values in smallCnn()), so a subarray + set per row costs more in calls than the copy,
 * and the element loop in JavaScript that replaced it was slower again: padded by 1, one thread,
 * side by side, loop / copy + spread: 128x32x28x28 5.48-6.15 / 1.65-1.66 ms (3.3-3.7x),
 * 128x64x14x14 2.42-2.60 / 0.95-0.97 ms (2.6x); it was 7.7% of a two-thread smallCnn() step.
 */
export function stagePlanes(t: WasmThread, a: PadArgs, p0: number, p1: number): void {
  const { x, h, w, padH, padW } = a;
  const H = t.f32();
  const Wp = w + 2 * padW;
  const planeP = (h + 2 * padH) * Wp;
  const at = a.xpAt >> 2;
  if (padH === 0 && padW === 0) {
    H.set(x.subarray(p0 * h * w, p1 * h * w), at + p0 * planeP);
    return;
  }
  if (p1 <= p0 || h * w === 0) {
    H.fill(0, at + p0 * planeP, at + p1 * planeP);
    return;
  }
  // The raw planes copied (one memcpy) to the end of their padded planes' range, then spread
  // forward in place. Element e (plane pl counted from p0, row y, column x) sits at
  //   src(e) = D - R + pl·hw + y·w + x      (D = (p1 - p0)·planeP, R = (p1 - p0)·hw)
  // and moves to
  //   dst(e) = pl·planeP + (y + padH)·Wp + padW + x,
  // with src(e) - dst(e) = (p1 - p0 - pl - 1)·(planeP - hw) + padH·Wp + (2h - 2y - 1)·padW
  // >= padH·Wp + padW > 0 (planeP - hw = 2padH·Wp + 2padW·h): every write lands before the next
  // value to read, and the staging stays within the range of planes this thread owns.
  const raw = at + p1 * planeP - (p1 - p0) * h * w;
  H.set(x.subarray(p0 * h * w, p1 * h * w), raw);
  kernelsOf(t).spread(4 * raw, 4 * (at + p0 * planeP), p1 - p0, h, w, padH, padW);
}

/** Copies the interiors of planes [p0, p1) of xp (dropping the padding) into a.x. */
export function unstagePlanes(H: Float32Array, a: PadArgs, p0: number, p1: number): void {
  const { x: out, h, w, padH, padW } = a;
  const Wp = w + 2 * padW;
  const Hp = h + 2 * padH;
  const at = a.xpAt >> 2;
  if (padH === 0 && padW === 0) {
    out.set(H.subarray(at + p0 * h * w, at + p1 * h * w), p0 * h * w);
    return;
  }
  // Element loops, not a subarray + set per short row (see stagePlanes): 128x32x28x28 padded
  // by 1: 6.6 -> 5.1 ms, 128x64x14x14: 6.8 -> 2.6 ms (one node script run).
  let o = p0 * h * w;
  for (let pl = p0; pl < p1; pl++)
    for (let y = 0; y < h; y++) {
      const from = at + (pl * Hp + y + padH) * Wp + padW;
      for (let k = from, e = from + w; k < e; k++, o++) out[o] = H[k]!;
    }
}

/**
 * A product C[m, n] = A·B where A is packed whole in kernel memory at apAt (wasmPackRange's
 * layout) and B[p, l] = xp[kTab[p] + lTab[l]] is gathered block by block (the forward product:
 * k = patch rows, lines = positions; the weight gradient: k = positions, lines = patch rows).
 * With P > 0, C is stored images-first: C[i, j] goes to c[(⌊j/P⌋·m + i)·P + j mod P] (the
 * forward product straight into NCHW, j = image·P + position); with P = 0, row-major [m, n].
 */
export interface ImplicitArgs {
  c: Float32Array;
  apAt: number;
  xpAt: number;
  kTabAt: number;
  lTabAt: number;
  lFlagsAt: number;
  m: number;
  k: number;
  n: number;
  P: number;
  /** Byte address of m float32 added to C's rows (row i gets bias[i]) before storing; -1: none. */
  biasAt: number;
  /** 1: max(·, +0) after the bias (biasAt >= 0 then; zeros for a ReLU without a bias). */
  relu: number;
  /**
   * Byte address of the k table's groups-of-four flags (k along input rows: the weight gradient),
   * packed by gatherT; -1: k runs across rows (the forward product), packed by gather.
   */
  kQuadsAt: number;
}

/**
 * Copies rows [0, rows) x columns [0, len) of the block at H[at], row stride ldh, to C's rows
 * i0.. and columns j0.. (layout as ImplicitArgs says), one block copy per contiguous run.
 */
function storeBlock(
  H: Float32Array,
  at: number,
  ldh: number,
  g: ImplicitArgs,
  i0: number,
  rows: number,
  j0: number,
  len: number,
): void {
  const { c, m, n, P } = g;
  if (P === 0) {
    copyRows(H, at, ldh, c, i0 * n + j0, n, rows, len);
    return;
  }
  for (let r = 0; r < rows; r++) {
    const h = at + r * ldh;
    for (let j = j0; j < j0 + len;) {
      const img = Math.floor(j / P);
      const p = j - img * P;
      const run = Math.min(P - p, j0 + len - j);
      c.set(H.subarray(h + j - j0, h + j - j0 + run), (img * m + i0 + r) * P + p);
      j += run;
    }
  }
}

/**
 * C[r0:r1, c0:c1] of an implicit product (r0 a multiple of MR, c0 of NR). k-blocks innermost, as
 * wasmGemmPackedRange: the kernel adds each k-block into the C block it keeps in scratch (float32
 * adds, the same rounding as adding into C), and C is written once per block: the same bits as
 * the dense product on the materialised operand.
 */
export function implicitRange(
  t: WasmThread,
  g: ImplicitArgs,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
): void {
  if (r1 <= r0 || c1 <= c0) return;
  const { m, k } = g;
  const { gather, gatherT, addRows, addRowsRelu } = kernelsOf(t);
  const epilogue = g.relu !== 0 ? addRowsRelu : addRows;
  const transposed = g.kQuadsAt >= 0;
  const H = t.f32();
  const bAt = t.scratchAt + A_BYTES;
  const cAt = bAt + B_BYTES;
  const pa = Math.ceil(m / MR);
  for (let jc = c0; jc < c1; jc += WASM_NC) {
    const nc = Math.min(WASM_NC, c1 - jc);
    const nr = roundUp(nc, NR);
    for (let ic = r0; ic < r1; ic += WASM_MC) {
      const mc = Math.min(WASM_MC, r1 - ic);
      if (k === 0) H.fill(0, cAt >> 2, (cAt >> 2) + mc * nr);
      for (let pc = 0; pc < k; pc += WASM_KC) {
        const kc = Math.min(WASM_KC, k - pc);
        if (transposed)
          // pc is a multiple of KC, so of 4: its group flags start at entry pc / 4
          gatherT(g.xpAt, g.kTabAt + 4 * pc, g.lTabAt + 4 * jc, bAt, nr / NR, kc, g.kQuadsAt + pc);
        else
          gather(
            g.xpAt,
            g.kTabAt + 4 * pc,
            g.lTabAt + 4 * jc,
            bAt,
            nr / NR,
            kc,
            g.lFlagsAt + 4 * (jc / NR),
          );
        t.block(
          g.apAt + 4 * (pc * MR * pa + ic * kc),
          bAt,
          cAt,
          roundUp(mc, MR),
          nr,
          kc,
          pc > 0 ? 1 : 0,
        );
      }
      if (g.biasAt >= 0) epilogue(cAt, 4 * nr, g.biasAt + 4 * ic, mc, nr / 4);
      storeBlock(H, cAt >> 2, nr, g, ic, mc, jc, nc);
    }
  }
}

/**
 * The input gradient's job: Wᵀ (K x F, packed whole at apAt) times G [F, NP] (a JS array) for
 * a few images at a time into this thread's chunk buffer, then scattered onto dxp.
 */
export interface Col2imArgs {
  b: Float32Array;
  apAt: number;
  xpAt: number;
  rowAt: number;
  colAt: number;
  K: number;
  F: number;
  P: number;
  NP: number;
  chunkImages: number;
  chunksAt: number;
  chunkBytes: number;
  /**
   * 1: b is G as [N, F, P] (the forward's NCHW output gradient) instead of [F, N·P]. Then the
   * columns are cut image by image (a B panel never spans two images); each output's sum over
   * the filters is the same, so are the values.
   */
  imagesFirst: number;
  /**
   * The input gradient [N, C, H, W], written whole: each share zeroes its images' planes of
   * dxp first and copies their interiors out at the end (no serial pass on the caller).
   */
  dx: Float32Array;
  C: number;
  H: number;
  W: number;
  padH: number;
  padW: number;
}

/** Images per chunk of the input gradient: about 1024 positions, at least one image. */
export function chunkImagesFor(P: number): number {
  return Math.max(1, Math.floor(1024 / Math.max(P, 1)));
}

/** Bytes of one thread's chunk buffer (K rows of chunkImages·P float32). */
export function chunkBytesFor(K: number, P: number): number {
  return roundUp(4 * K * chunkImagesFor(P) * P, 16);
}

/**
 * The input gradient of images [i0, i1): their planes of dxp zeroed, the products scattered onto
 * them, their interiors copied to g.dx. The scatter of an image writes only that image's planes
 * (every patch of image i lies inside i's padded planes), so shares of images are disjoint.
 */
export function col2imRange(t: WasmThread, g: Col2imArgs, i0: number, i1: number): void {
  if (i1 <= i0) return;
  const H = t.f32();
  const pad: PadArgs = { x: g.dx, xpAt: g.xpAt, h: g.H, w: g.W, padH: g.padH, padW: g.padW };
  const planeP = (g.H + 2 * g.padH) * (g.W + 2 * g.padW);
  H.fill(0, (g.xpAt >> 2) + i0 * g.C * planeP, (g.xpAt >> 2) + i1 * g.C * planeP);
  scatterImages(t, H, g, i0, i1);
  unstagePlanes(H, pad, i0 * g.C, i1 * g.C);
}

/** Adds the products of images [i0, i1) onto dxp (zeroed). */
function scatterImages(
  t: WasmThread,
  H: Float32Array,
  g: Col2imArgs,
  i0: number,
  i1: number,
): void {
  const { b, K, F, P, NP, chunkImages } = g;
  if (K === 0 || P === 0) return;
  const { scatter } = kernelsOf(t);
  const chunkAt = g.chunksAt + Math.round(t.scratchAt / SCRATCH_BYTES) * g.chunkBytes;
  const ldc = chunkImages * P;
  if (F === 0) {
    H.fill(0, chunkAt >> 2, (chunkAt >> 2) + K * ldc);
  }
  const bAt = t.scratchAt + A_BYTES;
  const cAt = bAt + B_BYTES;
  const pa = Math.ceil(K / MR);
  const packB = packerFor(b, H);
  const store = storerFor(H, H);
  const imagesFirst = g.imagesFirst !== 0;
  for (let img = i0; img < i1; img += chunkImages) {
    const j0 = img * P;
    const j1 = Math.min(i1, img + chunkImages) * P;
    for (let jc = j0; F > 0 && jc < j1;) {
      // Images first with P not a multiple of NR: a block of columns ends with its image, so
      // no B panel spans two images (G's images are F·P apart). With P a multiple of NR the
      // blocks cross images as in the batched layout, each image's run packed on its own.
      const end = imagesFirst && P % NR !== 0 ? Math.min(j1, (Math.floor(jc / P) + 1) * P) : j1;
      const nc = Math.min(WASM_NC, end - jc);
      const nr = roundUp(nc, NR);
      for (let pc = 0; pc < F; pc += WASM_KC) {
        const kc = Math.min(WASM_KC, F - pc);
        if (imagesFirst)
          for (let s = jc; s < jc + nc;) {
            const image = Math.floor(s / P);
            const e = Math.min(jc + nc, (image + 1) * P);
            const off = image * F * P + pc * P + (s - image * P);
            const q = (s - jc) / NR; // whole panels before this run (s - jc is a multiple of NR)
            const panels = Math.ceil((e - s) / NR);
            packB(b, off, 1, P, e - s, 0, panels, kc, NR, H, (bAt >> 2) + q * NR * kc, NR * kc);
            s = e;
          }
        else packB(b, pc * NP + jc, 1, NP, nc, 0, nr / NR, kc, NR, H, bAt >> 2, NR * kc);
        for (let ic = 0; ic < K; ic += WASM_MC) {
          const mc = Math.min(WASM_MC, K - ic);
          t.block(g.apAt + 4 * (pc * MR * pa + ic * kc), bAt, cAt, roundUp(mc, MR), nr, kc, 0);
          const to = (chunkAt >> 2) + ic * ldc + (jc - j0);
          if (pc > 0) store(H, cAt >> 2, nr, H, to, ldc, mc, nc, true);
          // The first k-block is a plain copy within the memory: a memmove per row.
          else
            for (let r = 0; r < mc; r++)
              H.copyWithin(to + r * ldc, (cAt >> 2) + r * nr, (cAt >> 2) + r * nr + nc);
        }
      }
      jc += nc;
    }
    scatter(chunkAt, 4 * ldc, g.xpAt, g.rowAt, K, g.colAt + 4 * j0, j1 - j0);
  }
}
