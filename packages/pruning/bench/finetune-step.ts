// Where one fine-tuning step of the pruned LeNet-300-100 goes, dense (masked Linear, Adam with
// the pruning masks registered, as the block chain fine-tunes) against sparse (toBsr, Adam on
// the kept blocks): the phases of a step (forward with the graph, cross-entropy, backward,
// optimizer step, zeroGrad) timed inside each step, and the products alone (preallocated
// outputs) per layer and Adam alone (dense with and without the masks, sparse). Wall-clock
// fastest and median, CPU median (process.cpuUsage(): every thread of the process) and minor
// page faults per step (/proc/self/stat).
//
//   pnpm tsx packages/pruning/bench/finetune-step.ts [checkpoint] [steps=60] [threads=1] [order]
//   (default checkpoint: the MNIST 4x4 chain's round 10 under results/block-sweep)
//   order: "alternate" (default: dense, sparse, dense, ... on the same batch), "sequential"
//   (all dense steps, then all sparse steps: each model's fresh arrays then meet the heap its
//   own previous steps left, not the other model's), or "epoch" (sequential, and every step
//   draws a new batch through nn's arrayDataset from 60000 random uint8 images [1, 28, 28],
//   MNIST's size and layout, as an epoch of pnpm speed does; the step's first phase is then
//   getBatch, 0 in the other orders).
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Variable, setMatrixPool, softmaxCrossEntropy } from "@tessera/autograd";
import { BsrMatrix, createPool, matmul, matmulTransA, matmulTransB } from "@tessera/matrix";
import type { Linear } from "@tessera/nn";
import { Adam, arrayDataset, lenet300100, type Module } from "@tessera/nn";
import { Generator, Tensor, rand } from "@tessera/tensor";
import type { BsrLinear } from "../src/index.ts";
import { loadPruned, toBsr } from "../src/index.ts";

const checkpoint =
  (process.argv[2] || undefined) ??
  "results/block-sweep/mnist-s1-magnitude/chains/mnist-b4-magnitude-s1/round-10.safetensors";
const steps = Number(process.argv[3] ?? 60);
const threads = Number(process.argv[4] ?? 1);
const order = process.argv[5] ?? "alternate";
if (order !== "alternate" && order !== "sequential" && order !== "epoch")
  throw new Error(
    `finetune-step: order must be "alternate", "sequential" or "epoch", got ${order}`,
  );
const batch = 128;

const fresh = (): Module => lenet300100({ generator: new Generator(0) });
const dense = fresh();
const state = loadPruned(checkpoint, dense).state;
if (state === null) throw new Error(`${checkpoint} holds no pruning masks`);
const sparse = fresh();
loadPruned(checkpoint, sparse);
toBsr(sparse, state);
const denseOpt = new Adam(dense.parameters(), { lr: 2e-4 });
state.attach(denseOpt);
const sparseOpt = new Adam(sparse.parameters(), { lr: 2e-4 });
const pool = threads > 1 ? createPool({ threads }) : undefined;
await pool?.ready();
setMatrixPool(pool);

const g = new Generator(3);
const fixedX = rand([batch, 784], g);
const fixedY = new Tensor(
  new Int32Array(batch).map(() => Math.floor(g.nextFloat() * 10)),
  [batch],
);
// The "epoch" order's data: MNIST-sized random bytes, batches drawn in a seeded order.
const images = order === "epoch" ? 60000 : 0;
const data = arrayDataset(
  new Uint8Array(images * 784).map(() => Math.floor(g.nextFloat() * 256)),
  new Uint8Array(images).map(() => Math.floor(g.nextFloat() * 10)),
  [1, 28, 28],
);
const perm = images === 0 ? new Int32Array(0) : g.permutation(images);
let cursor = 0;

const faults = (): number =>
  Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);
const cpuMs = (): number => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

const PHASES = [
  "getBatch",
  "forward",
  "loss",
  "backward",
  "optimizer step",
  "zeroGrad",
  "whole step",
];
type Samples = Map<string, { wall: number[]; cpu: number[]; faults: number[] }>;
const newSamples = (): Samples =>
  new Map(
    PHASES.map((p) => [p, { wall: [] as number[], cpu: [] as number[], faults: [] as number[] }]),
  );

function step(model: Module, opt: Adam, s: Samples | null): void {
  const f0 = s === null ? 0 : faults();
  const t: number[] = [performance.now()];
  const c: number[] = [cpuMs()];
  const mark = () => {
    t.push(performance.now());
    c.push(cpuMs());
  };
  let x = fixedX;
  let y = fixedY;
  if (order === "epoch") {
    if (cursor + batch > images) cursor = 0;
    const b = data.getBatch(perm.subarray(cursor, cursor + batch));
    cursor += batch;
    x = b.x;
    y = new Tensor(b.y, [batch]);
  }
  mark();
  const out = model.forward(new Variable(x));
  mark();
  const loss = softmaxCrossEntropy(out, y);
  mark();
  loss.backward();
  mark();
  opt.step();
  mark();
  model.zeroGrad();
  mark();
  if (s === null) return;
  const f1 = faults();
  for (let i = 0; i < 6; i++) {
    s.get(PHASES[i]!)!.wall.push(t[i + 1]! - t[i]!);
    s.get(PHASES[i]!)!.cpu.push(c[i + 1]! - c[i]!);
  }
  const w = s.get("whole step")!;
  w.wall.push(t[6]! - t[0]!);
  w.cpu.push(c[6]! - c[0]!);
  w.faults.push(f1 - f0);
}

dense.train();
sparse.train();
for (let i = 0; i < 5; i++) {
  step(dense, denseOpt, null);
  step(sparse, sparseOpt, null);
}
const sd = newSamples();
const ss = newSamples();
if (order === "alternate")
  for (let i = 0; i < steps; i++) {
    step(dense, denseOpt, sd);
    step(sparse, sparseOpt, ss);
  }
else {
  for (let i = 0; i < steps; i++) step(dense, denseOpt, sd);
  for (let i = 0; i < steps; i++) step(sparse, sparseOpt, ss);
}

// The products alone, outputs preallocated, alternating dense / sparse rep by rep.
function productTasks(): [string, string, () => void][] {
  const tasks: [string, string, () => void][] = [];
  const gen = new Generator(5);
  for (const name of ["fc1", "fc2", "fc3"]) {
    const d = dense.getSubmodule(name) as Linear;
    const b = sparse.getSubmodule(name) as BsrLinear;
    const inF = d.inFeatures;
    const outF = d.outFeatures;
    const W = d.weight.data.data as Float32Array;
    const X = rand([batch, inF], gen).data as Float32Array;
    const G = rand([batch, outF], gen).data as Float32Array;
    const yOut = new Float32Array(batch * outF);
    const xOut = new Float32Array(batch * inF);
    const wOut = new Float32Array(outF * inF);
    const m = b.weight as BsrMatrix<Float32Array>;
    const dOut = new Float32Array(m.data.length);
    const o = pool === undefined ? {} : { pool };
    tasks.push(
      [name, "dense forward x·Wᵀ", () => matmulTransB(X, W, batch, inF, outF, yOut, o)],
      [name, "BSR forward x·Wᵀ", () => m.rmatmulTranspose(X, batch, { out: yOut, ...o })],
      [name, "dense dW = dyᵀ·x", () => matmulTransA(G, X, outF, batch, inF, wOut, o)],
      [
        name,
        "BSR dW (sampled)",
        () => BsrMatrix.sampledMatmul(m, G, X, batch, { transA: true, out: dOut, ...o }),
      ],
    );
    if (name !== "fc1")
      tasks.push(
        [name, "dense dx = dy·W", () => matmul(G, W, batch, outF, inF, xOut, o)],
        [name, "BSR dx = dy·W", () => m.rmatmul(G, batch, { out: xOut, ...o })],
      );
  }
  // Adam over the dense model's parameters with and without the pruning masks registered (the
  // difference is the mask application: gradient times mask, pruned weights zeroed), and over
  // the sparse model's (kept blocks only). Each is a separate optimizer over the same
  // parameters, whose gradients are set to fixed values before every step.
  const adamTask = (model: Module, masked: boolean): (() => void) => {
    const params = model.parameters();
    const opt = new Adam(params, { lr: 1e-9 });
    if (masked) state!.attach(opt);
    const grads = params.map((p) => rand(p.data.shape, gen));
    return () => {
      params.forEach((p, i) => (p.grad = grads[i]!));
      opt.step();
    };
  };
  tasks.push(
    ["all", "dense Adam, masks registered", adamTask(dense, true)],
    ["all", "dense Adam, no masks", adamTask(dense, false)],
    ["all", "BSR Adam (kept blocks)", adamTask(sparse, false)],
  );
  return tasks;
}
const tasks = productTasks();
const pw = new Map<string, number[]>(tasks.map(([l, p]) => [`${l} ${p}`, []]));
const pc = new Map<string, number[]>(tasks.map(([l, p]) => [`${l} ${p}`, []]));
for (const [, , f] of tasks) for (let i = 0; i < 3; i++) f();
for (let r = 0; r < Math.max(10, steps / 2); r++)
  for (const [l, p, f] of tasks) {
    const c0 = cpuMs();
    const t0 = performance.now();
    f();
    pw.get(`${l} ${p}`)!.push(performance.now() - t0);
    pc.get(`${l} ${p}`)!.push(cpuMs() - c0);
  }

const f3 = (v: number) => v.toFixed(3);
console.log(
  `Machine: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, Node ${process.version}; ${new Date().toISOString()}; load average at end of timing ${load()}`,
);
console.log(
  `Checkpoint: ${checkpoint}; batch ${batch}; ${threads} thread(s); ${steps} steps each, ${order} (ms); GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES ?? "(unset)"}\n`,
);
console.log(
  "| phase | dense fastest | dense median | dense CPU median | sparse fastest | sparse median | sparse CPU median | dense/sparse CPU |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const p of PHASES) {
  const a = sd.get(p)!;
  const b = ss.get(p)!;
  console.log(
    `| ${p} | ${f3(Math.min(...a.wall))} | ${f3(median(a.wall))} | ${f3(median(a.cpu))} | ${f3(Math.min(...b.wall))} | ${f3(median(b.wall))} | ${f3(median(b.cpu))} | ${(median(a.cpu) / median(b.cpu)).toFixed(2)}x |`,
  );
}
// Means beside the medians: page faults (and the GC work that comes with them) arrive in bursts
// every few steps, so the median step hides them while an epoch pays the mean.
const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
const ws = (m: Samples) => m.get("whole step")!;
console.log(
  `\nWhole step, mean over the timed steps: dense wall ${f3(mean(ws(sd).wall))} ms, CPU ${f3(mean(ws(sd).cpu))} ms, ` +
    `${mean(ws(sd).faults).toFixed(1)} minor page faults (median ${median(ws(sd).faults)}); ` +
    `sparse wall ${f3(mean(ws(ss).wall))} ms, CPU ${f3(mean(ws(ss).cpu))} ms, ` +
    `${mean(ws(ss).faults).toFixed(1)} faults (median ${median(ws(ss).faults)}); ` +
    `dense/sparse mean CPU ${(mean(ws(sd).cpu) / mean(ws(ss).cpu)).toFixed(2)}x\n`,
);
console.log("| layer | product | wall fastest | wall median | CPU median |");
console.log("| --- | --- | ---: | ---: | ---: |");
for (const [l, p] of tasks) {
  const w = pw.get(`${l} ${p}`)!;
  console.log(
    `| ${l} | ${p} | ${f3(Math.min(...w))} | ${f3(median(w))} | ${f3(median(pc.get(`${l} ${p}`)!))} |`,
  );
}
setMatrixPool(undefined);
await pool?.close();
