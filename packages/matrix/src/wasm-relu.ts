// ReLU and its gradient on generated WebAssembly SIMD kernels, for the "wasm" kernel path.
//
// After the convolutions were fused, autograd's relu loops were 12% of a smallCnn() epoch on
// that path (docs/benchmarks/epoch-profile.md). Here the operands are copied into this thread's
// kernel memory and one f32x4 loop runs over them: forward max(x, +0) (f32x4.max: -0 gives +0,
// NaN stays NaN, as the JS loop), backward (g + 0) where y > 0 else +0 (a compare mask ANDed
// with g + 0, which turns -0 into +0 and keeps NaN where the gate is open, as the JS loop).
// Serial on the calling thread: the work is a copy's worth.
import { I32, ModuleBuilder, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, localWasmThread } from "./wasm-gemm.ts";

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

interface ReluKernels {
  memory: WebAssembly.Memory;
  relu: (x: number, y: number, end: number) => void;
  reluBack: (g: number, y: number, gx: number, end: number) => void;
}
let compiled: WebAssembly.Module | undefined;
let kernels: ReluKernels | undefined;
/** This thread's instance on its own kernel memory, grown to hold `bytes` after the scratch. */
function reluKernels(bytes: number): ReluKernels {
  const t = localWasmThread();
  const need = SCRATCH_BYTES + bytes;
  const have = t.memory.buffer.byteLength;
  if (need > have) t.memory.grow(Math.ceil((need - have) / 65536));
  if (kernels === undefined || kernels.memory !== t.memory) {
    compiled ??= compileModule("matrix wasm ReLU kernel", reluKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    kernels = {
      memory: t.memory,
      relu: e.relu as ReluKernels["relu"],
      reluBack: e.reluBack as ReluKernels["reluBack"],
    };
  }
  return kernels;
}

function checkLengths(fn: string, n: number, arrays: [string, Float32Array][]): void {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${fn}: n must be a non-negative integer, got ${n}`);
  for (const [name, a] of arrays)
    if (a.length < n) throw new RangeError(`${fn}: ${name} has ${a.length} elements, need ${n}`);
}

/** y[i] = max(x[i], +0) for i < n (NaN stays NaN), float32. */
export function wasmRelu(x: Float32Array, y: Float32Array, n: number): void {
  checkLengths("wasmRelu", n, [
    ["x", x],
    ["y", y],
  ]);
  if (n === 0) return;
  const bytes = 16 * Math.ceil(n / 4);
  const k = reluKernels(2 * bytes);
  const xAt = SCRATCH_BYTES;
  const yAt = xAt + bytes;
  const H = new Float32Array(k.memory.buffer);
  H.set(x.subarray(0, n), xAt >> 2);
  k.relu(xAt, yAt, xAt + bytes);
  y.set(H.subarray(yAt >> 2, (yAt >> 2) + n));
}

/** gx[i] = y[i] > 0 ? g[i] + 0 : +0 for i < n (the ReLU gradient from its output), float32. */
export function wasmReluBackward(
  g: Float32Array,
  y: Float32Array,
  gx: Float32Array,
  n: number,
): void {
  checkLengths("wasmReluBackward", n, [
    ["g", g],
    ["y", y],
    ["gx", gx],
  ]);
  if (n === 0) return;
  const bytes = 16 * Math.ceil(n / 4);
  const k = reluKernels(3 * bytes);
  const gAt = SCRATCH_BYTES;
  const yAt = gAt + bytes;
  const gxAt = yAt + bytes;
  const H = new Float32Array(k.memory.buffer);
  H.set(g.subarray(0, n), gAt >> 2);
  H.set(y.subarray(0, n), yAt >> 2);
  k.reluBack(gAt, yAt, gxAt, gAt + bytes);
  gx.set(H.subarray(gxAt >> 2, (gxAt >> 2) + n));
}
