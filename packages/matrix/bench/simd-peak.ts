// The machine's ceiling for the WebAssembly kernels: GFLOP/s of a register-only f32x4 loop
// (independent multiply-add chains, no memory traffic) as the GEMM micro-kernel issues them:
// f32x4.mul then f32x4.add (the default kernels) and relaxed SIMD's f32x4.relaxed_madd
// (TESSERA_WASM_FMA=1), on one thread and on two at once (the caller and a worker thread, each
// running the loop). A product cannot beat these figures on this path; the dense benchmark's
// GFLOP/s (bench/dense.ts) read against them say how close the micro-kernel comes.
// Run: pnpm tsx packages/matrix/bench/simd-peak.ts
import { Worker } from "node:worker_threads";
import { F32, I32, ModuleBuilder, V128, enableRelaxedSimd } from "../src/wasm-builder.ts";
import { machineInfo } from "./common.ts";

/** Chains per loop: 14 accumulators and the two operands fill x64's 16 vector registers. */
const CHAINS = 14;
const UNROLL = 4;
const TRIPS = 2_000_000;

/** f(trips): the loop, returning a lane of the sum of the chains (so none is dead code). */
function peakModule(fma: boolean): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .func("f", [I32], [F32], (c) => {
      const [n] = c.paramTuple(1);
      const x = c.local(V128);
      const y = c.local(V128);
      const acc = Array.from({ length: CHAINS }, () => c.local(V128));
      c.f32Const(0.999).f32x4Splat().set(x);
      c.f32Const(0.001).f32x4Splat().set(y);
      for (const a of acc) c.f32Const(1).f32x4Splat().set(a);
      c.loop((top) => {
        for (let u = 0; u < UNROLL; u++)
          for (const a of acc) {
            if (fma) c.get(a).get(x).get(y).f32x4RelaxedMadd().set(a);
            else c.get(a).get(x).f32x4Mul().get(y).f32x4Add().set(a);
          }
        c.get(n).i32Const(1).i32Sub().tee(n).brIf(top);
      });
      c.get(acc[0]!);
      for (let i = 1; i < CHAINS; i++) c.get(acc[i]!).f32x4Add();
      c.f32x4ExtractLane(0);
    })
    .build();
}

/**
 * GFLOP/s of the fastest of ten calls (after a warm-up call, so the optimising tier runs).
 * The same text runs in the worker (as a string), so it uses nothing outside itself.
 */
function timeLoop(bytes: Uint8Array<ArrayBuffer>, trips: number, flopsPerTrip: number): number {
  const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f as (
    n: number,
  ) => number;
  f(1000);
  let best = Infinity;
  for (let r = 0; r < 10; r++) {
    const t = performance.now();
    f(trips);
    best = Math.min(best, performance.now() - t);
  }
  return (trips * flopsPerTrip) / best / 1e6;
}

const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const v8 = require("node:v8");
if (workerData.fma) v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
const timeLoop = ${timeLoop.toString()};
parentPort.once("message", () =>
  parentPort.postMessage(timeLoop(workerData.bytes, workerData.trips, workerData.flops)));
`;

/** Both threads at once: the worker starts its loop when told, the caller runs its own. */
async function twoThreads(
  bytes: Uint8Array<ArrayBuffer>,
  fma: boolean,
  flops: number,
): Promise<number[]> {
  const w = new Worker(WORKER, { eval: true, workerData: { bytes, trips: TRIPS, flops, fma } });
  await new Promise((r) => w.once("online", r));
  const theirs = new Promise<number>((r) => w.once("message", r));
  w.postMessage("go");
  const mine = timeLoop(bytes, TRIPS, flops);
  const other = await theirs;
  await w.terminate();
  return [mine, other];
}

console.log(machineInfo());
const flopsPerTrip = UNROLL * CHAINS * 8; // 4 lanes x (multiply + add) per chain and unroll
console.log(
  "| f32x4 loop | one thread, GFLOP/s | two threads at once: caller / worker | two threads, total |",
);
console.log("|---|---|---|---|");
for (const fma of [false, true]) {
  let fused = false;
  if (fma) fused = enableRelaxedSimd("simd-peak");
  const bytes = peakModule(fma);
  const one = timeLoop(bytes, TRIPS, flopsPerTrip);
  const [a, b] = await twoThreads(bytes, fma, flopsPerTrip);
  const label = fma
    ? `relaxed_madd (${fused ? "fused on this machine" : "not fused here"})`
    : "mul + add (default)";
  console.log(
    `| ${label} | ${one.toFixed(1)} | ${a!.toFixed(1)} / ${b!.toFixed(1)} | ${(a! + b!).toFixed(1)} |`,
  );
}
console.log(
  `${CHAINS} independent f32x4 chains x ${UNROLL} unrolled, ${TRIPS} trips, fastest of 10 calls; a flop is one lane's multiply or add.`,
);
