// The whole pruned LeNet-300-100 forward at one batch size: the modules' forward under noGrad
// (fresh arrays for every product, bias and ReLU) against an InferencePlan (owned buffers, bias
// and ReLU in the product's epilogue; for BSR also as a separate pass after the product),
// dense (masked Linear) and BSR (toBsr), on 1 and 2
// threads. Variants alternate rep by rep; wall-clock fastest and median reps, CPU median
// (process.cpuUsage(): every thread of the process), and minor page faults per call
// (/proc/self/stat). The input is a seeded uniform [0, 1) batch (the products' cost does not
// depend on the values).
//
//   pnpm tsx packages/pruning/bench/plan.ts [checkpoint] [reps=30] [batch=128] [spins]
//   (default checkpoint: the MNIST 4x4 chain's round 10 under results/block-sweep)
//   spins: comma-separated worker spin counts for the 2-thread pools (createPool({ spin }));
//   default the pool's own (200000).
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { Variable, noGrad, setMatrixPool } from "@tessera/autograd";
import { createPool, type MatrixPool } from "@tessera/matrix";
import { lenet300100, type Module } from "@tessera/nn";
import { Generator, rand } from "@tessera/tensor";
import { biasReluEpilogue, loadPruned, planInference, toBsr } from "../src/index.ts";
import type { InferencePlan } from "../src/index.ts";

const checkpoint =
  (process.argv[2] || undefined) ??
  "results/block-sweep/mnist-s1-magnitude/chains/mnist-b4-magnitude-s1/round-10.safetensors";
const reps = Number(process.argv[3] ?? 30);
const batch = Number(process.argv[4] ?? 128);
const spins = (process.argv[5] ?? "")
  .split(",")
  .filter((s) => s !== "")
  .map(Number);

const fresh = (): Module => lenet300100({ generator: new Generator(0) });
const dense = fresh();
const state = loadPruned(checkpoint, dense).state;
if (state === null) throw new Error(`${checkpoint} holds no pruning masks`);
const bsr = fresh();
loadPruned(checkpoint, bsr);
toBsr(bsr, state);
const x = rand([batch, 784], new Generator(7));
const input = new Variable(x);

const faults = (): number =>
  Number(readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ")[7]);
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

interface Row {
  threads: string;
  name: string;
  wall: number[];
  cpu: number[];
  faults: number[];
}

const runner = (p: InferencePlan) => () => {
  p.run(x);
};

function timeAll(label: string, pool: MatrixPool | undefined): Row[] {
  setMatrixPool(pool);
  // The epilogues alone (fc1's and fc2's bias + ReLU over the batch): what fusing them into the
  // products' output writes could save at most.
  const y1 = new Float32Array(batch * 300).map((_, i) => Math.sin(i));
  const y2 = new Float32Array(batch * 100).map((_, i) => Math.sin(i));
  const b1 = new Float32Array(300).fill(0.01);
  const b2 = new Float32Array(100).fill(0.01);
  const tasks: [string, () => void][] = [
    [
      "epilogues alone (fc1, fc2)",
      () => {
        biasReluEpilogue(y1, b1, batch, 300, true);
        biasReluEpilogue(y2, b2, batch, 100, true);
      },
    ],
    ["dense module", () => noGrad(() => dense.forward(input))],
    ["dense plan", runner(planInference(dense, { batch, pool }))],
    ["BSR module", () => noGrad(() => bsr.forward(input))],
    ["BSR plan", runner(planInference(bsr, { batch, pool }))],
    ["BSR plan, epilogue as a pass", runner(planInference(bsr, { batch, pool, epilogue: "pass" }))],
  ];
  const inner = Math.max(1, Math.round(256 / batch));
  const rows = tasks.map(
    ([name]) => ({ threads: label, name, wall: [], cpu: [], faults: [] }) as Row,
  );
  for (const [, f] of tasks) for (let i = 0; i < 5; i++) f();
  for (let r = 0; r < reps; r++)
    tasks.forEach(([, f], k) => {
      const f0 = faults();
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < inner; i++) f();
      const t = (performance.now() - t0) / inner;
      const c = process.cpuUsage(c0);
      rows[k]!.wall.push(t);
      rows[k]!.cpu.push((c.user + c.system) / 1000 / inner);
      rows[k]!.faults.push((faults() - f0) / inner);
    });
  setMatrixPool(undefined);
  return rows;
}

console.log(
  `Machine: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores, Node ${process.version}; ${new Date().toISOString()}; load average at start ${load()}`,
);
console.log(`Checkpoint: ${checkpoint}; batch ${batch}; ${reps} alternating reps\n`);
const all: Row[] = timeAll("1", undefined);
for (const spin of spins.length === 0 ? [undefined] : spins) {
  const pool = createPool({ threads: 2, ...(spin === undefined ? {} : { spin }) });
  await pool.ready();
  all.push(...timeAll(spin === undefined ? "2" : `2 (spin ${spin})`, pool));
  await pool.close();
}
const f3 = (v: number) => v.toFixed(3);
console.log(
  "| threads | forward | wall fastest ms | wall median ms | CPU median ms | faults/call | dense/BSR fastest | dense/BSR CPU |",
);
console.log("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of all) {
  const denseRow = all.find(
    (d) => d.threads === r.threads && d.name === r.name.replace("BSR", "dense").split(",")[0],
  )!;
  const isBsr = r.name.startsWith("BSR");
  if (r.name.startsWith("epilogue") && r.threads !== "1") continue;
  console.log(
    `| ${r.threads} | ${r.name} | ${f3(Math.min(...r.wall))} | ${f3(median(r.wall))} | ${f3(median(r.cpu))} | ${median(r.faults).toFixed(1)} | ${isBsr ? `${(Math.min(...denseRow.wall) / Math.min(...r.wall)).toFixed(2)}x` : ""} | ${isBsr ? `${(median(denseRow.cpu) / median(r.cpu)).toFixed(2)}x` : ""} |`,
  );
}
console.log(`\nload average at end ${load()}`);
