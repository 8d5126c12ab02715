// The convolution products of LeNet-5 and smallCnn() (batch 128) on each kernel path, one thread:
// the composed calls (im2col + matmul, im2col + matmulTransB, matmulTransA + col2im: what
// autograd's conv2d runs on the asm path) against conv2dForward / conv2dWeightGrad /
// conv2dInputGrad (on the wasm path: no patch matrix, wasm-conv.ts). Milliseconds per call, the
// fastest of several (fastestMs), all rows of a layer timed in one call of fastestMs.
//   pnpm tsx packages/matrix/bench/conv.ts [--time-ms 300]
import {
  col2im,
  conv2dForward,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  im2col,
  matmul,
  matmulTransA,
  matmulTransB,
} from "../src/index.ts";
import type { Conv2dGeometry, KernelPath } from "../src/index.ts";
import { fastestMs, machineInfo } from "./common.ts";

const timeArg = process.argv.indexOf("--time-ms");
const timeMs = timeArg > 0 ? Number(process.argv[timeArg + 1]) : 300;
if (!(timeMs > 0)) throw new Error(`conv bench: --time-ms must be a positive number`);

const layers: [string, Conv2dGeometry, number][] = [
  ["LeNet-5 conv1 (1->20, 5x5)", { n: 128, c: 1, h: 28, w: 28, kh: 5, kw: 5 }, 20],
  ["LeNet-5 conv2 (20->50, 5x5)", { n: 128, c: 20, h: 12, w: 12, kh: 5, kw: 5 }, 50],
  [
    "smallCnn conv1 (1->32, 3x3 pad 1)",
    { n: 128, c: 1, h: 28, w: 28, kh: 3, kw: 3, padH: 1, padW: 1 },
    32,
  ],
  ["smallCnn conv2 (32->32)", { n: 128, c: 32, h: 28, w: 28, kh: 3, kw: 3, padH: 1, padW: 1 }, 32],
  ["smallCnn conv3 (32->64)", { n: 128, c: 32, h: 14, w: 14, kh: 3, kw: 3, padH: 1, padW: 1 }, 64],
  ["smallCnn conv4 (64->64)", { n: 128, c: 64, h: 14, w: 14, kh: 3, kw: 3, padH: 1, padW: 1 }, 64],
];

console.log(machineInfo());
console.log(`command: pnpm tsx packages/matrix/bench/conv.ts --time-ms ${timeMs}`);
console.log(
  "| layer | path | forward: composed / fused (ms) | weight grad: composed / fused | input grad: composed / fused |",
);
console.log("|---|---|---|---|---|");
for (const [name, g, f] of layers) {
  const r = conv2dGeometry("conv bench", g);
  const K = r.patchSize;
  const NP = g.n * r.positions;
  const x = new Float32Array(g.n * g.c * g.h * g.w).map(() => Math.random() - 0.5);
  const w = new Float32Array(f * K).map(() => Math.random() - 0.5);
  const gy = new Float32Array(f * NP).map(() => Math.random() - 0.5);
  const cols = new Float32Array(K * NP);
  const y = new Float32Array(f * NP);
  const dW = new Float32Array(f * K);
  const dx = new Float32Array(x.length);
  for (const kernels of ["asm", "wasm"] as KernelPath[]) {
    const o = { kernels };
    const ms = fastestMs(
      [
        ["fwd composed", () => matmul(w, im2col(x, g, cols, "batched"), f, K, NP, y, o)],
        ["fwd fused", () => conv2dForward(x, w, f, g, y, o)],
        ["dW composed", () => matmulTransB(gy, im2col(x, g, cols, "batched"), f, NP, K, dW, o)],
        ["dW fused", () => conv2dWeightGrad(gy, x, f, g, dW, o)],
        ["dx composed", () => col2im(matmulTransA(w, gy, K, f, NP, cols, o), g, dx, "batched")],
        ["dx fused", () => conv2dInputGrad(w, gy, f, g, dx, o)],
      ],
      timeMs,
    );
    const pair = (i: number) => `${ms[i]!.toFixed(1)} / ${ms[i + 1]!.toFixed(1)}`;
    console.log(`| ${name} | ${kernels} | ${pair(0)} | ${pair(2)} | ${pair(4)} |`);
  }
}
