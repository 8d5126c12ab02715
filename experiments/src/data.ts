// Adapts the dataset loader's byte arrays to the training loop's Dataset interface, with the
// normalisation of the block-pruning paper: pixels scaled to [0,1], then mean 0.5, std 0.5.
import { loadDataset, type DatasetName } from "@tessera/mnist-dataset-loader";
import { arrayDataset, type Dataset } from "@tessera/nn";

export const NORMALIZE = { mean: 0.5, std: 0.5 } as const;

export interface SplitPair {
  train: Dataset;
  test: Dataset;
  /** Shape of one example as the models take it: [C, H, W]. */
  inputShape: readonly number[];
}

/** Loads both splits of a dataset as normalised [C, H, W] examples. */
export function loadSplits(name: DatasetName, dir?: string): SplitPair {
  const load = (split: "train" | "test") => {
    const d = loadDataset(name, { split, dir });
    const shape = [d.channels, d.rows, d.cols];
    return { ds: arrayDataset(d.images, d.labels, shape, NORMALIZE), shape };
  };
  const train = load("train");
  const test = load("test");
  return { train: train.ds, test: test.ds, inputShape: train.shape };
}
