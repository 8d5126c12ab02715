// A/B of the BSR products of a pruned LeNet-300-100 (fc1, fc2) between @tessera/matrix as it is
// and a copy of it from another commit, in one process, alternating rep by rep, on 1 and 2
// threads: forward x·Wᵀ, input gradient dy·W, sampled weight gradient, batch 128, outputs
// preallocated, on the asm.js path unless the last argument says wasm. Wall-clock (median,
// fastest) and CPU time (process.cpuUsage(): all threads).
//
//   git archive <commit> packages/matrix | tar -x -C /tmp/base
//   ln -s "$PWD/node_modules" /tmp/base/node_modules
//   ln -s "$PWD/packages/matrix/node_modules" /tmp/base/packages/matrix/node_modules
//   pnpm tsx experiments/bench/bsr-ab.ts /tmp/base [checkpoint] [reps] [asm|wasm]
import { join, resolve } from "node:path";
import { loadavg } from "node:os";
import * as current from "@tessera/matrix";
import { findWorkspaceRoot } from "@tessera/mnist-dataset-loader";
import { lenet300100 } from "@tessera/nn";
import type { BsrLinear } from "@tessera/pruning";
import { Generator } from "@tessera/tensor";
import { loadVariants } from "../src/speed.ts";

type Lib = typeof current;
const base = process.argv[2];
if (base === undefined)
  throw new Error(
    "usage: bsr-ab.ts <dir holding packages/matrix of the base commit> [checkpoint] [reps]",
  );
const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
const checkpoint =
  (process.argv[3] || undefined) ??
  join(
    root,
    "results/block-sweep/mnist-s1-magnitude/chains/mnist-b4-magnitude-s1/round-10.safetensors",
  );
const reps = Number(process.argv[4] ?? 40);
const kernels = (process.argv[5] ?? "asm") as "asm" | "wasm";
const old = (await import(resolve(base, "packages/matrix/src/index.ts"))) as Lib;
const libs: [string, Lib][] = [
  ["base", old],
  ["now", current],
];
const n = 128;
const v = loadVariants(checkpoint, () => lenet300100({ generator: new Generator(0) }));
const pools = new Map(libs.map(([k, L]) => [k, L.createPool({ threads: 2 })]));
await Promise.all([...pools.values()].map((p) => p.ready()));
const values = (len: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.37));
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
console.log(
  `${kernels} path; load average at start ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ")}; ${reps} reps of 5 calls`,
);
console.log("| layer | product | threads | version | wall median | wall fastest | CPU median |");
console.log("| --- | --- | ---: | --- | ---: | ---: | ---: |");
for (const name of ["fc1", "fc2"]) {
  const w0 = (v.bsr.getSubmodule(name) as BsrLinear).weight;
  const x = values(n * w0.cols);
  const dy = values(n * w0.rows);
  const y = new Float32Array(n * w0.rows);
  const dx = new Float32Array(n * w0.cols);
  const dw = new Float32Array(w0.data.length);
  const tasks: [string, () => void][] = [];
  for (const [k, L] of libs) {
    const w = L.BsrMatrix.fromArrays({
      rows: w0.rows,
      cols: w0.cols,
      blockShape: w0.blockShape,
      indptr: Int32Array.from(w0.indptr),
      indices: Int32Array.from(w0.indices),
      data: Float32Array.from(w0.data),
    });
    for (const threads of [1, 2]) {
      const pool = threads === 2 ? pools.get(k) : undefined;
      const o = { pool, kernels };
      tasks.push([
        `forward x·Wᵀ|${threads}|${k}`,
        () => w.rmatmulTranspose(x, n, { ...o, out: y }),
      ]);
      tasks.push([`dx dy·W|${threads}|${k}`, () => w.rmatmul(dy, n, { ...o, out: dx })]);
      tasks.push([
        `dW (sampled)|${threads}|${k}`,
        () => L.BsrMatrix.sampledMatmul(w, dy, x, n, { ...o, transA: true, out: dw }),
      ]);
    }
  }
  const wall = new Map<string, number[]>(tasks.map(([k]) => [k, []]));
  const cpu = new Map<string, number[]>(tasks.map(([k]) => [k, []]));
  for (const [, f] of tasks) for (let i = 0; i < 10; i++) f();
  for (let r = 0; r < reps; r++)
    for (const [k, f] of tasks) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) f();
      wall.get(k)!.push((performance.now() - t0) / 5);
      const c = process.cpuUsage(c0);
      cpu.get(k)!.push((c.user + c.system) / 1000 / 5);
    }
  const rows = [...wall.keys()].sort();
  for (const k of rows) {
    const [product, threads, version] = k.split("|");
    const w = wall.get(k)!;
    console.log(
      `| ${name} | ${product} | ${threads} | ${version} | ${median(w).toFixed(3)} | ${Math.min(...w).toFixed(3)} | ${median(cpu.get(k)!).toFixed(3)} |`,
    );
  }
}
console.log(
  `\nload average at end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ")}`,
);
for (const p of pools.values()) await p.close();
