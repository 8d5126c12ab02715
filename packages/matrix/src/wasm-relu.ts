// ReLU and its gradient on generated WebAssembly SIMD kernels, for the "wasm" kernel path.
//
// After the convolutions were fused, autograd's relu loops were 12% of a smallCnn() epoch on
// that path (docs/benchmarks/epoch-profile.md). Here the operands are copied into this thread's
// kernel memory and one f32x4 loop runs over them: forward max(x, +0) (f32x4.max: -0 gives +0,
// NaN stays NaN, as the JS loop), backward (g + 0) where y > 0 else +0 (a compare mask ANDed
// with g + 0, which turns -0 into +0 and keeps NaN where the gate is open, as the JS loop).
//
// The operands go through the thread's scratch region RELU_BLOCK elements at a time (copy in,
// kernel, copy out while the block is in cache) instead of whole arrays through kernel memory,
// and with a pool the element range is split over its threads (each in its own scratch region).
import { I32, ModuleBuilder, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";

/** relu(x, y, end): y = max(x, 0) for vectors from x up to byte address end of x's range. */
function emitForward(c: Code): void {
  const [x, y, end] = c.paramTuple(3);
  c.loop((top) => {
    c.get(y).get(x).v128Load().v128Zero().f32x4Max().v128Store();
    c.get(y).i32Const(16).i32Add().set(y);
    c.get(x).i32Const(16).i32Add().tee(x).get(end).i32LtU().brIf(top);
  });
}

/** reluBack(g, y, gx, end): gx = (g + 0) & (y > 0), vectors of g up to byte address end. */
function emitBackward(c: Code): void {
  const [g, y, gx, end] = c.paramTuple(4);
  c.loop((top) => {
    c.get(gx).get(g).v128Load().v128Zero().f32x4Add();
    c.get(y).v128Load().v128Zero().f32x4Gt().v128And().v128Store();
    c.get(gx).i32Const(16).i32Add().set(gx);
    c.get(y).i32Const(16).i32Add().set(y);
    c.get(g).i32Const(16).i32Add().tee(g).get(end).i32LtU().brIf(top);
  });
}

/** The ReLU module's bytes (two functions over an imported shared memory). */
export function reluKernelBytes(): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("relu", [I32, I32, I32], [], emitForward)
    .func("reluBack", [I32, I32, I32, I32], [], emitBackward)
    .build();
}

type Relu = (x: number, y: number, end: number) => void;
type ReluBack = (g: number, y: number, gx: number, end: number) => void;
let compiled: WebAssembly.Module | undefined;
/** One instance per thread's kernel (one WasmThread per memory and thread). */
const instances = new WeakMap<WasmThread, { relu: Relu; reluBack: ReluBack }>();
function kernelsOf(t: WasmThread): { relu: Relu; reluBack: ReluBack } {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm ReLU kernel", reluKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    k = { relu: e.relu as Relu, reluBack: e.reluBack as ReluBack };
    instances.set(t, k);
  }
  return k;
}

/**
 * Elements per trip through the scratch region: three arrays of it (the backward's g, y, gx)
 * take 48 KiB, well inside SCRATCH_BYTES and the L2 cache.
 */
export const RELU_BLOCK = 4096;
if (3 * 4 * RELU_BLOCK > SCRATCH_BYTES)
  throw new Error("wasm-relu: RELU_BLOCK exceeds a thread's scratch region");

/** The forward's operands (a pool job: KIND_WASM_RELU). */
export interface ReluArgs {
  x: Float32Array;
  y: Float32Array;
}
/** The backward's operands (KIND_WASM_RELU_BACKWARD). */
export interface ReluBackwardArgs {
  g: Float32Array;
  y: Float32Array;
  gx: Float32Array;
}

/** y = max(x, +0) over elements [lo, hi), through t's scratch region. */
export function reluRange(t: WasmThread, a: ReluArgs, lo: number, hi: number): void {
  const { relu } = kernelsOf(t);
  const H = t.f32();
  const xAt = t.scratchAt;
  const yAt = xAt + 4 * RELU_BLOCK;
  for (let s = lo; s < hi; s += RELU_BLOCK) {
    const len = Math.min(RELU_BLOCK, hi - s);
    H.set(a.x.subarray(s, s + len), xAt >> 2);
    relu(xAt, yAt, xAt + 16 * Math.ceil(len / 4));
    a.y.set(H.subarray(yAt >> 2, (yAt >> 2) + len), s);
  }
}

/** gx = (g + 0) where y > 0, else +0, over elements [lo, hi), through t's scratch region. */
export function reluBackwardRange(
  t: WasmThread,
  a: ReluBackwardArgs,
  lo: number,
  hi: number,
): void {
  const { reluBack } = kernelsOf(t);
  const H = t.f32();
  const gAt = t.scratchAt;
  const yAt = gAt + 4 * RELU_BLOCK;
  const gxAt = yAt + 4 * RELU_BLOCK;
  for (let s = lo; s < hi; s += RELU_BLOCK) {
    const len = Math.min(RELU_BLOCK, hi - s);
    H.set(a.g.subarray(s, s + len), gAt >> 2);
    H.set(a.y.subarray(s, s + len), yAt >> 2);
    reluBack(gAt, yAt, gxAt, gAt + 16 * Math.ceil(len / 4));
    a.gx.set(H.subarray(gxAt >> 2, (gxAt >> 2) + len), s);
  }
}
