// The five pooled products of a LeNet-300-100 training step (batch 128) on the WebAssembly path,
// in the order a step runs them, on rotating operands (so each call meets them as a step does:
// not all in cache), on one thread and on a two-thread pool side by side: ms a step in total and
// per product, and on the pool the job clock (packing and products, with their waits). Tells how
// much the second thread gives the products inside a step (each product alone: bench/dense.ts).
// A third row runs fc2's two gradients as a matmulPair (each whole on one thread, at once).
// fc3's three products (0.26 MFLOP each) stay below the pool's threshold and are left out.
// Run: pnpm tsx packages/matrix/bench/lenet300100-products.ts [--steps 600] [--ring 6]
import {
  createPool,
  jobKindName,
  matmul,
  matmulPair,
  matmulTransA,
  matmulTransB,
  sharedFloat32,
} from "../src/index.ts";
import type { MatrixPool } from "../src/index.ts";
import { fillRandom, machineInfo } from "./common.ts";

const flag = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const STEPS = flag("--steps", 600);
const RING = flag("--ring", 6);
const WARMUP = 50;
const B = 128;

let seed = 1;
const ring = (n: number) =>
  Array.from({ length: RING }, () => fillRandom(sharedFloat32(n), seed++) as Float32Array);
const x = ring(B * 784);
const w1 = ring(300 * 784);
const h1 = ring(B * 300);
const g1 = ring(B * 300);
const w2 = ring(100 * 300);
const h2 = ring(B * 100);
const g2 = ring(B * 100);
const dw1 = ring(300 * 784);
const dw2 = ring(100 * 300);
const dx2 = ring(B * 300);

const names = ["fc1 x·W1ᵀ", "fc2 h1·W2ᵀ", "fc2 dW2 = g2ᵀ·h1", "fc2 dh1 = g2·W2", "fc1 dW1 = g1ᵀ·x"];

/**
 * ms a step in total and per product, over STEPS steps after WARMUP; with `pair`, fc2's two
 * gradients run as one matmulPair (its time split evenly between their two columns).
 */
function run(pool: MatrixPool | undefined, pair = false): { total: number; per: number[] } {
  const o = { pool, kernels: "wasm" as const };
  const per = new Array<number>(5).fill(0);
  let t0 = 0;
  for (let s = 0; s < STEPS + WARMUP; s++) {
    if (s === WARMUP) {
      per.fill(0);
      if (pool !== undefined) pool.msByKind.clear();
      t0 = performance.now();
    }
    const r = s % RING;
    const calls = [
      () => matmulTransB(x[r]!, w1[r]!, B, 784, 300, h1[r]!, o),
      () => matmulTransB(h1[r]!, w2[r]!, B, 300, 100, h2[r]!, o),
      () => matmulTransA(g2[r]!, h1[r]!, 100, B, 300, dw2[r]!, o),
      () => matmul(g2[r]!, w2[r]!, B, 100, 300, dx2[r]!, o),
      () => matmulTransA(g1[r]!, x[r]!, 300, B, 784, dw1[r]!, o),
    ];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      if (pair && i === 2) {
        matmulPair(
          { product: "matmulTransA", a: g2[r]!, b: h1[r]!, m: 100, k: B, n: 300, out: dw2[r]! },
          { product: "matmul", a: g2[r]!, b: w2[r]!, m: B, k: 100, n: 300, out: dx2[r]! },
          o,
        );
        const half = (performance.now() - t) / 2;
        per[2]! += half;
        per[3]! += half;
        i++;
        continue;
      }
      calls[i]!();
      per[i]! += performance.now() - t;
    }
  }
  return { total: (performance.now() - t0) / STEPS, per: per.map((p) => p / STEPS) };
}

console.log(machineInfo());
console.log(`${STEPS} steps after ${WARMUP}, operands rotating over ${RING} sets, float32, wasm`);
console.log(`| threads | ms a step | ${names.join(" | ")} |`);
console.log(`|---|---|${names.map(() => "---").join("|")}|`);
const pool = createPool({ threads: 2, kernels: "wasm" });
await pool.ready();
const jobs: string[] = [];
let one = 0;
let two = 0;
for (let round = 0; round < 2; round++)
  for (const [p, pair] of [
    [undefined, false],
    [pool, false],
    [pool, true],
  ] as const) {
    const { total, per } = run(p, pair);
    if (p === undefined) one += total;
    else if (!pair) two += total;
    if (p !== undefined)
      for (const [kind, t] of p.msByKind)
        jobs.push(
          `round ${round + 1}${pair ? ", fc2's gradients paired" : ""}: ${jobKindName(kind)} ${(t.run / STEPS).toFixed(3)} ms a step in run(), ${(t.waiting / STEPS).toFixed(3)} waiting`,
        );
    console.log(
      `| ${p === undefined ? 1 : pair ? "2, fc2's gradients as a pair" : 2} | ${total.toFixed(3)} | ${per.map((v) => v.toFixed(3)).join(" | ")} |`,
    );
  }
await pool.close();
console.log(`two threads / one thread: ${(one / two).toFixed(2)}x (sums of both rounds)`);
for (const j of jobs) console.log(j);
