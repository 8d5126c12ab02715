// Writes docs/results/block-pruning.md (and beside it block-pruning/: points.json, points.csv,
// one accuracy-vs-density SVG per dataset with its Vega-Lite spec) from the points of one or
// more block-sweep output directories (shards or a merge).
//
//   pnpm tsx experiments/report-block-sweep.ts results/block-sweep [more dirs] \
//     --command "pnpm block-sweep --dataset mnist --block-sizes 4"
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { findWorkspaceRoot, writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { createCommand, runMain } from "./src/cli.ts";
import { readPointsDir, writePointsCsv, writePointsJson } from "./src/sweep/index.ts";
import { accuracyVsDensityChart, renderChart } from "./src/plot/index.ts";
import {
  accuracyRows,
  blockSizeTable,
  cells,
  checkTargets,
  roundsTable,
  splitByBudget,
  budgetTable,
  targetsTable,
  variantSection,
  lateTitle,
  anchor,
  type BlockPoint,
} from "./src/block-report.ts";

const program = createCommand("report-block-sweep")
  .description("Tables and plots of block-sweep points for docs/results/block-pruning.md")
  .argument(
    "<dirs...>",
    "block-sweep output directories (each holding points/), or points.json files an earlier report wrote",
  )
  .option("--out <file>", "markdown file to write (default docs/results/block-pruning.md)")
  .option(
    "--command <text...>",
    "the command(s) that produced the points, written into the report",
    [] as string[],
  );

/**
 * Points from a points.json an earlier report wrote (docs/results/block-pruning/points.json is
 * committed, so a new machine can re-report finished chains without their run directories).
 */
function readPointsJson(path: string): ReturnType<typeof readPointsDir> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message}); expected a points.json array`);
  }
  if (!Array.isArray(parsed))
    throw new Error(`${path}: expected an array of block-sweep points, found ${typeof parsed}`);
  const points: ReturnType<typeof readPointsDir>["points"] = [];
  const bad: { path: string; reason: string }[] = [];
  parsed.forEach((p: unknown, i) => {
    const ok =
      typeof p === "object" &&
      p !== null &&
      (p as { sweep?: unknown }).sweep === "block-sweep" &&
      typeof (p as { key?: unknown }).key === "string" &&
      typeof (p as { config?: unknown }).config === "object" &&
      typeof (p as { result?: unknown }).result === "object";
    if (ok) points.push(p as (typeof points)[number]);
    else
      bad.push({
        path: `${path}[${i}]`,
        reason: "not a block-sweep point (sweep, key, config, result)",
      });
  });
  return { points, bad };
}

function withoutDatasetAndSeed(dense: unknown): unknown {
  if (typeof dense !== "object" || dense === null) return dense;
  const { dataset: _d, seed: _s, ...rest } = dense as Record<string, unknown>;
  return rest;
}

const PAPER = `## The paper's claims (shared/reference/papers.md, method 1)

- Models and data as here: LeNet-300-100 (784-300-100-10, biases), inputs scaled to [-1, 1];
  b x b tiles from (0,0), ragged at the edges; tile score = mean |w| over its real elements;
  each round removes 20% of a hidden layer's alive tiles and 10% of the output layer's; 16
  rounds: 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5, 3.6,
  2.9 % of the weights.
- Published: on MNIST and Fashion-MNIST accuracy falls as sparsity rises and as the block size
  grows (their tables were not recovered, so only the trend can be compared); magnitude tiles
  beat random sparse networks of the same density; CIFAR-10 (ResNet-18 trunk, 512-300-10 head,
  97% of the head pruned): 90.73% against 90.37% unpruned.
- Their budget: Adam (MNIST lr 1e-4 / 1e-6 retraining, batch 50; Fashion-MNIST 5e-4 / 1e-5,
  batch 128) for 1000 epochs per stage, keeping the stage's best checkpoint by *test* accuracy.
  Ours is far smaller (below) and never selects on the test set: each round continues from
  the previous round's last weights.
`;

await runMain("report-block-sweep", async () => {
  program.parse();
  const dirs = program.args;
  const o = program.opts<{ out?: string; command: string[] }>();
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const mdPath = o.out ?? join(root, "docs", "results", "block-pruning.md");
  const assetDir = mdPath.replace(/\.md$/, "");
  mkdirSync(assetDir, { recursive: true });

  const byKey = new Map<string, BlockPoint>();
  for (const dir of dirs) {
    const { points, bad } = statSync(dir).isFile() ? readPointsJson(dir) : readPointsDir(dir);
    for (const b of bad) console.error(`report-block-sweep: skipping ${b.path}: ${b.reason}`);
    for (const p of points) {
      // The same chain on the other kernel path is another point (float32 against float64 sums).
      const id = `${p.key}|${(p as { kernels?: string }).kernels ?? "asm"}`;
      const prev = byKey.get(id);
      if (prev !== undefined && JSON.stringify(prev.result) !== JSON.stringify(p.result))
        throw new Error(
          `point "${p.key}" differs between two of the directories; merge them first`,
        );
      byKey.set(id, p as unknown as BlockPoint);
    }
  }
  const points = [...byKey.values()].sort(
    (a, b) => a.key.localeCompare(b.key) || (a.kernels ?? "asm").localeCompare(b.kernels ?? "asm"),
  );
  if (points.length === 0) throw new Error(`no block-sweep points in ${dirs.join(", ")}`);
  writePointsJson(join(assetDir, "points.json"), points);
  writePointsCsv(join(assetDir, "points.csv"), points);

  const { plain, variants } = splitByBudget(points);
  const cs = cells(plain);
  const datasets = [...new Set(plain.map((p) => p.config.dataset))].sort();
  const configs = new Set(
    points.map((p) =>
      JSON.stringify({
        rounds: p.config.rounds,
        rates: p.config.rates,
        fineTune: p.config.fineTune,
        // The dense model's dataset and seed are the chain's own (in its key): leave them out,
        // so chains that differ only there share one settings block.
        dense: withoutDatasetAndSeed(p.config.dense),
      }),
    ),
  );
  const commits = [...new Set(points.map((p) => p.git?.commit.slice(0, 7) ?? "unknown"))];
  const hosts = [...new Set(points.map((p) => p.host))];
  const parts: string[] = [];
  parts.push(`# Block pruning of LeNet-300-100 (Huang et al. 2021), reproduced

Generated by \`experiments/report-block-sweep.ts\` from ${points.length} finished chains
(one chain = one dataset, tile size, method and seed through its rounds). Do not edit by hand.

Produced by:
${(o.command.length > 0 ? o.command : ["(command not given)"]).map((c) => `- \`${c}\``).join("\n")}
- report: \`pnpm tsx experiments/report-block-sweep.ts ${dirs.map((d) => relative(root, d) || ".").join(" ")}\`

Commits: ${commits.join(", ")}; hosts: ${hosts.join(", ")}. Points, CSV and plots:
[block-pruning/](block-pruning/).

Budget and settings of these chains (${configs.size > 1 ? "several differ: one block per setting" : "all of them"}; the dense model's dataset and seed are each chain's own):
${[...configs].map((c) => "```json\n" + JSON.stringify(JSON.parse(c), null, 2) + "\n```").join("\n")}
`);
  parts.push(
    `## Targets of the issue\n\n${targetsTable(checkTargets(cs))}` +
      (variants.length === 0
        ? ""
        : `\nThese are the chains with the budget above for every round. Chains with another fine-tuning budget (longer, in every round or from a late round on; another learning rate, weight decay or batch) have their own targets below (${variants.map((ps) => `[${lateTitle(ps[0]!)}](#${anchor(lateTitle(ps[0]!))})`).join(", ")}). Side by side (a negative gap: above dense):\n\n${budgetTable(plain, variants)}\n`),
  );
  for (const d of datasets) {
    const svg = join(assetDir, `accuracy-${d}.svg`);
    await renderChart(
      accuracyVsDensityChart(accuracyRows(plain, d), {
        title: `LeNet-300-100 on ${d}: test accuracy after fine-tuning`,
      }),
      svg,
    );
    parts.push(
      `## ${d}\n\n![accuracy against density](block-pruning/accuracy-${d}.svg)\n\n` +
        `Tile sizes side by side: fine-tuned test accuracy %, mean over seeds (seed count).\n\n` +
        `${blockSizeTable(cs, d, [10, 13, 16])}\n`,
    );
    const sizes = [...new Set(cs.filter((c) => c.dataset === d).map((c) => c.blockSize))].sort(
      (a, b) => a - b,
    );
    for (const b of sizes) {
      const chains = plain.filter((p) => p.config.dataset === d && p.config.blockSize === b);
      const seeds = [...new Set(chains.map((p) => p.config.seed))];
      // Seeds whose chains run every round (others, e.g. extra seeds of round 1, are named apart).
      const last = Math.max(...chains.flatMap((p) => p.result.rounds.map((r) => r.round)));
      const full = [
        ...new Set(
          chains
            .filter((p) => p.result.rounds.some((r) => r.round === last))
            .map((p) => p.config.seed),
        ),
      ];
      const partial = seeds.filter((x) => !full.includes(x));
      const seedText =
        partial.length === 0
          ? `seeds ${full.sort((x, y) => x - y).join(", ")}`
          : `seeds ${full.sort((x, y) => x - y).join(", ")} in every round; seeds ${partial.sort((x, y) => x - y).join(", ")} in fewer rounds (the seeds column)`;
      const denseCell = cs.find((c) => c.dataset === d && c.blockSize === b && c.round === last)!;
      const dense = denseCell.dense;
      parts.push(
        `### ${d}, ${b === 1 ? "element-wise (1x1)" : `${b}x${b} tiles`}\n\n` +
          `Dense ${dense.n > 1 ? `${(100 * dense.mean).toFixed(2)}% (${(100 * dense.min).toFixed(2)}-${(100 * dense.max).toFixed(2)})` : `${(100 * dense.mean).toFixed(2)}%`}${partial.length > 0 ? " (the seeds of every round)" : ""}; ${seedText}. ` +
          `Test accuracy %, mean (min-max over seeds).\n\n${roundsTable(cs, d, b)}`,
      );
    }
  }
  for (const ps of variants) parts.push(variantSection(ps, plain));
  parts.push(PAPER);
  writeFileAtomic(mdPath, new TextEncoder().encode(parts.join("\n")));
  console.error(`report-block-sweep: ${points.length} chains -> ${mdPath}`);
});
