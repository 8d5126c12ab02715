// The sweep machinery: resumable, sharded runs of a list of configurations, merged by key.
// See docs/cluster.md for running a sweep on Slurm or Kubernetes.
export { runSweep, type RunContext, type SweepOutcome, type SweepSpec } from "./runner.ts";
export {
  SHARD_COUNT_ENV,
  WHOLE,
  assignShards,
  formatShard,
  parseShard,
  resolveShard,
  shardKeys,
  type ResolvedShard,
  type Shard,
  type ShardInputs,
} from "./shard.ts";
export { addSweepOptions, resolveSweepCli, type SweepCli, type SweepCliValues } from "./cli.ts";
export {
  SweepProgress,
  formatDuration,
  type ProgressCounts,
  type ProgressOptions,
  type ProgressStream,
} from "./progress.ts";
export {
  MANIFEST_FILE,
  POINTS_DIR,
  POINT_FORMAT,
  SCRATCH_DIR,
  canonicalJson,
  checkJson,
  checkKey,
  listPointKeys,
  pointPath,
  readManifest,
  readPoint,
  type Json,
  type PointRead,
  type SweepManifest,
  type SweepPoint,
} from "./store.ts";
export { readPointsDir, type PointsInDir } from "./store.ts";
export { MERGED_CSV, MERGED_JSON, mergeShards, type MergeReport } from "./merge.ts";
export {
  columnsOf,
  markdownTable,
  pointRow,
  toCsv,
  writePointsCsv,
  writePointsJson,
  type Cell,
  type MarkdownColumn,
  type Row,
} from "./table.ts";
