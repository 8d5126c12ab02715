// Milliseconds per training step (forward, backward, Adam) of each reference model at batch
// 128 on random 28x28 inputs, to estimate epoch times without a full epoch.
// Run: node --import tsx packages/nn/bench/step-time.ts [steps=10]
import { Generator } from "@tessera/tensor";
import { Adam, arrayDataset, fit, lenet300100, lenet5, smallCnn } from "../src/index.ts";

const steps = Number(process.argv[2] ?? 10);
const g = new Generator(1);
const n = 128 * steps;
const x = new Uint8Array(n * 784).map(() => g.int(0, 256));
const y = new Uint8Array(n).map(() => g.int(0, 10));
for (const [name, make] of [
  ["lenet300100", lenet300100],
  ["lenet5", lenet5],
  ["smallCnn", smallCnn],
] as const) {
  const model = make({ generator: new Generator(2) });
  const train = arrayDataset(x, y, [1, 28, 28], { mean: 0.5, std: 0.5 });
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  fit(model, {
    train: arrayDataset(x.subarray(0, 128 * 784), y.subarray(0, 128), [1, 28, 28]),
    epochs: 1,
    batchSize: 128,
    optimizer,
    seed: 1,
  }); // warm-up
  const t0 = performance.now();
  fit(model, { train, epochs: 1, batchSize: 128, optimizer, seed: 1 });
  const ms = (performance.now() - t0) / steps;
  console.log(
    `${name}: ${ms.toFixed(0)} ms/step -> ${((ms * 469) / 1000).toFixed(0)} s per 60k-image epoch (training only)`,
  );
}
