// A scratch prototype (not part of the build): a GEMM micro-kernel that reads A and B through
// runtime strides (so unpacked operands in place) against the packed one, on LeNet-300-100 shapes.
// Run from the repository root at 511ca27: cp it to experiments/bench/, then
//   FMA=0|1 node --experimental-wasm-relaxed-simd --import tsx experiments/bench/strided-kernel.mts
import {
  I32,
  ModuleBuilder,
  V128,
  compileModule,
  enableRelaxedSimd,
} from "../../packages/matrix/src/wasm-builder.ts";
import type { Code } from "../../packages/matrix/src/wasm-builder.ts";
import { gemmKernelBytes } from "../../packages/matrix/src/wasm-gemm.ts";
const MR = 4,
  NR = 8;
const FMA = process.env.FMA === "1";
function emit(c: Code): void {
  const [aOff, aRs, aKs, aPs, bOff, bKs, bPs, cOff, cRs, m, n, kc, add] = c.paramTuple(13);
  const i = c.local(I32),
    j = c.local(I32),
    b = c.local(I32),
    bPanel = c.local(I32),
    aPanel = c.local(I32);
  const cnt = c.local(I32),
    o = c.local(I32);
  const ar = Array.from({ length: MR }, () => c.local(I32));
  const av = c.local(V128);
  const bv = Array.from({ length: NR / 4 }, () => c.local(V128));
  const acc = Array.from({ length: MR }, () => Array.from({ length: NR / 4 }, () => c.local(V128)));
  c.get(bOff).set(bPanel);
  c.i32Const(0).set(j);
  c.loop((columns) => {
    c.get(aOff).set(aPanel);
    c.i32Const(0).set(i);
    c.loop((rows) => {
      for (const row of acc) for (const v of row) c.v128Zero().set(v);
      c.get(bPanel).set(b);
      c.get(aPanel).set(ar[0]!);
      for (let r = 1; r < MR; r++)
        c.get(ar[r - 1]!)
          .get(aRs)
          .i32Add()
          .set(ar[r]!);
      c.get(kc).set(cnt);
      c.loop((steps) => {
        for (let q = 0; q < NR / 4; q++)
          c.get(b)
            .v128Load(16 * q)
            .set(bv[q]!);
        for (let r = 0; r < MR; r++) {
          c.get(ar[r]!).v128Load32Splat(0).set(av);
          for (let q = 0; q < NR / 4; q++)
            if (FMA) c.get(av).get(bv[q]!).get(acc[r]![q]!).f32x4RelaxedMadd().set(acc[r]![q]!);
            else c.get(acc[r]![q]!).get(av).get(bv[q]!).f32x4Mul().f32x4Add().set(acc[r]![q]!);
        }
        for (let r = 0; r < MR; r++) c.get(ar[r]!).get(aKs).i32Add().set(ar[r]!);
        c.get(b).get(bKs).i32Add().set(b);
        c.get(cnt).i32Const(1).i32Sub().tee(cnt).brIf(steps);
      });
      c.get(cOff).get(i).get(cRs).i32Mul().i32Add().get(j).i32Const(2).i32Shl().i32Add().set(o);
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
          if (r + 1 < MR) c.get(o).get(cRs).i32Add().set(o);
        }
      };
      c.get(add).ifElse(
        () => store(true),
        () => store(false),
      );
      c.get(aPanel).get(aPs).i32Add().set(aPanel);
      c.get(i).i32Const(MR).i32Add().tee(i).get(m).i32LtU().brIf(rows);
    });
    c.get(bPanel).get(bPs).i32Add().set(bPanel);
    c.get(j).i32Const(NR).i32Add().tee(j).get(n).i32LtU().brIf(columns);
  });
}
if (FMA) enableRelaxedSimd("x");
const bytes = new ModuleBuilder()
  .importMemory({ module: "env", name: "memory", initial: 0, maximum: 16384, shared: true })
  .func("blk", Array(13).fill(I32), [], emit)
  .build();
const mem = new WebAssembly.Memory({ initial: 2000, maximum: 16384, shared: true });
const S = new WebAssembly.Instance(compileModule("s", bytes), { env: { memory: mem } }).exports
  .blk as any;
const P = new WebAssembly.Instance(
  compileModule("p", gemmKernelBytes({ mr: 4, nr: 8, fma: FMA })),
  { env: { memory: mem } },
).exports.block as any;
const f32 = new Float32Array(mem.buffer);
for (let q = 0; q < f32.length; q++) f32[q] = ((q * 7919) % 13) * 0.1 - 0.6;
const A = 0,
  B = 32 << 20,
  C = 64 << 20;
function time(name: string, flops: number, f: () => void) {
  for (let r = 0; r < 30; r++) f();
  const reps = Math.ceil(2e9 / flops);
  const t = performance.now();
  for (let r = 0; r < reps; r++) f();
  const ms = performance.now() - t;
  console.log(
    `${name}: ${((flops * reps) / ms / 1e6).toFixed(1)} GFLOP/s, ${(ms / reps).toFixed(3)} ms`,
  );
}
// packed kernel on 64 x 304 x 256 block
time("packed 64x304x256", 2 * 64 * 304 * 256, () => P(A, B, C, 64, 304, 256, 0));
time("strided-as-packed 64x304x256", 2 * 64 * 304 * 256, () =>
  S(A, 4, 16, 16 * 256, B, 32, 32 * 256, C, 4 * 304, 64, 304, 256, 0),
);
// dW1 = g1^T x : A = g1^T (g1 [128,300]), B = x [128,784] ; m=300 k=128 n=784, whole
time("dW1 strided whole 300x784x128", 2 * 300 * 784 * 128, () =>
  S(A, 4, 4 * 300, 16, B, 4 * 784, 32, C, 4 * 784, 300, 784, 128, 0),
);
// blocked by MC=64 rows x NC=512 cols
time("dW1 strided MC64 NC512", 2 * 300 * 784 * 128, () => {
  for (let jc = 0; jc < 784; jc += 512)
    for (let ic = 0; ic < 300; ic += 64) {
      const mc = Math.min(64, 300 - ic),
        nc = Math.min(512, 784 - jc);
      S(
        A + 4 * ic,
        4,
        4 * 300,
        16,
        B + 4 * jc,
        4 * 784,
        32,
        C + 4 * (ic * 784 + jc),
        4 * 784,
        Math.ceil(mc / 4) * 4,
        Math.ceil(nc / 8) * 8,
        128,
        0,
      );
    }
});
time("dW1 packed whole 300x784x128", 2 * 300 * 784 * 128, () => P(A, B, C, 300, 784, 128, 0));
// fc1 fwd with A = x row-major [128,784] unpacked, B packed W1^T (k-blocks of 256)
time("fc1 A strided, B packed", 2 * 128 * 300 * 784, () => {
  for (let ic = 0; ic < 128; ic += 64)
    for (let pc = 0; pc < 784; pc += 256) {
      const kc = Math.min(256, 784 - pc);
      S(
        A + 4 * (ic * 784 + pc),
        4 * 784,
        4,
        4 * 4 * 784,
        B + 4 * pc * 304,
        32,
        32 * kc,
        C + 4 * ic * 304,
        4 * 304,
        64,
        304,
        kc,
        pc > 0 ? 1 : 0,
      );
    }
});
time("fc1 packed", 2 * 128 * 300 * 784, () => {
  for (let ic = 0; ic < 128; ic += 64)
    for (let pc = 0; pc < 784; pc += 256) {
      const kc = Math.min(256, 784 - pc);
      P(
        A + 4 * (pc * 128 + ic * kc),
        B + 4 * pc * 304,
        C + 4 * ic * 304,
        64,
        304,
        kc,
        pc > 0 ? 1 : 0,
      );
    }
});
// dh1 = g2 W2 : A = g2 [128,100] row-major, B = W2 [100,300] row-major: m=128 k=100 n=300
time("dh1 strided", 2 * 128 * 100 * 304, () =>
  S(A, 4 * 100, 4, 16 * 100, B, 4 * 300, 32, C, 4 * 304, 128, 304, 100, 0),
);
time("dh1 packed", 2 * 128 * 100 * 304, () => P(A, B, C, 128, 304, 100, 0));
