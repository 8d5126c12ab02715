// The sampled product (A·B at a block pattern's stored blocks: a block-sparse layer's weight
// gradient) on a WebAssembly SIMD kernel generated per block shape.
//
// Staged through kernel memory as panels, so a stored block's walk over k reads two short
// sequential runs: A as [block rows][k][R] and B as [block columns][k][C4], C4 = C rounded up
// to 4 lanes (both zero-padded, so the padding of ragged edge blocks comes out 0), a block row
// per stored slot, and the output as [nnz, R, C4] (copied out to [nnz, R, C]). Before
// (2026-12-02) A was staged as [k, rows] and B as [k, cols]: each k step of a block read two
// cache lines 4 KB apart, and the 4x4 product at 90% ran at 2.2-2.6x the dense one
// (docs/benchmarks/matrix.md). For each slot the kernel walks k once per group of up to 4 block
// rows x 8 block columns, keeping that group in f32x4 accumulators: per k step it loads the
// group's B values and splats one A value per row. Each element is a float32 sum over k in
// order, so any split of the slots over threads gives the same bits. With a pool the threads
// stage the panels too (KIND_WASM_SAMPLED_STAGE, whole panels per chunk), then run the slots:
// staged by the caller, the panels were half of fc1's weight gradient (0.18 of 0.36 ms).
import { I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import type { SampledArgs } from "./sampled-kernel.ts";

/** Block shape the generated code is specialised on. */
export interface SampledShape {
  readonly R: number;
  readonly C: number;
}

const roundUp = (x: number, to: number) => Math.ceil(x / to) * to;

/**
 * run(p0, p1, rowOfAt, idxAt, atAt, bAt, outAt, k): slots [p0, p1) (p0 < p1), byte offsets;
 * rowOf/idx are Int32 (block row and block column of each slot); A's panels are 4·k·R bytes
 * apart, B's 4·k·C4.
 */
function emitRun(c: Code, { R, C }: SampledShape): void {
  const [p0, p1, rowOfAt, idxAt, atAt, bAt, outAt, k] = c.paramTuple(8);
  const C4 = roundUp(C, 4);
  const s = c.local(I32);
  const br = c.local(I32);
  const bc = c.local(I32);
  const a = c.local(I32);
  const b = c.local(I32);
  const p = c.local(I32);
  const o = c.local(I32);
  const aPanel = c.local(I32);
  const bPanel = c.local(I32);
  const av = c.local(V128);
  const bv = [c.local(V128), c.local(V128)];
  const acc = Array.from({ length: 4 }, () => [c.local(V128), c.local(V128)]);
  c.get(k)
    .i32Const(4 * R)
    .i32Mul()
    .set(aPanel);
  c.get(k)
    .i32Const(4 * C4)
    .i32Mul()
    .set(bPanel);
  c.get(p0).set(s);
  c.loop((slots) => {
    c.get(rowOfAt).get(s).i32Const(2).i32Shl().i32Add().i32Load(0).set(br);
    c.get(idxAt).get(s).i32Const(2).i32Shl().i32Add().i32Load(0).set(bc);
    for (let g0 = 0; g0 < R; g0 += 4) {
      const rows = Math.min(4, R - g0);
      for (let h0 = 0; h0 < C4; h0 += 8) {
        const vecs = Math.min(2, (C4 - h0) / 4);
        for (let r = 0; r < rows; r++) for (let q = 0; q < vecs; q++) c.v128Zero().set(acc[r]![q]!);
        // a = atAt + br*aPanel + g0*4; b = bAt + bc*bPanel + h0*4
        c.get(br)
          .get(aPanel)
          .i32Mul()
          .get(atAt)
          .i32Add()
          .i32Const(4 * g0)
          .i32Add()
          .set(a);
        c.get(bc)
          .get(bPanel)
          .i32Mul()
          .get(bAt)
          .i32Add()
          .i32Const(4 * h0)
          .i32Add()
          .set(b);
        c.i32Const(0).set(p);
        c.block((done) => {
          c.get(k).i32Eqz().brIf(done);
          c.loop((steps) => {
            for (let q = 0; q < vecs; q++)
              c.get(b)
                .v128Load(16 * q)
                .set(bv[q]!);
            for (let r = 0; r < rows; r++) {
              c.get(a)
                .v128Load32Splat(4 * r)
                .set(av);
              for (let q = 0; q < vecs; q++)
                c.get(acc[r]![q]!).get(av).get(bv[q]!).f32x4Mul().f32x4Add().set(acc[r]![q]!);
            }
            c.get(a)
              .i32Const(4 * R)
              .i32Add()
              .set(a);
            c.get(b)
              .i32Const(4 * C4)
              .i32Add()
              .set(b);
            c.get(p).i32Const(1).i32Add().tee(p).get(k).i32LtU().brIf(steps);
          });
        });
        // o = outAt + ((s*R + g0)*C4 + h0)*4
        c.get(s).i32Const(R).i32Mul().i32Const(g0).i32Add().i32Const(C4).i32Mul();
        c.i32Const(h0).i32Add().i32Const(2).i32Shl().get(outAt).i32Add().set(o);
        for (let r = 0; r < rows; r++) {
          for (let q = 0; q < vecs; q++)
            c.get(o)
              .get(acc[r]![q]!)
              .v128Store(16 * q);
          if (r + 1 < rows)
            c.get(o)
              .i32Const(4 * C4)
              .i32Add()
              .set(o);
        }
      }
    }
    c.get(s).i32Const(1).i32Add().tee(s).get(p1).i32LtU().brIf(slots);
  });
}

export function sampledKernelBytes(shape: SampledShape): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("run", new Array<typeof I32>(8).fill(I32), [], (c) => emitRun(c, shape))
    .build();
}

type SampledRun = (...args: number[]) => void;
const modules = new Map<string, WebAssembly.Module>();
const runs = new WeakMap<WasmThread, Map<string, SampledRun>>();
function runFor(t: WasmThread, shape: SampledShape): SampledRun {
  const key = `${shape.R}x${shape.C}`;
  let m = runs.get(t);
  if (m === undefined) runs.set(t, (m = new Map()));
  let run = m.get(key);
  if (run === undefined) {
    let mod = modules.get(key);
    if (mod === undefined) {
      mod = compileModule(`matrix wasm sampled kernel ${key}`, sampledKernelBytes(shape));
      modules.set(key, mod);
    }
    run = new WebAssembly.Instance(mod, { env: { memory: t.memory } }).exports.run as SampledRun;
    m.set(key, run);
  }
  return run;
}

const align16 = (x: number) => roundUp(x, 16);

/** Where a staged sampled product lives in kernel memory (byte offsets). */
export interface SampledLayout {
  rowOfAt: number;
  idxAt: number;
  atAt: number;
  bAt: number;
  outAt: number;
  /** Bytes from the first offset to the end of the output. */
  bytes: number;
}

export function sampledLayout(s: SampledArgs, at: number): SampledLayout {
  const { indptr, R, C, cols, k } = s;
  const blockRows = indptr.length - 1;
  const blockCols = Math.ceil(cols / C);
  const nnz = indptr[blockRows]!;
  const C4 = roundUp(C, 4);
  const rowOfAt = at;
  const idxAt = align16(rowOfAt + 4 * nnz);
  const atAt = align16(idxAt + 4 * nnz);
  const bAt = align16(atAt + 4 * blockRows * k * R);
  const outAt = align16(bAt + 4 * blockCols * k * C4);
  const end = outAt + 4 * nnz * R * C4;
  return { rowOfAt, idxAt, atAt, bAt, outAt, bytes: end - at };
}

/** Copies the slot structure and A, B as panels (zero-padded) into memory `buf` at `l`. */
export function stageSampled(s: SampledArgs, l: SampledLayout, buf: ArrayBufferLike): void {
  stageSampledSlots(s, l, buf);
  const g = sampledPanelsArgs(s, l);
  stageSampledPanels(buf, g, 0, g.blockRows + g.blockCols);
}

/** Copies the slot structure (block row and block column of each slot) to `l`. */
export function stageSampledSlots(s: SampledArgs, l: SampledLayout, buf: ArrayBufferLike): void {
  const { indptr, indices } = s;
  const blockRows = indptr.length - 1;
  const nnz = indptr[blockRows]!;
  const rowOf = new Int32Array(buf, l.rowOfAt, nnz);
  for (let i = 0; i < blockRows; i++) rowOf.fill(i, indptr[i]!, indptr[i + 1]!);
  new Int32Array(buf, l.idxAt, nnz).set(indices.subarray(0, nnz));
}

/**
 * What staging A's and B's panels reads and where it writes: a pooled job's fields
 * (KIND_WASM_SAMPLED_STAGE), each chunk writing whole panels, A's (q < blockRows) then B's.
 */
export interface SampledPanelsArgs {
  a: Float32Array;
  sai: number;
  sap: number;
  b: Float32Array;
  sbp: number;
  sbj: number;
  rows: number;
  cols: number;
  R: number;
  C: number;
  k: number;
  blockRows: number;
  blockCols: number;
  atAt: number;
  bAt: number;
}

export function sampledPanelsArgs(s: SampledArgs, l: SampledLayout): SampledPanelsArgs {
  return {
    a: s.a as Float32Array,
    sai: s.sai,
    sap: s.sap,
    b: s.b as Float32Array,
    sbp: s.sbp,
    sbj: s.sbj,
    rows: s.rows,
    cols: s.cols,
    R: s.R,
    C: s.C,
    k: s.k,
    blockRows: s.indptr.length - 1,
    blockCols: Math.ceil(s.cols / s.C),
    atAt: l.atAt,
    bAt: l.bAt,
  };
}

/**
 * Panels [q0, q1) of A's blockRows panels followed by B's blockCols: A panel bi is [k][R],
 * element (p, r) = A(bi*R + r, p), rows past `rows` 0; B panel bj is [k][C4], element (p, c) =
 * B(p, bj*C + c), columns past `cols` and lanes C..C4 0.
 */
export function stageSampledPanels(
  buf: ArrayBufferLike,
  g: SampledPanelsArgs,
  q0: number,
  q1: number,
): void {
  const { k, R, C, blockRows } = g;
  const C4 = roundUp(C, 4);
  const a0 = Math.min(q0, blockRows);
  const a1 = Math.min(q1, blockRows);
  if (a1 > a0) {
    const dst = new Float32Array(buf, g.atAt + 4 * a0 * k * R, (a1 - a0) * k * R);
    stagePanels(dst, g.a, g.rows, R, R, k, g.sai, g.sap, a0, a1);
  }
  const b0 = Math.max(q0, blockRows) - blockRows;
  const b1 = Math.max(q1, blockRows) - blockRows;
  if (b1 > b0) {
    const dst = new Float32Array(buf, g.bAt + 4 * b0 * k * C4, (b1 - b0) * k * C4);
    stagePanels(dst, g.b, g.cols, C, C4, k, g.sbj, g.sbp, b0, b1);
  }
}

/**
 * Writes panels [q0, q1) of `src`'s lines in panels of `width` lines, each panel [k][lanes], from
 * dst[0]: panel q's element (p, t) = src[(q*width + t)*sLine + p*sK] for t < width and
 * q*width + t < lines, else 0. Whole panels of 4 or 8 lines (the 4x4 and 8x8 blocks) copy their
 * values per k step without the per-lane loops (LeNet-300-100's fc1 at 10.8%, batch 128: A and
 * B, 139k values, 0.18 -> 0.10 ms, the fastest of 300 calls in one scratch run).
 */
function stagePanels(
  dst: Float32Array,
  src: ArrayLike<number>,
  lines: number,
  width: number,
  lanes: number,
  k: number,
  sLine: number,
  sK: number,
  q0: number,
  q1: number,
): void {
  for (let q = q0, d = 0; q < q1; q++) {
    const live = Math.min(width, lines - q * width);
    let e0 = q * width * sLine;
    if (live === lanes && (lanes === 4 || lanes === 8)) {
      const [s1, s2, s3] = [sLine, 2 * sLine, 3 * sLine];
      for (let p = 0; p < k; p++, e0 += sK, d += 4) {
        dst[d] = src[e0]!;
        dst[d + 1] = src[e0 + s1]!;
        dst[d + 2] = src[e0 + s2]!;
        dst[d + 3] = src[e0 + s3]!;
        if (lanes === 8) {
          const e4 = e0 + 4 * sLine;
          dst[d + 4] = src[e4]!;
          dst[d + 5] = src[e4 + s1]!;
          dst[d + 6] = src[e4 + s2]!;
          dst[d + 7] = src[e4 + s3]!;
          d += 4;
        }
      }
      continue;
    }
    for (let p = 0; p < k; p++, e0 += sK) {
      for (let t = 0, e = e0; t < live; t++, e += sLine) dst[d++] = src[e]!;
      for (let t = live; t < lanes; t++) dst[d++] = 0;
    }
  }
}

/** Slots [p0, p1) of a product staged at `l` in t's memory. */
export function wasmSampledRange(
  t: WasmThread,
  shape: SampledShape,
  k: number,
  l: Omit<SampledLayout, "bytes">,
  p0: number,
  p1: number,
): void {
  if (p1 <= p0) return;
  runFor(t, shape)(p0, p1, l.rowOfAt, l.idxAt, l.atAt, l.bAt, l.outAt, k);
}

/** Copies the [nnz, R, C4] result out to the caller's [nnz, R, C] blocks. */
export function unstageSampled(s: SampledArgs, l: SampledLayout, buf: ArrayBufferLike): void {
  const { R, C, indptr, out } = s;
  const nnz = indptr[indptr.length - 1]!;
  const C4 = roundUp(C, 4);
  const Y = new Float32Array(buf, l.outAt, nnz * R * C4);
  if (C4 === C) out.set(Y.subarray(0, nnz * R * C));
  else for (let q = 0; q < nnz * R; q++) out.set(Y.subarray(q * C4, q * C4 + C), q * C);
}

/** The whole sampled product on this thread (float32 operands), staged after the GEMM scratch. */
export function wasmSampledSerial(s: SampledArgs): void {
  const nnz = s.indptr[s.indptr.length - 1]!;
  if (nnz === 0) return;
  const t = localWasmThread();
  const l = sampledLayout(s, SCRATCH_BYTES);
  const need = SCRATCH_BYTES + l.bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  const buf = t.memory.buffer;
  stageSampled(s, l, buf);
  wasmSampledRange(t, s, s.k, l, 0, nnz);
  unstageSampled(s, l, buf);
}
