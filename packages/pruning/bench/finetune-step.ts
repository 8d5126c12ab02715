// Where one fine-tuning step of the pruned LeNet-300-100 goes, dense (masked Linear, Adam with
// the pruning masks registered, as the block chain fine-tunes) against sparse (toBsr, Adam on
// the kept blocks): the phases of a step (forward with the graph, cross-entropy, backward,
// optimizer step, zeroGrad) timed inside each step, and the products alone (preallocated
// outputs) per layer and Adam alone (dense with and without the masks, sparse). Wall-clock
// fastest and median, CPU median (process.cpuUsage(): every thread of the process) and minor
// page faults per step (/proc/self/stat). Each model also runs as a second copy whose steps go
// through an autograd BufferArena (arena.step around the whole step, as fit's `arena` option
// does), so the step with fresh arrays and the step with reused ones are timed side by side:
// whole-step means and medians of wall time, CPU and page faults for all four.
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
import { BufferArena, Variable, setMatrixPool, softmaxCrossEntropy } from "@tessera/autograd";
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
// The arena copies: same checkpoint, same masks, their own optimizers and arenas.
const denseA = fresh();
const stateA = loadPruned(checkpoint, denseA).state!;
const denseAOpt = new Adam(denseA.parameters(), { lr: 2e-4 });
stateA.attach(denseAOpt);
const sparseA = fresh();
loadPruned(checkpoint, sparseA);
toBsr(sparseA, stateA);
const sparseAOpt = new Adam(sparseA.parameters(), { lr: 2e-4 });
const denseArena = new BufferArena();
const sparseArena = new BufferArena();
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
  "arena release",
  "whole step",
];
const LAST = PHASES.length - 1;
type Samples = Map<string, { wall: number[]; cpu: number[]; faults: number[] }>;
const newSamples = (): Samples =>
  new Map(
    PHASES.map((p) => [p, { wall: [] as number[], cpu: [] as number[], faults: [] as number[] }]),
  );

function step(model: Module, opt: Adam, s: Samples | null, arena?: BufferArena): void {
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
  const body = () => {
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
  };
  if (arena === undefined) body();
  else arena.step(body);
  mark(); // the arena's release (free-list bookkeeping) when there is one
  if (s === null) return;
  const f1 = faults();
  for (let i = 0; i < LAST; i++) {
    s.get(PHASES[i]!)!.wall.push(t[i + 1]! - t[i]!);
    s.get(PHASES[i]!)!.cpu.push(c[i + 1]! - c[i]!);
  }
  const w = s.get("whole step")!;
  w.wall.push(t[LAST]! - t[0]!);
  w.cpu.push(c[LAST]! - c[0]!);
  w.faults.push(f1 - f0);
}

for (const m of [dense, sparse, denseA, sparseA]) m.train();
const sd = newSamples();
const ss = newSamples();
const sdA = newSamples();
const ssA = newSamples();
const variants: [Module, Adam, Samples, BufferArena | undefined][] = [
  [dense, denseOpt, sd, undefined],
  [denseA, denseAOpt, sdA, denseArena],
  [sparse, sparseOpt, ss, undefined],
  [sparseA, sparseAOpt, ssA, sparseArena],
];
for (let i = 0; i < 5; i++) for (const [m, o, , a] of variants) step(m, o, null, a);
if (order === "alternate")
  for (let i = 0; i < steps; i++) for (const [m, o, s, a] of variants) step(m, o, s, a);
else for (const [m, o, s, a] of variants) for (let i = 0; i < steps; i++) step(m, o, s, a);

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
function phaseTable(title: string, a: Samples, b: Samples): void {
  console.log(`${title}\n`);
  console.log(
    "| phase | dense fastest | dense median | dense CPU median | sparse fastest | sparse median | sparse CPU median | dense/sparse CPU |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const p of PHASES) {
    const x = a.get(p)!;
    const y = b.get(p)!;
    console.log(
      `| ${p} | ${f3(Math.min(...x.wall))} | ${f3(median(x.wall))} | ${f3(median(x.cpu))} | ${f3(Math.min(...y.wall))} | ${f3(median(y.wall))} | ${f3(median(y.cpu))} | ${(median(x.cpu) / median(y.cpu)).toFixed(2)}x |`,
    );
  }
  console.log("");
}
phaseTable("Fresh arrays (no arena):", sd, ss);
phaseTable("Through a BufferArena:", sdA, ssA);
// Means beside the medians: page faults (and the GC work that comes with them) arrive in bursts
// every few steps, so the median step hides them while an epoch pays the mean.
const mean = (a: number[]) => a.reduce((p, q) => p + q, 0) / a.length;
const ws = (m: Samples) => m.get("whole step")!;
console.log(
  "\nWhole step, fresh arrays against a BufferArena (mean and median over the timed steps):\n",
);
console.log(
  "| model | arrays | wall mean | wall median | CPU mean | CPU median | faults mean | faults median |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, arrays, m] of [
  ["dense", "fresh", sd],
  ["dense", "arena", sdA],
  ["sparse", "fresh", ss],
  ["sparse", "arena", ssA],
] as const) {
  const w = ws(m);
  console.log(
    `| ${name} | ${arrays} | ${f3(mean(w.wall))} | ${f3(median(w.wall))} | ${f3(mean(w.cpu))} | ${f3(median(w.cpu))} | ${mean(w.faults).toFixed(1)} | ${median(w.faults)} |`,
  );
}
const ratio = (a: number[], b: number[]) => (mean(a) / mean(b)).toFixed(2);
console.log(
  `\ndense/sparse by mean: fresh arrays wall ${ratio(ws(sd).wall, ws(ss).wall)}x, CPU ${ratio(ws(sd).cpu, ws(ss).cpu)}x; ` +
    `arena wall ${ratio(ws(sdA).wall, ws(ssA).wall)}x, CPU ${ratio(ws(sdA).cpu, ws(ssA).cpu)}x. ` +
    `Arena arrays: dense ${denseArena.stats.allocated} made, ${(denseArena.stats.freeBytes / 1e6).toFixed(2)} MB held; ` +
    `sparse ${sparseArena.stats.allocated} made, ${(sparseArena.stats.freeBytes / 1e6).toFixed(2)} MB held\n`,
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
