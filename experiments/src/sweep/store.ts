// The on-disk layout of one sweep output directory (one shard, or a merge):
//   <dir>/.lock               the run lock (acquireRunLock), present while a process works here
//   <dir>/sweep.json          manifest: sweep name, shard, every key of the whole sweep, this
//                             shard's keys (lets merge tell which configurations are missing)
//   <dir>/points/<key>.json   one finished configuration (SweepPoint), written atomically
//   <dir>/scratch/<key>/      the run function's own intermediate files for the configuration in
//                             flight (removed once its point is written)
// Everything here is plain JSON so a point can be read back by any tool.
import { existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { removeAtomicTemporaries, writeFileAtomic } from "@tessera/mnist-dataset-loader";

/** Bumped when the point layout changes incompatibly; readers refuse other values. */
export const POINT_FORMAT = 1;
export const POINTS_DIR = "points";
export const SCRATCH_DIR = "scratch";
export const MANIFEST_FILE = "sweep.json";

/** JSON values as the point files hold them. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One finished configuration, as stored in `<dir>/points/<key>.json`. */
export interface SweepPoint<C = Json, R = Json> {
  format: typeof POINT_FORMAT;
  sweep: string;
  key: string;
  config: C;
  result: R;
  timing: { started: string; finished: string; seconds: number };
  /** `git rev-parse HEAD` of the working directory, and whether tracked files differed. */
  git: { commit: string; dirty: boolean } | null;
  host: string;
  shard: { index: number; count: number };
  /**
   * The matrix kernel path the point was computed on (TESSERA_KERNELS): asm.js and WebAssembly
   * round differently, so one sweep keeps to one. Absent in points written before it was
   * recorded, which all ran on "asm", then the only default.
   */
  kernels?: "asm" | "wasm";
}

export interface SweepManifest {
  format: typeof POINT_FORMAT;
  sweep: string;
  shard: { index: number; count: number };
  /** Every key of the whole sweep (all shards), sorted. */
  keys: string[];
  /** The keys this shard runs, sorted. */
  shardKeys: string[];
}

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Throws unless `key` is usable as a file name on every platform we care about. */
export function checkKey(key: string, fn: string): void {
  if (typeof key !== "string" || !KEY_RE.test(key) || key.length > 200) {
    throw new Error(
      `${fn}: key ${JSON.stringify(key)} is not file-name safe: expected 1-200 characters ` +
        `from A-Z a-z 0-9 . _ - starting with a letter or digit (e.g. "mnist-b4-magnitude-s1")`,
    );
  }
}

/**
 * Throws unless `value` survives JSON unchanged: plain objects, arrays, strings, booleans, null
 * and finite numbers. (JSON.stringify would silently turn NaN into null, a Map into {} and a
 * Float32Array into an object of indices, and a resumed sweep would then compare the wrong thing.)
 */
export function checkJson(value: unknown, path: string, fn: string): void {
  const bad = (what: string): never => {
    throw new Error(`${fn}: ${path} is ${what}, which JSON cannot hold; expected plain JSON data`);
  };
  if (value === null || typeof value === "string" || typeof value === "boolean") return;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) bad(String(value) + " (use null or a string)");
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${path}[${i}]`, fn));
    return;
  }
  if (typeof value === "object") {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      bad(`a ${(value as object).constructor?.name ?? "non-plain object"} (convert it first)`);
    }
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue; // dropped by JSON, consistently on both sides of a compare
      checkJson(v, `${path}.${k}`, fn);
    }
    return;
  }
  bad(typeof value);
}

/** JSON with object keys sorted, so equal data gives equal text whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** The first place where two JSON values differ, as "path: a vs b" (for error messages). */
export function firstDifference(a: unknown, b: unknown, path = "config"): string | null {
  if (canonicalJson(a) === canonicalJson(b)) return null;
  const isObj = (x: unknown) => x !== null && typeof x === "object" && !Array.isArray(x);
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: length ${a.length} vs ${b.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d !== null) return d;
    }
  } else if (isObj(a) && isObj(b)) {
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) {
      const d = firstDifference(ao[k], bo[k], `${path}.${k}`);
      if (d !== null) return d;
    }
  }
  const show = (x: unknown) => (x === undefined ? "(absent)" : JSON.stringify(x));
  return `${path}: ${show(a)} vs ${show(b)}`;
}

export const pointPath = (dir: string, key: string): string => join(dir, POINTS_DIR, `${key}.json`);

export const scratchPath = (dir: string, key: string): string => join(dir, SCRATCH_DIR, key);

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

export type PointRead =
  | { ok: true; point: SweepPoint<Json, Json> }
  | { ok: false; reason: string }
  | { ok: false; missing: true };

/**
 * Reads and checks one point file. A missing file is `missing`; anything that is not a complete
 * point of this format for `expectedKey` is `{ ok: false, reason }` (never a throw), so callers
 * can report it and run the configuration again.
 */
export function readPoint(path: string, expectedKey?: string): PointRead {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { ok: false, missing: true };
    return { ok: false, reason: `unreadable (${(e as Error).message})` };
  }
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `not valid JSON (${(e as Error).message})` };
  }
  if (p === null || typeof p !== "object" || Array.isArray(p))
    return { ok: false, reason: "not a JSON object" };
  const o = p as Record<string, unknown>;
  if (o.format !== POINT_FORMAT)
    return { ok: false, reason: `format ${JSON.stringify(o.format)}, expected ${POINT_FORMAT}` };
  if (typeof o.sweep !== "string") return { ok: false, reason: "no sweep name" };
  if (typeof o.key !== "string") return { ok: false, reason: "no key" };
  if (expectedKey !== undefined && o.key !== expectedKey)
    return { ok: false, reason: `holds key "${o.key}", expected "${expectedKey}"` };
  if (!("config" in o)) return { ok: false, reason: "no config" };
  if (!("result" in o)) return { ok: false, reason: "no result" };
  const t = o.timing as Record<string, unknown> | undefined;
  if (t === undefined || typeof t !== "object" || typeof t.seconds !== "number")
    return { ok: false, reason: "no timing" };
  return { ok: true, point: p as SweepPoint<Json, Json> };
}

/** Keys of the `*.json` files under `<dir>/points`, sorted (empty when there is none). */
export function listPointKeys(dir: string): string[] {
  const pdir = join(dir, POINTS_DIR);
  if (!existsSync(pdir)) return [];
  return readdirSync(pdir)
    .filter((f) => f.endsWith(".json") && !f.startsWith("."))
    .map((f) => f.slice(0, -".json".length))
    .sort(compareKeys);
}

/** Code-unit order: the same on every machine and locale (localeCompare is not). */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function readManifest(dir: string): SweepManifest | null {
  try {
    const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), "utf8")) as SweepManifest;
    return m.format === POINT_FORMAT && Array.isArray(m.keys) ? m : null;
  } catch {
    return null;
  }
}

/**
 * Removes temporaries that killed atomic writes left in `dir`, `dir/points` and every scratch
 * directory (the loader's removeAtomicTemporaries knows their names). Only call this while
 * holding the directory's lock: a live writer's temporary would otherwise be pulled from under
 * it. Returns the removed paths.
 */
export function removeStaleTemporaries(dir: string): string[] {
  const removed = [
    ...removeAtomicTemporaries(dir),
    ...removeAtomicTemporaries(join(dir, POINTS_DIR)),
  ];
  const scratch = (d: string): void => {
    if (!existsSync(d)) return;
    removed.push(...removeAtomicTemporaries(d));
    for (const e of readdirSync(d, { withFileTypes: true }))
      if (e.isDirectory()) scratch(join(d, e.name));
  };
  scratch(join(dir, SCRATCH_DIR));
  return removed;
}

export function ensureDirs(dir: string): void {
  mkdirSync(join(dir, POINTS_DIR), { recursive: true });
}

export interface PointsInDir {
  /** Valid points, sorted by key. */
  points: SweepPoint<Json, Json>[];
  /** Point files that could not be used, with the reason. */
  bad: { path: string; reason: string }[];
}

/** Reads every point of an output directory (a shard's or a merge's). */
export function readPointsDir(dir: string): PointsInDir {
  const points: SweepPoint<Json, Json>[] = [];
  const bad: { path: string; reason: string }[] = [];
  for (const key of listPointKeys(dir)) {
    const path = pointPath(dir, key);
    const read = readPoint(path, key);
    if (read.ok) points.push(read.point);
    else bad.push({ path, reason: "missing" in read ? "vanished while reading" : read.reason });
  }
  return { points, bad };
}

/**
 * Finished points of the other shards of the same sweep whose directories sit beside `dir`
 * (e.g. results/block-sweep/mnist/shard-0 .. shard-7 on shared storage): a sibling counts when
 * its sweep.json names the same sweep, the same key list and the same shard count. For the
 * progress line only: merge is what checks the points.
 */
export function peerShardsDone(
  dir: string,
  sweep: string,
  keys: readonly string[],
  shard: { index: number; count: number },
): { done: number; shardsSeen: number } | null {
  try {
    const self = resolve(dir);
    const parent = dirname(self);
    const want = keys.join("\n");
    const seen = new Set<number>();
    let done = 0;
    for (const e of readdirSync(parent, { withFileTypes: true })) {
      const d = join(parent, e.name);
      if (!e.isDirectory() || d === self) continue;
      const m = readManifest(d);
      if (
        m === null ||
        m.sweep !== sweep ||
        m.shard.count !== shard.count ||
        m.shard.index === shard.index ||
        seen.has(m.shard.index) ||
        m.keys.join("\n") !== want
      )
        continue;
      seen.add(m.shard.index);
      const owned = new Set(m.shardKeys);
      done += listPointKeys(d).filter((k) => owned.has(k)).length;
    }
    return { done, shardsSeen: seen.size };
  } catch {
    return null; // an unreadable parent: the line just says less
  }
}
