// Dense float32 GEMM on a WebAssembly SIMD micro-kernel generated at load time.
//
// Same Goto-style loop nest as gemm.ts (pack panels, multiply cache blocks, store or add each
// block into C), but the panels are float32 in a WebAssembly memory and the micro-kernel keeps
// an MR x NR tile of C in f32x4 registers: per k step it loads NR/4 vectors of B, and for each
// of the MR rows splats one value of A and does NR/4 multiply-adds: f32x4.mul then f32x4.add by
// default, or relaxed SIMD's f32x4.relaxed_madd with TESSERA_WASM_FMA=1 (fused on x64 with FMA3;
// Node 20's V8 has it behind a flag that enableRelaxedSimd sets). The tile sizes live in
// WASM_TILE only: the kernel, the packers, the blocking and the pool's chunking all derive from it.
//
// Numerics: each C element is a float32 sum over p in order within a k-block (KC long), added
// to C after each k-block. A lane is one element of C, so the sum never depends on which rows or
// columns a thread owns, on the tile an element sits in, or on whether the panels were packed by
// this thread or by the pool: the pooled result is bitwise the serial one. An epilogue (a bias
// per column of C and a ReLU: a Linear layer's, wasm-epilogue.ts) runs on each finished C block
// in kernel memory before the block is copied out: the float32 adds of adding the bias after.
//
// Memory: a thread's kernel instance works on a WebAssembly.Memory that is always shared
// (SharedArrayBuffer-backed), laid out as per-thread scratch regions (A block, B block, C block)
// followed, in a pool's memory, by whole-operand panels that every thread's kernel reads in
// place. Without a pool each thread uses a small memory of its own (one scratch region).
import { I32, ModuleBuilder, V128, compileModule, enableRelaxedSimd } from "./wasm-builder.ts";
import { emitEpilogue } from "./wasm-epilogue.ts";
import type { EpilogueKernel } from "./wasm-epilogue.ts";
import { defaultWasmFma } from "./kernels.ts";
import type { Code } from "./wasm-builder.ts";
import type { FloatArray, Trans } from "./types.ts";
import { packerFor } from "./pack.ts";
import { wasmPack, wasmPackBlocks, wasmPackImagesFirst } from "./wasm-pack.ts";
import { gemmEpilogue, roundUp, storerFor, strides } from "./gemm.ts";

/** The register tile: MR rows of A by NR columns of B (NR a multiple of 4). Change it here only. */
export const WASM_TILE: GemmTile = { mr: 4, nr: 8 };
const MR = WASM_TILE.mr;
const NR = WASM_TILE.nr;
/** k-block length (a B panel of NR x KC floats is 8 KB: it stays in L1 next to the A panel). */
export const WASM_KC = 256;
/** Rows of A per cache block, a multiple of MR. */
export const WASM_MC = roundUp(64, MR);
/** Columns of B per cache block, a multiple of NR. */
export const WASM_NC = roundUp(512, NR);
const MC = WASM_MC;
const NC = WASM_NC;

/** Bytes of one thread's scratch region: the A block, the B block and the C block, in float32. */
export const A_BYTES = 4 * MC * WASM_KC;
export const B_BYTES = 4 * WASM_KC * NC;
const C_BYTES = 4 * MC * NC;
export const SCRATCH_BYTES = roundUp(A_BYTES + B_BYTES + C_BYTES, 1 << 16);
const PAGE = 1 << 16;
/** The memory's declared maximum (1 GiB): a pool packs larger products chunk by chunk instead. */
export const MAX_PAGES = 1 << 14;

/**
 * A register tile: mr rows of A by nr columns of B, nr a multiple of 4; `fma` makes each
 * multiply-add one f32x4.relaxed_madd instead of f32x4.mul then f32x4.add.
 */
export interface GemmTile {
  readonly mr: number;
  readonly nr: number;
  readonly fma?: boolean;
}

/**
 * Emits block(aOff, bOff, cOff, m, n, kc) for the tile mr x nr: A holds m/mr panels of MR rows (element (p, l) of
 * panel i at aOff + 4*(i*MR*kc + p*MR + l)), B holds n/NR panels of NR columns (panel j at
 * bOff + 4*j*NR*kc), all byte offsets; stores the m x n float32 block A·B row-major (row stride
 * n) at cOff, or adds it to what is there when `add` is non-zero (a float32 add per element, the
 * same rounding as adding the block into C afterwards). m, n are positive multiples of MR, NR
 * and kc >= 1.
 */
function emitBlock(c: Code, { mr: MR, nr: NR, fma = false }: GemmTile): void {
  const [aOff, bOff, cOff, m, n, kc, add] = c.paramTuple(7);
  const i = c.local(I32);
  const j = c.local(I32);
  const a = c.local(I32);
  const b = c.local(I32);
  const bPanel = c.local(I32);
  const end = c.local(I32);
  const o = c.local(I32);
  const aStride = c.local(I32); // bytes of one A panel
  const bStride = c.local(I32); // bytes of one B panel
  const rowBytes = c.local(I32);
  const av = c.local(V128);
  const bv = Array.from({ length: NR / 4 }, () => c.local(V128));
  const acc = Array.from({ length: MR }, () => Array.from({ length: NR / 4 }, () => c.local(V128)));

  c.get(kc)
    .i32Const(4 * MR)
    .i32Mul()
    .set(aStride);
  c.get(kc)
    .i32Const(4 * NR)
    .i32Mul()
    .set(bStride);
  c.get(n).i32Const(2).i32Shl().set(rowBytes);
  c.get(bOff).set(bPanel);
  c.loop((columns) => {
    c.get(aOff).set(a);
    c.i32Const(0).set(i);
    c.loop((rows) => {
      for (const row of acc) for (const v of row) c.v128Zero().set(v);
      c.get(bPanel).set(b);
      c.get(a).get(aStride).i32Add().set(end);
      c.loop((steps) => {
        for (let q = 0; q < NR / 4; q++)
          c.get(b)
            .v128Load(16 * q)
            .set(bv[q]!);
        for (let r = 0; r < MR; r++) {
          c.get(a)
            .v128Load32Splat(4 * r)
            .set(av);
          for (let q = 0; q < NR / 4; q++)
            if (fma) c.get(av).get(bv[q]!).get(acc[r]![q]!).f32x4RelaxedMadd().set(acc[r]![q]!);
            else c.get(acc[r]![q]!).get(av).get(bv[q]!).f32x4Mul().f32x4Add().set(acc[r]![q]!);
        }
        c.get(a)
          .i32Const(4 * MR)
          .i32Add()
          .set(a);
        c.get(b)
          .i32Const(4 * NR)
          .i32Add()
          .set(b);
        c.get(a).get(end).i32LtU().brIf(steps);
      });
      // o = cOff + 4*(i*n + j)
      c.get(cOff).get(i).get(n).i32Mul().get(j).i32Add().i32Const(2).i32Shl().i32Add().set(o);
      const store = (addOld: boolean) => {
        for (let r = 0; r < MR; r++) {
          for (let q = 0; q < NR / 4; q++) {
            c.get(o);
            if (addOld)
              c.get(o)
                .v128Load(16 * q)
                .get(acc[r]![q]!)
                .f32x4Add();
            else c.get(acc[r]![q]!);
            c.v128Store(16 * q);
          }
          if (r + 1 < MR) c.get(o).get(rowBytes).i32Add().set(o);
        }
      };
      c.get(add).ifElse(
        () => store(true),
        () => store(false),
      );
      c.get(i).i32Const(MR).i32Add().tee(i).get(m).i32LtU().brIf(rows);
    });
    c.get(bPanel).get(bStride).i32Add().set(bPanel);
    c.get(j).i32Const(NR).i32Add().tee(j).get(n).i32LtU().brIf(columns);
  });
}

/**
 * The kernel module's bytes for a tile, over an imported shared memory: `block` (the
 * micro-kernel loop) and `epi` (a bias per column and a ReLU over a C block, wasm-epilogue.ts).
 */
export function gemmKernelBytes(tile: GemmTile = WASM_TILE): Uint8Array<ArrayBuffer> {
  if (!(tile.mr >= 1 && tile.nr >= 4 && tile.nr % 4 === 0 && Number.isInteger(tile.mr)))
    throw new RangeError(
      `gemmKernelBytes: tile must have mr >= 1 and nr a positive multiple of 4, got ${tile.mr}x${tile.nr}`,
    );
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("block", [I32, I32, I32, I32, I32, I32, I32], [], (c) => emitBlock(c, tile))
    .func("epi", [I32, I32, I32, I32, I32, I32], [], emitEpilogue)
    .build();
}

// The compiled kernel of each variant (index: fma ? 1 : 0), compiled on first use in each thread.
const compiled: (WebAssembly.Module | undefined)[] = [undefined, undefined];
function kernelModule(fma: boolean): WebAssembly.Module {
  const what = fma ? "matrix wasm GEMM kernel (TESSERA_WASM_FMA)" : "matrix wasm GEMM kernel";
  if (fma) enableRelaxedSimd(what);
  return (compiled[fma ? 1 : 0] ??= compileModule(what, gemmKernelBytes({ ...WASM_TILE, fma })));
}

/** A shared WebAssembly memory the kernels accept, of at least `bytes`. */
export function createKernelMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.ceil(bytes / PAGE);
  if (pages > MAX_PAGES)
    throw new RangeError(
      `matrix wasm kernels: ${bytes} bytes exceed the ${MAX_PAGES * PAGE}-byte memory`,
    );
  return new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
}

/**
 * One thread's kernel on a memory: its scratch region starts at byte `scratchAt`; `fma` picks
 * the fused micro-kernel (default: TESSERA_WASM_FMA). The float32 view is rebuilt when the
 * memory has grown (another thread may have grown a shared memory).
 */
export class WasmThread {
  readonly block: (
    aOff: number,
    bOff: number,
    cOff: number,
    m: number,
    n: number,
    kc: number,
    add: number,
  ) => void;
  /** epi(outAt, outRow, r0, r1, biasAt, mode): wasm-epilogue.ts's pass over a C block. */
  readonly epi: EpilogueKernel;
  private view: Float32Array;

  constructor(
    readonly memory: WebAssembly.Memory,
    readonly scratchAt: number,
    readonly fma: boolean = defaultWasmFma(),
  ) {
    const instance = new WebAssembly.Instance(kernelModule(fma), { env: { memory } });
    this.block = instance.exports.block as WasmThread["block"];
    this.epi = instance.exports.epi as WasmThread["epi"];
    this.view = new Float32Array(memory.buffer);
  }

  /** The memory as float32, current length. */
  f32(): Float32Array {
    if (this.view.byteLength !== this.memory.buffer.byteLength)
      this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }
}

let local: WasmThread | undefined;
/** This thread's own kernel and scratch, for products without a pool (created on first use). */
export function localWasmThread(): WasmThread {
  return (local ??= new WasmThread(createKernelMemory(SCRATCH_BYTES), 0));
}

/** Serial products pack both operands whole (and read them in place) when the panels fit in this. */
export const LOCAL_PANEL_BYTES = 32 << 20;

/**
 * C = op(A)·op(B) on this thread alone: both operands packed whole into this thread's memory
 * after its scratch region, then the packed product (the pool's path, on one thread); products
 * whose panels exceed LOCAL_PANEL_BYTES pack block by block instead. Same bits either way.
 * `bias` and `mode`: the epilogue (wasmGemmPackedRange's, or gemmEpilogue after the product).
 */
export function wasmGemmSerial(
  trans: Trans,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  bias: Float32Array | null = null,
  mode = 0,
): void {
  const t = localWasmThread();
  const [la, lb] = wasmPackedBytes(m, k, n);
  if (la + lb > LOCAL_PANEL_BYTES || k === 0) {
    wasmGemmRange(t, trans, a, b, c, m, k, n, 0, m, 0, n);
    gemmEpilogue(c, n, 0, m, 0, n, bias, (mode & 2) !== 0);
    return;
  }
  const need = SCRATCH_BYTES + la + lb;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / PAGE));
  const [pa, pb] = wasmPanelCounts(m, n);
  wasmPackRange(t, trans, a, b, SCRATCH_BYTES, SCRATCH_BYTES + la, m, k, n, 0, pa + pb);
  wasmGemmPackedRange(t, SCRATCH_BYTES, SCRATCH_BYTES + la, c, m, k, n, 0, m, 0, n, bias, mode);
}

/**
 * Multiplies the packed blocks at byte offsets aAt (mc rows) and bAt (nc columns) and stores
 * (first k-block) or adds the mc x nc result into C at cOff.
 */
export function multiplyBlock(
  t: WasmThread,
  H: Float32Array,
  aAt: number,
  bAt: number,
  mc: number,
  nc: number,
  kc: number,
  c: FloatArray,
  cOff: number,
  ldc: number,
  accumulate: boolean,
): void {
  const nr = roundUp(nc, NR);
  const cAt = t.scratchAt + A_BYTES + B_BYTES;
  t.block(aAt, bAt, cAt, roundUp(mc, MR), nr, kc, 0);
  storerFor(c, H)(H, cAt >> 2, nr, c, cOff, ldc, mc, nc, accumulate);
}

/**
 * C[i, j] for i in [r0, r1), j in [c0, c1), packing each cache block into this thread's scratch
 * (the serial product, and the pool's per-chunk path for products too large to pack whole).
 */
export function wasmGemmRange(
  t: WasmThread,
  trans: Trans,
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
): void {
  if (r1 <= r0 || c1 <= c0) return;
  if (k === 0) {
    for (let i = r0; i < r1; i++) c.fill(0, i * n + c0, i * n + c1);
    return;
  }
  const [sai, sap, sbp, sbj] = strides(trans, m, k, n);
  const H = t.f32();
  const aAt = t.scratchAt;
  const bAt = aAt + A_BYTES;
  const packA = packerFor(a, H);
  const packB = packerFor(b, H);
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = Math.min(NC, c1 - jc);
    for (let pc = 0; pc < k; pc += WASM_KC) {
      const kc = Math.min(WASM_KC, k - pc);
      packB(
        b,
        pc * sbp + jc * sbj,
        sbj,
        sbp,
        nc,
        0,
        Math.ceil(nc / NR),
        kc,
        NR,
        H,
        bAt >> 2,
        NR * kc,
      );
      for (let ic = r0; ic < r1; ic += MC) {
        const mc = Math.min(MC, r1 - ic);
        packA(
          a,
          ic * sai + pc * sap,
          sai,
          sap,
          mc,
          0,
          Math.ceil(mc / MR),
          kc,
          MR,
          H,
          aAt >> 2,
          MR * kc,
        );
        multiplyBlock(t, H, aAt, bAt, mc, nc, kc, c, ic * n + jc, n, pc > 0);
      }
    }
  }
}

/** Whole-operand panels: ceil(m/MR) panels of A and ceil(n/NR) of B. */
export function wasmPanelCounts(m: number, n: number): [number, number] {
  return [Math.ceil(m / MR), Math.ceil(n / NR)];
}

/** Bytes of the whole-operand panels of A and of B (float32), each a multiple of 16. */
export function wasmPackedBytes(m: number, k: number, n: number): [number, number] {
  const [pa, pb] = wasmPanelCounts(m, n);
  return [roundUp(4 * pa * MR * k, 16), roundUp(4 * pb * NR * k, 16)];
}

/**
 * Packs panels [u0, u1) of the whole operands into the memory at byte offsets apAt (A) and bpAt
 * (B): units below ceil(m/MR) are A panels, the rest B panels. Stored k-block by k-block: for
 * the k-block at pc (length kc), A panel q sits at element pc*MR*pa + q*MR*kc (B likewise), so
 * the panels of one cache block are contiguous and the kernel reads them in place. Written by
 * the generated pack kernels (wasm-pack.ts) through t's scratch region, which must be free.
 */
export function wasmPackRange(
  t: WasmThread,
  trans: Trans,
  a: Float32Array,
  b: Float32Array,
  apAt: number,
  bpAt: number,
  m: number,
  k: number,
  n: number,
  u0: number,
  u1: number,
): void {
  const [pa, pb] = wasmPanelCounts(m, n);
  const [sai, sap, sbp, sbj] = strides(trans, m, k, n);
  if (u0 < pa)
    wasmPackBlocks(t, a, sai, sap, m, u0, Math.min(u1, pa), k, WASM_KC, MR, apAt >> 2, pa);
  if (u1 > pa)
    wasmPackBlocks(
      t,
      b,
      sbj,
      sbp,
      n,
      Math.max(u0, pa) - pa,
      u1 - pa,
      k,
      WASM_KC,
      NR,
      bpAt >> 2,
      pb,
    );
}

/**
 * The A panels of wasmPackRange (trans "none": A [m, k] row-major) for A held images first:
 * A[r, i·P + p] = a[(i·m + r)·P + p], i.e. a is [k/P, m, P], a convolution's output gradient
 * in NCHW read as [F, N·P] without permuting it first. Same panels, bit for bit: each k-block
 * is packed one image's run of columns at a time (rows P apart, columns contiguous).
 */
export function wasmPackImagesFirstA(
  t: WasmThread,
  a: Float32Array,
  apAt: number,
  m: number,
  k: number,
  P: number,
  u0: number,
  u1: number,
): void {
  const [pa] = wasmPanelCounts(m, 1);
  const q1 = Math.min(u1, pa);
  if (u0 >= q1) return;
  if (wasmPackImagesFirst(t, a, m, k, P, u0, q1, WASM_KC, MR, apAt >> 2, pa)) return;
  for (let pc = 0; pc < k; pc += WASM_KC) {
    const kc = Math.min(WASM_KC, k - pc);
    const at = (apAt >> 2) + pc * MR * pa + u0 * MR * kc;
    for (let s = pc; s < pc + kc;) {
      const img = Math.floor(s / P);
      const e = Math.min(pc + kc, (img + 1) * P);
      const off = img * m * P + (s - img * P);
      wasmPack(t, a, off, P, 1, m, u0, q1, e - s, MR, at + (s - pc) * MR, MR * kc);
      s = e;
    }
  }
}

/** Runs shorter than this many floats are copied element by element (copyRows). */
const COPY_LOOP_BELOW = 32;

/**
 * Copies `rows` runs of `len` floats from H (from h, row stride ldh) into c (from o, row
 * stride ldc). Long runs are a TypedArray.set each (a memcpy: the element loop of storerFor
 * cost 8% of a LeNet-5 epoch on this path); runs shorter than COPY_LOOP_BELOW floats an element
 * loop, as set's subarray costs more than the copy there: a pooled product's narrow column
 * chunks (64 rows of 8 floats 0.51 µs against 2.09, of 24 1.96 against 2.47, of 32 3.04 against
 * 2.36: `pnpm tsx packages/matrix/bench/copy-rows.ts`,
 * docs/benchmarks/epoch-2026-12-03-s20/copy-rows.txt).
 */
export function copyRows(
  H: Float32Array,
  h: number,
  ldh: number,
  c: Float32Array,
  o: number,
  ldc: number,
  rows: number,
  len: number,
): void {
  if (len < COPY_LOOP_BELOW) {
    for (let r = 0; r < rows; r++, h += ldh, o += ldc)
      for (let q = 0; q < len; q++) c[o + q] = H[h + q]!;
  } else for (let r = 0; r < rows; r++, h += ldh, o += ldc) c.set(H.subarray(h, h + len), o);
}

/**
 * C[r0:r1, c0:c1] from panels packed whole by wasmPackRange, read in place from the shared
 * memory (no copy into the thread's scratch). r0 must be a multiple of MR and c0 of NR. `mode`
 * (wasm-epilogue.ts's epilogueMode) adds bias[j] to column j (bit 0) and applies max(v, +0) (bit
 * 1) to each C block in kernel memory before it is copied out: gemmEpilogue's values.
 */
export function wasmGemmPackedRange(
  t: WasmThread,
  apAt: number,
  bpAt: number,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  r0: number,
  r1: number,
  c0: number,
  c1: number,
  bias: Float32Array | null = null,
  mode = 0,
): void {
  if (r1 <= r0 || c1 <= c0) return;
  if (r0 % MR !== 0 || c0 % NR !== 0)
    throw new RangeError(
      `wasmGemmPackedRange: range must start on a panel (row ${r0} of ${MR}, column ${c0} of ${NR})`,
    );
  if (k === 0) {
    for (let i = r0; i < r1; i++) c.fill(0, i * n + c0, i * n + c1);
    gemmEpilogue(c, n, r0, r1, c0, c1, bias, (mode & 2) !== 0);
    return;
  }
  const [pa, pb] = wasmPanelCounts(m, n);
  const H = t.f32();
  const cAt = t.scratchAt + A_BYTES + B_BYTES;
  // k-blocks innermost: the kernel adds each k-block's sums into the C block in the scratch
  // region (the same float32 adds as adding them into C), and C is written once per block.
  for (let jc = c0; jc < c1; jc += NC) {
    const nc = Math.min(NC, c1 - jc);
    const nr = roundUp(nc, NR);
    for (let ic = r0; ic < r1; ic += MC) {
      const mc = Math.min(MC, r1 - ic);
      for (let pc = 0; pc < k; pc += WASM_KC) {
        const kc = Math.min(WASM_KC, k - pc);
        const aAt = apAt + 4 * (pc * MR * pa + ic * kc);
        const bAt = bpAt + 4 * (pc * NR * pb + jc * kc);
        t.block(aAt, bAt, cAt, roundUp(mc, MR), nr, kc, pc > 0 ? 1 : 0);
      }
      if (mode !== 0) {
        // the block's bias columns in the A block's scratch (unused here: the panels are read
        // in place); columns past nc are padding the copy below leaves behind
        if ((mode & 1) !== 0) H.set(bias!.subarray(jc, jc + nc), t.scratchAt >> 2);
        t.epi(cAt, 4 * nr, 0, mc, t.scratchAt, mode);
      }
      copyRows(H, cAt >> 2, nr, c, ic * n + jc, n, mc, nc);
    }
  }
}
