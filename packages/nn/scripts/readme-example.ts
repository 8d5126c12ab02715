import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator } from "@tessera/tensor";
import {
  Adam,
  Linear,
  ReLU,
  Sequential,
  arrayDataset,
  cosineLr,
  evaluate,
  fit,
  linearWarmup,
  loadModel,
  saveModel,
} from "@tessera/nn";

// A toy problem: is a point of the square [-1, 1]^2 inside the circle of radius 0.7?
const g = new Generator(1);
const makeData = (n: number) => {
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = 2 * g.nextFloat() - 1;
    const b = 2 * g.nextFloat() - 1;
    x.set([a, b], 2 * i);
    y[i] = a * a + b * b < 0.49 ? 1 : 0;
  }
  return arrayDataset(x, y, [2]);
};
const train = makeData(2000);
const test = makeData(500);

// Weights drawn from a seeded generator: the same seeds give the same run, bit for bit.
const init = new Generator(7);
const model = Sequential.named({
  fc1: new Linear(2, 32, { generator: init }),
  relu1: new ReLU(),
  fc2: new Linear(32, 32, { generator: init }),
  relu2: new ReLU(),
  fc3: new Linear(32, 2, { generator: init }),
});

// Learning rate: 20 warm-up steps, then cosine decay over the remaining steps.
const epochs = 15;
const batchSize = 64;
const steps = epochs * Math.ceil(train.count / batchSize);
const lr = linearWarmup(cosineLr({ lr: 0.02, totalSteps: steps - 20, minLr: 1e-4 }), 20);
const optimizer = new Adam(model.parameters(), { lr });

const dir = mkdtempSync(join(tmpdir(), "tessera-nn-example-"));
const { history } = fit(model, {
  train,
  test,
  epochs,
  batchSize,
  optimizer,
  seed: 42,
  logFile: join(dir, "metrics.jsonl"), // one JSON line per epoch
  progress: { mode: "plain", stream: process.stdout, plainEvery: 0 },
});
const last = history[history.length - 1]!;
console.log(`final test accuracy ${(100 * last.testAccuracy!).toFixed(1)}%`);

// Checkpoint to safetensors and load into a fresh model of the same architecture.
saveModel(join(dir, "model.safetensors"), model, { epochs: String(epochs) });
const copy = Sequential.named({
  fc1: new Linear(2, 32),
  relu1: new ReLU(),
  fc2: new Linear(32, 32),
  relu2: new ReLU(),
  fc3: new Linear(32, 2),
});
const { metadata } = loadModel(join(dir, "model.safetensors"), copy);
const reloaded = evaluate(copy, test, { batchSize: 256 });
console.log(
  `reloaded (metadata ${JSON.stringify(metadata)}): accuracy ${(100 * reloaded.accuracy).toFixed(1)}%`,
);
