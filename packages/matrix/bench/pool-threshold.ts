// Where a second thread starts to pay for the sparse products: each BSR product (4x4 blocks,
// batch 128, bias + ReLU epilogue as in an inference plan) timed on one thread and on two with
// the pool's threshold off (minParallelFlops 0), side by side, on both kernel paths. The
// thresholds in src/parallel.ts (SPMM_FLOP_DISCOUNT) come from this table: LeNet-300-100's
// products at the densities of the block sweep's rounds 10, 13 and 16, and larger ones.
// Operands live on SharedArrayBuffer, so the pool copies nothing in.
// Run: pnpm tsx packages/matrix/bench/pool-threshold.ts
import { BsrMatrix, createPool, sharedFloat32 } from "../src/index.ts";
import type { KernelPath } from "../src/index.ts";
import { blockMask, fastestMs, fillRandom, tableHeader } from "./common.ts";

const n = 128;
/** [rows (outputs), cols (inputs), kept fraction of tiles, product]. */
const CASES: [number, number, number, "x·Wᵀ" | "W·X"][] = [
  [10, 100, 0.35, "x·Wᵀ"], // fc3 at round 10
  [100, 300, 0.029, "x·Wᵀ"], // fc2 at round 16
  [100, 300, 0.056, "x·Wᵀ"], // fc2 at round 13
  [100, 300, 0.108, "x·Wᵀ"], // fc2 at round 10
  [300, 784, 0.029, "x·Wᵀ"], // fc1 at round 16
  [300, 784, 0.056, "x·Wᵀ"], // fc1 at round 13
  [300, 784, 0.108, "x·Wᵀ"], // fc1 at round 10
  [1024, 1024, 0.05, "x·Wᵀ"],
  [1024, 1024, 0.1, "x·Wᵀ"],
  [1024, 1024, 0.1, "W·X"],
];

async function main(): Promise<void> {
  const lines = [
    ...(await tableHeader()),
    "",
    "Milliseconds per call (fastest of alternating reps); `2T / 1T` > 1 means the second thread pays.",
    "",
    "| path | product | weights | kept tiles | MFLOP | 1 thread ms | 2 threads ms | 2T / 1T speedup |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const kernels of ["asm", "wasm"] as KernelPath[]) {
    const one = createPool({ threads: 1, kernels });
    const two = createPool({ threads: 2, minParallelFlops: 0, kernels });
    await two.ready();
    try {
      for (const [rows, cols, kept, product] of CASES) {
        const w = fillRandom(sharedFloat32(rows * cols), 1);
        const tiles = Math.ceil(rows / 4) * Math.ceil(cols / 4);
        const a = BsrMatrix.fromDense(w, rows, cols, [4, 4], {
          mask: blockMask(tiles, 1 - kept, 3),
        });
        const bias = fillRandom(sharedFloat32(rows), 3);
        const y = sharedFloat32(n * rows);
        const xb = fillRandom(sharedFloat32(n * cols), 2); // [n, cols]
        const xf = fillRandom(sharedFloat32(cols * n), 2); // [cols, n]
        const call = (pool: typeof one) =>
          product === "x·Wᵀ"
            ? () => a.rmatmulTranspose(xb, n, { out: y, pool, bias, relu: true })
            : () => a.matmul(xf, n, { out: y, pool });
        const [t1, t2] = fastestMs(
          [
            ["1", call(one)],
            ["2", call(two)],
          ],
          400,
        ) as [number, number];
        const mflop = (2 * a.data.length * n) / 1e6;
        lines.push(
          `| ${kernels} | ${product} | ${rows}x${cols} | ${(100 * kept).toFixed(1)}% | ${mflop.toFixed(2)} | ${t1.toFixed(3)} | ${t2.toFixed(3)} | ${(t1 / t2).toFixed(2)} |`,
        );
      }
    } finally {
      await one.close();
      await two.close();
    }
  }
  console.log(lines.join("\n"));
}

await main();
