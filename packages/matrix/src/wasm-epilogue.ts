// The output epilogue of the WebAssembly products: a bias per column of a row-major block and a
// ReLU, in place, while the block sits in kernel memory (one generated loop; emitted into the
// sparse products' modules, wasm-spmm.ts, and the dense GEMM's, wasm-gemm.ts).
import { I32, V128 } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";

/** The exported epi function of a module that emits emitEpilogue (arguments as documented there). */
export type EpilogueKernel = (
  outAt: number,
  outRow: number,
  r0: number,
  r1: number,
  biasAt: number,
  mode: number,
) => void;

/** epi's mode: bit 0 adds the bias, bit 1 applies the ReLU (0 when neither). */
export function epilogueMode(bias: unknown, relu: boolean | undefined): number {
  return (bias === undefined || bias === null ? 0 : 1) | (relu === true ? 2 : 0);
}

/**
 * epi(outAt, outRow, r0, r1, biasAt, mode): over rows [r0, r1) of a row-major float32 block at
 * byte outAt (outRow bytes a row, a multiple of 16), v + bias[column] (mode bit 0; biasAt holds
 * outRow / 4 floats, one per column) then max(v, +0) (bit 1), in place, four columns at a time.
 * The values of the JavaScript epilogues (spmm-kernel.ts's spmmEpilogue, dense.ts's): a float32
 * sum rounds as JavaScript's double sum stored rounded does, and f32x4.max(v, +0) gives +0 for
 * -0 and for -Infinity and keeps NaN, as relu's fix-up.
 */
export function emitEpilogue(c: Code): void {
  const [outAt, outRow, r0, r1, biasAt, mode] = c.paramTuple(6);
  const p = c.local(I32);
  const end = c.local(I32);
  const rowEnd = c.local(I32);
  const bp = c.local(I32);
  const v = c.local(V128);
  const pass = (bias: boolean, relu: boolean) => {
    c.get(r0).get(outRow).i32Mul().get(outAt).i32Add().set(p);
    c.get(r1).get(outRow).i32Mul().get(outAt).i32Add().set(end);
    c.loop((rows) => {
      c.get(biasAt).set(bp);
      c.get(p).get(outRow).i32Add().set(rowEnd);
      c.loop((lines) => {
        c.get(p).v128Load(0).set(v);
        if (bias) {
          c.get(v).get(bp).v128Load(0).f32x4Add().set(v);
          c.get(bp).i32Const(16).i32Add().set(bp);
        }
        if (relu) c.get(v).v128Zero().f32x4Max().set(v);
        c.get(p).get(v).v128Store(0);
        c.get(p).i32Const(16).i32Add().tee(p).get(rowEnd).i32LtU().brIf(lines);
      });
      c.get(p).get(end).i32LtU().brIf(rows);
    });
  };
  c.block((done) => {
    c.get(r0).get(r1).i32GeU().brIf(done);
    c.block((notBias) => {
      c.get(mode).i32Const(1).i32Ne().brIf(notBias);
      pass(true, false);
      c.br(done);
    });
    c.block((notRelu) => {
      c.get(mode).i32Const(2).i32Ne().brIf(notRelu);
      pass(false, true);
      c.br(done);
    });
    c.get(mode).i32Const(3).i32Ne().brIf(done);
    pass(true, true);
  });
}
