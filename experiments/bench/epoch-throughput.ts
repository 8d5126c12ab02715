// One LeNet-300-100 training epoch on MNIST (60k images, batch 128, Adam 1e-3), timed side by
// side in one run: Tessera's fit loop (1 and 2 threads) and TensorFlow.js's pure-JS `cpu`
// backend with the same model, loss, optimizer and batch.
//   pnpm tsx experiments/bench/epoch-throughput.ts [--tfjs-steps N] [--out docs/results/throughput.md]
// TF.js is slow (~2 min per epoch); --tfjs-steps times that many steps and scales the time to
// a full epoch (stated in the table).
import { Command } from "commander";
import { cpus } from "node:os";
import { loadDataset } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, fit, lenet300100 } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import { setMatrixPool } from "@tessera/autograd";
import { NORMALIZE } from "../src/data.ts";

const o = new Command()
  .option("--tfjs-steps <n>", "TF.js steps to time (default: a full epoch)", Number)
  .option("--epochs <n>", "Tessera epochs to time per thread count (best is kept)", Number, 1)
  .parse()
  .opts<{ tfjsSteps?: number; epochs: number }>();

const BATCH = 128;
const raw = loadDataset("mnist", { split: "train" });
const steps = Math.ceil(raw.count / BATCH);

async function tessera(threads: number): Promise<number> {
  const pool = threads > 1 ? createPool({ threads }) : undefined;
  if (pool) await pool.ready();
  setMatrixPool(pool);
  try {
    const train = arrayDataset(raw.images, raw.labels, [784], NORMALIZE);
    const model = lenet300100({ generator: new Generator(1) });
    const { history } = fit(model, {
      train,
      epochs: o.epochs,
      batchSize: BATCH,
      optimizer: new Adam(model.parameters(), { lr: 1e-3 }),
      seed: 1,
    });
    return Math.min(...history.map((h) => h.seconds));
  } finally {
    setMatrixPool(undefined);
    await pool?.close();
  }
}

async function tfjs(): Promise<{ seconds: number; timed: number }> {
  // Imported only now: merely loading TF.js into the process slowed the Tessera epochs that
  // followed by ~27% (29.4 s -> 37.5 s per 60k on one thread, two paired ad-hoc runs on 20k
  // images; see docs/architecture.md), so Tessera is timed first with TF.js not yet loaded.
  const { createTfjsLenet300100 } = await import("../src/tfjs-lenet300100.ts");
  const trainer = await createTfjsLenet300100(1e-3, 1);
  const timed = Math.min(o.tfjsSteps ?? steps, steps);
  const x = new Float32Array(BATCH * 784);
  const y = new Uint8Array(BATCH);
  const a = 1 / 255 / NORMALIZE.std;
  const b = -NORMALIZE.mean / NORMALIZE.std;
  const batch = (s: number) => {
    const start = (s * BATCH) % (raw.count - BATCH);
    for (let i = 0; i < BATCH * 784; i++) x[i] = raw.images[start * 784 + i]! * a + b;
    y.set(raw.labels.subarray(start, start + BATCH));
  };
  batch(0);
  trainer.step(x, y, BATCH); // warm-up: kernels and optimizer state
  trainer.sync();
  const t0 = performance.now();
  for (let s = 0; s < timed; s++) {
    batch(s);
    trainer.step(x, y, BATCH);
  }
  trainer.sync();
  const seconds = ((performance.now() - t0) / 1000) * (steps / timed);
  trainer.dispose();
  return { seconds, timed };
}

// Tessera first, then TF.js (see tfjs() for why the order matters).
const one = await tessera(1);
const two = await tessera(2);
const tf = await tfjs();
const rows = [
  ["Tessera, 1 thread", one],
  ["Tessera, 2 threads (caller + 1 worker)", two],
  [
    `TensorFlow.js 4.22 \`cpu\`${tf.timed < steps ? ` (${tf.timed} of ${steps} steps timed, scaled)` : ""}`,
    tf.seconds,
  ],
] as const;
console.log(`machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, node ${process.version}`);
console.log(`| implementation | seconds per epoch | vs TF.js cpu |`);
console.log(`|---|---|---|`);
for (const [name, s] of rows)
  console.log(`| ${name} | ${s.toFixed(1)} | ${(tf.seconds / s).toFixed(1)}x |`);
