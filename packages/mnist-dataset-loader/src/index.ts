export { readIdx, parseIdx, writeIdx, writeIdxFile, IDX_TYPE_CODES } from "./idx.ts";
export type { IdxArray, IdxData, IdxType, WriteIdxOptions } from "./idx.ts";
export { DEFAULT_MAX_BYTES, isGzip } from "./input.ts";
export type { ReadOptions } from "./input.ts";
export {
  readCifar10Batch,
  writeCifar10Batch,
  CIFAR10_CHANNELS,
  CIFAR10_ROWS,
  CIFAR10_COLS,
  CIFAR10_IMAGE_BYTES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_CLASSES,
} from "./cifar10.ts";
export type { Cifar10Batch } from "./cifar10.ts";
export { loadDataset, DATASET_NAMES, DatasetNotFoundError } from "./load.ts";
export { loadDatasetAsync } from "./load-async.ts";
export type { LoadAsyncOptions } from "./load-async.ts";
export type { Dataset, DatasetName, LoadOptions } from "./load.ts";
export { datasetSearchPlaces, defaultDatasetsRoot, findWorkspaceRoot } from "./locate.ts";
export type { LocateOptions, SearchPlace } from "./locate.ts";
export { DATASET_FILES, datasetFile } from "./checksums.ts";
export type { DatasetFile, FileKind, IdxDatasetName, Split } from "./checksums.ts";
export { DATASET_SOURCES, CIFAR10_FILES, DEBIAN_FASHION_MNIST_DIR } from "./sources.ts";
export type { DatasetSource } from "./sources.ts";
export { toFloat32, MNIST_MEAN, MNIST_STD } from "./normalize.ts";
export type { NormalizeOptions } from "./normalize.ts";
export { batches, floatBatches, batchCount } from "./batches.ts";
export type { Batch, BatchOptions, BatchSource } from "./batches.ts";
export { epochPermutation } from "./shuffle.ts";
export { mulberry32, mix32, randomBelow, epochGenerator } from "./prng.ts";
export { fetchDataset } from "./fetch-dataset.ts";
export type { FetchOptions, FetchResult, FetchedFile } from "./fetch-dataset.ts";
export { downloadBytes } from "./download.ts";
export type { DownloadOptions } from "./download.ts";
export { writeFileAtomic, isAtomicTemporary, removeAtomicTemporaries } from "./atomic.ts";
export { sha256Hex } from "./sha256.ts";
