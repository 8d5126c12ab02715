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
import type { WasmThread } from "./wasm-gemm.ts";
import type { SpmmArgs } from "./spmm-kernel.ts";

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
 * run(o0, o1, ptrAt, idxAt, idsAt, dataAt, xAt, outAt, nPad, panelBytes, xLine): byte offsets
 * into memory; ptr/idx/ids are Int32, data the blocks (bsz floats each), X's element (i, 8p + t)
 * at xAt + p·panelBytes + i·xLine + 4t (rows: panelBytes 32, xLine 4·nPad; panels: panelBytes
 * 32·innerPad, xLine 32), out [outerPad, nPad]. Requires o0 < o1 and nPad a positive multiple
 * of 8.
 */
function emitRun(c: Code, { ob, ib, eos, eis }: SpmmShape): void {
  const [o0, o1, ptrAt, idxAt, idsAt, dataAt, xAt, outAt, nPad, panelBytes, xLine] =
    c.paramTuple(11);
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
  c.i32Const(0).set(j);
  c.get(xAt).set(panel);
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
      c.get(o).i32Const(1).i32Add().tee(o).get(o1).i32LtU().brIf(outer);
    });
    c.get(panel).get(panelBytes).i32Add().set(panel);
    c.get(j).i32Const(lineBytes).i32Add().tee(j).get(rowBytes).i32LtU().brIf(columns);
  });
}

/** The module for one block shape. */
export function spmmKernelBytes(shape: SpmmShape): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("run", new Array<typeof I32>(11).fill(I32), [], (c) => emitRun(c, shape))
    .build();
}

const modules = new Map<string, WebAssembly.Module>();
/** The compiled module for a block shape (compiled once per thread and shape). */
export function spmmModule(shape: SpmmShape): WebAssembly.Module {
  const key = `${shape.ob},${shape.ib},${shape.eos},${shape.eis}`;
  let m = modules.get(key);
  if (m === undefined) {
    m = compileModule(`matrix wasm BSR kernel ${key}`, spmmKernelBytes(shape));
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
  const nnz = s.ptr[outerBlocks]!;
  new Int32Array(buf, l.ptrAt, outerBlocks + 1).set(s.ptr.subarray(0, outerBlocks + 1));
  new Int32Array(buf, l.idxAt, nnz).set(s.idx.subarray(0, nnz));
  new Int32Array(buf, l.idsAt, nnz).set(s.ids.subarray(0, nnz));
  new Float32Array(buf, l.dataAt, s.data.length).set(s.data);
  const innerPad = Math.ceil(s.innerLimit / s.ib) * s.ib;
  const { nPad } = l;
  const X = new Float32Array(buf, l.xAt, innerPad * nPad);
  const { x, sxi, sxj, n, innerLimit } = s;
  // Every padded entry is written as 0: a padded block entry is 0, and 0 times a NaN left there
  // by an earlier product would be NaN (padded columns only reach padded outputs, but stale
  // denormals there could slow the kernel).
  if (sxj === 1) {
    // Rows (spmmLayout's choice for this X; with nPad = 8 rows and panels are the same bytes).
    if (sxi === n && nPad === n) X.set(x.subarray(0, innerLimit * n));
    else
      for (let i = 0; i < innerLimit; i++) {
        X.set(x.subarray(i * sxi, i * sxi + n), i * nPad);
        X.fill(0, i * nPad + n, (i + 1) * nPad);
      }
    X.fill(0, innerLimit * nPad);
    return;
  }
  // Panels: X[p][i][t] = x(i, 8p + t), reading 8 of x's lines side by side.
  const panel = innerPad * SPMM_COLS;
  for (let p = 0, d0 = 0; d0 < X.length; p++, d0 += panel) {
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
    } else
      for (let i = 0, d = d0; i < innerLimit; i++, d += SPMM_COLS)
        for (let t = 0; t < SPMM_COLS; t++) X[d + t] = t < cols ? x[(j0 + t) * sxj + i * sxi]! : 0;
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

const runs = new WeakMap<WasmThread, Map<string, SpmmRun>>();
/** This thread's kernel for the block shape of `s`, on the thread's memory. */
function runFor(t: WasmThread, s: SpmmShape): SpmmRun {
  let m = runs.get(t);
  if (m === undefined) runs.set(t, (m = new Map()));
  const key = `${s.ob},${s.ib},${s.eos},${s.eis}`;
  let run = m.get(key);
  if (run === undefined) {
    const inst = new WebAssembly.Instance(spmmModule(s), { env: { memory: t.memory } });
    run = inst.exports.run as SpmmRun;
    m.set(key, run);
  }
  return run;
}

/** Outer block lines [o0, o1) of a product already staged at `l` in t's memory. */
export function wasmSpmmRange(
  t: WasmThread,
  shape: SpmmShape,
  l: Omit<SpmmLayout, "bytes">,
  o0: number,
  o1: number,
): void {
  if (o1 <= o0) return;
  runFor(t, shape)(
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
  );
}

/** The whole product on this thread: staged into its own memory after the GEMM scratch. */
export function wasmSpmmSerial(s: SpmmArgs, outerBlocks: number): void {
  if (outerBlocks === 0) return;
  const t = localWasmThread();
  const l = spmmLayout(s, outerBlocks, SCRATCH_BYTES);
  const need = SCRATCH_BYTES + l.bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  const buf = t.memory.buffer;
  stageSpmm(s, outerBlocks, l, buf);
  wasmSpmmRange(t, s, l, 0, outerBlocks);
  unstageSpmm(s, l, buf, 0, s.outerLimit);
}
