// Where the time of the pruned LeNet-300-100's BSR forward goes, on 1 and 2 threads: each
// layer's BSR products (forward x·Wᵀ, input gradient dy·W, sampled weight gradient) on both
// kernel paths, the whole model dense vs BSR, and what fresh output arrays cost on this
// machine (minor page faults counted from /proc/self/stat). Wall-clock (median and fastest rep) and CPU time (process.cpuUsage(): every thread
// of the process, so a 2-thread row sums both threads) side by side, variants alternating rep
// by rep. Prints a markdown report (docs/benchmarks/bsr-linear.md records one).
//
//   pnpm tsx experiments/bench/bsr-threads.ts [checkpoint] [reps]
//   (default: results/block-sweep/mnist-s1-magnitude/chains/mnist-b4-magnitude-s1/round-10.safetensors, 40)
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { Variable, noGrad, relu, setMatrixPool } from "@tessera/autograd";
import { findWorkspaceRoot } from "@tessera/mnist-dataset-loader";
import { BsrMatrix, createPool, type KernelPath, type MatrixPool } from "@tessera/matrix";
import { lenet300100 } from "@tessera/nn";
import type { BsrLinear } from "@tessera/pruning";
import { Generator, Tensor } from "@tessera/tensor";
import { loadVariants } from "../src/speed.ts";

const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
const checkpoint =
  (process.argv[2] || undefined) ??
  join(
    root,
    "results/block-sweep/mnist-s1-magnitude/chains/mnist-b4-magnitude-s1/round-10.safetensors",
  );
const reps = Number(process.argv[3] ?? 40);
const n = 128;

interface Stat {
  wallMed: number;
  wallMin: number;
  cpuMed: number;
}

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;

/** Times the tasks side by side: `inner` calls per rep, tasks alternating within every rep. */
function timeTasks(tasks: [string, () => void][], inner: number): Map<string, Stat> {
  const wall = new Map<string, number[]>(tasks.map(([k]) => [k, []]));
  const cpu = new Map<string, number[]>(tasks.map(([k]) => [k, []]));
  for (const [, f] of tasks) for (let i = 0; i < 5; i++) f();
  for (let r = 0; r < reps; r++)
    for (const [k, f] of tasks) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < inner; i++) f();
      const t = (performance.now() - t0) / inner;
      const c = process.cpuUsage(c0);
      wall.get(k)!.push(t);
      cpu.get(k)!.push((c.user + c.system) / 1000 / inner);
    }
  return new Map(
    tasks.map(([k]) => [
      k,
      {
        wallMed: median(wall.get(k)!),
        wallMin: Math.min(...wall.get(k)!),
        cpuMed: median(cpu.get(k)!),
      },
    ]),
  );
}

function values(len: number): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = Math.sin(i * 0.37);
  return a;
}

const f3 = (x: number) => x.toFixed(3);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

const lines: string[] = [];
lines.push(
  `Machine: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, Node ${process.version}; ${new Date().toISOString()}; load average (1/5/15 min) at start ${load()}`,
  `Checkpoint: ${checkpoint}; batch ${n}; ${reps} alternating reps`,
  "",
);
const v = loadVariants(checkpoint, () => lenet300100({ generator: new Generator(0) }));
const pool: MatrixPool = createPool({ threads: 2 });
await pool.ready();

lines.push(
  "### BSR products per layer (ms per product; outputs preallocated)",
  "",
  "| layer | product | path | threads | wall median | wall fastest | CPU median |",
  "| --- | --- | --- | ---: | ---: | ---: | ---: |",
);
for (const name of ["fc1", "fc2", "fc3"]) {
  const w = (v.bsr.getSubmodule(name) as BsrLinear).weight as BsrMatrix<Float32Array>;
  const x = values(n * w.cols);
  const dy = values(n * w.rows);
  const y = new Float32Array(n * w.rows);
  const dx = new Float32Array(n * w.cols);
  const dw = new Float32Array(w.data.length);
  const tasks: [string, () => void][] = [];
  for (const kernels of ["asm", "wasm"] as KernelPath[])
    for (const threads of [1, 2]) {
      const p = threads === 2 ? pool : undefined;
      const o = { pool: p, kernels };
      tasks.push([
        `forward x·Wᵀ|${kernels}|${threads}`,
        () => w.rmatmulTranspose(x, n, { ...o, out: y }),
      ]);
      tasks.push([`dx dy·W|${kernels}|${threads}`, () => w.rmatmul(dy, n, { ...o, out: dx })]);
      tasks.push([
        `dW (sampled)|${kernels}|${threads}`,
        () => BsrMatrix.sampledMatmul(w, dy, x, n, { ...o, transA: true, out: dw }),
      ]);
    }
  const s = timeTasks(tasks, 5);
  const label = `${name} ${w.rows}x${w.cols}, ${(100 * w.density).toFixed(1)}% of ${w.blockShape.join("x")} blocks`;
  for (const [k, t] of s) {
    const [product, path, threads] = k.split("|");
    lines.push(
      `| ${label} | ${product} | ${path} | ${threads} | ${f3(t.wallMed)} | ${f3(t.wallMin)} | ${f3(t.cpuMed)} |`,
    );
  }
}

lines.push(
  "",
  "### Whole model forward (ms; asm path, the default)",
  "",
  "| threads | dense wall median | BSR wall median | wall ratio | dense fastest | BSR fastest | ratio of fastest | dense CPU | BSR CPU | CPU ratio |",
  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
);
const input = new Variable(new Tensor(values(n * 784), [n, 784]));
for (const threads of [1, 2]) {
  setMatrixPool(threads === 2 ? pool : undefined);
  v.dense.eval();
  v.bsr.eval();
  const s = noGrad(() =>
    timeTasks(
      [
        ["dense", () => v.dense.forward(input)],
        ["bsr", () => v.bsr.forward(input)],
      ],
      2,
    ),
  );
  const d = s.get("dense")!;
  const b = s.get("bsr")!;
  lines.push(
    `| ${threads} | ${f3(d.wallMed)} | ${f3(b.wallMed)} | ${(d.wallMed / b.wallMed).toFixed(2)}x | ${f3(d.wallMin)} | ${f3(b.wallMin)} | ${(d.wallMin / b.wallMin).toFixed(2)}x | ${f3(d.cpuMed)} | ${f3(b.cpuMed)} | ${(d.cpuMed / b.cpuMed).toFixed(2)}x |`,
  );
}
setMatrixPool(undefined);

lines.push(
  "",
  "### Fresh arrays: minor page faults and CPU per call (1 thread, 300 calls each after 50 untimed)",
  "",
  "| call | minor faults | CPU ms | of which system |",
  "| --- | ---: | ---: | ---: |",
);
/** Minor page faults of this process so far (/proc/self/stat field 10; Linux only). */
const minorFaults = (): number =>
  Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);
const fc1 = v.bsr.getSubmodule("fc1") as BsrLinear;
const w1 = fc1.weight as BsrMatrix<Float32Array>;
const x1 = values(n * 784);
const y1 = new Float32Array(n * 300);
const hidden = noGrad(() => relu(fc1.forward(input)));
/** The arrays of the "kept alive" probe (a new one each call, the oldest dropped). */
const kept: Float32Array[] = [];
const probes: [string, () => unknown][] = [
  ["fc1 product x·Wᵀ into a reused output", () => w1.rmatmulTranspose(x1, n, { out: y1 })],
  ["fc1 product x·Wᵀ into a fresh output", () => w1.rmatmulTranspose(x1, n)],
  ["fc1 BsrLinear.forward (fresh output, bias)", () => fc1.forward(input)],
  ["relu of a [128, 300] activation (fresh output)", () => relu(hidden)],
  ["new Float32Array(128 * 300), filled, dropped", () => new Float32Array(n * 300).fill(1)],
  [
    "the same, the last 4 kept alive",
    () => {
      kept.push(new Float32Array(n * 300).fill(1));
      if (kept.length > 4) kept.shift();
    },
  ],
  ["whole BSR model forward", () => v.bsr.forward(input)],
  ["whole dense model forward", () => v.dense.forward(input)],
];
noGrad(() => {
  for (const [name, f] of probes) {
    for (let i = 0; i < 50; i++) f();
    const f0 = minorFaults();
    const c0 = process.cpuUsage();
    for (let i = 0; i < 300; i++) f();
    const c = process.cpuUsage(c0);
    const faults = (minorFaults() - f0) / 300;
    lines.push(
      `| ${name} | ${faults.toFixed(1)} | ${f3((c.user + c.system) / 1000 / 300)} | ${f3(c.system / 1000 / 300)} |`,
    );
  }
});
lines.push("", `Load average at end: ${load()}`);
await pool.close();
console.log(lines.join("\n"));
