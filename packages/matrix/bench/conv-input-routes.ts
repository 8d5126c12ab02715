// The two routes of conv2dInputGrad on the WebAssembly path, side by side: col2im of Wᵀ·gy (the
// generated scatter) against the forward convolution of gy with the flipped filters
// (inputGradAsForward; conv.ts takes it for stride 1, "same" padding and AS_FORWARD_MIN_CHANNELS
// or more input channels). Batch 128, 3x3 kernels with padding 1, gy in NCHW as autograd passes
// it; milliseconds per call, the fastest of several (fastestMs), both routes in one call of it.
// The threshold on input channels comes from this table.
//   pnpm tsx packages/matrix/bench/conv-input-routes.ts [--threads 1|2]
import {
  conv2dForward,
  conv2dGeometry,
  createPool,
  type Conv2dGeometry,
  type MatrixPool,
} from "../src/index.ts";
import { flippedFilters, inputGradForwardGeometry } from "../src/conv.ts";
import { runWasmConvInput } from "../src/parallel.ts";
import { fastestMs, machineInfo } from "./common.ts";

const arg = process.argv.indexOf("--threads");
const threads = arg > 0 ? Number(process.argv[arg + 1]) : 1;
if (threads !== 1 && threads !== 2)
  throw new Error(`conv-input-routes: --threads must be 1 or 2, got ${process.argv[arg + 1]}`);
const pool: MatrixPool | undefined =
  threads > 1 ? createPool({ threads, kernels: "wasm" }) : undefined;
await pool?.ready();

const same = (c: number, size: number): Conv2dGeometry => ({
  n: 128,
  c,
  h: size,
  w: size,
  kh: 3,
  kw: 3,
  padH: 1,
  padW: 1,
});
const layers: [string, Conv2dGeometry, number][] = [
  ["smallCnn conv2 (32->32, 28x28)", same(32, 28), 32],
  ["smallCnn conv3 (32->64, 14x14)", same(32, 14), 64],
  ["smallCnn conv4 (64->64, 14x14)", same(64, 14), 64],
  ["64->32, 14x14", same(64, 14), 32],
  ["16->16, 28x28", same(16, 28), 16],
  ["8->32, 28x28", same(8, 28), 32],
  ["6->32, 28x28", same(6, 28), 32],
  ["4->32, 28x28", same(4, 28), 32],
  ["3->32, 32x32 (CIFAR-10's first layer)", same(3, 32), 32],
];

console.log(machineInfo());
console.log(`command: pnpm tsx packages/matrix/bench/conv-input-routes.ts --threads ${threads}`);
console.log("| layer (C -> F) | col2im route, ms | forward route, ms | col2im / forward |");
console.log("|---|---|---|---|");
for (const [name, geo, f] of layers) {
  const g = conv2dGeometry("conv-input-routes", geo);
  // the forward route's geometry whatever the channel threshold says
  const asForward = inputGradForwardGeometry(g, f);
  if (asForward === undefined) throw new Error(`conv-input-routes: ${name} has no forward route`);
  const w = new Float32Array(f * g.patchSize).map(() => Math.random() - 0.5);
  const gy = new Float32Array(g.n * f * g.positions).map(() => Math.random() - 0.5);
  const dx = new Float32Array(g.n * g.c * g.h * g.w);
  const o = { kernels: "wasm" as const, pool, layout: "nchw" as const };
  const [a, b] = fastestMs(
    [
      ["col2im", () => runWasmConvInput(w, gy, dx, g, f, pool, true)],
      ["forward", () => conv2dForward(gy, flippedFilters(w, f, g), g.c, asForward, dx, o)],
    ],
    400,
  );
  console.log(`| ${name} | ${a!.toFixed(1)} | ${b!.toFixed(1)} | ${(a! / b!).toFixed(2)}x |`);
}
await pool?.close();
