// LeNet-5's 5x5 conv2 and smallCnn()'s 3x3 convolutions (batch 128, NCHW, wasm path) as the
// direct product and as Winograd F(2x2, r x r) (wasm-winograd.ts), side by side in one run: the forward product, the
// input gradient (its forward route) and the weight gradient, one and two threads. Milliseconds per call, the fastest
// of several (fastestMs), and the ratio direct / Winograd.
//   pnpm tsx packages/matrix/bench/winograd.ts [--time-ms 300]
import {
  conv2dForward,
  conv2dGeometry,
  conv2dInputGrad,
  conv2dWeightGrad,
  createPool,
} from "../src/index.ts";
import type { Conv2dGeometry } from "../src/index.ts";
import { fastestMs, fillRandom, machineInfo } from "./common.ts";

const timeArg = process.argv.indexOf("--time-ms");
const timeMs = timeArg > 0 ? Number(process.argv[timeArg + 1]) : 300;
if (!(timeMs > 0)) throw new Error(`winograd bench: --time-ms must be a positive number`);

const same = (c: number, s: number): Conv2dGeometry => ({
  n: 128,
  c,
  h: s,
  w: s,
  kh: 3,
  kw: 3,
  padH: 1,
  padW: 1,
});
const layers: [string, Conv2dGeometry, number][] = [
  // F(2x2, 5x5); unpadded, so its input gradient stays on col2im (no forward route)
  ["LeNet-5 conv2 (20->50, 5x5, 12x12)", { n: 128, c: 20, h: 12, w: 12, kh: 5, kw: 5 }, 50],
  ["smallCnn conv2 (32->32, 28x28)", same(32, 28), 32],
  ["smallCnn conv3 (32->64, 14x14)", same(32, 14), 64],
  ["smallCnn conv4 (64->64, 14x14)", same(64, 14), 64],
];

console.log(machineInfo());
console.log(`command: pnpm tsx packages/matrix/bench/winograd.ts --time-ms ${timeMs}`);
console.log(
  "| layer | threads | forward: direct / Winograd (ms) | ratio | input grad: direct / Winograd (ms) | ratio | weight grad: direct / Winograd (ms) | ratio |",
);
console.log("|---|---|---|---|---|---|---|---|");
const pool = createPool({ threads: 2, kernels: "wasm" });
await pool.ready();
for (const [name, g, f] of layers) {
  const r = conv2dGeometry("winograd bench", g);
  const P = r.positions;
  const x = fillRandom(new Float32Array(g.n * g.c * g.h * g.w), 1);
  const w = fillRandom(new Float32Array(f * r.patchSize), 2);
  const gy = fillRandom(new Float32Array(g.n * f * P), 3);
  const y = new Float32Array(g.n * f * P);
  const dx = new Float32Array(x.length);
  const dW = new Float32Array(w.length);
  for (const threads of [1, 2]) {
    const o = {
      kernels: "wasm" as const,
      layout: "nchw" as const,
      pool: threads === 2 ? pool : undefined,
    };
    const direct = { ...o, winograd: false };
    const ms = fastestMs(
      [
        ["fwd direct", () => conv2dForward(x, w, f, g, y, direct)],
        ["fwd winograd", () => conv2dForward(x, w, f, g, y, o)],
        ["dx direct", () => conv2dInputGrad(w, gy, f, g, dx, direct)],
        ["dx winograd", () => conv2dInputGrad(w, gy, f, g, dx, o)],
        ["dW direct", () => conv2dWeightGrad(gy, x, f, g, dW, direct)],
        ["dW winograd", () => conv2dWeightGrad(gy, x, f, g, dW, o)],
      ],
      timeMs,
    );
    const pair = (i: number) =>
      `${ms[i]!.toFixed(2)} / ${ms[i + 1]!.toFixed(2)} | ${(ms[i]! / ms[i + 1]!).toFixed(2)}x`;
    console.log(`| ${name} | ${threads} | ${pair(0)} | ${pair(2)} | ${pair(4)} |`);
  }
}
await pool.close();
