// One LeNet-300-100 training step (batch 128, float32): forward, softmax cross-entropy,
// backward and a plain SGD update, against the bare GEMMs the step needs (the same 8
// products on the same buffers). The ratio step / GEMMs is autograd's overhead; absolute
// times depend on the machine and on @tessera/matrix's kernels.
// Run: node --import tsx packages/autograd/bench/lenet-step.bench.ts [threads]
// With threads = 2 both sides run their GEMMs on a @tessera/matrix pool (caller + 1 worker).
import { Bench } from "tinybench";
import { Generator, rand, randn, zeros } from "@tessera/tensor";
import { createPool, matmul, matmulTransA, matmulTransB, sharedFloat32 } from "@tessera/matrix";
import { Variable, linear, relu, setMatrixPool, softmaxCrossEntropy } from "../src/index.ts";

const threads = Number(process.argv[2] ?? 1);
const pool = threads > 1 ? createPool({ threads }) : undefined;
await pool?.ready();
setMatrixPool(pool);
const opts = pool ? { pool } : undefined;

const gen = new Generator(0);
const batch = 128;
const sizes = [784, 300, 100, 10];
const params: Variable[] = [];
const layers: [Variable, Variable][] = [];
for (let i = 0; i < 3; i++) {
  const w = new Variable(randn([sizes[i + 1]!, sizes[i]!], gen, "float32", 0, 0.05), {
    requiresGrad: true,
  });
  const b = new Variable(zeros([sizes[i + 1]!]), { requiresGrad: true });
  layers.push([w, b]);
  params.push(w, b);
}
const x = new Variable(rand([batch, 784], gen));
const labels = Int32Array.from({ length: batch }, (_, i) => i % 10);

function step(): number {
  let h: Variable = x;
  layers.forEach(([w, b], i) => {
    h = linear(h, w, b);
    if (i < 2) h = relu(h);
  });
  const loss = softmaxCrossEntropy(h, labels);
  loss.backward();
  for (const p of params) {
    const d = p.data.data;
    const g = p.grad!.data;
    for (let k = 0; k < d.length; k++) d[k] = d[k]! - 0.01 * g[k]!;
    p.zeroGrad();
  }
  return loss.item();
}

// the products of one step: 3 forward, 3 dW, 2 dX (the input layer needs no dX)
// (shared buffers allocated once: the best case for the pool)
const bufs = sizes.map((s) => sharedFloat32(batch * s).fill(0.5));
const ws = [0, 1, 2].map((i) => sharedFloat32(sizes[i + 1]! * sizes[i]!).fill(0.01));
const outs = [0, 1, 2].map((i) => sharedFloat32(sizes[i + 1]! * sizes[i]!));
function gemmsOnly(): void {
  for (let i = 0; i < 3; i++)
    matmulTransB(bufs[i]!, ws[i]!, batch, sizes[i]!, sizes[i + 1]!, bufs[i + 1], opts);
  for (let i = 0; i < 3; i++)
    matmulTransA(bufs[i + 1]!, bufs[i]!, sizes[i + 1]!, batch, sizes[i]!, outs[i], opts);
  for (let i = 1; i < 3; i++)
    matmul(bufs[i + 1]!, ws[i]!, batch, sizes[i + 1]!, sizes[i]!, bufs[i], opts);
}

const bench = new Bench({ time: 3000, warmup: true });
bench.add("autograd LeNet-300-100 step (fwd+bwd+SGD)", step);
bench.add("bare GEMMs of that step", gemmsOnly);
await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result as unknown as { latency?: { mean: number }; period?: number; mean?: number };
  const ms = r.latency?.mean ?? r.period ?? r.mean ?? NaN;
  return {
    task: t.name,
    "ms/step": ms.toFixed(2),
    "s/epoch (469 steps)": ((ms * 469) / 1000).toFixed(1),
  };
});
console.table(rows);
const [a, b] = rows.map((r) => Number(r["ms/step"]));
console.log(`threads = ${threads}, overhead ratio step / GEMMs = ${(a! / b!).toFixed(2)}`);
setMatrixPool(undefined);
await pool?.close();
