// The ADMM pruning experiments of issue 12 (experiments/src/admm-experiments.ts says what each
// point does): LeNet-5 non-structured on MNIST (ADMM against magnitude + fine-tuning at the
// same kept fractions and total epochs), LeNet-5 filter + column on MNIST and Fashion-MNIST
// (compacted and timed), LeNet-300-100 4x4 blocks at the block chain's kept counts (as BSR).
// Resumable (a re-run skips finished points; a point in flight resumes at its ADMM iteration
// or fine-tuning epoch) and shardable (--shard i/n; docs/cluster.md).
//
// Epoch budgets with the defaults (a LeNet-5 epoch is ~1 minute on an idle machine here):
//   dense models: 20 epochs each (LeNet-5 on MNIST and Fashion-MNIST; LeNet-300-100 on both)
//   lenet5-nonstructured: 6 points x (K·E + R = 10·1 + 5 = 15) = 90 LeNet-5 epochs per seed
//   lenet5-structured: 2 datasets x 3 rates x 15 = 90 LeNet-5 epochs per seed
//   lenet300100-block: 2 datasets x rounds 10,13,14,15,16 x 2·round epochs = 136 LeNet-300-100
//     epochs per seed (several times cheaper than LeNet-5's)
// so one seed of everything is ~220 LeNet-5 epochs (40 dense + 180), over 3 hours on an idle
// machine: split it with --shard i/n (e.g. --experiments lenet5-nonstructured --shard 0/3).
//
//   pnpm admm-sweep --experiments lenet5-nonstructured --seeds 1
//   pnpm admm-sweep --experiments lenet300100-block --datasets mnist --block-rounds 13
//   pnpm admm-sweep --experiments lenet5-structured --datasets mnist --structured-rates s1.5
//   pnpm admm-sweep --experiments lenet5-structured --retrain-lr 1e-4   (a gentler retraining)
//   pnpm admm-sweep --experiments lenet5-nonstructured --nonstructured-rates paper --retrain-lr 1e-4
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool, type MatrixPool } from "@tessera/matrix";
import type { Module } from "@tessera/nn";
import {
  addTrainingOptions,
  choice,
  createCommand,
  list,
  positiveInt,
  positiveNumber,
  runMain,
  trainingArena,
} from "./src/cli.ts";
import { splitsCache } from "./src/data.ts";
import { addSweepOptions, resolveSweepCli, runSweep } from "./src/sweep/index.ts";
import { DEFAULT_CONFIG, runTraining, type TrainConfig } from "./src/train-run.ts";
import {
  ADMM_EXPERIMENTS,
  STRUCTURED_RATE_NAMES,
  NONSTRUCTURED_RATE_NAMES,
  admmPointKey,
  admmSweepConfigs,
  runAdmmPoint,
  type AdmmExperiment,
  type AdmmPointConfig,
  type AdmmPointResult,
} from "./src/admm-experiments.ts";

const program = addSweepOptions(
  addTrainingOptions(
    createCommand("admm-sweep")
      .description("ADMM pruning (StructADMM) of LeNet-5 and LeNet-300-100: issue 12's experiments")
      .option(
        "--experiments <names>",
        `experiments, comma-separated (${ADMM_EXPERIMENTS.join(", ")})`,
        list("--experiments", choice("--experiments", ADMM_EXPERIMENTS)),
        [...ADMM_EXPERIMENTS] as AdmmExperiment[],
      )
      .option(
        "--datasets <names>",
        "datasets of the structured and block experiments",
        list("--datasets", choice("--datasets", DATASET_NAMES)),
        ["mnist", "fashion-mnist"] as DatasetName[],
      )
      .option("--seeds <list>", "seeds", list("--seeds", positiveInt("--seeds")), [1])
      .option(
        "--nonstructured-rates <names>",
        `non-structured rates, comma-separated (${NONSTRUCTURED_RATE_NAMES.join(", ")})`,
        list("--nonstructured-rates", choice("--nonstructured-rates", NONSTRUCTURED_RATE_NAMES)),
        [...NONSTRUCTURED_RATE_NAMES],
      )
      .option(
        "--structured-rates <names>",
        `structured rates, comma-separated (${STRUCTURED_RATE_NAMES.join(", ")})`,
        list("--structured-rates", choice("--structured-rates", STRUCTURED_RATE_NAMES)),
        [...STRUCTURED_RATE_NAMES],
      )
      .option("--iterations <n>", "LeNet-5: ADMM iterations K", positiveInt("--iterations"), 10)
      .option(
        "--epochs-per-iteration <n>",
        "LeNet-5: epochs E per ADMM iteration",
        positiveInt("--epochs-per-iteration"),
        1,
      )
      .option(
        "--retrain-epochs <n>",
        "LeNet-5: masked retraining epochs R",
        positiveInt("--retrain-epochs"),
        5,
      )
      .option("--rho <x>", "ADMM penalty rho (all layers)", positiveNumber("--rho"), 1e-3)
      .option(
        "--rho-growth <x>",
        "rho factor per ADMM iteration",
        positiveNumber("--rho-growth"),
        1.5,
      )
      .option("--lr <x>", "Adam learning rate (ADMM and retraining)", positiveNumber("--lr"), 1e-3)
      .option(
        "--retrain-lr <x>",
        "Adam learning rate of the ADMM points' masked retraining (default --lr; named in the point key)",
        positiveNumber("--retrain-lr"),
      )
      .option(
        "--block-rounds <list>",
        "block chain rounds whose kept tile counts the block points use",
        list("--block-rounds", positiveInt("--block-rounds")),
        [10, 13, 14, 15, 16],
      )
      .option(
        "--block-epochs-per-round <n>",
        "the block chain's fine-tuning epochs per round (budget of a round-r point: r times it)",
        positiveInt("--block-epochs-per-round"),
        2,
      )
      .option(
        "--dense-epochs <n>",
        "epochs of the dense models (pnpm train's recipe)",
        positiveInt("--dense-epochs"),
        DEFAULT_CONFIG.epochs,
      ),
    2,
  ),
);

interface Options {
  experiments: AdmmExperiment[];
  datasets: DatasetName[];
  seeds: number[];
  structuredRates: string[];
  nonstructuredRates: string[];
  iterations: number;
  epochsPerIteration: number;
  retrainEpochs: number;
  rho: number;
  rhoGrowth: number;
  lr: number;
  retrainLr?: number;
  blockRounds: number[];
  blockEpochsPerRound: number;
  denseEpochs: number;
  dataDir?: string;
  threads: number;
  arena: boolean;
  out?: string;
  shard?: string;
  shards?: number;
}

await runMain("admm-sweep", async () => {
  program.parse();
  const o = program.opts<Options>();
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const { out, shard } = resolveSweepCli(o, join(root, "results", "admm-sweep"));
  const { epochs: _e, seed: _s, ...denseDefaults } = DEFAULT_CONFIG;
  const configs = admmSweepConfigs({
    ...o,
    batchSize: 128,
    denseEpochs: { lenet5: o.denseEpochs, lenet300100: o.denseEpochs },
    denseDefaults,
  });
  const splits = splitsCache({ dir: o.dataDir });
  const pool: MatrixPool | undefined =
    o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  const arena = trainingArena(o);
  try {
    const outcome = await runSweep<AdmmPointConfig, AdmmPointResult>({
      dir: out,
      name: "admm-sweep",
      configs,
      key: admmPointKey,
      shard,
      run: async (c, ctx) => {
        const { train, test } = await splits(c.dataset as DatasetName);
        const d: TrainConfig = c.dense;
        const denseDir = join(out, "dense", `${d.model}-${d.dataset}-s${d.seed}`);
        const denseModel = (): Module => {
          ctx.progress(`dense ${d.model} ${d.epochs} epochs -> ${denseDir}`);
          return runTraining({ config: d, train, test, dir: denseDir, pool, arena }).model;
        };
        return runAdmmPoint(c, {
          train,
          test,
          denseModel,
          scratchDir: ctx.scratchDir,
          pool,
          arena,
          progress: ctx.progress,
        });
      },
    });
    console.error(
      `admm-sweep: ${outcome.ran.length} points run, ${outcome.skipped.length} already done; points in ${join(out, "points")}`,
    );
  } finally {
    await pool?.close();
  }
});
