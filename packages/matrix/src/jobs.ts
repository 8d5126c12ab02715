// The wire format of a pool job: numbers in a shared Float64Array, typed arrays as references
// to SharedArrayBuffers the worker already holds. Main thread and workers share this file so
// both sides agree on field order.
import { gemmPackedRange, gemmRange, packRange } from "./gemm.ts";
import { spmmRange } from "./spmm-kernel.ts";
import { wasmGemmPackedRange, wasmGemmRange, wasmPackRange } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import { wasmSpmmRange } from "./wasm-spmm.ts";
import type { SpmmLayout, SpmmShape } from "./wasm-spmm.ts";
import type { SpmmArgs } from "./spmm-kernel.ts";
import { sampledRange } from "./sampled-kernel.ts";
import type { SampledArgs } from "./sampled-kernel.ts";
import { col2imImages, im2colRows } from "./im2col-kernel.ts";
import type { PatchArgs } from "./im2col-kernel.ts";
import { kepRange } from "./kep-kernel.ts";
import type { KepArgs } from "./kep-kernel.ts";
import type { FloatArray, Trans } from "./types.ts";

export const KIND_GEMM = 1;
export const KIND_SPMM = 2;
export const KIND_SAMPLED = 3;
/** A pooled dense product in two jobs: pack both operands whole, then multiply the panels. */
export const KIND_PACK = 4;
export const KIND_GEMM_PACKED = 5;
/** Convolution patches (im2col-kernel.ts): im2col split by patch rows, col2im by images. */
export const KIND_IM2COL = 6;
export const KIND_COL2IM = 7;
/** The KEP convolution (kep-kernel.ts; its mode picks forward, input or weight gradient). */
export const KIND_KEP = 11;
/**
 * The same dense product on the WebAssembly kernel (wasm-gemm.ts): per-chunk packing, and the
 * two jobs over whole-operand panels in the pool's shared kernel memory (byte offsets apAt, bpAt).
 */
export const KIND_WASM_GEMM = 8;
export const KIND_WASM_PACK = 9;
export const KIND_WASM_GEMM_PACKED = 10;
/** A sparse product on the WebAssembly kernel (wasm-spmm.ts), staged in the pool's kernel memory. */
export const KIND_WASM_SPMM = 12;
/** Test hooks: make a worker throw inside a job, or exit as if it crashed. */
export const KIND_THROW = 90;
export const KIND_EXIT = 91;
/** Test hook: the worker finishes the job normally, then exits (a death between jobs). */
export const KIND_EXIT_AFTER = 92;
export const KIND_QUIT = 99;

/** Int32 control words, at the start of each worker's control buffer. */
export const SEQ = 0; // bumped by the main thread to post a job
export const DONE = 1; // set to the job's SEQ by the worker when finished
export const STATUS = 2; // STATUS_* of the last job
export const READY = 3; // 1 once the worker loop runs
export const DEAD = 4; // 1 when the worker thread is exiting
export const CLAIM = 5; // highest SEQ claimed by the worker, or cancelled by the caller (see pool.ts)
export const CTL_INTS = 16;
export const PARAMS = 96; // Float64 slots after the control words
/** Pool-wide work table: Int32 [NEXT chunk, COUNT] then Float64 ranges from byte 16. */
export const NEXT = 0;
export const COUNT = 1;
export const MAX_CHUNKS = 64;
export const WORK_BYTES = 16 + MAX_CHUNKS * 4 * 8;
export const STATUS_OK = 0;
export const STATUS_ERROR = 1;

export type AnyArray = FloatArray | Int32Array;

export interface GemmArgs {
  trans: Trans;
  a: FloatArray;
  b: FloatArray;
  c: FloatArray;
  m: number;
  k: number;
  n: number;
}

/** The two jobs of a pooled product on whole-operand panels (see gemm.ts, packRange). */
export interface PackArgs {
  trans: Trans;
  a: FloatArray;
  b: FloatArray;
  ap: Float64Array;
  bp: Float64Array;
  m: number;
  k: number;
  n: number;
}
export interface PackedGemmArgs {
  ap: Float64Array;
  bp: Float64Array;
  c: FloatArray;
  m: number;
  k: number;
  n: number;
}

/** The WebAssembly product's jobs: operands are float32, panels are offsets into kernel memory. */
export interface WasmGemmArgs {
  trans: Trans;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  m: number;
  k: number;
  n: number;
}
export interface WasmPackArgs {
  trans: Trans;
  a: Float32Array;
  b: Float32Array;
  apAt: number;
  bpAt: number;
  m: number;
  k: number;
  n: number;
}
export interface WasmPackedGemmArgs {
  c: Float32Array;
  apAt: number;
  bpAt: number;
  m: number;
  k: number;
  n: number;
}

/** The staged sparse product: block shape (the kernel's specialisation) and byte offsets. */
export interface WasmSpmmArgs extends SpmmShape, Omit<SpmmLayout, "bytes"> {}

interface Schema {
  nums: readonly string[];
  arrays: readonly string[];
  /** Arrays the kernel writes (copied back when the caller's array was not shared). */
  outputs: readonly string[];
  /**
   * True when the job's chunks together write every element of its outputs, so a staged output
   * need not be copied in first.
   */
  fullWrite?: boolean;
  /** The job runs the WebAssembly kernels: workers must hold the pool's kernel memory. */
  wasm?: boolean;
}

const PATCH_NUMS = [
  "n",
  "c",
  "h",
  "w",
  "kh",
  "kw",
  "strideH",
  "strideW",
  "padH",
  "padW",
  "dilationH",
  "dilationW",
  "outH",
  "outW",
  "batched",
] as const;

export const SCHEMAS: Record<number, Schema> = {
  [KIND_GEMM]: {
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "c"],
    outputs: ["c"],
    fullWrite: true,
  },
  [KIND_PACK]: {
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "ap", "bp"],
    outputs: ["ap", "bp"],
    fullWrite: true,
  },
  [KIND_GEMM_PACKED]: {
    nums: ["m", "k", "n"],
    arrays: ["ap", "bp", "c"],
    outputs: ["c"],
    fullWrite: true,
  },
  [KIND_WASM_GEMM]: {
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "c"],
    outputs: ["c"],
    fullWrite: true,
    wasm: true,
  },
  [KIND_WASM_PACK]: {
    nums: ["trans", "m", "k", "n", "apAt", "bpAt"],
    arrays: ["a", "b"],
    outputs: [],
    wasm: true,
  },
  [KIND_WASM_GEMM_PACKED]: {
    nums: ["m", "k", "n", "apAt", "bpAt"],
    arrays: ["c"],
    outputs: ["c"],
    fullWrite: true,
    wasm: true,
  },
  [KIND_WASM_SPMM]: {
    nums: ["ob", "ib", "eos", "eis", "ptrAt", "idxAt", "idsAt", "dataAt", "xAt", "outAt", "nPad"],
    arrays: [],
    outputs: [],
    wasm: true,
  },
  [KIND_SPMM]: {
    nums: [
      "bsz",
      "ob",
      "ib",
      "eos",
      "eis",
      "outerLimit",
      "innerLimit",
      "sxi",
      "sxj",
      "soo",
      "soj",
      "n",
    ],
    arrays: ["ptr", "idx", "ids", "data", "x", "out"],
    outputs: ["out"],
  },
  [KIND_SAMPLED]: {
    nums: ["R", "C", "rows", "cols", "sai", "sap", "sbp", "sbj", "k"],
    arrays: ["indptr", "indices", "a", "b", "out"],
    outputs: ["out"],
  },
  [KIND_IM2COL]: { nums: PATCH_NUMS, arrays: ["x", "cols"], outputs: ["cols"], fullWrite: true },
  [KIND_COL2IM]: { nums: PATCH_NUMS, arrays: ["cols", "x"], outputs: ["x"], fullWrite: true },
  [KIND_KEP]: {
    nums: [
      "mode",
      "n",
      "c",
      "h",
      "w",
      "f",
      "kh",
      "kw",
      "strideH",
      "strideW",
      "padH",
      "padW",
      "outH",
      "outW",
    ],
    arrays: ["ptr", "pos", "values", "a", "b", "out"],
    outputs: ["out"],
    fullWrite: true,
  },
  [KIND_THROW]: { nums: [], arrays: [], outputs: [] },
  [KIND_EXIT]: { nums: [], arrays: [], outputs: [] },
  [KIND_EXIT_AFTER]: { nums: [], arrays: [], outputs: [] },
};

let inPoolWorker = false;
/** Called by worker.ts so the test hooks know where they run. */
export function markPoolWorker(): void {
  inPoolWorker = true;
}

/** This thread's WebAssembly kernel, or a clear error when the job needs one it was not given. */
function need(wasm: WasmThread | undefined): WasmThread {
  if (wasm === undefined)
    throw new Error("matrix pool: a WebAssembly job reached a thread without kernel memory");
  return wasm;
}

/**
 * Runs one thread's share of a job (the same call on the main thread and in workers); `wasm` is
 * this thread's kernel on the pool's shared memory, for the WebAssembly jobs.
 */
export function runRange(
  kind: number,
  args: Record<string, unknown>,
  r: ArrayLike<number>,
  wasm?: WasmThread,
): void {
  if (kind === KIND_WASM_SPMM) {
    const g = args as unknown as WasmSpmmArgs;
    wasmSpmmRange(need(wasm), g, g, r[0]!, r[1]!);
  } else if (kind === KIND_WASM_GEMM_PACKED) {
    const g = args as unknown as WasmPackedGemmArgs;
    wasmGemmPackedRange(need(wasm), g.apAt, g.bpAt, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!);
  } else if (kind === KIND_WASM_PACK) {
    const g = args as unknown as WasmPackArgs;
    wasmPackRange(need(wasm), g.trans, g.a, g.b, g.apAt, g.bpAt, g.m, g.k, g.n, r[0]!, r[1]!);
  } else if (kind === KIND_WASM_GEMM) {
    const g = args as unknown as WasmGemmArgs;
    wasmGemmRange(need(wasm), g.trans, g.a, g.b, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!);
  } else if (kind === KIND_GEMM) {
    const g = args as unknown as GemmArgs;
    gemmRange(g.trans, g.a, g.b, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!);
  } else if (kind === KIND_GEMM_PACKED) {
    const g = args as unknown as PackedGemmArgs;
    gemmPackedRange(g.ap, g.bp, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!);
  } else if (kind === KIND_PACK) {
    const g = args as unknown as PackArgs;
    packRange(g.trans, g.a, g.b, g.ap, g.bp, g.m, g.k, g.n, r[0]!, r[1]!);
  } else if (kind === KIND_SPMM) spmmRange(args as unknown as SpmmArgs, r[0]!, r[1]!);
  else if (kind === KIND_IM2COL) im2colRows(args as unknown as PatchArgs, r[0]!, r[1]!);
  else if (kind === KIND_COL2IM) col2imImages(args as unknown as PatchArgs, r[0]!, r[1]!);
  else if (kind === KIND_KEP) kepRange(args as unknown as KepArgs, r[0]!, r[1]!);
  else if (kind === KIND_SAMPLED) sampledRange(args as unknown as SampledArgs, r[0]!, r[1]!);
  else if (kind === KIND_EXIT_AFTER)
    return; // worker.ts exits after reporting DONE
  else if (kind === KIND_THROW || kind === KIND_EXIT) {
    // Test hooks act only inside a pool worker.
    if (!inPoolWorker) return;
    if (kind === KIND_THROW) throw new Error("test hook: job failed inside the worker");
    process.exit(7);
  } else throw new Error(`unknown job kind ${kind}`);
}

export const TYPE_F32 = 1;
export const TYPE_F64 = 2;
export const TYPE_I32 = 3;

export function typeCode(a: AnyArray): number {
  return a instanceof Float32Array ? TYPE_F32 : a instanceof Float64Array ? TYPE_F64 : TYPE_I32;
}

/** Rebuilds a typed-array view in a worker. */
export function viewOf(
  buf: SharedArrayBuffer,
  code: number,
  byteOffset: number,
  length: number,
): AnyArray {
  if (code === TYPE_F32) return new Float32Array(buf, byteOffset, length);
  if (code === TYPE_F64) return new Float64Array(buf, byteOffset, length);
  return new Int32Array(buf, byteOffset, length);
}
