// Pool jobs: one typed definition per kind (its argument fields, which are outputs, and the
// range function that runs a share), and the wire format both sides use: numbers in a shared
// Float64Array, typed arrays as references to SharedArrayBuffers the worker already holds.
// Encoding and decoding live here, next to the definitions, so the main thread and the workers
// cannot disagree on field order or offsets.
//
// Adding a job kind: a KIND_* number, its argument interface, and one `job<Args>()({...})` entry
// in JOBS naming every field as a number or an array (the compiler rejects a misspelt, missing
// or mistyped field) and the function that runs rows/lines [r[0], r[1]) (and r[2], r[3]).
import * as kinds from "./jobs.ts";
import { gemmPackedRange, gemmRange, packRange } from "./gemm.ts";
import { spmmChainRange, spmmRange } from "./spmm-kernel.ts";
import {
  wasmGemmPackedRange,
  wasmGemmRange,
  wasmGemmSerial,
  wasmPackImagesFirstA,
  wasmPackRange,
} from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import { spmmColumnsRange, wasmSpmmRange } from "./wasm-spmm.ts";
import type { SpmmLayout, SpmmShape, WasmSpmmColumnsArgs } from "./wasm-spmm.ts";
import { stageSampledPanels, wasmSampledRange } from "./wasm-sampled.ts";
import type { SampledPanelsArgs } from "./wasm-sampled.ts";
import { col2imRange, implicitRange, stagePlanes } from "./wasm-conv.ts";
import type { Col2imArgs, ImplicitArgs, PadArgs } from "./wasm-conv.ts";
import { winogradGradRange, winogradRange } from "./wasm-winograd.ts";
import type { WinogradArgs, WinogradGradArgs } from "./wasm-winograd.ts";
import type { SampledLayout, SampledShape } from "./wasm-sampled.ts";
import type { SpmmArgs, SpmmCall, SpmmChainArgs } from "./spmm-kernel.ts";
import { maxPoolBackwardRange } from "./pool2d-kernel.ts";
import {
  reluBackwardColumnsRange,
  reluBackwardRange,
  reluBackwardSumsRange,
  reluRange,
} from "./wasm-relu.ts";
import { maxPoolRange } from "./wasm-pool2d.ts";
import { channelSumsRange } from "./channel-sums-kernel.ts";
import type { ChannelSumsArgs } from "./channel-sums-kernel.ts";
import type { MaxPoolArgs } from "./wasm-pool2d.ts";
import type {
  ReluArgs,
  ReluBackwardArgs,
  ReluBackwardColumnsArgs,
  ReluBackwardSumsArgs,
} from "./wasm-relu.ts";
import { epilogueMode } from "./wasm-epilogue.ts";
import { adamRange } from "./adam-kernel.ts";
import { adamWasmRange } from "./wasm-adam.ts";
import type { AdamJobArgs } from "./adam-kernel.ts";
import type { MaxPoolBackwardArgs } from "./pool2d-kernel.ts";
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
/** The sampled product on the WebAssembly kernel (wasm-sampled.ts), staged like KIND_WASM_SPMM. */
export const KIND_WASM_SAMPLED = 13;
/** Convolution products on the WebAssembly kernels (wasm-conv.ts): B gathered from the staged input. */
export const KIND_WASM_CONV = 14;
/** The convolution's input gradient (wasm-conv.ts): Wᵀ·G by image chunks, scattered onto dxp. */
export const KIND_WASM_COL2IM = 15;
/** Max pooling's backward scatter (pool2d.ts), split by planes. */
export const KIND_MAXPOOL_BACKWARD = 16;
/** Adam's update (adam-kernel.ts), split by element ranges. */
export const KIND_ADAM = 17;
/** Staging a convolution's zero-padded input into kernel memory (wasm-conv.ts), split by planes. */
export const KIND_WASM_STAGE = 18;
/** ReLU and its gradient on the WebAssembly kernels (wasm-relu.ts), split by element ranges. */
export const KIND_WASM_RELU = 19;
export const KIND_WASM_RELU_BACKWARD = 20;
/** Max pooling's forward on the WebAssembly kernel (wasm-pool2d.ts), split by planes. */
export const KIND_WASM_MAXPOOL = 21;
/** Per-channel sums (channel-sums-kernel.ts), split by channels. */
export const KIND_CHANNEL_SUMS = 22;
/** The batch-major sparse product split by X's columns, epilogue included (wasm-spmm.ts). */
export const KIND_WASM_SPMM_COLUMNS = 23;
/** The sampled product's A and B panels staged into kernel memory (wasm-sampled.ts), by panels. */
export const KIND_WASM_SAMPLED_STAGE = 24;
/** Consecutive BSR layers' forward, split by batch rows, each chunk through every layer (chain.ts). */
export const KIND_SPMM_CHAIN = 25;
/** Adam's update on the WebAssembly kernel (wasm-adam.ts), float32, split by element ranges. */
export const KIND_WASM_ADAM = 26;
/** The Winograd F(2x2, r x r) forward convolution (wasm-winograd.ts), split by images. */
export const KIND_WASM_WINOGRAD = 27;
/** Its weight gradient, split by fixed image chunks (WINOGRAD_GRAD_CHUNKS). */
export const KIND_WASM_WINOGRAD_GRAD = 28;
/** ReLU's gradient with the bias gradient's plane sums (wasm-relu.ts), split by planes. */
export const KIND_WASM_RELU_BACKWARD_SUMS = 29;
/** ReLU's gradient with a Linear layer's bias gradient (column sums, wasm-relu.ts), by columns. */
export const KIND_WASM_RELU_BACKWARD_COLUMNS = 30;
/** Two independent dense products, each run whole by one thread (dense.ts, matmulPair). */
export const KIND_GEMM_PAIR = 31;
/**
 * The name of a job kind, from its KIND_* constant ("wasm_gemm_packed" for KIND_WASM_GEMM_PACKED),
 * or the number as a string for an unknown kind: for diagnostics (MatrixPool.msByKind).
 */
export function jobKindName(kind: number): string {
  for (const [name, value] of Object.entries(kinds))
    if (name.startsWith("KIND_") && value === kind) return name.slice(5).toLowerCase();
  return String(kind);
}

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

/**
 * Two dense products for KIND_GEMM_PAIR: chunk i (i = 0, 1) runs product i whole on the thread
 * that takes it, serially, on the kernel path `wasm` says (1: WebAssembly, float32 operands).
 */
export interface GemmPairArgs {
  wasm: number;
  trans0: Trans;
  a0: FloatArray;
  b0: FloatArray;
  c0: FloatArray;
  m0: number;
  k0: number;
  n0: number;
  trans1: Trans;
  a1: FloatArray;
  b1: FloatArray;
  c1: FloatArray;
  m1: number;
  k1: number;
  n1: number;
}

/** Product i of a pair, whole, on this thread (the bits of the serial product on its path). */
function gemmPairRun(g: GemmPairArgs, i: number): void {
  const [trans, a, b, c, m, k, n] =
    i === 0
      ? [g.trans0, g.a0, g.b0, g.c0, g.m0, g.k0, g.n0]
      : [g.trans1, g.a1, g.b1, g.c1, g.m1, g.k1, g.n1];
  if (g.wasm === 1)
    wasmGemmSerial(trans, a as Float32Array, b as Float32Array, c as Float32Array, m, k, n);
  else gemmRange(trans, a, b, c, m, k, n, 0, m, 0, n);
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
  /** 0, or A's images-first run length (wasmPackImagesFirstA: A only, trans "none"). */
  P: number;
}
export interface WasmPackedGemmArgs {
  c: Float32Array;
  apAt: number;
  bpAt: number;
  m: number;
  k: number;
  n: number;
  /** The epilogue's bias (n values; an empty array without one) and mode (epilogueMode). */
  bias: Float32Array;
  epi: number;
}

/**
 * The asm.js sparse product as a job, with its epilogue: each chunk adds the bias and applies
 * the ReLU to the outputs it computed, inside the kernel, while they are in its cache (run on
 * the caller after a pooled product instead, the pass over LeNet-300-100's fc1 output at 10.8%
 * cost 0.108 ms after a 0.60 ms two-thread product, every line just written by the other core;
 * in the chunks 0.053 ms: one timing script run on an idle machine, 2026-12-02).
 * `epi`: bit 0 a bias (in `bias`; an empty array without one), bit 1 the ReLU.
 */
export interface SpmmJobArgs extends SpmmArgs {
  bias: FloatArray;
  epi: number;
}

/** The job's fields for `s`, epilogue included. */
export function spmmJob(s: SpmmCall): SpmmJobArgs {
  const bias = s.bias ?? null;
  const { bias: _b, relu: _r, ...rest } = s;
  return {
    ...rest,
    bias: bias ?? s.data.subarray(0, 0),
    epi: epilogueMode(bias, s.relu),
  };
}

/**
 * The call a job's chunks run, one object per job: the asm.js kernel stages the blocks into its
 * heap once per call object (spmm-kernel.ts stageJob), so a fresh object per chunk would copy
 * them again for every chunk. It did from 32b9bb3 until this cache: on two threads LeNet-300-100's
 * fc1 at 10.8% (1578 4x4 blocks, 8 chunks) took 0.72-0.79 ms with the copies and 0.63-0.66
 * without, its whole BSR plan 0.88-0.94 ms and 0.76-0.80 (fastest reps, scratch runs on an idle
 * machine, 2026-12-02).
 * The last job's call is kept (a thread runs one job at a time, its chunks one after another).
 */
let lastJob: SpmmJobArgs | undefined;
let lastCall: SpmmCall | undefined;

function withJobEpilogue(g: SpmmJobArgs): SpmmCall {
  if (g !== lastJob || lastCall === undefined) {
    const { bias, epi, ...rest } = g;
    lastCall =
      epi === 0 ? rest : { ...rest, bias: (epi & 1) !== 0 ? bias : null, relu: (epi & 2) !== 0 };
    lastJob = g;
  }
  return lastCall;
}

/** The staged sparse product: block shape (the kernel's specialisation) and byte offsets. */
export interface WasmSpmmArgs extends SpmmShape, Omit<SpmmLayout, "bytes"> {}

/** WasmSpmmArgs' fields, which both wasm sparse-product jobs carry (one list, checked by job()). */
const SPMM_STAGED_NUMS = [
  "ob",
  "ib",
  "eos",
  "eis",
  "ptrAt",
  "idxAt",
  "idsAt",
  "dataAt",
  "xAt",
  "outAt",
  "nPad",
  "panelBytes",
  "xLine",
] as const satisfies readonly (keyof WasmSpmmArgs)[];

/** The staged sampled product: block shape, k and byte offsets. */
export interface WasmSampledArgs extends SampledShape, Omit<SampledLayout, "bytes"> {
  k: number;
}

/** Fields of A holding numbers / typed arrays (the two things a job can carry). */
type NumKeys<A> = { [K in keyof A]-?: A[K] extends number ? K : never }[keyof A] & string;
type ArrayKeys<A> = { [K in keyof A]-?: A[K] extends AnyArray ? K : never }[keyof A] & string;

/** One job kind: its wire fields, its outputs, and what runs a share of it. */
export interface JobDef<A = never> {
  nums: readonly NumKeys<A>[];
  arrays: readonly ArrayKeys<A>[];
  /** Arrays the kernel writes (copied back when the caller's array was not shared). */
  outputs: readonly ArrayKeys<A>[];
  /**
   * True when the job's chunks together write every element of its outputs, so a staged output
   * need not be copied in first.
   */
  fullWrite?: boolean;
  /** The job runs the WebAssembly kernels: workers must hold the pool's kernel memory. */
  wasm?: boolean;
  /** Runs one share: r = [lo, hi, lo2, hi2] as the job's chunks were cut. */
  run(args: A, r: ArrayLike<number>, wasm: WasmThread | undefined): void;
}

/**
 * Typed constructor of a JobDef: `job<Args>()({ nums, arrays, ... })` fails to compile unless
 * nums and arrays together name every field of Args, each by its kind.
 */
function job<A>() {
  return <const N extends readonly NumKeys<A>[], const R extends readonly ArrayKeys<A>[]>(
    d: Omit<JobDef<A>, "nums" | "arrays" | "outputs"> & {
      nums: N;
      arrays: R;
      outputs: readonly R[number][];
    } & ([Exclude<keyof A, N[number] | R[number]>] extends [never]
        ? unknown
        : { missingFields: Exclude<keyof A, N[number] | R[number]> }),
  ): JobDef<A> => d as unknown as JobDef<A>;
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

/** Test hooks act only inside a pool worker. */
const hook = (act: () => void) => ({
  nums: [],
  arrays: [],
  outputs: [],
  run: () => {
    if (inPoolWorker) act();
  },
});

/** Every job kind a pool runs (workers look a kind up here too). */
export const JOBS: Readonly<Record<number, JobDef<never>>> = {
  [KIND_GEMM]: job<GemmArgs>()({
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "c"],
    outputs: ["c"],
    fullWrite: true,
    run: (g, r) => gemmRange(g.trans, g.a, g.b, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!),
  }),
  [KIND_GEMM_PAIR]: job<GemmPairArgs>()({
    nums: ["wasm", "trans0", "m0", "k0", "n0", "trans1", "m1", "k1", "n1"],
    arrays: ["a0", "b0", "c0", "a1", "b1", "c1"],
    outputs: ["c0", "c1"],
    fullWrite: true,
    run: (g, r) => {
      for (let i = r[0]!; i < r[1]!; i++) gemmPairRun(g, i);
    },
  }),
  [KIND_PACK]: job<PackArgs>()({
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "ap", "bp"],
    outputs: ["ap", "bp"],
    fullWrite: true,
    run: (g, r) => packRange(g.trans, g.a, g.b, g.ap, g.bp, g.m, g.k, g.n, r[0]!, r[1]!),
  }),
  [KIND_GEMM_PACKED]: job<PackedGemmArgs>()({
    nums: ["m", "k", "n"],
    arrays: ["ap", "bp", "c"],
    outputs: ["c"],
    fullWrite: true,
    run: (g, r) => gemmPackedRange(g.ap, g.bp, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!),
  }),
  [KIND_WASM_GEMM]: job<WasmGemmArgs>()({
    nums: ["trans", "m", "k", "n"],
    arrays: ["a", "b", "c"],
    outputs: ["c"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) =>
      wasmGemmRange(need(w), g.trans, g.a, g.b, g.c, g.m, g.k, g.n, r[0]!, r[1]!, r[2]!, r[3]!),
  }),
  [KIND_WASM_PACK]: job<WasmPackArgs>()({
    nums: ["trans", "m", "k", "n", "apAt", "bpAt", "P"],
    arrays: ["a", "b"],
    outputs: [],
    wasm: true,
    run: (g, r, w) =>
      g.P > 0
        ? wasmPackImagesFirstA(need(w), g.a, g.apAt, g.m, g.k, g.P, r[0]!, r[1]!)
        : wasmPackRange(need(w), g.trans, g.a, g.b, g.apAt, g.bpAt, g.m, g.k, g.n, r[0]!, r[1]!),
  }),
  [KIND_WASM_GEMM_PACKED]: job<WasmPackedGemmArgs>()({
    nums: ["m", "k", "n", "apAt", "bpAt", "epi"],
    arrays: ["c", "bias"],
    outputs: ["c"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) =>
      wasmGemmPackedRange(
        need(w),
        g.apAt,
        g.bpAt,
        g.c,
        g.m,
        g.k,
        g.n,
        r[0]!,
        r[1]!,
        r[2]!,
        r[3]!,
        (g.epi & 1) !== 0 ? g.bias : null,
        g.epi,
      ),
  }),
  [KIND_WASM_SPMM]: job<WasmSpmmArgs>()({
    nums: SPMM_STAGED_NUMS,
    arrays: [],
    outputs: [],
    wasm: true,
    run: (g, r, w) => wasmSpmmRange(need(w), g, g, r[0]!, r[1]!),
  }),
  [KIND_WASM_SPMM_COLUMNS]: job<WasmSpmmColumnsArgs>()({
    nums: [
      ...SPMM_STAGED_NUMS,
      "outRow",
      "biasAt",
      "sxi",
      "sxj",
      "n",
      "innerLimit",
      "outerBlocks",
      "outerLimit",
      "epi",
    ],
    arrays: ["x", "out"],
    outputs: ["out"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => spmmColumnsRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_SAMPLED_STAGE]: job<SampledPanelsArgs>()({
    nums: [
      "sai",
      "sap",
      "sbp",
      "sbj",
      "rows",
      "cols",
      "R",
      "C",
      "k",
      "blockRows",
      "blockCols",
      "atAt",
      "bAt",
    ],
    arrays: ["a", "b"],
    outputs: [],
    wasm: true,
    run: (g, r, w) => stageSampledPanels(need(w).memory.buffer, g, r[0]!, r[1]!),
  }),
  [KIND_WASM_SAMPLED]: job<WasmSampledArgs>()({
    nums: ["R", "C", "k", "rowOfAt", "idxAt", "atAt", "bAt", "outAt"],
    arrays: [],
    outputs: [],
    wasm: true,
    run: (g, r, w) => wasmSampledRange(need(w), g, g.k, g, r[0]!, r[1]!),
  }),
  [KIND_WASM_CONV]: job<ImplicitArgs>()({
    nums: [
      "apAt",
      "xpAt",
      "kTabAt",
      "lTabAt",
      "lFlagsAt",
      "m",
      "k",
      "n",
      "P",
      "biasAt",
      "relu",
      "kQuadsAt",
    ],
    arrays: ["c"],
    outputs: ["c"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => implicitRange(need(w), g, r[0]!, r[1]!, r[2]!, r[3]!),
  }),
  [KIND_WASM_COL2IM]: job<Col2imArgs>()({
    nums: [
      "apAt",
      "xpAt",
      "rowAt",
      "colAt",
      "K",
      "F",
      "P",
      "NP",
      "chunkImages",
      "chunksAt",
      "chunkBytes",
      "imagesFirst",
      "C",
      "H",
      "W",
      "padH",
      "padW",
    ],
    arrays: ["b", "dx"],
    outputs: ["dx"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => col2imRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_WINOGRAD]: job<WinogradArgs>()({
    nums: [
      "xpAt",
      "uAt",
      "yAt",
      "biasAt",
      "c",
      "f",
      "outH",
      "outW",
      "hp",
      "wp",
      "relu",
      "rowsPerBlock",
      "r",
    ],
    arrays: ["y"],
    outputs: ["y"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => winogradRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_WINOGRAD_GRAD]: job<WinogradGradArgs>()({
    nums: [
      "xpAt",
      "gyAt",
      "duAt",
      "n",
      "c",
      "f",
      "outH",
      "outW",
      "hp",
      "wp",
      "rowsPerBlock",
      "chunkImages",
      "r",
    ],
    arrays: ["gy"],
    outputs: [],
    wasm: true,
    run: (g, r, w) => winogradGradRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_RELU_BACKWARD_SUMS]: job<ReluBackwardSumsArgs>()({
    nums: ["p"],
    arrays: ["g", "y", "gx", "sums"],
    outputs: ["gx", "sums"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => reluBackwardSumsRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_RELU_BACKWARD_COLUMNS]: job<ReluBackwardColumnsArgs>()({
    nums: ["rows", "c"],
    arrays: ["g", "y", "gx", "acc"],
    // acc is added into: a staged copy must start from its values
    outputs: ["gx", "acc"],
    wasm: true,
    run: (g, r, w) => reluBackwardColumnsRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_STAGE]: job<PadArgs>()({
    nums: ["xpAt", "h", "w", "padH", "padW"],
    arrays: ["x"],
    outputs: [],
    wasm: true,
    run: (g, r, w) => stagePlanes(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_CHANNEL_SUMS]: job<ChannelSumsArgs>()({
    nums: ["n", "c", "p"],
    arrays: ["g", "acc"],
    outputs: ["acc"],
    run: (g, r) => channelSumsRange(g, r[0]!, r[1]!),
  }),
  [KIND_WASM_MAXPOOL]: job<MaxPoolArgs>()({
    nums: ["h", "w", "kh", "kw", "strideH", "strideW", "oh", "ow"],
    arrays: ["x", "y", "arg"],
    outputs: ["y", "arg"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => maxPoolRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_RELU]: job<ReluArgs>()({
    nums: [],
    arrays: ["x", "y"],
    outputs: ["y"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => reluRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_WASM_RELU_BACKWARD]: job<ReluBackwardArgs>()({
    nums: [],
    arrays: ["g", "y", "gx"],
    outputs: ["gx"],
    fullWrite: true,
    wasm: true,
    run: (g, r, w) => reluBackwardRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_SPMM]: job<SpmmJobArgs>()({
    nums: [
      "epi",
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
    arrays: ["ptr", "idx", "ids", "data", "x", "out", "bias"],
    outputs: ["out"],
    fullWrite: true,
    run: (g, r) => spmmRange(withJobEpilogue(g), r[0]!, r[1]!, r[2]!, r[3]!),
  }),
  [KIND_SPMM_CHAIN]: job<SpmmChainArgs>()({
    nums: ["layers", "n"],
    arrays: ["table", "ptr", "idx", "ids", "data", "bias", "x", "out"],
    outputs: ["out"],
    fullWrite: true,
    run: (g, r) => spmmChainRange(g, r[0]!, r[1]!),
  }),
  [KIND_MAXPOOL_BACKWARD]: job<MaxPoolBackwardArgs>()({
    nums: ["inPlane", "outPlane"],
    arrays: ["gy", "arg", "gx"],
    outputs: ["gx"],
    run: (g, r) => maxPoolBackwardRange(g, r[0]!, r[1]!),
  }),
  [KIND_ADAM]: job<AdamJobArgs>()({
    nums: [],
    arrays: ["w", "g", "m", "v", "h"],
    outputs: ["w", "m", "v"],
    run: (g, r) => adamRange(g, r[0]!, r[1]!),
  }),
  [KIND_WASM_ADAM]: job<AdamJobArgs>()({
    nums: [],
    arrays: ["w", "g", "m", "v", "h"],
    outputs: ["w", "m", "v"],
    wasm: true,
    run: (g, r, w) => adamWasmRange(need(w), g, r[0]!, r[1]!),
  }),
  [KIND_SAMPLED]: job<SampledArgs>()({
    nums: ["R", "C", "rows", "cols", "sai", "sap", "sbp", "sbj", "k"],
    arrays: ["indptr", "indices", "a", "b", "out"],
    outputs: ["out"],
    fullWrite: true,
    run: (g, r) => sampledRange(g, r[0]!, r[1]!),
  }),
  [KIND_IM2COL]: job<PatchArgs>()({
    nums: PATCH_NUMS,
    arrays: ["x", "cols"],
    outputs: ["cols"],
    fullWrite: true,
    run: (g, r) => im2colRows(g, r[0]!, r[1]!),
  }),
  [KIND_COL2IM]: job<PatchArgs>()({
    nums: PATCH_NUMS,
    arrays: ["cols", "x"],
    outputs: ["x"],
    fullWrite: true,
    run: (g, r) => col2imImages(g, r[0]!, r[1]!),
  }),
  [KIND_KEP]: job<KepArgs>()({
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
    run: (g, r) => kepRange(g, r[0]!, r[1]!),
  }),
  [KIND_THROW]: hook(() => {
    throw new Error("test hook: job failed inside the worker");
  }),
  [KIND_EXIT]: hook(() => process.exit(7)),
  // worker.ts exits after reporting DONE.
  [KIND_EXIT_AFTER]: hook(() => undefined),
} as unknown as Record<number, JobDef<never>>;

/** The definition of `kind`, or an error naming it. */
export function jobDef(kind: number): JobDef<Record<string, unknown>> {
  const d = JOBS[kind];
  if (d === undefined) throw new Error(`matrix pool: unknown job kind ${kind}`);
  return d as unknown as JobDef<Record<string, unknown>>;
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
  jobDef(kind).run(args, r, wasm);
}

/** Float64 slot of the first field in a worker's parameter block (slot 0 holds the kind). */
const FIELDS_AT = 1;

for (const [kind, d] of Object.entries(JOBS)) {
  const slots = FIELDS_AT + d.nums.length + 4 * d.arrays.length;
  if (slots > PARAMS)
    throw new Error(`matrix jobs: kind ${kind} needs ${slots} > ${PARAMS} parameter slots`);
}

/**
 * Writes job `kind` with `args` into a worker's parameter block; `ref` returns the id under
 * which the worker holds an array's SharedArrayBuffer (registering it first if need be).
 */
export function encodeJob(
  params: Float64Array,
  kind: number,
  args: Record<string, unknown>,
  ref: (sab: SharedArrayBuffer) => number,
): void {
  const d = jobDef(kind);
  params[0] = kind;
  let o = FIELDS_AT;
  for (const name of d.nums) params[o++] = args[name] as number;
  for (const name of d.arrays) {
    const arr = args[name] as AnyArray;
    params[o] = ref(arr.buffer as SharedArrayBuffer);
    params[o + 1] = typeCode(arr);
    params[o + 2] = arr.byteOffset;
    params[o + 3] = arr.length;
    o += 4;
  }
}

/** Reads the job in a parameter block back into arguments (arrays as views of held buffers). */
export function decodeJob(
  params: Float64Array,
  buffers: ReadonlyMap<number, SharedArrayBuffer>,
): { kind: number; args: Record<string, unknown> } {
  const kind = params[0]!;
  const d = jobDef(kind);
  const args: Record<string, unknown> = {};
  let o = FIELDS_AT;
  // "| 0" turns the float64 slots back into small integers: kernels index with them, and V8
  // compiles index arithmetic on doubles into much slower code.
  for (const name of d.nums) args[name] = params[o++]! | 0;
  for (const name of d.arrays) {
    const id = params[o]!;
    const buf = buffers.get(id);
    if (buf === undefined) throw new Error(`buffer ${id} for '${name}' was never registered`);
    args[name] = viewOf(buf, params[o + 1]!, params[o + 2]!, params[o + 3]!);
    o += 4;
  }
  return { kind, args };
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
