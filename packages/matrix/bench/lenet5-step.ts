// The matrix calls of one LeNet-5 training step (batch 128) on the WebAssembly path, each timed
// alone (fastest call, one thread), with the variants that exist side by side in the same run:
// max pooling's generic window loop against the module unrolled for the 2x2 window. Tells the
// products' share of a step from the rest. Inputs are random (pooling's branches see the same
// unpredictable order as in training).
// The max-pooling backward is autograd's plain scatter loop (there is no kernel for it).
// Run: pnpm tsx packages/matrix/bench/lenet5-step.ts [--time-ms 300]
import {
  conv2dForward,
  conv2dInputGrad,
  conv2dWeightGrad,
  matmul,
  matmulTransA,
  matmulTransB,
  wasmMaxPool2d,
} from "../src/index.ts";
import { compileModule } from "../src/wasm-builder.ts";
import { createKernelMemory } from "../src/wasm-gemm.ts";
import { maxPoolKernelBytes } from "../src/wasm-pool2d.ts";
import { fastestMs, fillRandom, machineInfo } from "./common.ts";

const arg = process.argv.indexOf("--time-ms");
const timeMs = arg > 0 ? Number(process.argv[arg + 1]) : 300;
const wasm = { kernels: "wasm" } as const;
const N = 128;
const rand = (n: number, seed: number) => fillRandom(new Float32Array(n), seed);

// conv1 1->20 5x5 on 28x28 (P = 576), pool 2x2, conv2 20->50 5x5 on 12x12 (P = 64), pool 2x2,
// fc1 800->500, fc2 500->10.
const g1 = { n: N, c: 1, h: 28, w: 28, kh: 5, kw: 5 };
const g2 = { n: N, c: 20, h: 12, w: 12, kh: 5, kw: 5 };
const x1 = rand(N * 784, 1);
const W1 = rand(20 * 25, 2);
const x2 = rand(N * 20 * 144, 3);
const W2 = rand(50 * 500, 4);
const G1 = rand(20 * N * 576, 5);
const G2 = rand(50 * N * 64, 6);
const h = rand(N * 800, 7);
const Wf1 = rand(500 * 800, 8);
const gf1 = rand(N * 500, 9);
const y1 = new Float32Array(N * 20 * 576);
const y2 = new Float32Array(N * 50 * 64);
const pool1 = { n: N, c: 20, h: 24, w: 24, kh: 2, kw: 2, strideH: 2, strideW: 2 };
const pool2 = { n: N, c: 50, h: 8, w: 8, kh: 2, kw: 2, strideH: 2, strideW: 2 };
const p1 = { y: new Float32Array(N * 20 * 144), arg: new Int32Array(N * 20 * 144) };
const p2 = { y: new Float32Array(N * 50 * 16), arg: new Int32Array(N * 50 * 16) };

// The two pooling modules on one memory holding conv1's output.
const size = N * 20 * 576;
const count = N * 20 * 144;
const memory = createKernelMemory(4 * (size + 2 * count));
new Float32Array(memory.buffer).set(rand(size, 10));
const [generic, unrolled] = [undefined, { kh: 2, kw: 2 }].map(
  (window) =>
    new WebAssembly.Instance(compileModule("bench", maxPoolKernelBytes(window)), {
      env: { memory },
    }).exports.maxpool as (...a: number[]) => void,
);
const gx1 = new Float32Array(size);
/** gx = 0, gx[arg[i]] += gy[i]: autograd's maxPool2d backward loop. */
function scatter(gy: Float32Array, arg: Int32Array, gx: Float32Array): void {
  gx.fill(0);
  for (let i = 0; i < arg.length; i++) gx[arg[i]!] = gx[arg[i]!]! + gy[i]!;
}
const b1 = rand(20, 11);
// Outputs allocated once: a fresh multi-megabyte array per call costs page faults that vary
// from run to run by more than the calls themselves.
const out = {
  dW1: new Float32Array(20 * 25),
  dW2: new Float32Array(50 * 500),
  dx2: new Float32Array(N * 20 * 144),
  f1: new Float32Array(N * 500),
  dWf1: new Float32Array(500 * 800),
  dh: new Float32Array(N * 800),
};
/** autograd's former bias loop over an NCHW output (one float32 add per element). */
function biasPass(y: Float32Array, b: Float32Array, f: number, P: number): void {
  for (let i = 0; i < y.length / (f * P); i++)
    for (let j = 0; j < f; j++)
      for (let e = (i * f + j) * P; e < (i * f + j + 1) * P; e++) y[e] = y[e]! + b[j]!;
}
const poolArgs = [0, 4 * size, 4 * (size + count), N * 20, 24, 24, 2, 2, 2, 2, 12, 12];

const tasks: [string, number, () => void][] = [
  [
    "conv1 forward",
    2 * 20 * 25 * N * 576,
    () => conv2dForward(x1, W1, 20, g1, y1, { ...wasm, layout: "nchw" }),
  ],
  [
    "conv1 forward, then a bias pass over y",
    2 * 20 * 25 * N * 576,
    () => {
      conv2dForward(x1, W1, 20, g1, y1, { ...wasm, layout: "nchw" });
      biasPass(y1, b1, 20, 576);
    },
  ],
  [
    "conv1 forward, bias added in kernel memory",
    2 * 20 * 25 * N * 576,
    () => conv2dForward(x1, W1, 20, g1, y1, { ...wasm, layout: "nchw", bias: b1 }),
  ],
  [
    "conv1 weight gradient",
    2 * 20 * 25 * N * 576,
    () => conv2dWeightGrad(G1, x1, 20, g1, out.dW1, wasm),
  ],
  [
    "conv2 forward",
    2 * 50 * 500 * N * 64,
    () => conv2dForward(x2, W2, 50, g2, y2, { ...wasm, layout: "nchw" }),
  ],
  [
    "conv2 weight gradient",
    2 * 50 * 500 * N * 64,
    () => conv2dWeightGrad(G2, x2, 50, g2, out.dW2, wasm),
  ],
  [
    "conv2 input gradient",
    2 * 50 * 500 * N * 64,
    () => conv2dInputGrad(W2, G2, 50, g2, out.dx2, wasm),
  ],
  ["fc1 forward", 2 * N * 800 * 500, () => matmulTransB(h, Wf1, N, 800, 500, out.f1, wasm)],
  [
    "fc1 weight gradient",
    2 * N * 800 * 500,
    () => matmulTransA(gf1, h, 500, N, 800, out.dWf1, wasm),
  ],
  ["fc1 input gradient", 2 * N * 800 * 500, () => matmul(gf1, Wf1, N, 500, 800, out.dh, wasm)],
  ["pool1 forward (wasmMaxPool2d)", 0, () => wasmMaxPool2d(y1, pool1, p1.y, p1.arg)],
  ["pool1 backward (scatter loop)", 0, () => scatter(p1.y, p1.arg, gx1)],
  ["pool2 forward", 0, () => wasmMaxPool2d(y2, pool2, p2.y, p2.arg)],
  ["pool1 kernel alone: generic window loop", 0, () => generic!(...poolArgs)],
  ["pool1 kernel alone: unrolled 2x2 module", 0, () => unrolled!(...poolArgs)],
];
const ms = fastestMs(
  tasks.map(([name, , f]) => [name, f]),
  timeMs,
);
console.log(machineInfo());
console.log("one thread, fastest call of each, batch 128\n");
console.log("| call | ms | GFLOP/s |");
console.log("| --- | --- | --- |");
tasks.forEach(([name, flops], i) =>
  console.log(
    `| ${name} | ${ms[i]!.toFixed(2)} | ${flops > 0 ? (flops / ms[i]! / 1e6).toFixed(1) : ""} |`,
  ),
);

// What a fresh output array costs: the same calls writing into a new array each time (as a
// training step does: every op's output and every gradient is new) against one reused array.
// The mean of 30 calls per variant, interleaved, after 5 warm-up calls each; the fastest-call
// figures above hide this cost because an allocator sometimes hands back warm memory.
const fresh: [string, (o: Float32Array | undefined) => void, number][] = [
  ["pool1 backward (5.9 MB gx)", (o) => scatter(p1.y, p1.arg, o ?? new Float32Array(size)), size],
  [
    "conv1 forward (5.9 MB y)",
    (o) => conv2dForward(x1, W1, 20, g1, o ?? new Float32Array(size), { ...wasm, layout: "nchw" }),
    size,
  ],
];
console.log("\n| call | into a reused array, mean ms | into a fresh array, mean ms |");
console.log("| --- | --- | --- |");
for (const [name, f, n] of fresh) {
  const reused = new Float32Array(n);
  const sum = [0, 0];
  for (let i = 0; i < 35; i++)
    for (const v of [0, 1]) {
      const t0 = performance.now();
      f(v === 0 ? reused : undefined);
      if (i >= 5) sum[v]! += performance.now() - t0;
    }
  console.log(`| ${name} | ${(sum[0]! / 30).toFixed(2)} | ${(sum[1]! / 30).toFixed(2)} |`);
}
