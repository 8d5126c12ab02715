// Hot-path cost of tensor ops against hand-written typed-array loops doing the same work
// (including allocating the output), measured side by side in one run.
// Run: pnpm tsx packages/tensor/bench/ops.bench.ts
import { Bench } from "tinybench";
import * as T from "../src/index.ts";

const g = T.createGenerator(0);
const B = 128,
  F = 300;
const x = T.randn([B, F], g);
const y = T.randn([B, F], g);
const bias = T.randn([F], g);
const xd = x.data as Float32Array;
const yd = y.data as Float32Array;
const bd = bias.data as Float32Array;
const n = B * F;
let sink = 0;

const pairs: [string, () => unknown, () => unknown][] = [
  [
    "add same shape",
    () => T.add(x, y),
    () => {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = xd[i]! + yd[i]!;
      return o;
    },
  ],
  [
    "add bias [128,300]+[300]",
    () => T.add(x, bias),
    () => {
      const o = new Float32Array(n);
      for (let r = 0; r < B; r++)
        for (let c = 0; c < F; c++) o[r * F + c] = xd[r * F + c]! + bd[c]!;
      return o;
    },
  ],
  [
    "mul scalar",
    () => T.mul(x, 0.5),
    () => {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = xd[i]! * 0.5;
      return o;
    },
  ],
  [
    "relu",
    () => T.relu(x),
    () => {
      const o = new Float32Array(n);
      for (let i = 0; i < n; i++) o[i] = xd[i]! < 0 ? 0 : xd[i]!;
      return o;
    },
  ],
  [
    "sum axis 0 (bias grad)",
    () => T.sum(x, 0),
    () => {
      const acc = new Float64Array(F);
      for (let r = 0; r < B; r++) for (let c = 0; c < F; c++) acc[c] = acc[c]! + xd[r * F + c]!;
      return Float32Array.from(acc);
    },
  ],
  [
    "axpyInPlace (SGD step)",
    () => T.axpyInPlace(x, -1e-9, y),
    () => {
      for (let i = 0; i < n; i++) xd[i] = xd[i]! + -1e-9 * yd[i]!;
      return xd;
    },
  ],
  [
    "add transposed view [300,128]",
    () => T.add(x.T, y.T),
    () => {
      const o = new Float32Array(n);
      for (let c = 0; c < F; c++)
        for (let r = 0; r < B; r++) o[c * B + r] = xd[r * F + c]! + yd[r * F + c]!;
      return o;
    },
  ],
  [
    "small add [4]+[4] (per-op overhead)",
    () => T.add(bias.slice([0, 4]), bias.slice([4, 8])),
    () => {
      const o = new Float32Array(4);
      for (let i = 0; i < 4; i++) o[i] = bd[i]! + bd[i + 4]!;
      return o;
    },
  ],
];

const bench = new Bench({ time: 300, warmupTime: 100 });
for (const [name, ours, hand] of pairs) {
  bench.add(`${name} | tensor`, () => void (sink += (ours() as object) ? 1 : 0));
  bench.add(`${name} | hand loop`, () => void (sink += (hand() as object) ? 1 : 0));
}
await bench.run();
const mean = (name: string): number => {
  const t = bench.tasks.find((k) => k.name === name)!;
  const r = t.result as unknown as { latency?: { mean: number }; mean?: number };
  return r.latency?.mean ?? r.mean ?? NaN;
};
console.log("| op | tensor (us) | hand loop (us) | ratio |");
console.log("|---|---|---|---|");
for (const [name] of pairs) {
  const a = mean(`${name} | tensor`) * 1000;
  const b = mean(`${name} | hand loop`) * 1000;
  console.log(`| ${name} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(a / b).toFixed(2)} |`);
}
if (sink < 0) console.log(sink);
