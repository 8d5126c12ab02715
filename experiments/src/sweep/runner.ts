// The resumable sweep runner: runs every configuration of this shard that has no finished
// point yet, one at a time, and writes each finished one atomically to
// `<dir>/points/<key>.json`. A killed run loses at most the configuration in flight (and that
// one can resume mid-way from what its run function left in its scratch directory).
import { execFileSync, type ExecFileSyncOptionsWithStringEncoding } from "node:child_process";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { kernelsFromEnv, type KernelPath } from "@tessera/matrix";
import { acquireRunLock } from "../run-lock.ts";
import { SweepProgress, type ProgressOptions } from "./progress.ts";
import { WHOLE, formatShard, shardKeys, type Shard } from "./shard.ts";
import {
  MANIFEST_FILE,
  POINT_FORMAT,
  canonicalJson,
  checkJson,
  checkKey,
  compareKeys,
  ensureDirs,
  firstDifference,
  peerShardsDone,
  pointPath,
  readManifest,
  readPoint,
  removeStaleTemporaries,
  scratchPath,
  writeJsonAtomic,
  type SweepManifest,
  type SweepPoint,
} from "./store.ts";

/** What a run function gets besides its configuration. */
export interface RunContext {
  readonly key: string;
  /**
   * `<dir>/scratch/<key>/`, created before the call. Files here survive a kill, so a long run
   * can checkpoint into it (e.g. after each pruning round) and continue from there when the
   * sweep is started again; it is deleted once the configuration's point is written.
   */
  readonly scratchDir: string;
  /** Reports the configuration's own progress (one line on a log; the live line on a TTY). */
  progress(text: string): void;
}

export interface SweepSpec<C, R> {
  /** This shard's output directory (locked for the duration of the sweep). */
  dir: string;
  /** The sweep's name, e.g. "block-sweep"; stored in every point and checked on resume. */
  name: string;
  /** Every configuration of the whole sweep (all shards): each shard must get the same list. */
  configs: readonly C[];
  /** A stable, file-name-safe key per configuration, unique in the sweep. */
  key: (config: C) => string;
  /** Computes one configuration's result (JSON data: finite numbers, plain objects, arrays). */
  run: (config: C, ctx: RunContext) => R | Promise<R>;
  /** Default: the whole sweep. */
  shard?: Shard;
  progress?: ProgressOptions;
  /**
   * The kernel path the run functions compute on, stored in every point (default: the
   * process's, i.e. TESSERA_KERNELS, else "asm"). A run that would add points on another path
   * than the directory's finished ones is refused.
   */
  kernels?: KernelPath;
}

export interface SweepOutcome<C, R> {
  shard: Shard;
  /** This shard's points (finished earlier or now), in the order of `configs`. */
  points: SweepPoint<C, R>[];
  /** Keys computed by this call. */
  ran: string[];
  /** Keys whose points were already there. */
  skipped: string[];
  /** Keys whose point file was corrupt (moved aside to `<key>.json.corrupt`) and were run again. */
  corrupt: string[];
}

function gitInfo(): SweepPoint["git"] {
  try {
    const opts: ExecFileSyncOptionsWithStringEncoding = {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000,
    };
    const commit = execFileSync("git", ["rev-parse", "HEAD"], opts).trim();
    const status = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], opts);
    return /^[0-9a-f]{40}$/.test(commit) ? { commit, dirty: status.trim() !== "" } : null;
  } catch {
    return null; // not a checkout, or no git: the point still records host and time
  }
}

/**
 * Runs the configurations of `spec.shard` that are not finished in `spec.dir`, in the order of
 * `spec.configs`. Before running anything it checks every key (file-name safe, unique), every
 * config (plain JSON) and every stored point of this shard: a point whose config differs from
 * the current one for its key is an error (use a new directory, or delete that point), a
 * corrupt point file is reported, moved aside and run again. A run that throws stops the sweep
 * with an error naming the key; the points finished so far stay.
 */
export async function runSweep<C, R>(spec: SweepSpec<C, R>): Promise<SweepOutcome<C, R>> {
  const fn = `runSweep(${spec.name})`;
  checkKey(spec.name, "runSweep: name");
  const shard = spec.shard ?? WHOLE;

  const byKey = new Map<string, { config: C; index: number }>();
  // Keys that differ only in case would share one file on macOS and Windows file systems.
  const byFolded = new Map<string, string>();
  spec.configs.forEach((config, index) => {
    checkJson(config, `configs[${index}]`, fn);
    const key = spec.key(config);
    checkKey(key, `${fn}: key(configs[${index}])`);
    const folded = byFolded.get(key.toLowerCase());
    if (folded !== undefined && folded !== key)
      throw new Error(
        `${fn}: keys "${folded}" and "${key}" differ only in case; they would share one point ` +
          `file on a case-insensitive file system`,
      );
    byFolded.set(key.toLowerCase(), key);
    const prev = byKey.get(key);
    if (prev !== undefined)
      throw new Error(
        `${fn}: configs[${prev.index}] and configs[${index}] have the same key "${key}"` +
          (canonicalJson(prev.config) === canonicalJson(config)
            ? " (identical configs: drop the duplicate)"
            : ` but differ (${firstDifference(prev.config, config)}); the key must tell them apart`),
      );
    byKey.set(key, { config, index });
  });
  const allKeys = [...byKey.keys()].sort(compareKeys);
  const mine = new Set(shardKeys(allKeys, shard));
  const owned = spec.configs
    .map((config) => ({ config, key: spec.key(config) }))
    .filter(({ key }) => mine.has(key));

  const lock = acquireRunLock(spec.dir, spec.name);
  // No signal handlers: a run function may compute synchronously for minutes (a pruning
  // chain does), and a handler only runs when the event loop gets control, so Ctrl-C or a
  // scheduler's SIGTERM would be deferred until the configuration ends. Node's default exit is
  // what we want; the lock of a killed process is taken over on the same host.
  try {
    const notes: string[] = [];
    for (const p of removeStaleTemporaries(spec.dir))
      notes.push(`removed ${p} (temporary of a killed write)`);
    ensureDirs(spec.dir);
    const prior = readManifest(spec.dir);
    if (prior !== null && prior.sweep !== spec.name)
      throw new Error(
        `${fn}: ${spec.dir} holds sweep "${prior.sweep}" (${MANIFEST_FILE}); use another output directory`,
      );
    // A shard directory resumed under another shard (e.g. `sbatch --array=3` alone makes
    // shard 0/1, the whole sweep) would quietly compute the other shards' work here.
    if (
      prior !== null &&
      prior.shard.count > 1 &&
      (prior.shard.index !== shard.index || prior.shard.count !== shard.count)
    )
      throw new Error(
        `${fn}: ${spec.dir} was run as shard ${formatShard(prior.shard)} (${MANIFEST_FILE}) but ` +
          `this run is shard ${formatShard(shard)}; pass --shard ${formatShard(prior.shard)} to ` +
          `resume it, or delete ${join(spec.dir, MANIFEST_FILE)} to reuse its points in another shard`,
      );
    // Check every stored point before running anything, so a mismatch fails in seconds.
    const finished = new Map<string, SweepPoint<C, R>>();
    const corrupt: string[] = [];
    for (const { config, key } of owned) {
      const path = pointPath(spec.dir, key);
      const read = readPoint(path, key);
      if (read.ok) {
        const p = read.point;
        if (p.sweep !== spec.name)
          throw new Error(
            `${fn}: ${path} belongs to sweep "${p.sweep}"; use another output directory`,
          );
        const diff = firstDifference(p.config, config);
        if (diff !== null)
          throw new Error(
            `${fn}: ${path} was computed for a different config under key "${key}" ` +
              `(stored vs current ${diff}); change the key, use another --out, or delete that point`,
          );
        finished.set(key, p as SweepPoint<C, R>);
      } else if (!("missing" in read)) {
        renameSync(path, `${path}.corrupt`);
        notes.push(
          `${path} is corrupt (${read.reason}): moved to ${path}.corrupt, running it again`,
        );
        corrupt.push(key);
      }
    }
    // asm.js and WebAssembly kernels round differently: a sweep whose points mixed them would
    // compare numbers that differ for a reason no config shows.
    const kernels = spec.kernels ?? kernelsFromEnv(process.env);
    if (owned.length > finished.size)
      for (const [key, p] of finished) {
        const stored = p.kernels ?? "asm";
        if (stored !== kernels)
          throw new Error(
            `${fn}: ${pointPath(spec.dir, key)} was computed on the ${stored} kernels but this ` +
              `run uses ${kernels} (TESSERA_KERNELS): one sweep keeps to one path, since the two ` +
              `round differently; run with TESSERA_KERNELS=${stored}, or use another output directory`,
          );
      }
    // Only now, with every stored point checked, does this run take over the manifest.
    const manifest: SweepManifest = {
      format: POINT_FORMAT,
      sweep: spec.name,
      shard: { index: shard.index, count: shard.count },
      keys: allKeys,
      shardKeys: [...mine].sort(compareKeys),
    };
    writeJsonAtomic(join(spec.dir, MANIFEST_FILE), manifest);
    // A kill between writing a point and deleting its scratch leaves the scratch behind.
    for (const key of finished.keys())
      rmSync(scratchPath(spec.dir, key), { recursive: true, force: true });

    const progress = new SweepProgress(
      spec.name,
      shard,
      {
        shardTotal: owned.length,
        alreadyDone: finished.size,
        sweepTotal: allKeys.length,
        othersDone: () => peerShardsDone(spec.dir, spec.name, allKeys, shard),
      },
      spec.progress,
    );
    progress.begin();
    for (const n of notes) progress.line(n);

    const git = owned.length > finished.size ? gitInfo() : null;
    const host = hostname();
    const ran: string[] = [];
    for (const { config, key } of owned) {
      if (finished.has(key)) continue;
      const scratchDir = scratchPath(spec.dir, key);
      mkdirSync(scratchDir, { recursive: true });
      const started = new Date();
      progress.start(key);
      let result: R;
      try {
        result = await spec.run(config, {
          key,
          scratchDir,
          progress: (text) => progress.update(key, text),
        });
        checkJson(result, "result", `${fn}: configuration ${key}`);
      } catch (e) {
        progress.fail(key, e);
        throw new Error(`${fn}: configuration ${key} failed: ${(e as Error)?.message ?? e}`, {
          cause: e,
        });
      }
      const seconds = Math.round(progress.elapsed() * 1000) / 1000; // ms are plenty
      const point: SweepPoint<C, R> = {
        format: POINT_FORMAT,
        sweep: spec.name,
        key,
        config,
        result,
        timing: { started: started.toISOString(), finished: new Date().toISOString(), seconds },
        git,
        host,
        shard: { index: shard.index, count: shard.count },
        kernels,
      };
      writeJsonAtomic(pointPath(spec.dir, key), point);
      rmSync(scratchDir, { recursive: true, force: true });
      progress.finish(key);
      finished.set(key, point);
      ran.push(key);
    }
    progress.end();
    if (owned.length === 0)
      progress.line(
        `shard ${formatShard(shard)} owns no configuration (more shards than configurations)`,
      );
    return {
      shard,
      points: owned.map(({ key }) => finished.get(key)!),
      ran,
      skipped: owned.filter(({ key }) => !ran.includes(key)).map(({ key }) => key),
      corrupt,
    };
  } finally {
    lock.release();
  }
}
