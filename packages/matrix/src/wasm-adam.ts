// Adam's update on a generated WebAssembly SIMD kernel, for the "wasm" kernel path (float32).
//
// The JavaScript loop (adam-kernel.ts) computes in double and is bound by its scalar square
// root and division: 1.20 ms per update of LeNet-300-100's 266,610 parameters on one thread, 23%
// of a one-thread epoch's profile (docs/benchmarks/epoch-profile.md, section 11). Here the same
// expression runs in float32 on four lanes (f32x4.sqrt, f32x4.div), as PyTorch's float32 Adam
// does, the operands going through the thread's scratch region ADAM_BLOCK elements at a time
// (copy in, kernel, copy out while the block is in cache; as wasm-relu.ts): 0.45 ms, most of it
// the copies.
//
// Numerics: each element is the same float32 expression in the same order whichever thread or
// block runs it, so a split over a pool gives the serial bits; against the double loop each
// result is within a few float32 roundings (tested).
import { F32, I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import type { AdamJobArgs } from "./adam-kernel.ts";

/**
 * adam(w, g, m, v, end, b1, b2, c1, c2, stepSize, bc2sqrt, eps, l2, shrink), addresses in bytes
 * (w up to end, 16-byte vectors): with decay, wk = w·shrink and gk = g + l2·w, else wk = w and
 * gk = g; then m = b1·m + c1·gk, v = b2·v + c2·gk·gk, w = wk - stepSize·m / (sqrt(v) / bc2sqrt + eps).
 */
function emitAdam(c: Code, decay: boolean): void {
  const [w, g, m, v, end, ...f] = c.paramTuple(14);
  const splat = (p: (typeof f)[number]) => {
    const l = c.local(V128);
    c.get(p).f32x4Splat().set(l);
    return l;
  };
  const [b1, b2, c1, c2, stepSize, bc2sqrt, eps, l2, shrink] = f.map(splat) as [
    ...ReturnType<typeof splat>[],
  ];
  const gk = c.local(V128);
  const mk = c.local(V128);
  const vk = c.local(V128);
  c.loop((top) => {
    if (decay) c.get(g).v128Load().get(w).v128Load().get(l2!).f32x4Mul().f32x4Add().set(gk);
    else c.get(g).v128Load().set(gk);
    c.get(m).v128Load().get(b1!).f32x4Mul().get(c1!).get(gk).f32x4Mul().f32x4Add().set(mk);
    c.get(v).v128Load().get(b2!).f32x4Mul();
    c.get(c2!).get(gk).f32x4Mul().get(gk).f32x4Mul().f32x4Add().set(vk);
    c.get(m).get(mk).v128Store();
    c.get(v).get(vk).v128Store();
    c.get(w);
    c.get(w).v128Load();
    if (decay) c.get(shrink!).f32x4Mul();
    c.get(stepSize!).get(mk).f32x4Mul();
    c.get(vk).f32x4Sqrt().get(bc2sqrt!).f32x4Div().get(eps!).f32x4Add();
    c.f32x4Div().f32x4Sub().v128Store();
    for (const p of [w, g, m, v]) c.get(p).i32Const(16).i32Add().set(p);
    c.get(w).get(end).i32LtU().brIf(top);
  });
}

const PARAMS = [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32, F32, F32] as const;

/** The Adam module's bytes: `adam` (no decay terms) and `adamDecay`, over an imported shared memory. */
export function adamKernelBytes(): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .importMemory({ module: "env", name: "memory", initial: 0, maximum: MAX_PAGES, shared: true })
    .func("adam", PARAMS, [], (c) => emitAdam(c, false))
    .func("adamDecay", PARAMS, [], (c) => emitAdam(c, true))
    .build();
}

type Adam = (w: number, g: number, m: number, v: number, end: number, ...scalars: number[]) => void;
let compiled: WebAssembly.Module | undefined;
/** One instance per thread's kernel (one WasmThread per memory and thread). */
const instances = new WeakMap<WasmThread, { adam: Adam; adamDecay: Adam }>();
function kernelsOf(t: WasmThread): { adam: Adam; adamDecay: Adam } {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm Adam kernel", adamKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    k = { adam: e.adam as Adam, adamDecay: e.adamDecay as Adam };
    instances.set(t, k);
  }
  return k;
}

/** Elements per trip through the scratch region: four arrays of it take 64 KiB. */
export const ADAM_BLOCK = 4096;
if (4 * 4 * ADAM_BLOCK > SCRATCH_BYTES)
  throw new Error("wasm-adam: ADAM_BLOCK exceeds a thread's scratch region");

/** Elements [lo, hi) of Adam's update in float32 (w, g, m, v Float32Arrays), through t's scratch. */
export function adamWasmRange(t: WasmThread, a: AdamJobArgs, lo: number, hi: number): void {
  const { adam, adamDecay } = kernelsOf(t);
  const w = a.w as Float32Array;
  const g = a.g as Float32Array;
  const m = a.m as Float32Array;
  const v = a.v as Float32Array;
  const h = a.h;
  const [b1, b2, eps, stepSize, bc2sqrt, l2, shrink] = [0, 1, 2, 3, 4, 5, 6].map((i) => h[i]!);
  const decay = !(l2 === 0 && shrink === 1);
  const run = decay ? adamDecay : adam;
  const scalars = [b1!, b2!, 1 - b1!, 1 - b2!, stepSize!, bc2sqrt!, eps!, l2!, shrink!];
  const H = t.f32();
  const wAt = t.scratchAt;
  const gAt = wAt + 4 * ADAM_BLOCK;
  const mAt = gAt + 4 * ADAM_BLOCK;
  const vAt = mAt + 4 * ADAM_BLOCK;
  for (let s = lo; s < hi; s += ADAM_BLOCK) {
    const len = Math.min(ADAM_BLOCK, hi - s);
    H.set(w.subarray(s, s + len), wAt >> 2);
    H.set(g.subarray(s, s + len), gAt >> 2);
    H.set(m.subarray(s, s + len), mAt >> 2);
    H.set(v.subarray(s, s + len), vAt >> 2);
    run(wAt, gAt, mAt, vAt, wAt + 16 * Math.ceil(len / 4), ...scalars);
    w.set(H.subarray(wAt >> 2, (wAt >> 2) + len), s);
    m.set(H.subarray(mAt >> 2, (mAt >> 2) + len), s);
    v.set(H.subarray(vAt >> 2, (vAt >> 2) + len), s);
  }
}
