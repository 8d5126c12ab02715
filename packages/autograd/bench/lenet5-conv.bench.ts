// LeNet-5's convolution stack at batch 128, float32: conv 1->20 5x5, maxPool 2, conv 20->50
// 5x5, maxPool 2, forward + backward, against the bare GEMMs (per image) it performs.
// Run: node --import tsx packages/autograd/bench/lenet5-conv.bench.ts [threads]
// With threads = 2 both sides run their GEMMs on a @tessera/matrix pool (caller + 1 worker).
import { Bench } from "tinybench";
import { Generator, rand, randn, zeros } from "@tessera/tensor";
import { createPool, matmul, matmulTransA, matmulTransB, sharedFloat32 } from "@tessera/matrix";
import { Variable, conv2d, maxPool2d, relu, setMatrixPool, sum } from "../src/index.ts";

const threads = Number(process.argv[2] ?? 1);
const pool = threads > 1 ? createPool({ threads }) : undefined;
await pool?.ready();
setMatrixPool(pool);
const opts = pool ? { pool } : undefined;

const gen = new Generator(0);
const n = 128;
const x = new Variable(rand([n, 1, 28, 28], gen));
const w1 = new Variable(randn([20, 1, 5, 5], gen, "float32", 0, 0.1), { requiresGrad: true });
const b1 = new Variable(zeros([20]), { requiresGrad: true });
const w2 = new Variable(randn([50, 20, 5, 5], gen, "float32", 0, 0.05), { requiresGrad: true });
const b2 = new Variable(zeros([50]), { requiresGrad: true });

function step(): void {
  const h1 = maxPool2d(relu(conv2d(x, w1, b1)), { kernel: 2 });
  const h2 = maxPool2d(relu(conv2d(h1, w2, b2)), { kernel: 2 });
  sum(h2).backward();
  for (const p of [w1, b1, w2, b2]) p.zeroGrad();
}

// per image: conv1 fwd + dW (no dX), conv2 fwd + dW + dX
// (shared buffers allocated once: the best case for the pool)
const c1 = sharedFloat32(25 * 576).fill(0.5);
const c2 = sharedFloat32(500 * 64).fill(0.5);
const g1 = sharedFloat32(20 * 576).fill(0.5);
const g2 = sharedFloat32(50 * 64).fill(0.5);
const W1 = sharedFloat32(20 * 25).fill(0.1);
const W2 = sharedFloat32(50 * 500).fill(0.1);
const y1 = sharedFloat32(20 * 576);
const dw1 = sharedFloat32(20 * 25);
const y2 = sharedFloat32(50 * 64);
const dw2 = sharedFloat32(50 * 500);
const dcols2 = sharedFloat32(500 * 64);
function gemmsOnly(): void {
  for (let i = 0; i < n; i++) {
    matmul(W1, c1, 20, 25, 576, y1, opts);
    matmulTransB(g1, c1, 20, 576, 25, dw1, opts);
    matmul(W2, c2, 50, 500, 64, y2, opts);
    matmulTransB(g2, c2, 50, 64, 500, dw2, opts);
    matmulTransA(W2, g2, 500, 50, 64, dcols2, opts);
  }
}

const bench = new Bench({ time: 4000, warmup: true });
bench.add("autograd LeNet-5 conv stack fwd+bwd", step);
bench.add("bare per-image GEMMs of that step", gemmsOnly);
await bench.run();
const ms = bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number }; period?: number };
  return r.latency?.mean ?? r.period ?? NaN;
});
bench.tasks.forEach((t, i) => console.log(`${t.name}: ${ms[i]!.toFixed(1)} ms`));
console.log(`threads = ${threads}, ratio = ${(ms[0]! / ms[1]!).toFixed(2)}`);
setMatrixPool(undefined);
await pool?.close();
