// Splitting a sweep across machines. A shard is (index, count) with 0 <= index < count.
//
// Assignment: the sweep's keys are sorted in code-unit order and shard i takes the keys at
// sorted positions i, i + n, i + 2n, ... (round-robin). Every key lands in exactly one shard,
// shard sizes differ by at most one, and the split depends only on the set of keys and n, so
// every shard computes the same split on its own without talking to the others. The price:
// all shards must be given the same configuration list; extending a sweep reshuffles which
// shard owns which key (a finished point that moves is simply computed again by its new
// owner, and merge accepts the identical duplicate).
//
// Where the index comes from (first match wins):
//   1. `--shard i/n` on the command line;
//   2. a Slurm array task: SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (MIN defaults to 0) of
//      SLURM_ARRAY_TASK_COUNT, for a contiguous array (e.g. --array=0-7 or 1-8);
//   3. a Kubernetes Indexed Job: JOB_COMPLETION_INDEX, with the count from `--shards n` or the
//      environment variable TESSERA_SHARD_COUNT (Kubernetes does not export `completions`);
//   4. otherwise the whole sweep (0/1).
import { compareKeys } from "./store.ts";

export interface Shard {
  index: number;
  count: number;
}

export const WHOLE: Shard = Object.freeze({ index: 0, count: 1 });

/** The environment variable giving a Kubernetes Indexed Job's shard count. */
export const SHARD_COUNT_ENV = "TESSERA_SHARD_COUNT";

export type ShardSource = "cli" | "slurm" | "kubernetes" | "none";

export interface ResolvedShard extends Shard {
  /** Where the index came from, for the log line. */
  source: ShardSource;
}

const INT_RE = /^\s*(0|[1-9][0-9]*)\s*$/;

function parseCount(text: string, what: string): number {
  const m = INT_RE.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`shard: ${what}=${JSON.stringify(text)} is not a positive integer`);
  return n;
}

function parseIndex(text: string, what: string): number {
  const m = INT_RE.exec(text);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n))
    throw new Error(`shard: ${what}=${JSON.stringify(text)} is not a non-negative integer`);
  return n;
}

/** Parses `i/n` (0-based i), e.g. "2/8". */
export function parseShard(text: string): Shard {
  const m = /^\s*([0-9]+)\s*\/\s*([0-9]+)\s*$/.exec(text);
  if (!m)
    throw new Error(`shard: --shard ${JSON.stringify(text)} is not of the form i/n (e.g. 0/4)`);
  const index = parseIndex(m[1]!, "--shard index");
  const count = parseCount(m[2]!, "--shard count");
  if (index >= count)
    throw new Error(
      `shard: --shard ${text}: index ${index} is out of range; expected 0 <= i < ${count} (0-based)`,
    );
  return { index, count };
}

export interface ShardInputs {
  /** `--shard i/n` as typed, if given. */
  shard?: string;
  /** `--shards n`, if given (the count for a Kubernetes Indexed Job; checked against others). */
  shards?: number;
}

/**
 * Decides this process's shard from the command line and the environment (see the top of this
 * file). Inconsistent values throw a one-line error naming the variable.
 */
export function resolveShard(
  inputs: ShardInputs,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ResolvedShard {
  const shards = inputs.shards;
  if (shards !== undefined && (!Number.isSafeInteger(shards) || shards < 1))
    throw new Error(`shard: --shards ${shards} is not a positive integer`);

  if (inputs.shard !== undefined) {
    const s = parseShard(inputs.shard);
    if (shards !== undefined && shards !== s.count)
      throw new Error(`shard: --shard ${inputs.shard} disagrees with --shards ${shards}`);
    return { ...s, source: "cli" };
  }

  const slurmId = env.SLURM_ARRAY_TASK_ID;
  const k8sIndex = env.JOB_COMPLETION_INDEX;
  if (slurmId !== undefined && slurmId !== "" && k8sIndex !== undefined && k8sIndex !== "")
    throw new Error(
      `shard: both SLURM_ARRAY_TASK_ID=${slurmId} and JOB_COMPLETION_INDEX=${k8sIndex} are set; ` +
        `pass --shard i/n to choose`,
    );

  if (slurmId !== undefined && slurmId !== "") {
    const id = parseIndex(slurmId, "SLURM_ARRAY_TASK_ID");
    const countText = env.SLURM_ARRAY_TASK_COUNT;
    if (countText === undefined || countText === "")
      throw new Error(
        `shard: SLURM_ARRAY_TASK_ID=${slurmId} is set but SLURM_ARRAY_TASK_COUNT is not`,
      );
    const count = parseCount(countText, "SLURM_ARRAY_TASK_COUNT");
    const minText = env.SLURM_ARRAY_TASK_MIN;
    const min =
      minText === undefined || minText === "" ? 0 : parseIndex(minText, "SLURM_ARRAY_TASK_MIN");
    const maxText = env.SLURM_ARRAY_TASK_MAX;
    if (maxText !== undefined && maxText !== "") {
      const max = parseIndex(maxText, "SLURM_ARRAY_TASK_MAX");
      if (max - min + 1 !== count)
        throw new Error(
          `shard: SLURM_ARRAY_TASK_COUNT=${count} but SLURM_ARRAY_TASK_MIN..MAX=${min}..${max} ` +
            `spans ${max - min + 1} ids; use a contiguous array without a step (e.g. --array=0-${count - 1})`,
        );
    }
    const index = id - min;
    if (index < 0 || index >= count)
      throw new Error(
        `shard: SLURM_ARRAY_TASK_ID=${id} is outside SLURM_ARRAY_TASK_MIN=${min} + ` +
          `[0, SLURM_ARRAY_TASK_COUNT=${count}); use a contiguous array (e.g. --array=0-${count - 1})`,
      );
    if (shards !== undefined && shards !== count)
      throw new Error(`shard: --shards ${shards} disagrees with SLURM_ARRAY_TASK_COUNT=${count}`);
    return { index, count, source: "slurm" };
  }

  const envCountText = env[SHARD_COUNT_ENV];
  const envCount =
    envCountText === undefined || envCountText === ""
      ? undefined
      : parseCount(envCountText, SHARD_COUNT_ENV);

  if (k8sIndex !== undefined && k8sIndex !== "") {
    const index = parseIndex(k8sIndex, "JOB_COMPLETION_INDEX");
    if (shards !== undefined && envCount !== undefined && shards !== envCount)
      throw new Error(`shard: --shards ${shards} disagrees with ${SHARD_COUNT_ENV}=${envCount}`);
    const count = shards ?? envCount;
    if (count === undefined)
      throw new Error(
        `shard: JOB_COMPLETION_INDEX=${k8sIndex} is set but the shard count is unknown: pass ` +
          `--shards N or set ${SHARD_COUNT_ENV} (Kubernetes does not export the completions count)`,
      );
    if (index >= count)
      throw new Error(
        `shard: JOB_COMPLETION_INDEX=${index} is out of range for ${count} shards ` +
          `(${shards !== undefined ? "--shards" : SHARD_COUNT_ENV}=${count}); expected 0..${count - 1}`,
      );
    return { index, count, source: "kubernetes" };
  }

  if (shards !== undefined)
    throw new Error(
      `shard: --shards ${shards} needs an index: --shard i/${shards}, SLURM_ARRAY_TASK_ID ` +
        `or JOB_COMPLETION_INDEX`,
    );
  if (envCount !== undefined)
    throw new Error(
      `shard: ${SHARD_COUNT_ENV}=${envCountText} is set but no index is (JOB_COMPLETION_INDEX ` +
        `or --shard i/n)`,
    );
  return { ...WHOLE, source: "none" };
}

/** The keys shard `shard` owns (round-robin over the sorted keys), in sorted order. */
export function shardKeys(keys: readonly string[], shard: Shard): string[] {
  checkShard(shard);
  return [...keys].sort(compareKeys).filter((_, i) => i % shard.count === shard.index);
}

/** All `count` shards' keys: `assignShards(keys, n)[i]` is `shardKeys(keys, {index: i, count: n})`. */
export function assignShards(keys: readonly string[], count: number): string[][] {
  checkShard({ index: 0, count });
  const out: string[][] = Array.from({ length: count }, () => []);
  [...keys].sort(compareKeys).forEach((k, i) => out[i % count]!.push(k));
  return out;
}

function checkShard(s: Shard): void {
  if (!Number.isSafeInteger(s.count) || s.count < 1 || !Number.isSafeInteger(s.index))
    throw new Error(`shard: ${s.index}/${s.count} is not a shard; expected integers 0 <= i < n`);
  if (s.index < 0 || s.index >= s.count)
    throw new Error(`shard: index ${s.index} is out of range; expected 0 <= i < ${s.count}`);
}

export const formatShard = (s: Shard): string => `${s.index}/${s.count}`;
