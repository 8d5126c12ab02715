// The command-line options every sweep shares, parsed the same way everywhere:
//   --out <dir>     this shard's output directory
//   --shard <i/n>   run shard i of n (0-based); wins over the environment
//   --shards <n>    the shard count when the index comes from a Kubernetes Indexed Job
//                   (JOB_COMPLETION_INDEX); TESSERA_SHARD_COUNT does the same from the environment
import { join } from "node:path";
import type { Command } from "commander";
import { positiveInt } from "../cli.ts";
import { SHARD_COUNT_ENV, resolveShard, type ResolvedShard } from "./shard.ts";

export interface SweepCliValues {
  out?: string;
  shard?: string;
  shards?: number;
}

export interface SweepCli {
  /** The output directory: `--out`, else `<defaultOut>` unsharded or `<defaultOut>/shard-<i>`. */
  out: string;
  shard: ResolvedShard;
}

/**
 * Adds `--out`, `--shard` and `--shards` to a commander program (returns it for chaining); use
 * with `createCommand` from ../cli.ts so bad values print as one line.
 */
export function addSweepOptions(program: Command): Command {
  return program
    .option("--out <dir>", "output directory of this shard (points/, sweep.json, scratch/)")
    .option(
      "--shard <i/n>",
      "run shard i of n (0-based); default from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX",
    )
    .option(
      "--shards <n>",
      `shard count for a Kubernetes Indexed Job (or set ${SHARD_COUNT_ENV})`,
      positiveInt("--shards"),
    );
}

/**
 * Resolves the parsed values of `addSweepOptions` (`program.opts()`) and the environment into
 * an output directory and a shard; throws a one-line error on inconsistent values.
 */
export function resolveSweepCli(
  values: SweepCliValues,
  defaultOut: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): SweepCli {
  const shard = resolveShard({ shard: values.shard, shards: values.shards }, env);
  const out =
    values.out ?? (shard.count === 1 ? defaultOut : join(defaultOut, `shard-${shard.index}`));
  return { out, shard };
}
