// Joining shard outputs by configuration key. The merged directory has the layout of an
// unsharded run (points/<key>.json and sweep.json), so `runSweep` on it with the whole
// configuration list finds every merged point and runs only what is missing; beside them
// lie points.json (all points, sorted by key) and points.csv (one flat row per point).
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { acquireRunLock } from "../run-lock.ts";
import {
  MANIFEST_FILE,
  POINT_FORMAT,
  canonicalJson,
  compareKeys,
  ensureDirs,
  firstDifference,
  pointPath,
  readManifest,
  readPointsDir,
  writeJsonAtomic,
  type Json,
  type SweepManifest,
  type SweepPoint,
} from "./store.ts";
import { writePointsCsv, writePointsJson } from "./table.ts";

export const MERGED_JSON = "points.json";
export const MERGED_CSV = "points.csv";

export interface MergeReport {
  sweep: string;
  /** Every merged point, sorted by key. */
  points: SweepPoint<Json, Json>[];
  /** Same key, same config and result in two places (timing and host may differ): kept once. */
  duplicates: number;
  /** Keys some shard's sweep.json lists but no directory has a point for, sorted. */
  missing: string[];
  /** Point files that were not usable (corrupt, half-written), with the reason. */
  skipped: { path: string; reason: string }[];
  /** Shard manifests that list a different key set from the first (a changed sweep). */
  manifestMismatch: string[];
}

/**
 * Merges the points of `shardDirs` (and any already in `outDir`, so merging again adds to an
 * earlier merge) into `outDir`. Two points with the same key must agree on config and result,
 * else this throws naming the key and both files; no file is written then.
 */
export function mergeShards(outDir: string, shardDirs: readonly string[]): MergeReport {
  const fn = "mergeShards";
  if (shardDirs.length === 0)
    throw new Error(`${fn}: shardDirs is empty; expected at least one shard directory`);
  for (const d of shardDirs) {
    if (!existsSync(d) || !statSync(d).isDirectory())
      throw new Error(`${fn}: shard directory ${d} does not exist`);
    if (resolve(d) === resolve(outDir))
      throw new Error(`${fn}: the output directory ${outDir} is also given as a shard directory`);
  }
  const lock = acquireRunLock(outDir, "merge");
  try {
    const byKey = new Map<string, { point: SweepPoint<Json, Json>; path: string }>();
    const skipped: { path: string; reason: string }[] = [];
    let sweep: { name: string; path: string } | null = null;
    let kernels: { path: string; kernels: string } | null = null;
    let duplicates = 0;
    const expected = new Set<string>();
    const manifestMismatch: string[] = [];
    let firstKeys: string | null = null;

    for (const dir of [outDir, ...shardDirs]) {
      const m = readManifest(dir);
      if (m !== null && dir !== outDir) {
        for (const k of m.keys) expected.add(k);
        const ks = canonicalJson([...m.keys].sort(compareKeys));
        if (firstKeys === null) firstKeys = ks;
        else if (ks !== firstKeys) manifestMismatch.push(join(dir, MANIFEST_FILE));
      }
      const { points, bad } = readPointsDir(dir);
      skipped.push(...bad);
      for (const point of points) {
        const path = pointPath(dir, point.key);
        if (sweep === null) sweep = { name: point.sweep, path };
        else if (point.sweep !== sweep.name)
          throw new Error(
            `${fn}: ${path} belongs to sweep "${point.sweep}" but ${sweep.path} to ` +
              `"${sweep.name}"; merge one sweep at a time`,
          );
        // Points computed on different kernel paths (asm.js / WebAssembly) round differently.
        const k = point.kernels ?? "asm";
        if (kernels === null) kernels = { path, kernels: k };
        else if (k !== kernels.kernels)
          throw new Error(
            `${fn}: ${path} was computed on the ${k} kernels but ${kernels.path} on ` +
              `${kernels.kernels}; a merged sweep keeps to one path (TESSERA_KERNELS)`,
          );
        const prev = byKey.get(point.key);
        if (prev === undefined) {
          byKey.set(point.key, { point, path });
          continue;
        }
        const a = { config: prev.point.config, result: prev.point.result };
        const b = { config: point.config, result: point.result };
        if (canonicalJson(a) !== canonicalJson(b)) {
          const diff = firstDifference(a, b, "point");
          throw new Error(
            `${fn}: conflicting points for key "${point.key}": ${prev.path} and ${path} differ ` +
              `(${diff})${prev.path.startsWith(join(outDir, "")) ? `; the first is from an earlier merge into ${outDir}: delete it to rebuild` : ""}`,
          );
        }
        duplicates++;
      }
    }
    if (sweep === null)
      throw new Error(
        `${fn}: no point files found under ${shardDirs.map((d) => join(d, "points")).join(", ")}`,
      );

    const keys = [...byKey.keys()].sort(compareKeys);
    const points = keys.map((k) => byKey.get(k)!.point);
    const missing = [...expected].filter((k) => !byKey.has(k)).sort(compareKeys);
    ensureDirs(outDir);
    for (const p of points) writeJsonAtomic(pointPath(outDir, p.key), p);
    const all = [...new Set([...keys, ...expected])].sort(compareKeys);
    const manifest: SweepManifest = {
      format: POINT_FORMAT,
      sweep: sweep.name,
      shard: { index: 0, count: 1 },
      keys: all,
      shardKeys: all,
    };
    writeJsonAtomic(join(outDir, MANIFEST_FILE), manifest);
    writePointsJson(join(outDir, MERGED_JSON), points);
    writePointsCsv(join(outDir, MERGED_CSV), points);
    return { sweep: sweep.name, points, duplicates, missing, skipped, manifestMismatch };
  } finally {
    lock.release();
  }
}
