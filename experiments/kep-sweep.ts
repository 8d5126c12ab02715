// The KEP sweep of issue 13 (kernel-element pruning; experiments/src/kep-run.ts says what one
// point does): a narrow small CNN (3x3 convolutions) on MNIST and Fashion-MNIST, n kept of the
// 9 elements of every plane of conv2..conv4, KEP with free positions and with a pattern library,
// each with and without the penalty ramp, against unstructured magnitude pruning and filter
// pruning at the same kept count per layer. Resumable (a re-run skips finished points; a point
// in flight resumes at its epoch) and shardable (--shard i/n; docs/cluster.md).
//
// Widths and budget (defaults). nn's default smallCnn ([32, 32, 64, 64], hidden 128) costs
// minutes per epoch here; the sweep uses channels [8, 8, 16, 16] and hidden 64 (conv2..conv4,
// the pruned layers, hold 4,032 weights). Measured in one pilot (Fashion-MNIST, the first 6,000
// training images, batch 128, one thread, nice 10, while other sweeps loaded the 2 cores):
// [8, 8, 16, 16] 25.7 s at load 5.8, i.e. ~257 s per 60,000-image epoch; [16, 16, 32, 32]
// 244 s at load 9.9, ~2,440 s per epoch (too slow). An unloaded core should be several times
// faster than the loaded figure (not measured).
//   dense models: 8 epochs per dataset and seed
//   points: n in {2,3,4,5,6} x (kep-free, kep-pattern) x (ramp, cut) + (magnitude, filter)
//     = 30 points per dataset and seed, each 2 epochs after pretraining (ramp: 1 penalty +
//     1 fine-tuning; cut: 2 fine-tuning)
// so one seed of both datasets is 16 + 120 = 136 epochs: ~9.7 h at the loaded 257 s per epoch
// in one process, about half on two shards; a few hours if the cores are free.
//
// Suggested run on 2 cores (the shards share the dense models in results/kep-sweep/dense):
//   pnpm kep-sweep --dense-only --dataset mnist &  pnpm kep-sweep --dense-only --dataset fashion-mnist
//   pnpm kep-sweep --shard 0/2 &  pnpm kep-sweep --shard 1/2
//   pnpm kep-report results/kep-sweep/shard-0 results/kep-sweep/shard-1 --command "..."
// (a shard that needs a dense model another process is training waits for it).
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool, type MatrixPool } from "@tessera/matrix";
import {
  choice,
  createCommand,
  fraction,
  intInRange,
  list,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  runMain,
} from "./src/cli.ts";
import { splitsCache } from "./src/data.ts";
import { KEP_METHODS, KEP_SCORES, type KepMethod, type KepScore } from "./src/kep-run.ts";
import { kepSweepConfigs, runKepSweep, trainKepDenseModels } from "./src/kep-sweep.ts";
import { addSweepOptions, resolveSweepCli } from "./src/sweep/index.ts";

const program = addSweepOptions(
  createCommand("kep-sweep")
    .description(
      "Kernel-element pruning (KEP) of a small CNN: accuracy against n kept per 3x3 plane, free and pattern modes, with and without the penalty ramp, against magnitude and filter pruning",
    )
    .option(
      "--dataset <names>",
      "datasets, comma-separated",
      list("--dataset", choice("--dataset", DATASET_NAMES)),
      ["mnist", "fashion-mnist"] as DatasetName[],
    )
    .option("--seeds <list>", "seeds", list("--seeds", positiveInt("--seeds")), [1])
    .option(
      "--n <list>",
      "elements kept per 3x3 plane",
      list("--n", intInRange("--n", 1, 9)),
      [2, 3, 4, 5, 6],
    )
    .option(
      "--methods <list>",
      `methods (${KEP_METHODS.join(", ")})`,
      list("--methods", choice("--methods", KEP_METHODS)),
      [...KEP_METHODS] as KepMethod[],
    )
    .option(
      "--scores <list>",
      "mask scores: magnitude (|w|), taylor (|w · dL/dw| over --taylor-batches batches)",
      list("--scores", choice("--scores", KEP_SCORES)),
      ["magnitude"] as KepScore[],
    )
    .option(
      "--taylor-batches <n>",
      "training batches the Taylor score averages",
      positiveInt("--taylor-batches"),
      20,
    )
    .option(
      "--penalty <list>",
      "KEP variants: ramp (penalty phase, then the cut), cut (the cut at once)",
      list("--penalty", choice("--penalty", ["ramp", "cut"] as const)),
      ["ramp", "cut"],
    )
    .option("--baseline-penalty", "also run the baselines with the penalty ramp", false)
    .option(
      "--channels <list>",
      "output channels of conv1..conv4",
      list("--channels", positiveInt("--channels")),
      [8, 8, 16, 16],
    )
    .option("--hidden <n>", "units of the hidden Linear layer", positiveInt("--hidden"), 64)
    .option(
      "--layers <list>",
      "pruned conv layers",
      list("--layers", choice("--layers", ["conv1", "conv2", "conv3", "conv4"] as const)),
      ["conv2", "conv3", "conv4"],
    )
    .option("--library-size <n>", "pattern library size L", positiveInt("--library-size"), 8)
    .option(
      "--plane-fraction <x>",
      "connectivity sparsity: fraction of each layer's planes removed (KEP), same kept count for the baselines",
      fraction("--plane-fraction"),
      0,
    )
    .option(
      "--lambda <x>",
      "penalty lambda at the end of the ramp",
      nonNegativeNumber("--lambda"),
      1,
    )
    .option("--ramp-power <x>", "ramp shape: 1 linear, 3 cubic", positiveNumber("--ramp-power"), 1)
    .option("--dense-epochs <n>", "epochs of the dense model", positiveInt("--dense-epochs"), 8)
    .option(
      "--penalty-epochs <n>",
      "E1: epochs of the penalty phase (cut variants fine-tune E1 + E2)",
      positiveInt("--penalty-epochs"),
      1,
    )
    .option("--ft-epochs <n>", "E2: masked fine-tuning epochs", positiveInt("--ft-epochs"), 1)
    .option(
      "--lr <x>",
      "Adam learning rate (cosine within each phase)",
      positiveNumber("--lr"),
      1e-3,
    )
    .option("--batch-size <n>", "batch size", positiveInt("--batch-size"), 128)
    .option(
      "--dense-dir <dir>",
      "where the dense models live, shared by the shards (default results/kep-sweep/dense)",
    )
    .option(
      "--dense-only",
      "only train the dense models the selected points need (run one per dataset in parallel before the shards)",
      false,
    )
    .option(
      "--data-dir <dir>",
      "directory holding the dataset files (default: search, fetching if missing)",
    )
    .option(
      "--threads <n>",
      "threads for matrix products (results do not depend on it)",
      positiveInt("--threads"),
      1,
    ),
);

interface Options {
  dataset: DatasetName[];
  seeds: number[];
  n: number[];
  methods: KepMethod[];
  scores: KepScore[];
  taylorBatches: number;
  penalty: ("ramp" | "cut")[];
  baselinePenalty: boolean;
  channels: number[];
  hidden: number;
  layers: string[];
  librarySize: number;
  planeFraction: number;
  lambda: number;
  rampPower: number;
  denseEpochs: number;
  penaltyEpochs: number;
  ftEpochs: number;
  lr: number;
  batchSize: number;
  denseDir?: string;
  denseOnly: boolean;
  dataDir?: string;
  threads: number;
  out?: string;
  shard?: string;
  shards?: number;
}

await runMain("kep-sweep", async () => {
  program.parse();
  const o = program.opts<Options>();
  if (o.channels.length !== 4)
    throw new Error(`--channels: expected 4 widths (conv1..conv4), got ${o.channels.length}`);
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const { out, shard } = resolveSweepCli(o, join(root, "results", "kep-sweep"));
  const configs = kepSweepConfigs({
    datasets: o.dataset,
    seeds: o.seeds,
    ns: o.n,
    methods: o.methods,
    scores: o.scores,
    taylorBatches: o.taylorBatches,
    penalty: o.penalty.map((p) => p === "ramp"),
    baselinePenalty: o.baselinePenalty,
    widths: { channels: o.channels as [number, number, number, number], hidden: o.hidden },
    layers: o.layers.map((l) => `${l}.weight`),
    librarySize: o.librarySize,
    planeFraction: o.planeFraction,
    lambda: o.lambda,
    rampPower: o.rampPower,
    denseEpochs: o.denseEpochs,
    penaltyEpochs: o.penaltyEpochs,
    fineTuneEpochs: o.ftEpochs,
    lr: o.lr,
    batchSize: o.batchSize,
  });
  const pool: MatrixPool | undefined =
    o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  const denseDir = o.denseDir ?? join(root, "results", "kep-sweep", "dense");
  const splits = splitsCache({ dir: o.dataDir });
  try {
    if (o.denseOnly) {
      const done = await trainKepDenseModels(configs, {
        denseDir,
        splits,
        pool,
        progress: (t) => console.error(`kep-sweep: ${t}`),
      });
      for (const d of done)
        console.error(`kep-sweep: dense ${d.dir}: ${(100 * d.accuracy).toFixed(2)}%`);
      return;
    }
    const outcome = await runKepSweep(configs, { out, denseDir, shard, splits, pool });
    console.error(
      `kep-sweep: ${outcome.ran.length} points run, ${outcome.skipped.length} already done; points in ${join(out, "points")}`,
    );
  } finally {
    await pool?.close();
  }
});
