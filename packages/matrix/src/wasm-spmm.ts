// Block-sparse times dense on a WebAssembly SIMD kernel generated per block shape.
//
// The product is the one of spmm-kernel.ts (SpmmArgs: outer block lines, stored blocks read
// through element strides, so A·X, Aᵀ·X, X·A and X·Aᵀ are one kernel), staged through kernel
// memory: the block data and index arrays are copied in, X is copied in with its inner lines
// padded to whole blocks and its n columns to nPad (a multiple of 8), every padded entry zero
// (a padded block entry times a zero is zero, never 0·NaN), the kernel writes [outer lines
// (padded), nPad] and the caller copies the logical part out through the output strides.
// Staging through a layout of our choosing is what lets one kernel serve the transposed and
// batch-major products. Two X layouts, one kernel (both strides are arguments):
//   rows   [innerPad, nPad], for a row-major X: a bulk copy per line (or one for all of X);
//   panels [nPad / 8][innerPad][8], for a batch-major X, which must be transposed anyway:
//          written 8 of its lines side by side, one sequential pass per panel.
// Measured on 1024x1024 by 1024x128 (4x4 and 8x8, 90-95% sparse; idle, one thread), panels for
// the row-major products took 0-28% longer in all (the JS copy; the kernel gained nothing),
// rows for the batch-major one 30-42% longer (its transpose scattered over nPad-wide rows).
//
// Two routes. Row-major X (A·X, Aᵀ·X): staged whole, the kernel split by outer lines, the output
// [outer lines, nPad] copied out by the caller (unstageSpmm), an epilogue run after. Batch-major
// X and output (x·Aᵀ, x·A: a Linear layer's forward and input gradient): split by X's columns,
// the batch rows (spmmColumnsRange): each chunk stages its own panels, the kernel stores the
// output batch-major (batchOut) so that a generated f32x4 pass adds the bias and applies the
// ReLU in kernel memory and the rows leave in bulk copies. Only the blocks are staged serially.
// A kernel variant over output lines (splatting X, a block column per vector, X's rows read in
// place with no transpose) was tried for this case and ran 3x slower: each block then touches 8
// rows of X, 8 cache lines, where a panel keeps a block's 4 inner lines of 8 columns in 2.
//
// Kernel: for each 8 columns of X (a panel, or 8 columns of the rows), and each outer block
// line, up to 4 output lines are kept in f32x4 accumulators (4 x 2 vectors) across every stored
// block of the line; per inner line of a block (a loop, not unrolled) it loads 8 values of X and
// splats one block element per output line, a pointer stepping through the block. Unrolling a
// block's lines with constant offsets made TurboFan hoist every splat's address out of the
// block, run out of xmm registers and spill (8x8 at 90%: 17.6 GFLOP/s against 33.4 as a loop,
// the dense kernel's shape, with the dense product at ~42). Lines beyond 4 run as further
// groups over the same blocks. Each output element is a float32 sum in stored-block order,
// then inner-line order: the same whatever range of block lines a thread computes.
import { I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";
import { emitEpilogue, epilogueMode } from "./wasm-epilogue.ts";
import type { EpilogueKernel } from "./wasm-epilogue.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import type { SpmmArgs, SpmmCall } from "./spmm-kernel.ts";

/** What the generated code is specialised on: lines per outer block, inner width, element strides. */
export interface SpmmShape {
  readonly ob: number;
  readonly ib: number;
  readonly eos: number;
  readonly eis: number;
}

/** Output lines kept in registers at once (4 x 8 columns = 8 vectors). */
const GROUP = 4;
/** Columns of X per step (two f32x4 vectors). */
export const SPMM_COLS = 8;

/**
 * run(o0, o1, ptrAt, idxAt, idsAt, dataAt, xAt, outAt, nPad, panelBytes, xLine, j0, j1, outRow):
 * byte offsets into memory; ptr/idx/ids are Int32, data the blocks (bsz floats each), X's
 * element (i, 8p + t) at xAt + p·panelBytes + i·xLine + 4t (rows: panelBytes 32, xLine 4·nPad;
 * panels: panelBytes 32·innerPad, xLine 32). Computes outer block lines [o0, o1) in X's columns
 * from 4·col = j0 to j1 (multiples of 32: whole panels). The output is [outerPad, nPad] (outRow
 * unused), or with `batchOut` [nPad, outRow / 4], each column of the product one row: the lanes
 * stored one by one (32 scalar stores per 4 lines and 8 columns, against ~700 multiply-adds
 * between them on LeNet-300-100's fc1). Requires o0 < o1, j0 < j1 <= 4·nPad and nPad a positive
 * multiple of 8.
 */
function emitRun(c: Code, { ob, ib, eos, eis }: SpmmShape, batchOut: boolean): void {
  const [o0, o1, ptrAt, idxAt, idsAt, dataAt, xAt, outAt, nPad, panelBytes, xLine, j0, j1, outRow] =
    c.paramTuple(14);
  const blockLines = c.local(I32); // bytes of X under one block: ib * xLine
  const o = c.local(I32);
  const s = c.local(I32);
  const s0 = c.local(I32);
  const s1 = c.local(I32);
  const j = c.local(I32); // byte offset of the panel's columns within an output row
  const panel = c.local(I32); // byte offset of the panel
  const rowBytes = c.local(I32);
  const blk = c.local(I32);
  const xp = c.local(I32);
  const xEnd = c.local(I32);
  const op = c.local(I32);
  const x0 = c.local(V128);
  const x1 = c.local(V128);
  const av = c.local(V128);
  const acc = Array.from({ length: GROUP }, () => [c.local(V128), c.local(V128)] as const);
  const bsz4 = 4 * ob * ib;
  const lineBytes = 4 * SPMM_COLS; // 8 columns: the step of j

  c.get(nPad).i32Const(2).i32Shl().set(rowBytes);
  c.get(xLine).i32Const(ib).i32Mul().set(blockLines);
  c.get(j0).set(j);
  // panel = xAt + (j0 / 32)·panelBytes
  c.get(j0).i32Const(5).i32ShrU().get(panelBytes).i32Mul().get(xAt).i32Add().set(panel);
  c.loop((columns) => {
    c.get(o0).set(o);
    c.loop((outer) => {
      // s0, s1 = ptr[o], ptr[o + 1]
      c.get(ptrAt).get(o).i32Const(2).i32Shl().i32Add().tee(s).i32Load(0).set(s0);
      c.get(s).i32Load(4).set(s1);
      for (let g0 = 0; g0 < ob; g0 += GROUP) {
        const rows = Math.min(GROUP, ob - g0);
        for (let r = 0; r < rows; r++) for (const v of acc[r]!) c.v128Zero().set(v);
        c.get(s0).set(s);
        c.block((done) => {
          c.get(s).get(s1).i32GeU().brIf(done);
          c.loop((slots) => {
            // blk = dataAt + ids[s]*bsz*4; xp = panel + idx[s]*ib*xLine; xEnd = xp + ib*xLine
            c.get(idsAt).get(s).i32Const(2).i32Shl().i32Add().i32Load(0);
            c.i32Const(bsz4).i32Mul().get(dataAt).i32Add().set(blk);
            c.get(idxAt).get(s).i32Const(2).i32Shl().i32Add().i32Load(0);
            c.get(blockLines)
              .i32Mul()
              .get(panel)
              .i32Add()
              .tee(xp)
              .get(blockLines)
              .i32Add()
              .set(xEnd);
            // One inner line per trip, a pointer into the block and one into the panel: the
            // fully unrolled block (constant offsets per line) made TurboFan hoist every splat's
            // address and spill, and ran at half this speed (see the file header).
            c.loop((lines) => {
              c.get(xp).v128Load(0).set(x0);
              c.get(xp).v128Load(16).set(x1);
              for (let r = 0; r < rows; r++) {
                c.get(blk)
                  .v128Load32Splat(4 * (g0 + r) * eos)
                  .set(av);
                const [a0, a1] = acc[r]!;
                c.get(a0).get(av).get(x0).f32x4Mul().f32x4Add().set(a0);
                c.get(a1).get(av).get(x1).f32x4Mul().f32x4Add().set(a1);
              }
              c.get(blk)
                .i32Const(4 * eis)
                .i32Add()
                .set(blk);
              c.get(xp).get(xLine).i32Add().tee(xp).get(xEnd).i32LtU().brIf(lines);
            });
            c.get(s).i32Const(1).i32Add().tee(s).get(s1).i32LtU().brIf(slots);
          });
        });
        if (batchOut) {
          // op = outAt + (j / 4)·outRow + (o·ob + g0)·4: column t of the 8 is output row j/4 + t
          c.get(j).i32Const(2).i32ShrU().get(outRow).i32Mul();
          c.get(o).i32Const(ob).i32Mul().i32Const(g0).i32Add().i32Const(2).i32Shl().i32Add();
          c.get(outAt).i32Add().set(op);
          for (let t = 0; t < SPMM_COLS; t++) {
            for (let r = 0; r < rows; r++)
              c.get(op)
                .get(acc[r]![t >> 2]!)
                .f32x4ExtractLane(t & 3)
                .f32Store(4 * r);
            if (t + 1 < SPMM_COLS) c.get(op).get(outRow).i32Add().set(op);
          }
        } else {
          // op = outAt + (o*ob + g0)*rowBytes + j
          c.get(o).i32Const(ob).i32Mul().i32Const(g0).i32Add().get(rowBytes).i32Mul();
          c.get(outAt).i32Add().get(j).i32Add().set(op);
          for (let r = 0; r < rows; r++) {
            const [a0, a1] = acc[r]!;
            c.get(op).get(a0).v128Store(0);
            c.get(op).get(a1).v128Store(16);
            if (r + 1 < rows) c.get(op).get(rowBytes).i32Add().set(op);
          }
        }
      }
      c.get(o).i32Const(1).i32Add().tee(o).get(o1).i32LtU().brIf(outer);
    });
    c.get(panel).get(panelBytes).i32Add().set(panel);
    c.get(j).i32Const(lineBytes).i32Add().tee(j).get(j1).i32LtU().brIf(columns);
  });
}

/** The module for one block shape: run (and, with `batchOut`, epi). */
export function spmmKernelBytes(shape: SpmmShape, batchOut = false): Uint8Array<ArrayBuffer> {
  const b = new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("run", new Array<typeof I32>(14).fill(I32), [], (c) => emitRun(c, shape, batchOut));
  if (batchOut) b.func("epi", new Array<typeof I32>(6).fill(I32), [], emitEpilogue);
  return b.build();
}

const keyOf = (s: SpmmShape, batchOut: boolean) =>
  `${s.ob},${s.ib},${s.eos},${s.eis}${batchOut ? ",batch" : ""}`;
const modules = new Map<string, WebAssembly.Module>();
/** The compiled module for a block shape (compiled once per thread and shape). */
export function spmmModule(shape: SpmmShape, batchOut = false): WebAssembly.Module {
  const key = keyOf(shape, batchOut);
  let m = modules.get(key);
  if (m === undefined) {
    m = compileModule(`matrix wasm BSR kernel ${key}`, spmmKernelBytes(shape, batchOut));
    modules.set(key, m);
  }
  return m;
}

export type SpmmRun = (
  o0: number,
  o1: number,
  ptrAt: number,
  idxAt: number,
  idsAt: number,
  dataAt: number,
  xAt: number,
  outAt: number,
  nPad: number,
  panelBytes: number,
  xLine: number,
  j0: number,
  j1: number,
  outRow: number,
) => void;

/** Where a staged product lives in kernel memory (byte offsets), and its padded sizes. */
export interface SpmmLayout {
  ptrAt: number;
  idxAt: number;
  idsAt: number;
  dataAt: number;
  xAt: number;
  outAt: number;
  nPad: number;
  /** Bytes from one panel of X (8 columns) to the next. */
  panelBytes: number;
  /** Bytes from one inner line of X to the next within a panel. */
  xLine: number;
  /** Bytes from the first offset to the end of the output. */
  bytes: number;
}

const align16 = (x: number) => Math.ceil(x / 16) * 16;

/** The layout of a product staged at byte `at`. */
export function spmmLayout(s: SpmmArgs, outerBlocks: number, at: number): SpmmLayout {
  const nnz = s.ptr[outerBlocks]!;
  const innerBlocks = Math.ceil(s.innerLimit / s.ib);
  const nPad = Math.max(SPMM_COLS, Math.ceil(s.n / SPMM_COLS) * SPMM_COLS);
  const ptrAt = at;
  const idxAt = align16(ptrAt + 4 * (outerBlocks + 1));
  const idsAt = align16(idxAt + 4 * nnz);
  const dataAt = align16(idsAt + 4 * nnz);
  const xAt = align16(dataAt + 4 * s.data.length);
  // Row-major X (sxj = 1) is staged in rows: one bulk copy per line, or one for all of it.
  // Batch-major X is transposed while staged, into panels of 8 columns, each line's 8 values
  // together: its columns are X's lines, so a panel is written in one sequential pass.
  const rows = s.sxj === 1;
  const panelBytes = rows ? 4 * SPMM_COLS : 4 * SPMM_COLS * innerBlocks * s.ib;
  const xLine = rows ? 4 * nPad : 4 * SPMM_COLS;
  const outAt = align16(xAt + 4 * innerBlocks * s.ib * nPad);
  const end = outAt + 4 * outerBlocks * s.ob * nPad;
  return { ptrAt, idxAt, idsAt, dataAt, xAt, outAt, nPad, panelBytes, xLine, bytes: end - at };
}

/** Copies the structure, the blocks and X (zero-padded) into memory `buf` at `l`. */
export function stageSpmm(
  s: SpmmArgs,
  outerBlocks: number,
  l: SpmmLayout,
  buf: ArrayBufferLike,
): void {
  stageSpmmBlocks(s, outerBlocks, l, buf);
  stageSpmmX(s, l, buf, 0, l.nPad / SPMM_COLS);
}

/** Copies the structure and the blocks into memory `buf` at `l`. */
export function stageSpmmBlocks(
  s: SpmmArgs,
  outerBlocks: number,
  l: Omit<SpmmLayout, "bytes">,
  buf: ArrayBufferLike,
): void {
  const nnz = s.ptr[outerBlocks]!;
  new Int32Array(buf, l.ptrAt, outerBlocks + 1).set(s.ptr.subarray(0, outerBlocks + 1));
  new Int32Array(buf, l.idxAt, nnz).set(s.idx.subarray(0, nnz));
  new Int32Array(buf, l.idsAt, nnz).set(s.ids.subarray(0, nnz));
  new Float32Array(buf, l.dataAt, s.data.length).set(s.data);
}

/** What staging X reads: X itself and its shape. */
export type SpmmX = Pick<SpmmArgs, "x" | "sxi" | "sxj" | "n" | "innerLimit" | "ib">;

/**
 * Copies columns [8·p0, 8·p1) of X (the panels p0..p1, zero-padded) into memory `buf` at `l`:
 * a chunk of a column-split product stages its own.
 */
export function stageSpmmX(
  s: SpmmX,
  l: Omit<SpmmLayout, "bytes">,
  buf: ArrayBufferLike,
  p0: number,
  p1: number,
): void {
  const innerPad = Math.ceil(s.innerLimit / s.ib) * s.ib;
  const { nPad } = l;
  const X = new Float32Array(buf, l.xAt, innerPad * nPad);
  const { x, sxi, sxj, n, innerLimit } = s;
  // Every padded entry is written as 0: a padded block entry is 0, and 0 times a NaN left there
  // by an earlier product would be NaN (padded columns only reach padded outputs, but stale
  // denormals there could slow the kernel).
  if (sxj === 1) {
    // Rows (spmmLayout's choice for this X; with nPad = 8 rows and panels are the same bytes).
    const c0 = p0 * SPMM_COLS;
    const c1 = p1 * SPMM_COLS;
    const cn = Math.min(n, c1);
    if (c0 === 0 && c1 === nPad && sxi === n && nPad === n) X.set(x.subarray(0, innerLimit * n));
    else
      for (let i = 0; i < innerLimit; i++) {
        if (cn > c0) X.set(x.subarray(i * sxi + c0, i * sxi + cn), i * nPad + c0);
        X.fill(0, i * nPad + Math.max(c0, cn), i * nPad + c1);
      }
    for (let i = innerLimit; i < innerPad; i++) X.fill(0, i * nPad + c0, i * nPad + c1);
    return;
  }
  // Panels: X[p][i][t] = x(i, 8p + t), reading 8 of x's lines side by side.
  const panel = innerPad * SPMM_COLS;
  for (let p = p0, d0 = p0 * panel; p < p1; p++, d0 += panel) {
    const j0 = p * SPMM_COLS;
    const cols = Math.min(SPMM_COLS, n - j0);
    if (cols === SPMM_COLS) {
      const [c0, c1, c2, c3] = [j0 * sxj, (j0 + 1) * sxj, (j0 + 2) * sxj, (j0 + 3) * sxj];
      const [c4, c5, c6, c7] = [(j0 + 4) * sxj, (j0 + 5) * sxj, (j0 + 6) * sxj, (j0 + 7) * sxj];
      for (let i = 0, d = d0, q = 0; i < innerLimit; i++, d += SPMM_COLS, q += sxi) {
        X[d] = x[c0 + q]!;
        X[d + 1] = x[c1 + q]!;
        X[d + 2] = x[c2 + q]!;
        X[d + 3] = x[c3 + q]!;
        X[d + 4] = x[c4 + q]!;
        X[d + 5] = x[c5 + q]!;
        X[d + 6] = x[c6 + q]!;
        X[d + 7] = x[c7 + q]!;
      }
    } else {
      X.fill(0, d0, d0 + panel);
      for (let t = 0; t < cols; t++)
        for (
          let i = 0, d = d0 + t, q = (j0 + t) * sxj;
          i < innerLimit;
          i++, d += SPMM_COLS, q += sxi
        )
          X[d] = x[q]!;
      continue;
    }
    X.fill(0, d0 + innerLimit * SPMM_COLS, d0 + panel);
  }
}

/** Copies output lines [line0, line1) from memory into the caller's out through its strides. */
export function unstageSpmm(
  s: SpmmArgs,
  l: SpmmLayout,
  buf: ArrayBufferLike,
  line0: number,
  line1: number,
): void {
  const { out, soo, soj, n } = s;
  if (line1 <= line0 || n === 0) return;
  const { nPad } = l;
  const Y = new Float32Array(buf, l.outAt + 4 * line0 * nPad, (line1 - line0) * nPad);
  if (soj === 1 && soo === nPad && n === nPad) out.set(Y, line0 * soo);
  else if (soj === 1) {
    for (let o = line0; o < line1; o++) {
      const r = (o - line0) * nPad;
      out.set(Y.subarray(r, r + n), o * soo);
    }
  } else {
    for (let jj = 0; jj < n; jj++)
      for (let o = line0, r = jj; o < line1; o++, r += nPad) out[o * soo + jj * soj] = Y[r]!;
  }
}

interface Kernels {
  run: SpmmRun;
  epi: EpilogueKernel;
}
const runs = new WeakMap<WasmThread, Map<string, Kernels>>();
/** This thread's kernels for the block shape of `s` (and output layout), on its memory. */
function kernelsFor(t: WasmThread, s: SpmmShape, batchOut: boolean): Kernels {
  let m = runs.get(t);
  if (m === undefined) runs.set(t, (m = new Map()));
  const key = keyOf(s, batchOut);
  let k = m.get(key);
  if (k === undefined) {
    const e = new WebAssembly.Instance(spmmModule(s, batchOut), { env: { memory: t.memory } })
      .exports;
    k = { run: e.run as SpmmRun, epi: e.epi as EpilogueKernel };
    m.set(key, k);
  }
  return k;
}

/**
 * Outer block lines [o0, o1) of a product already staged at `l` in t's memory, in the columns of
 * panels [p0, p1) (by default all); with `outRow` > 0 the output is batch-major with rows of
 * that many bytes (the column-split route's layout).
 */
export function wasmSpmmRange(
  t: WasmThread,
  shape: SpmmShape,
  l: Omit<SpmmLayout, "bytes">,
  o0: number,
  o1: number,
  p0 = 0,
  p1 = l.nPad / SPMM_COLS,
  outRow = 0,
): void {
  if (o1 <= o0 || p1 <= p0) return;
  kernelsFor(t, shape, outRow > 0).run(
    o0,
    o1,
    l.ptrAt,
    l.idxAt,
    l.idsAt,
    l.dataAt,
    l.xAt,
    l.outAt,
    l.nPad,
    l.panelBytes,
    l.xLine,
    4 * SPMM_COLS * p0,
    4 * SPMM_COLS * p1,
    outRow,
  );
}

/**
 * The batch-major products (X and the output stored one batch row after another: a Linear
 * layer's x·Wᵀ and dy·W) split by X's columns, which are the batch rows: the caller stages the
 * blocks and the bias, each chunk of panels stages its own columns of X, runs every outer line
 * on them with the output stored batch-major in kernel memory, adds the bias and applies the
 * ReLU there (f32x4, emitEpilogue) and copies its rows out in bulk. Nothing but the blocks'
 * staging is serial. On LeNet-300-100's fc1 at 10.8% (batch 128, one thread) the line-split
 * route took 0.068 ms to stage X, 0.15 for the kernel, 0.057 to copy the output out (a
 * transpose) and 0.089 for the JavaScript epilogue pass after it (medians, one scratch run on
 * an idle machine, 2026-12-02).
 */
export interface WasmSpmmColumnsArgs
  extends SpmmShape, Omit<SpmmColumnsLayout, "bytes">, Omit<SpmmX, "ib"> {
  outerBlocks: number;
  outerLimit: number;
  /** The output, [n, outerLimit]. */
  out: Float32Array;
  /** bit 0: add the bias; bit 1: ReLU. */
  epi: number;
  x: Float32Array;
}

/** The column-split layout: spmmLayout's, with the output batch-major and the bias before it. */
export interface SpmmColumnsLayout extends SpmmLayout {
  /** Bytes per output row: the outer lines rounded up to whole vectors. */
  outRow: number;
  biasAt: number;
}

/** The layout of the column-split route for `s` staged at byte `at`. */
export function spmmColumnsLayout(s: SpmmArgs, outerBlocks: number, at: number): SpmmColumnsLayout {
  const l = spmmLayout(s, outerBlocks, at);
  const outRow = 16 * Math.ceil((outerBlocks * s.ob) / 4);
  const biasAt = l.outAt;
  const outAt = align16(biasAt + outRow);
  return { ...l, outRow, biasAt, outAt, bytes: outAt + l.nPad * outRow - at };
}

/** Whether the column-split route serves `s`: float32, batch-major X and output. */
export function spmmColumnsApplies(s: SpmmArgs): boolean {
  return s.data instanceof Float32Array && s.sxj !== 1 && s.soo === 1 && s.soj === s.outerLimit;
}

/** Stages the blocks and the bias (zero-padded to the output row) of `s` at `l`. */
export function stageSpmmColumns(
  s: SpmmCall,
  outerBlocks: number,
  l: SpmmColumnsLayout,
  buf: ArrayBufferLike,
): void {
  stageSpmmBlocks(s, outerBlocks, l, buf);
  const bias = s.bias ?? null;
  if (bias === null) return;
  const B = new Float32Array(buf, l.biasAt, l.outRow / 4);
  B.set(bias.subarray(0, s.outerLimit));
  B.fill(0, s.outerLimit);
}

/** The column-split job for `s` staged at `l`. */
export function spmmColumnsArgs(
  s: SpmmCall,
  outerBlocks: number,
  l: SpmmColumnsLayout,
): WasmSpmmColumnsArgs {
  const bias = s.bias ?? null;
  const size = s.outerLimit * s.n;
  const out = s.out as Float32Array;
  // Fields one by one, not a spread of the layout: this object is built for every product, and
  // the spread version cost 4-8 µs (more than a batch-1 product's kernel, scratch timing).
  return {
    ptrAt: l.ptrAt,
    idxAt: l.idxAt,
    idsAt: l.idsAt,
    dataAt: l.dataAt,
    xAt: l.xAt,
    outAt: l.outAt,
    nPad: l.nPad,
    panelBytes: l.panelBytes,
    xLine: l.xLine,
    outRow: l.outRow,
    biasAt: l.biasAt,
    ob: s.ob,
    ib: s.ib,
    eos: s.eos,
    eis: s.eis,
    x: s.x as Float32Array,
    sxi: s.sxi,
    sxj: s.sxj,
    n: s.n,
    innerLimit: s.innerLimit,
    outerBlocks,
    outerLimit: s.outerLimit,
    out: out.length === size ? out : out.subarray(0, size),
    epi: epilogueMode(bias, s.relu),
  };
}

/**
 * Panels [p0, p1) of a column-split product on thread t, whose memory holds the staged blocks
 * and bias: stages those columns of X, runs the kernel over every outer line, runs the epilogue
 * over output rows [8·p0, min(n, 8·p1)) and copies them out.
 */
export function spmmColumnsRange(
  t: WasmThread,
  g: WasmSpmmColumnsArgs,
  p0: number,
  p1: number,
): void {
  if (p1 <= p0) return;
  const buf = t.memory.buffer;
  stageSpmmX(g, g, buf, p0, p1);
  wasmSpmmRange(t, g, g, 0, g.outerBlocks, p0, p1, g.outRow);
  const r0 = p0 * SPMM_COLS;
  const r1 = Math.min(g.n, p1 * SPMM_COLS);
  const { out, outRow, outerLimit, outAt } = g;
  if (g.epi !== 0) kernelsFor(t, g, true).epi(outAt, outRow, r0, r1, g.biasAt, g.epi);
  const rowF = outRow / 4;
  const Y = new Float32Array(buf, outAt + r0 * outRow, (r1 - r0) * rowF);
  if (rowF === outerLimit) out.set(Y, r0 * outerLimit);
  else
    for (let r = r0, q = 0; r < r1; r++, q += rowF)
      out.set(Y.subarray(q, q + outerLimit), r * outerLimit);
}

/** This thread's memory, grown to hold `bytes` after the GEMM scratch. */
function localSpmmThread(bytes: number): WasmThread {
  const t = localWasmThread();
  const need = SCRATCH_BYTES + bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  return t;
}

/** The whole product on this thread: staged into its own memory after the GEMM scratch. */
export function wasmSpmmSerial(s: SpmmArgs, outerBlocks: number): void {
  if (outerBlocks === 0) return;
  const l = spmmLayout(s, outerBlocks, SCRATCH_BYTES);
  const t = localSpmmThread(l.bytes);
  const buf = t.memory.buffer;
  stageSpmm(s, outerBlocks, l, buf);
  wasmSpmmRange(t, s, l, 0, outerBlocks);
  unstageSpmm(s, l, buf, 0, s.outerLimit);
}

/** A column-split product (spmmColumnsApplies) whole on this thread, epilogue included. */
export function wasmSpmmColumnsSerial(s: SpmmCall, outerBlocks: number): void {
  if (outerBlocks === 0 || s.n === 0) return;
  const l = spmmColumnsLayout(s, outerBlocks, SCRATCH_BYTES);
  const t = localSpmmThread(l.bytes);
  stageSpmmColumns(s, outerBlocks, l, t.memory.buffer);
  spmmColumnsRange(t, spmmColumnsArgs(s, outerBlocks, l), 0, l.nPad / SPMM_COLS);
}
