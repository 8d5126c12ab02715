// BSR against dense GEMM on both kernel paths, timed side by side in one run: the issue-14
// targets (1024x1024 weights times 1024x128, 4x4 and 8x8 blocks, 90% and 95% block sparsity).
// Feature-major Linear layer as in bsr.ts: fwd Y = W·X (W.matmul), dX = Wᵀ·dY
// (W.transposeMatmul); the batch-major forward y = x·Wᵀ (W.rmatmulTranspose) and the weight
// gradient dW = dY·Xᵀ at W's blocks (BsrMatrix.sampledMatmul, against dense matmulTransB) too.
// Run: pnpm tsx packages/matrix/bench/bsr-paths.ts
import { BsrMatrix, matmul, matmulTransA, matmulTransB, sharedFloat32 } from "../src/index.ts";
import type { KernelPath } from "../src/index.ts";
import { blockMask, fastestMs, fillRandom, fmt, tableHeader } from "./common.ts";

const rows = 1024;
const cols = 1024;
const n = 128;
const paths: KernelPath[] = ["asm", "wasm"];

async function main(): Promise<void> {
  const lines = [
    ...(await tableHeader()),
    "",
    "One thread. Speedup of the BSR product over the dense product (>1 is faster); `wasm/wasm` is the",
    "issue-14 target (BSR on the new kernels against the new dense GEMM). GFLOP/s of the dense products beside.",
    "",
    "| product | block | sparsity | BSR asm / dense asm | BSR wasm / dense wasm | BSR wasm / BSR asm | dense asm GFLOP/s | dense wasm GFLOP/s |",
    "|---|---|---|---|---|---|---|---|",
  ];
  const w = fillRandom(sharedFloat32(rows * cols), 1);
  const x = fillRandom(sharedFloat32(cols * n), 2); // [cols, n]
  const dy = fillRandom(sharedFloat32(rows * n), 3); // [rows, n]
  const xb = fillRandom(sharedFloat32(n * cols), 4); // [n, cols]
  const y = sharedFloat32(rows * n);
  const dx = sharedFloat32(cols * n);
  const flops = 2 * rows * cols * n;
  const dw = sharedFloat32(rows * cols);
  for (const product of [
    "fwd W·X",
    "dX Wᵀ·dY",
    "fwd x·Wᵀ (batch-major)",
    "dW dY·Xᵀ (sampled)",
  ] as const) {
    const dense = (kernels: KernelPath) =>
      product === "fwd W·X"
        ? () => matmul(w, x, rows, cols, n, y, { kernels })
        : product === "dX Wᵀ·dY"
          ? () => matmulTransA(w, dy, cols, rows, n, dx, { kernels })
          : product === "dW dY·Xᵀ (sampled)"
            ? () => matmulTransB(dy, x, rows, n, cols, dw, { kernels })
            : () => matmulTransB(xb, w, n, cols, rows, y, { kernels });
    for (const b of [4, 8]) {
      for (const s of [0.9, 0.95]) {
        const mask = blockMask((rows / b) * (cols / b), s, 100 * b + Math.round(100 * s));
        const a = BsrMatrix.fromDense(w, rows, cols, [b, b], { mask });
        const grad = sharedFloat32(a.data.length);
        const sparse = (kernels: KernelPath) =>
          product === "fwd W·X"
            ? () => a.matmul(x, n, { out: y, kernels })
            : product === "dX Wᵀ·dY"
              ? () => a.transposeMatmul(dy, n, { out: dx, kernels })
              : product === "dW dY·Xᵀ (sampled)"
                ? () => BsrMatrix.sampledMatmul(a, dy, x, n, { transB: true, out: grad, kernels })
                : () => a.rmatmulTranspose(xb, n, { out: y, kernels });
        const tasks: [string, () => void][] = [];
        for (const p of paths) tasks.push([`dense ${p}`, dense(p)], [`bsr ${p}`, sparse(p)]);
        for (const [, f] of tasks) for (let r = 0; r < 3; r++) f();
        const [da, ba, dw, bw] = fastestMs(tasks, 300);
        lines.push(
          `| ${product} | ${b}x${b} | ${Math.round(100 * s)}% | ${fmt(da! / ba!, 1)} | ${fmt(dw! / bw!, 1)} | ${fmt(ba! / bw!, 1)} | ${fmt(flops / da! / 1e6)} | ${fmt(flops / dw! / 1e6)} |`,
        );
      }
    }
  }
  console.log(lines.join("\n"));
}

await main();
