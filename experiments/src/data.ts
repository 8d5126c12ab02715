// Adapts the dataset loader's byte arrays to the training loop's Dataset interface, with the
// normalisation of the block-pruning paper: pixels scaled to [0,1], then mean 0.5, std 0.5.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  loadDatasetAsync,
  sha256Hex,
  type Dataset as RawDataset,
  type DatasetName,
  type LoadAsyncOptions,
} from "@tessera/mnist-dataset-loader";
import { arrayDataset, type Dataset } from "@tessera/nn";
import type { DataProvenance, SplitProvenance } from "./train-run.ts";

export const NORMALIZE = { mean: 0.5, std: 0.5 } as const;

/** The [C, H, W] shape of each dataset's examples, known before any file is read. */
export const DATASET_INPUT_SHAPES: Readonly<Record<DatasetName, readonly number[]>> = {
  mnist: [1, 28, 28],
  "fashion-mnist": [1, 28, 28],
  "cifar-10": [3, 32, 32],
};

export interface SplitPair {
  train: Dataset;
  test: Dataset;
  /** Shape of one example as the models take it: [C, H, W]. */
  inputShape: readonly number[];
  /** The files read, with checksums (recorded in a run's config.json). */
  provenance: DataProvenance;
}

/**
 * Loads both splits of a dataset as normalised [C, H, W] examples. With `fetch`, a dataset
 * missing from every place searched is first fetched from the offline sources into datasets/
 * (as `pnpm datasets:fetch <name>` would). The other options are the loader's search options
 * (dir, cwd, env, installed); an explicit `dir` is the only place searched.
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

/**
 * A loader that loads each dataset once (with `options`, e.g. an explicit `dir`) and then
 * hands out the same splits: for sweeps whose configurations share datasets.
 */
export function splitsCache(
  options: Omit<LoadAsyncOptions, "split"> = {},
): (name: DatasetName) => Promise<SplitPair> {
  const cache = new Map<DatasetName, Promise<SplitPair>>();
  return (name) => {
    let s = cache.get(name);
    if (s === undefined) cache.set(name, (s = loadSplitsAsync(name, options)));
    return s;
  };
}

/** The files of a loaded split with their SHA-256, and a digest of the decoded content. */
export function splitProvenance(d: RawDataset): SplitProvenance {
  const files = d.files.map((path) => {
    const bytes = readFileSync(path);
    return { path, bytes: bytes.length, sha256: sha256Hex(bytes) };
  });
  const content = createHash("sha256").update(d.labels).update(d.images).digest("hex");
  return { files, count: d.count, contentSha256: content };
}

function toSplits(train: RawDataset, test: RawDataset): SplitPair {
  const shape = [train.channels, train.rows, train.cols];
  return {
    train: arrayDataset(train.images, train.labels, shape, NORMALIZE),
    test: arrayDataset(test.images, test.labels, [test.channels, test.rows, test.cols], NORMALIZE),
    inputShape: shape,
    provenance: {
      dataset: train.name,
      train: splitProvenance(train),
      test: splitProvenance(test),
    },
  };
}
