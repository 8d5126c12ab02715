// BSR (and CSR) products against our dense GEMM, for the three products of a Linear layer, at
// block sizes 1 (CSR), 2, 4, 8, 16 and sparsities 50/75/90/95%; scipy's ratios beside ours.
// Run: pnpm tsx packages/matrix/bench/bsr.ts
import {
  BsrMatrix,
  CsrMatrix,
  createPool,
  matmul,
  matmulTransA,
  matmulTransB,
  sharedFloat32,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import { blockMask, fastestMs, fillRandom, fmt, runPython, tableHeader } from "./common.ts";

// Feature-major Linear layer (activations [features, batch]), W [out, in]:
//   forward   Y  = W·X          ours: W.matmul(X, n)            dense: matmul(W, X)
//   dX        dX = Wᵀ·dY        ours: W.transposeMatmul(dY, n)   dense: matmulTransA(W, dY)
//   dW        dW = dY·Xᵀ at W's blocks: BsrMatrix.sampledMatmul(W, dY, X, n, {transB}) dense: matmulTransB(dY, X)
const shapes = [
  { name: "1024x1024 · 1024x128", rows: 1024, cols: 1024, n: 128 },
  { name: "fc784-300 (W 300x784, batch 128)", rows: 300, cols: 784, n: 128 },
  { name: "fc300-100 (W 100x300, batch 128)", rows: 100, cols: 300, n: 128 },
  { name: "fc100-10 (W 10x100, batch 128)", rows: 10, cols: 100, n: 128 },
];
const blocks = [1, 2, 4, 8, 16];
const sparsities = [0.5, 0.75, 0.9, 0.95];
const products = ["fwd", "dX", "dW"] as const;
type Product = (typeof products)[number];

interface Operands {
  rows: number;
  cols: number;
  n: number;
  w: Float32Array;
  x: Float32Array;
  dy: Float32Array;
  y: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

function denseTask(o: Operands, p: Product, pool?: MatrixPool): () => void {
  const { rows, cols, n, w, x, dy, y, dx, dw } = o;
  if (p === "fwd") return () => matmul(w, x, rows, cols, n, y, { pool });
  if (p === "dX") return () => matmulTransA(w, dy, cols, rows, n, dx, { pool });
  return () => matmulTransB(dy, x, rows, n, cols, dw, { pool });
}

function sparseTask(
  a: BsrMatrix | CsrMatrix,
  o: Operands,
  p: Product,
  pool?: MatrixPool,
): () => void {
  const { n, x, dy, y, dx } = o;
  const grad = sharedFloat32(a.data.length);
  if (p === "fwd") return () => a.matmul(x, n, { out: y, pool });
  if (p === "dX") return () => a.transposeMatmul(dy, n, { out: dx, pool });
  if (a instanceof CsrMatrix)
    return () => CsrMatrix.sampledMatmul(a, dy, x, n, { transB: true, out: grad, pool });
  return () => BsrMatrix.sampledMatmul(a, dy, x, n, { transB: true, out: grad, pool });
}

function build(
  w: Float32Array,
  rows: number,
  cols: number,
  b: number,
  s: number,
  seed: number,
): BsrMatrix | CsrMatrix {
  const mask = blockMask(Math.ceil(rows / b) * Math.ceil(cols / b), s, seed);
  if (b === 1) return CsrMatrix.fromDense(w, rows, cols, { mask });
  return BsrMatrix.fromDense(w, rows, cols, [b, b], { mask });
}

async function main(): Promise<void> {
  const lines: string[] = [...(await tableHeader())];
  const pool = createPool({ threads: 2 });
  await pool.ready();
  const scipy = runPython("bsr_scipy.py", [JSON.stringify({ shapes, blocks, sparsities })], 1) as
    Record<string, number> | undefined;
  const storage: string[] = [];
  for (const sh of shapes) {
    const { rows, cols, n } = sh;
    const o: Operands = {
      rows,
      cols,
      n,
      w: fillRandom(sharedFloat32(rows * cols), 1),
      x: fillRandom(sharedFloat32(cols * n), 2),
      dy: fillRandom(sharedFloat32(rows * n), 3),
      y: sharedFloat32(rows * n),
      dx: sharedFloat32(cols * n),
      dw: sharedFloat32(rows * cols),
    };
    const twoThreads = sh.rows === 1024;
    lines.push(`\n### ${sh.name}\n`);
    lines.push(
      "Speedup of the sparse product over our dense GEMM on one thread (>1 is faster); in brackets scipy's BSR/CSR speedup over numpy dense at the same point (single thread).\n",
    );
    lines.push("| product | block | 50% | 75% | 90% | 95% | dense GFLOP/s |");
    lines.push("|---|---|---|---|---|---|---|");
    const twoT: string[] = [];
    for (const p of products) {
      for (const b of blocks) {
        const mats = sparsities.map((s, i) => build(o.w, rows, cols, b, s, 100 * b + i));
        const times = fastestMs(
          [
            ["dense", denseTask(o, p)],
            ...mats.map((m, i): [string, () => void] => [`s${i}`, sparseTask(m, o, p)]),
          ],
          60,
        );
        const dense = times[0]!;
        const cells = mats.map((m, i) => {
          // A grid too small for the nominal sparsity keeps no block at all: nothing to time.
          if (m.data.length === 0) return "— (no block kept)";
          const sc = scipy?.[`${sh.name}|${p}|${b}|${sparsities[i]}`];
          return `${fmt(dense / times[i + 1]!, 1)}${p === "dW" ? "" : ` (${fmt(sc, 2)})`}`;
        });
        const flops = 2 * rows * cols * n;
        lines.push(
          `| ${p} | ${b === 1 ? "1 (CSR)" : `${b}x${b}`} | ${cells.join(" | ")} | ${fmt(flops / dense / 1e6)} |`,
        );
        if (twoThreads) {
          const t2 = fastestMs(
            [
              ["dense 1T", denseTask(o, p)],
              ["dense 2T", denseTask(o, p, pool)],
              ...mats.flatMap((m, i): [string, () => void][] => [
                [`s${i} 1T`, sparseTask(m, o, p)],
                [`s${i} 2T`, sparseTask(m, o, p, pool)],
              ]),
            ],
            60,
          );
          const cells2 = mats.map((_, i) => fmt(t2[2 + 2 * i]! / t2[3 + 2 * i]!, 2));
          twoT.push(
            `| ${p} | ${b === 1 ? "1 (CSR)" : `${b}x${b}`} | ${cells2.join(" | ")} | ${fmt(t2[0]! / t2[1]!, 2)} |`,
          );
        }
        if (p === "fwd") {
          storage.push(
            `| ${sh.name} | ${b === 1 ? "1 (CSR)" : `${b}x${b}`} | ${mats.map((m) => m.byteSize).join(" | ")} | ${rows * cols * 4} |`,
          );
        }
      }
    }
    if (twoThreads) {
      lines.push(`\n2 threads (caller + 1 worker) over 1 thread, same run (>1 is faster):\n`);
      lines.push("| product | block | 50% | 75% | 90% | 95% | dense |");
      lines.push("|---|---|---|---|---|---|---|");
      lines.push(...twoT);
    }
  }
  lines.push("\n### Storage (bytes: indptr + indices + data, float32; dense = rows·cols·4)\n");
  lines.push("| shape | block | 50% | 75% | 90% | 95% | dense |");
  lines.push("|---|---|---|---|---|---|---|");
  lines.push(...storage);
  console.log(lines.join("\n"));
  await pool.close();
}

await main();
