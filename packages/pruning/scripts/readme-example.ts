import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator } from "@tessera/tensor";
import { Adam, arrayDataset, evaluate, fit, lenet300100 } from "@tessera/nn";
import { PruningState, loadPruned, savePruned } from "@tessera/pruning";

// LeNet-300-100 with seeded weights, and 256 random images standing in for MNIST.
const model = lenet300100({ generator: new Generator(1) });
const g = new Generator(2);
const x = Float32Array.from({ length: 256 * 784 }, () => g.nextFloat());
const y = Int32Array.from({ length: 256 }, () => g.int(0, 10));
const data = arrayDataset(x, y, [784]);

// 4x4 tiles in all three layers, then one round of the paper's rule: remove 20% of the
// hidden layers' alive tiles and 10% of the output layer's, lowest mean |w| first.
const block = { kind: "block", rows: 4, cols: 4 } as const;
const state = new PruningState(model, {
  "fc1.weight": block,
  "fc2.weight": block,
  "fc3.weight": block,
});
const removed = state.pruneFraction({ "fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1 });
console.log([...removed.values()].join(" ")); // -> 2940 375 8
console.log(`${(100 * state.density()).toFixed(1)}%`); // -> 80.0%

// Fine-tune: the optimizer applies the masks (gradient masked, pruned weights kept at 0).
const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
state.attach(optimizer);
fit(model, { train: data, epochs: 1, batchSize: 64, optimizer, seed: 3 });
const w = model.getParameter("fc1.weight").data.data;
console.log(state.mask("fc1.weight").every((m, k) => m === 1 || w[k] === 0)); // -> true

// Save with torch.nn.utils.prune's names (fc1.weight_orig, fc1.weight_mask, ...) and load
// into a fresh model: the weights and the masks come back, no optimizer needed.
const path = join(mkdtempSync(join(tmpdir(), "tessera-pruned-")), "lenet.safetensors");
savePruned(path, model, state);
const copy = lenet300100({ generator: new Generator(9) });
const loaded = loadPruned(path, copy).state!;
console.log(`${(100 * loaded.density()).toFixed(1)}%`); // -> 80.0%
console.log(evaluate(copy, data).loss === evaluate(model, data).loss); // -> true

// Make it permanent: the zeros stay, the masks go; a save now writes plain fc1.weight.
loaded.strip();
console.log(loaded.entries().length); // -> 0
