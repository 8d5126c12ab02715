// The asm.js kernels stage a job's operands into their thread's heap and remember which job is
// there (spmm-kernel.ts, sampled-kernel.ts), holding one job's arguments. They once remembered it
// through a WeakRef, which an engine keeps alive until the current synchronous job ends; a loop
// of products that never yields (a worker's loop, a training or timing loop) then kept every
// call's arguments, and its arrays, for good. Here each call gets a fresh 400 KB input: after a
// loop of 200 calls and a full collection, their memory must be free again.
import v8 from "node:v8";
import vm from "node:vm";
import { describe, expect, it } from "vitest";
import { BsrMatrix } from "../src/index.ts";
import { maskedDense, randomArray } from "./helpers.ts";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

/**
 * External (ArrayBuffer) bytes still held after `calls` runs of `f` (fresh inputs of `size`
 * floats) and full collections. V8 frees collected backing stores on a background thread, so
 * the count is read again after short pauses (up to ~1 s) until it falls under `bound`; a kept
 * input never goes.
 */
function heldAfter(
  calls: number,
  f: (x: Float32Array) => void,
  size: number,
  bound: number,
): number {
  f(new Float32Array(size)); // the kernel's heap grows to its size here, not inside the count
  gc();
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < calls; i++) f(new Float32Array(size).fill(i % 7));
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let held = Infinity;
  for (let tries = 0; tries < 50 && held >= bound; tries++) {
    gc();
    Atomics.wait(pause, 0, 0, 20);
    held = process.memoryUsage().arrayBuffers - before;
  }
  return held;
}

describe("asm.js staging cache", () => {
  const [rows, cols, n] = [40, 100, 1000]; // x: 1000 x 100 float32 = 400 KB per call
  const { dense, mask } = maskedDense({ rows, cols, R: 4, C: 4, n, seed: 3, density: 0.3 });
  const w = BsrMatrix.fromDense(dense, rows, cols, [4, 4], { mask });
  const calls = 200; // 80 MB of inputs in all
  // Kept inputs would be all 80 MB; a tenth of it leaves room for whatever else the process
  // allocates meanwhile (the fixed code holds well under one input).
  const bound = 0.1 * calls * n * cols * 4;

  it("keeps no input of a finished product (the forward x·Wᵀ)", () => {
    const out = new Float32Array(n * rows);
    const held = heldAfter(
      calls,
      (x) => w.rmatmulTranspose(x, n, { out, kernels: "asm" }),
      n * cols,
      bound,
    );
    expect(held).toBeLessThan(bound);
  });

  it("keeps no input of a finished sampled product (the weight gradient)", () => {
    const dy = randomArray(n * rows, 4) as Float32Array;
    const out = new Float32Array(w.nnzBlocks * 16);
    const held = heldAfter(
      calls,
      (x) => BsrMatrix.sampledMatmul(w, dy, x, n, { transA: true, out, kernels: "asm" }),
      n * cols,
      bound,
    );
    expect(held).toBeLessThan(bound);
  });
});
