// Hot-path cost of tensor ops against hand-written typed-array loops doing the same work
// (including allocating the output).
// Run: node --import tsx packages/tensor/bench/ops.bench.ts
//
// Fairness: the hand loops are ordinary functions that receive their arrays as arguments
// (read from the tensors' fields, as real calling code would). Loops over module-level
// constant arrays would let V8 constant-fold the arrays' lengths and data pointers, which no
// library call can match and no real training loop gets.
//
// The machine is shared, so load drifts during a run. Instead of timing each task in one
// block (tinybench's model), every pair is timed in alternating short rounds of process CPU
// time and the median of the per-round ratios is reported: drift then hits both sides of a
// ratio alike.
import * as T from "../src/index.ts";

type F32 = Float32Array;
const g = T.createGenerator(0);
const B = 128,
  F = 300;
const x = T.randn([B, F], g);
const y = T.randn([B, F], g);
const bias = T.randn([F], g);
const small = T.randn([8], g);
let sink = 0;

function addLoop(a: F32, b: F32, n: number): F32 {
  const o = new Float32Array(n);
  for (let i = 0; i < n; i++) o[i] = a[i]! + b[i]!;
  return o;
}
function biasLoop(a: F32, b: F32, rows: number, cols: number): F32 {
  const o = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) o[r * cols + c] = a[r * cols + c]! + b[c]!;
  return o;
}
function scaleLoop(a: F32, s: number, n: number): F32 {
  const o = new Float32Array(n);
  for (let i = 0; i < n; i++) o[i] = a[i]! * s;
  return o;
}
function reluLoop(a: F32, n: number): F32 {
  const o = new Float32Array(n);
  for (let i = 0; i < n; i++) o[i] = Math.max(a[i]!, 0);
  return o;
}
function colSumLoop(a: F32, rows: number, cols: number): F32 {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) acc[c] = acc[c]! + a[r * cols + c]!;
  const o = new Float32Array(cols);
  o.set(acc);
  return o;
}
function axpyLoop(o: F32, alpha: number, b: F32, n: number): F32 {
  for (let i = 0; i < n; i++) o[i] = o[i]! + alpha * b[i]!;
  return o;
}
function addTransposedLoop(a: F32, b: F32, rows: number, cols: number): F32 {
  // result [cols, rows] = aᵀ + bᵀ, written in result order
  const o = new Float32Array(rows * cols);
  for (let c = 0; c < cols; c++)
    for (let r = 0; r < rows; r++) o[c * rows + r] = a[r * cols + c]! + b[r * cols + c]!;
  return o;
}
function smallAddLoop(a: F32, off1: number, off2: number, n: number): F32 {
  const o = new Float32Array(n);
  for (let i = 0; i < n; i++) o[i] = a[off1 + i]! + a[off2 + i]!;
  return o;
}

const d = (t: T.Tensor): F32 => t.data as F32;
const pairs: [string, () => unknown, () => unknown][] = [
  ["add same shape", () => T.add(x, y), () => addLoop(d(x), d(y), x.size)],
  ["add bias [128,300]+[300]", () => T.add(x, bias), () => biasLoop(d(x), d(bias), B, F)],
  ["mul scalar", () => T.mul(x, 0.5), () => scaleLoop(d(x), 0.5, x.size)],
  ["relu", () => T.relu(x), () => reluLoop(d(x), x.size)],
  ["sum axis 0 (bias grad)", () => T.sum(x, 0), () => colSumLoop(d(x), B, F)],
  [
    "axpyInPlace (SGD step)",
    () => T.axpyInPlace(x, -1e-9, y),
    () => axpyLoop(d(x), -1e-9, d(y), x.size),
  ],
  ["add transposed views", () => T.add(x.T, y.T), () => addTransposedLoop(d(x), d(y), B, F)],
  [
    "small add [4]+[4] (fixed cost)",
    () => T.add(small.slice([0, 4]), small.slice([4, 8])),
    () => smallAddLoop(d(small), 0, 4, 4),
  ],
];

const ROUNDS = 21;
const ROUND_US = 25_000;

function cpuBlock(f: () => unknown, reps: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) sink += f() ? 1 : 0;
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / reps;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

console.log(
  "| op | tensor (µs CPU) | hand loop (µs CPU) | ratio (median of rounds) | middle half of ratios |",
);
console.log("|---|---|---|---|---|");
for (const [name, ours, hand] of pairs) {
  for (let i = 0; i < 200; i++) {
    ours();
    hand();
  }
  const one = Math.max(cpuBlock(ours, 50), 0.05);
  const reps = Math.max(1, Math.round(ROUND_US / one));
  const a: number[] = [];
  const b: number[] = [];
  const r: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    // alternate which side goes first so neither always follows the other's garbage
    let ta: number, tb: number;
    if (k % 2 === 0) {
      ta = cpuBlock(ours, reps);
      tb = cpuBlock(hand, reps);
    } else {
      tb = cpuBlock(hand, reps);
      ta = cpuBlock(ours, reps);
    }
    a.push(ta);
    b.push(tb);
    r.push(ta / tb);
  }
  const sr = [...r].sort((p, q) => p - q);
  const q1 = sr[Math.floor(ROUNDS / 4)]!;
  const q3 = sr[Math.floor((3 * ROUNDS) / 4)]!;
  console.log(
    `| ${name} | ${median(a).toFixed(2)} | ${median(b).toFixed(2)} | ${median(r).toFixed(2)} | ${q1.toFixed(2)}–${q3.toFixed(2)} |`,
  );
}
if (sink < 0) console.log(sink);
