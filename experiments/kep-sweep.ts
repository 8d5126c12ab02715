// The KEP sweep of issue 13 (kernel-element pruning; experiments/src/kep-run.ts says what one
// point does) on MNIST and Fashion-MNIST, two models (--models):
//   narrow-cnn: a narrow small CNN, 3x3 planes; conv2..conv4 pruned, n of 9 per plane;
//   lenet5:     nn's LeNet-5 (Caffe's: conv1 20@5x5, conv2 50@5x5, no ReLU after the convs),
//               5x5 planes; conv2 (20 -> 50 channels, 1,000 planes, 25,000 weights) pruned, n of
//               25 per plane (5-bit positions in storage). conv1 stays dense: one input channel
//               and 500 weights, 2% of the conv weights, and a first layer is usually pruned
//               least (the ADMM LeNet-5 result keeps 20% of conv1, 8% of conv2).
// For each: KEP with free positions and with a pattern library, each with and without the
// penalty ramp, against unstructured magnitude pruning and filter pruning at the same kept
// count per layer. Resumable (a re-run skips finished points; a point in flight resumes at its
// epoch) and shardable (--shard i/n; docs/cluster.md). The narrow CNN's points keep the keys
// and configs they had before LeNet-5 joined; LeNet-5's carry "lenet5" ("mnist-lenet5-...").
//
// Widths. nn's default smallCnn ([32, 32, 64, 64], hidden 128) costs minutes per epoch here;
// the sweep uses channels [8, 8, 16, 16] and hidden 64 (conv2..conv4 hold 4,032 weights).
// Measured in one pilot (Fashion-MNIST, the first 6,000 training images, batch 128, one thread,
// nice 10, while other sweeps loaded the 2 cores): [8, 8, 16, 16] 25.7 s at load 5.8, i.e.
// ~257 s per 60,000-image epoch; [16, 16, 32, 32] 244 s at load 9.9 (too slow).
//
// Epoch costs (experiments/kep-pilot.ts: MNIST, batch 128, Adam, one thread, nice 10, one run
// each, one after the other; the 2 cores were shared with 4-6 other jobs, load average 10-11.7,
// so the CPU seconds of the process are the figure an idle core would come near, the wall
// clock is not), per 60,000-image epoch:
//                 asm.js kernels (default)     TESSERA_KERNELS=wasm
//   lenet5        193 s CPU (1,086 s wall)      71 s CPU (526 s wall)    469 steps (one epoch)
//   narrow-cnn    322 s CPU (2,796 s wall)      82 s CPU (146 s wall)    100 steps, scaled
//   nice -n 10 pnpm tsx experiments/kep-pilot.ts --model lenet5 --steps 500
//   TESSERA_KERNELS=wasm nice -n 10 pnpm tsx experiments/kep-pilot.ts --model lenet5 --steps 500
//   (and --model narrow-cnn --steps 100, each path)
// so run the sweep on the WebAssembly kernels, all of it on one path: asm.js and WebAssembly
// may round differently, and the path is not part of a point's config or key.
//
// The n grid. The issue asks for n = 1..k²; --full-grid runs that (9 + 25 values). Each n is
// 6 points per dataset and seed (kep-free and kep-pattern x ramp and cut, magnitude, filter),
// each 2 epochs after pretraining (ramp: 1 penalty + 1 fine-tuning; cut: 2 fine-tuning), so
// 24 epochs per n for both datasets, plus 8 dense epochs per model and dataset. The full grid
// is 16 + 216 epochs for the narrow CNN and 16 + 600 for LeNet-5: ~17 h of one core on the
// wasm path (~8.7 h on two shards), ~54 h on asm.js. The defaults are subsets:
//   narrow-cnn: n in {2, 3, 4, 5, 6} (22-67% kept): 16 + 120 = 136 epochs, ~3.1 h of one core
//     at 82 s per epoch (12 h on asm.js)
//   lenet5: n in {1, 2, 3, 5, 8} (4-32% kept; the ADMM LeNet-5 keeps 8% of conv2, n = 2 here):
//     16 + 120 = 136 epochs, ~2.7 h of one core at 71 s per epoch (7.3 h on asm.js)
// i.e. ~5.8 h of one core, about 3 h on two shards with the cores free (wasm); --models
// narrow-cnn or lenet5 runs one model.
// Measured in the recorded run (docs/results/kep.md; two sweeps side by side on the 2 cores,
// wasm path): a LeNet-5 point took a median 81 s with the BufferArena (the default since
// 1e882e6), i.e. ~40 min per dataset for the 30 default points; a narrow-CNN point 150-180 s
// without it (the narrow points ran on 83089bb). The recorded narrow CNN also has n = 1, 7, 8
// (--n 1,7,8: 36 more points, 3-5 min each with both datasets' sweeps side by side).
//
// Suggested run on 2 cores (the shards share the dense models in results/kep-sweep/dense):
//   export TESSERA_KERNELS=wasm
//   pnpm kep-sweep --dense-only --dataset mnist &  pnpm kep-sweep --dense-only --dataset fashion-mnist
//   pnpm kep-sweep --shard 0/2 &  pnpm kep-sweep --shard 1/2
//   pnpm kep-report results/kep-sweep/shard-0 results/kep-sweep/shard-1 --command "..."
// (a shard that needs a dense model another process is training waits for it).
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool, type MatrixPool } from "@tessera/matrix";
import {
  choice,
  addTrainingOptions,
  trainingArena,
  createCommand,
  fraction,
  intInRange,
  list,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  runMain,
} from "./src/cli.ts";
import { DATASET_INPUT_SHAPES, splitsCache } from "./src/data.ts";
import {
  KEP_METHODS,
  KEP_MODELS,
  KEP_SCORES,
  type KepMethod,
  type KepModelName,
  type KepScore,
} from "./src/kep-run.ts";
import {
  kepModelSpecs,
  kepSweepConfigs,
  runKepSweep,
  trainKepDenseModels,
} from "./src/kep-sweep.ts";
import { addSweepOptions, resolveSweepCli } from "./src/sweep/index.ts";

// The default n grids (the header says why not 1..k²; --full-grid runs 1..k²).
const DEFAULT_N: Record<KepModelName, number[]> = {
  "narrow-cnn": [2, 3, 4, 5, 6],
  lenet5: [1, 2, 3, 5, 8],
};

const program = addSweepOptions(
  addTrainingOptions(
    createCommand("kep-sweep")
      .description(
        "Kernel-element pruning (KEP) of a narrow small CNN (3x3 planes) and LeNet-5 (5x5 planes): accuracy against n kept per plane, free and pattern modes, with and without the penalty ramp, against magnitude and filter pruning",
      )
      .option(
        "--dataset <names>",
        "datasets, comma-separated",
        list("--dataset", choice("--dataset", DATASET_NAMES)),
        ["mnist", "fashion-mnist"] as DatasetName[],
      )
      .option("--seeds <list>", "seeds", list("--seeds", positiveInt("--seeds")), [1])
      .option(
        "--models <list>",
        `models (${KEP_MODELS.join(", ")})`,
        list("--models", choice("--models", KEP_MODELS)),
        [...KEP_MODELS] as KepModelName[],
      )
      .option(
        "--n <list>",
        "narrow-cnn: elements kept per 3x3 plane",
        list("--n", intInRange("--n", 1, 9)),
        DEFAULT_N["narrow-cnn"],
      )
      .option(
        "--lenet5-n <list>",
        "lenet5: elements kept per 5x5 plane",
        list("--lenet5-n", intInRange("--lenet5-n", 1, 25)),
        DEFAULT_N.lenet5,
      )
      .option(
        "--full-grid",
        "n = 1..k² for every model (9 for narrow-cnn, 25 for lenet5) instead of the default subsets",
        false,
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
        "narrow-cnn: output channels of conv1..conv4",
        list("--channels", positiveInt("--channels")),
        [8, 8, 16, 16],
      )
      .option(
        "--hidden <n>",
        "narrow-cnn: units of the hidden Linear layer",
        positiveInt("--hidden"),
        64,
      )
      .option(
        "--layers <list>",
        "narrow-cnn: pruned conv layers",
        list("--layers", choice("--layers", ["conv1", "conv2", "conv3", "conv4"] as const)),
        ["conv2", "conv3", "conv4"],
      )
      .option(
        "--lenet5-layers <list>",
        "lenet5: pruned conv layers (conv1 has 1 input channel and 500 weights: left dense by default)",
        list("--lenet5-layers", choice("--lenet5-layers", ["conv1", "conv2"] as const)),
        ["conv2"],
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
      .option(
        "--ramp-power <x>",
        "ramp shape: 1 linear, 3 cubic",
        positiveNumber("--ramp-power"),
        1,
      )
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
      ),
    1,
  ),
);

interface Options {
  dataset: DatasetName[];
  seeds: number[];
  models: KepModelName[];
  n: number[];
  lenet5N: number[];
  fullGrid: boolean;
  methods: KepMethod[];
  scores: KepScore[];
  taylorBatches: number;
  penalty: ("ramp" | "cut")[];
  baselinePenalty: boolean;
  channels: number[];
  hidden: number;
  layers: string[];
  lenet5Layers: string[];
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
  arena: boolean;
  out?: string;
  shard?: string;
  shards?: number;
}

await runMain("kep-sweep", async () => {
  program.parse();
  const o = program.opts<Options>();
  if (o.channels.length !== 4)
    throw new Error(`--channels: expected 4 widths (conv1..conv4), got ${o.channels.length}`);
  if (o.fullGrid)
    for (const option of ["n", "lenet5N"])
      if (program.getOptionValueSource(option) === "cli")
        throw new Error(
          `--full-grid: it sets n = 1..k² for every model; leave out --${option === "n" ? "n" : "lenet5-n"}`,
        );
  for (const d of o.dataset)
    if (o.models.includes("lenet5") && DATASET_INPUT_SHAPES[d].join("x") !== "1x28x28")
      throw new Error(
        `--dataset: lenet5 takes 1x28x28 images (mnist, fashion-mnist), not ${d}; use --models narrow-cnn for it`,
      );
  const models = kepModelSpecs({
    models: o.models,
    widths: { channels: o.channels as [number, number, number, number], hidden: o.hidden },
    layers: o.layers,
    lenet5Layers: o.lenet5Layers,
    n: o.n,
    lenet5N: o.lenet5N,
    fullGrid: o.fullGrid,
  });
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const { out, shard } = resolveSweepCli(o, join(root, "results", "kep-sweep"));
  const configs = kepSweepConfigs({
    datasets: o.dataset,
    seeds: o.seeds,
    models,
    methods: o.methods,
    scores: o.scores,
    taylorBatches: o.taylorBatches,
    penalty: o.penalty.map((p) => p === "ramp"),
    baselinePenalty: o.baselinePenalty,
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
  const arena = trainingArena(o);
  const denseDir = o.denseDir ?? join(root, "results", "kep-sweep", "dense");
  const splits = splitsCache({ dir: o.dataDir });
  try {
    if (o.denseOnly) {
      const done = await trainKepDenseModels(configs, {
        denseDir,
        splits,
        pool,
        arena,
        progress: (t) => console.error(`kep-sweep: ${t}`),
      });
      for (const d of done)
        console.error(`kep-sweep: dense ${d.dir}: ${(100 * d.accuracy).toFixed(2)}%`);
      return;
    }
    const outcome = await runKepSweep(configs, { out, denseDir, shard, splits, pool, arena });
    console.error(
      `kep-sweep: ${outcome.ran.length} points run, ${outcome.skipped.length} already done; points in ${join(out, "points")}`,
    );
  } finally {
    await pool?.close();
  }
});
