// Adapts the dataset loader's byte arrays to the training loop's Dataset interface, with the
// normalisation of the block-pruning paper: pixels scaled to [0,1], then mean 0.5, std 0.5.
import {
  loadDatasetAsync,
  type Dataset as RawDataset,
  type DatasetName,
  type LoadAsyncOptions,
} from "@tessera/mnist-dataset-loader";
import { arrayDataset, type Dataset } from "@tessera/nn";

export const NORMALIZE = { mean: 0.5, std: 0.5 } as const;

export interface SplitPair {
  train: Dataset;
  test: Dataset;
  /** Shape of one example as the models take it: [C, H, W]. */
  inputShape: readonly number[];
}

/**
 * Loads both splits of a dataset as normalised [C, H, W] examples. With `fetch`, a dataset
 * missing from every place searched is first fetched from the offline sources into datasets/
 * (as `pnpm datasets:fetch <name>` would). The other options are the loader's search options
 * (dir, cwd, env, installed).
 */
export async function loadSplitsAsync(
  name: DatasetName,
  options: Omit<LoadAsyncOptions, "split"> = {},
): Promise<SplitPair> {
  const load = (split: "train" | "test") =>
    loadDatasetAsync(name, {
      fetchOptions: { log: (line) => console.error(`fetching ${name}:${line}`) },
      ...options,
      split,
    });
  return toSplits(await load("train"), await load("test"));
}

function toSplits(train: RawDataset, test: RawDataset): SplitPair {
  const shape = [train.channels, train.rows, train.cols];
  return {
    train: arrayDataset(train.images, train.labels, shape, NORMALIZE),
    test: arrayDataset(test.images, test.labels, [test.channels, test.rows, test.cols], NORMALIZE),
    inputShape: shape,
  };
}
