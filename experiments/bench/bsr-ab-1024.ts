// A/B of the asm.js BSR products on the issue-14 shapes (1024x1024 weights times 1024x128, one
// thread) between @tessera/matrix as it is and a copy from another commit, in one process,
// alternating rep by rep: the feature-major forward W·X (matmul) and the batch-major x·Wᵀ
// (rmatmulTranspose), square blocks of 2, 4, 8 and 16 at 90% and 95% block sparsity (a seeded
// block mask). Medians of `reps` reps of 3 calls, outputs preallocated.
//
//   git archive <commit> packages/matrix | tar -x -C /tmp/base   (plus the node_modules links of bsr-ab.ts)
//   pnpm tsx experiments/bench/bsr-ab-1024.ts /tmp/base [reps=25]
import { resolve } from "node:path";
import { cpus, loadavg } from "node:os";
import * as current from "@tessera/matrix";

type Lib = typeof current;
const base = process.argv[2];
if (base === undefined)
  throw new Error("usage: bsr-ab-1024.ts <dir holding packages/matrix of the base commit> [reps]");
const reps = Number(process.argv[3] ?? 25);
const old = (await import(resolve(base, "packages/matrix/src/index.ts"))) as Lib;
const libs: [string, Lib][] = [
  ["base", old],
  ["now", current],
];
const rows = 1024;
const cols = 1024;
const n = 128;
const values = (len: number, seed: number) =>
  Float32Array.from({ length: len }, (_, i) => Math.sin(i * 0.37 + seed));
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
console.log(
  `${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, Node ${process.version}; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ")}; ${reps} reps of 3 calls, one thread, asm.js`,
);
console.log("| blocks | density | product | base ms | now ms | now / base |");
console.log("| --- | ---: | --- | ---: | ---: | ---: |");
const dense = values(rows * cols, 1);
const x = values(cols * n, 2);
const y = new Float32Array(rows * n);
for (const b of [2, 4, 8, 16])
  for (const density of [0.1, 0.05]) {
    const mask = new Uint8Array((rows / b) * (cols / b));
    let s = 12345;
    for (let i = 0; i < mask.length; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      mask[i] = s / 2 ** 32 < density ? 1 : 0;
    }
    const ws = libs.map(
      ([k, L]) => [k, L.BsrMatrix.fromDense(dense, rows, cols, [b, b], { mask })] as const,
    );
    for (const product of ["matmul", "rmatmulTranspose"] as const) {
      const t: Record<string, number[]> = { base: [], now: [] };
      for (const [, w] of ws) w[product](x, n, { out: y, kernels: "asm" });
      for (let r = 0; r < reps; r++)
        for (const [k, w] of ws) {
          const t0 = performance.now();
          for (let i = 0; i < 3; i++) w[product](x, n, { out: y, kernels: "asm" });
          t[k]!.push((performance.now() - t0) / 3);
        }
      const [mb, mn] = [median(t.base!), median(t.now!)];
      console.log(
        `| ${b}x${b} | ${density} | ${product} | ${mb.toFixed(2)} | ${mn.toFixed(2)} | ${(mn / mb).toFixed(3)} |`,
      );
    }
  }
