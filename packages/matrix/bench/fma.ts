// The WebAssembly GEMM micro-kernel with and without relaxed SIMD's fused multiply-add, side by
// side in one run: the bare block kernel on one cache block (MC x NC x KC, operands already
// packed), and whole products through the per-block packing path (wasmGemmRange), one thread.
// Both variants run in this process: relaxed SIMD is enabled for the fused one only, and the
// unfused kernel is compiled from the same generator without it.
// First it asks, in child processes, how relaxed SIMD can be switched on in this node (command
// line, NODE_OPTIONS, v8.setFlagsFromString in the main thread and in workers).
// Run: pnpm tsx packages/matrix/bench/fma.ts [--time-ms 400]
import { execFileSync } from "node:child_process";
import { Worker } from "node:worker_threads";
import { setFlagsFromString } from "node:v8";
import {
  SCRATCH_BYTES,
  WASM_KC,
  WASM_MC,
  WASM_NC,
  WasmThread,
  createKernelMemory,
  wasmGemmRange,
} from "../src/wasm-gemm.ts";
import { enableRelaxedSimd, relaxedProbe } from "../src/wasm-builder.ts";
import { gemmKernelBytes } from "../src/wasm-gemm.ts";
import { fastestMs, fillRandom, fmt, machineInfo } from "./common.ts";

/** Lane 0 of relaxed_madd(1+2^-23, 1-2^-23, -1): -2^-46 fused, 0 unfused, or "invalid". */
function probe(): string {
  const bytes = relaxedProbe();
  if (!WebAssembly.validate(bytes)) return "invalid";
  const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f as () => number;
  return f() === 0 ? "0 (unfused)" : `${f()} (fused)`;
}

/**
 * A worker answering every message with the probe's result (plain JavaScript, evaluated: a
 * worker cannot load this TypeScript file), on the probe module's bytes.
 */
function probeWorker(): Worker {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    parentPort.on("message", () => {
      if (!WebAssembly.validate(workerData)) return parentPort.postMessage("invalid");
      const f = new WebAssembly.Instance(new WebAssembly.Module(workerData)).exports.f();
      parentPort.postMessage(f === 0 ? "0 (unfused)" : f + " (fused)");
    });`;
  return new Worker(code, { eval: true, workerData: relaxedProbe() });
}

/** One worker's probe answer. */
function ask(w: Worker): Promise<string> {
  return new Promise((resolve) => {
    w.once("message", resolve);
    w.postMessage(0);
  });
}

/** The child process of one way of giving the flag; prints its findings. */
async function child(mode: string): Promise<void> {
  if (mode !== "runtime") {
    console.log(`validate: ${probe()}`);
    return;
  }
  new WebAssembly.Module(gemmKernelBytes()); // a SIMD module compiled before the flag is set
  const before = probe();
  const early = probeWorker();
  const earlyBefore = await ask(early);
  setFlagsFromString("--experimental-wasm-relaxed-simd");
  const late = probeWorker();
  console.log(
    `main before: ${before}; main after: ${probe()}; worker started before the flag, asked ` +
      `before: ${earlyBefore}, after: ${await ask(early)}; worker started after: ${await ask(late)}`,
  );
  await Promise.all([early.terminate(), late.terminate()]);
}

/** Runs this script as a child with extra node flags and environment; its output or error. */
function runChild(nodeFlags: string[], env: NodeJS.ProcessEnv, mode: string): string {
  const script = new URL(import.meta.url).pathname;
  try {
    return execFileSync(
      process.execPath,
      [...process.execArgv, ...nodeFlags, script, "--child", mode],
      { env: { ...process.env, ...env }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
    ).trim();
  } catch (e) {
    const err = e as { stderr?: string; status?: number };
    return `exit ${err.status}: ${(err.stderr ?? "").trim().split("\n")[0]}`;
  }
}

if (process.argv.includes("--child")) {
  await child(process.argv[process.argv.indexOf("--child") + 1]!);
} else {
  await main();
}

async function main(): Promise<void> {
  console.log(machineInfo());
  console.log(`node ${process.version}, V8 ${process.versions.v8}\n`);
  const flag = "--experimental-wasm-relaxed-simd";
  console.log(`- no flag: ${runChild([], {}, "plain")}`);
  console.log(`- node ${flag}: ${runChild([flag], {}, "plain")}`);
  console.log(`- NODE_OPTIONS=${flag}: ${runChild([], { NODE_OPTIONS: flag }, "plain")}`);
  console.log(`- v8.setFlagsFromString at run time: ${runChild([], {}, "runtime")}\n`);

  const arg = process.argv.indexOf("--time-ms");
  const timeMs = arg > 0 ? Number(process.argv[arg + 1]) : 400;

  const fused = enableRelaxedSimd("bench fma");
  const threads = [false, true].map(
    (fma) => new WasmThread(createKernelMemory(SCRATCH_BYTES + (64 << 20)), 0, fma),
  );
  console.log(
    `relaxed_madd fuses on this machine: ${fused}; one thread; fastest call of each, GFLOP/s\n`,
  );
  console.log("| product | mul + add | relaxed_madd | ratio |");
  console.log("| --- | --- | --- | --- |");

  // The bare kernel: a packed MC x KC block of A times a KC x NC block of B (random panels).
  {
    const flops = 2 * WASM_MC * WASM_NC * WASM_KC;
    const aAt = SCRATCH_BYTES;
    const bAt = aAt + 4 * WASM_MC * WASM_KC;
    const cAt = bAt + 4 * WASM_KC * WASM_NC;
    for (const t of threads) fillRandom(t.f32().subarray(aAt >> 2, cAt >> 2), 1);
    const ms = fastestMs(
      threads.map((t) => [
        String(t.fma),
        () => t.block(aAt, bAt, cAt, WASM_MC, WASM_NC, WASM_KC, 0),
      ]),
      timeMs,
    );
    const g = ms.map((x) => flops / x / 1e6);
    console.log(
      `| block kernel ${WASM_MC}x${WASM_NC}x${WASM_KC} | ${fmt(g[0]!)} | ${fmt(g[1]!)} | ${(g[1]! / g[0]!).toFixed(2)}x |`,
    );
  }

  // Whole products, packing per cache block (LeNet-5's conv2 forward and fc1 shapes at batch 128, and 512^3).
  for (const [label, m, k, n] of [
    ["512^3", 512, 512, 512],
    ["conv2 fwd W·cols 50x500x8192", 50, 500, 8192],
    ["fc1 fwd 128x800x500", 128, 800, 500],
  ] as [string, number, number, number][]) {
    const a = fillRandom(new Float32Array(m * k), 2);
    const b = fillRandom(new Float32Array(k * n), 3);
    const c = new Float32Array(m * n);
    const ms = fastestMs(
      threads.map((t) => [String(t.fma), () => wasmGemmRange(t, 0, a, b, c, m, k, n, 0, m, 0, n)]),
      timeMs,
    );
    const g = ms.map((x) => (2 * m * k * n) / x / 1e6);
    console.log(`| ${label} | ${fmt(g[0]!)} | ${fmt(g[1]!)} | ${(g[1]! / g[0]!).toFixed(2)}x |`);
  }
}
