// Joins the output directories of a sharded sweep into one, by configuration key.
//   pnpm tsx experiments/merge.ts results/block-sweep/merged results/block-sweep/shard-*
// Writes <out>/points/<key>.json, <out>/points.json and <out>/points.csv, and says which
// configurations no shard has finished yet. Identical duplicates are kept once; two different
// points under one key stop the merge with an error naming the key and both files.
import { createCommand, runMain } from "./src/cli.ts";
import { MERGED_CSV, MERGED_JSON, mergeShards } from "./src/sweep/merge.ts";
import { join } from "node:path";

await runMain("merge", () => {
  const program = createCommand("merge")
    .description("Join shard output directories of a sweep by configuration key.")
    .argument("<out-dir>", "merged output directory (created if missing)")
    .argument("<shard-dir...>", "shard output directories")
    .option("--require-complete", "exit with status 1 if any configuration is missing")
    .parse();
  const [out, shards] = program.processedArgs as [string, string[]];
  const opts = program.opts<{ requireComplete?: boolean }>();
  const r = mergeShards(out, shards);
  const log = (s: string) => process.stderr.write(`merge: ${s}\n`);
  for (const s of r.skipped) log(`skipped ${s.path}: ${s.reason}`);
  if (r.manifestMismatch.length > 0)
    log(
      `these shards were run with a different configuration list: ${r.manifestMismatch.join(", ")}`,
    );
  log(
    `${r.sweep}: ${r.points.length} points from ${shards.length} ` +
      `director${shards.length === 1 ? "y" : "ies"}` +
      `${r.duplicates > 0 ? ` (${r.duplicates} identical duplicates kept once)` : ""} -> ` +
      `${join(out, MERGED_JSON)}, ${join(out, MERGED_CSV)}`,
  );
  if (r.missing.length > 0) {
    const shown = r.missing.slice(0, 20).join(", ");
    log(
      `${r.missing.length} configurations missing: ${shown}${r.missing.length > 20 ? ", ..." : ""}`,
    );
    if (opts.requireComplete) throw new Error(`${r.missing.length} configurations missing`);
  } else {
    log("no configuration missing");
  }
});
