// The block-pruning sweep of Huang et al. 2021 on LeNet-300-100: for every dataset, tile size,
// method (magnitude tiles, or random tiles as the baseline) and seed, one chain of the paper's
// 16 iterative rounds (experiments/src/block-chain.ts). Resumable (a re-run skips finished
// chains; a chain in flight resumes at its round) and shardable (--shard i/n, Slurm arrays,
// Kubernetes Indexed Jobs: docs/cluster.md).
//
//   pnpm tsx experiments/block-sweep.ts --dataset mnist --block-sizes 4 --seeds 1,2,3
//   pnpm tsx experiments/block-sweep.ts                       # the whole sweep (hours)
//   TESSERA_KERNELS=wasm pnpm tsx experiments/block-sweep.ts --dataset mnist --block-sizes 4 \
//     --ft-late 1:10 --ft-weight-decay 0.1   # a fixed budget that reaches round 16 (~11 min a chain)
// The fine-tuning budget (--ft-epochs, --ft-late, --ft-lr, --ft-weight-decay, --ft-batch) goes
// into a chain's key where it differs from the plain one (chainKey in block-chain.ts).
//   pnpm tsx experiments/report-block-sweep.ts results/block-sweep   # tables and plots
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool, type MatrixPool } from "@tessera/matrix";
import { lenet300100, type Module } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import {
  choice,
  addTrainingOptions,
  trainingArena,
  createCommand,
  list,
  positiveInt,
  fraction,
  positiveNumber,
  nonNegativeNumber,
  runMain,
} from "./src/cli.ts";
import { splitsCache } from "./src/data.ts";
import { addSweepOptions, resolveSweepCli, runSweep } from "./src/sweep/index.ts";
import { DEFAULT_CONFIG, runTraining, type TrainConfig } from "./src/train-run.ts";
import {
  BLOCK_METHODS,
  DEFAULT_FT_BATCH,
  DEFAULT_FT_LR,
  branchChain,
  chainKey,
  parseLateBudget,
  runChain,
  type BlockMethod,
  type ChainConfig,
  type ChainResult,
} from "./src/block-chain.ts";

/** What one point of the sweep stores: the chain's config plus the dense model it starts from. */
export interface SweepConfig extends ChainConfig {
  dense: TrainConfig;
}

const program = addSweepOptions(
  addTrainingOptions(
    createCommand("block-sweep")
      .description(
        "Iterative block pruning of LeNet-300-100 (Huang et al. 2021): accuracy, density and storage per round",
      )
      .option(
        "--dataset <names>",
        "datasets, comma-separated",
        list("--dataset", choice("--dataset", DATASET_NAMES)),
        ["mnist", "fashion-mnist"] as DatasetName[],
      )
      .option(
        "--block-sizes <list>",
        "tile sizes b (b x b; 1 = element-wise)",
        list("--block-sizes", positiveInt("--block-sizes")),
        [1, 2, 3, 4, 5, 6, 8],
      )
      .option(
        "--methods <list>",
        "tile scores: magnitude (mean |w|), random (baseline)",
        list("--methods", choice("--methods", BLOCK_METHODS)),
        [...BLOCK_METHODS],
      )
      .option("--seeds <list>", "seeds", list("--seeds", positiveInt("--seeds")), [1, 2, 3])
      .option("--rounds <n>", "prune / fine-tune rounds", positiveInt("--rounds"), 16)
      .option(
        "--rate-hidden <x>",
        "tiles removed per round, hidden layers",
        fraction("--rate-hidden"),
        0.2,
      )
      .option(
        "--rate-output <x>",
        "tiles removed per round, output layer",
        fraction("--rate-output"),
        0.1,
      )
      .option("--ft-epochs <n>", "fine-tuning epochs per round", positiveInt("--ft-epochs"), 2)
      .option(
        "--ft-late <round:epochs>",
        "a longer budget for the late rounds: from <round> on, <epochs> per round (keys get -late<round>x<epochs>)",
        (v: string) => parseLateBudget("--ft-late", v),
      )
      .option(
        "--branch-from <dirs>",
        "with --ft-late: start each chain from the finished plain chain of the same key in these block-sweep output directories (comma-separated), copying its rounds before the late budget (same numbers, fewer epochs)",
        list("--branch-from", (v: string) => v),
      )
      .option(
        "--ft-lr <x>",
        "fine-tuning Adam learning rate (cosine within a round; keys get -lr<x> unless it is 0.001)",
        positiveNumber("--ft-lr"),
        DEFAULT_FT_LR,
      )
      .option(
        "--ft-batch <n>",
        "fine-tuning batch size (keys get -bs<n> unless it is 128; the authors' MNIST code: 50)",
        positiveInt("--ft-batch"),
        DEFAULT_FT_BATCH,
      )
      .option(
        "--ft-weight-decay <x>",
        "fine-tune with AdamW and this decoupled weight decay (keys get -wd<x>; default: Adam, no decay)",
        nonNegativeNumber("--ft-weight-decay"),
      )
      .option(
        "--dense-epochs <n>",
        "epochs of the dense model (pnpm train's recipe)",
        positiveInt("--dense-epochs"),
        DEFAULT_CONFIG.epochs,
      ),
    2,
  ),
);

interface Options {
  dataset: DatasetName[];
  blockSizes: number[];
  methods: BlockMethod[];
  seeds: number[];
  rounds: number;
  rateHidden: number;
  rateOutput: number;
  ftEpochs: number;
  ftLate?: { fromRound: number; epochs: number };
  branchFrom?: string[];
  ftLr: number;
  ftWeightDecay?: number;
  ftBatch: number;
  denseEpochs: number;
  dataDir?: string;
  threads: number;
  arena: boolean;
  out?: string;
  shard?: string;
  shards?: number;
}

export function sweepConfigs(o: Options): SweepConfig[] {
  const configs: SweepConfig[] = [];
  for (const dataset of o.dataset)
    for (const blockSize of o.blockSizes)
      for (const method of o.methods)
        for (const seed of o.seeds)
          configs.push({
            dataset,
            blockSize,
            method,
            seed,
            rounds: o.rounds,
            rates: { hidden: o.rateHidden, output: o.rateOutput },
            fineTune: {
              epochs: o.ftEpochs,
              lr: o.ftLr,
              schedule: "cosine",
              batchSize: o.ftBatch,
              // Only when given: chains without it keep the config (and key) they always had.
              ...(o.ftLate === undefined ? {} : { late: o.ftLate }),
              ...(o.ftWeightDecay === undefined ? {} : { weightDecay: o.ftWeightDecay }),
            },
            dense: {
              model: "lenet300100",
              dataset,
              ...DEFAULT_CONFIG,
              epochs: o.denseEpochs,
              seed,
            },
          });
  return configs;
}

await runMain("block-sweep", async () => {
  program.parse();
  const o = program.opts<Options>();
  if (o.ftLate !== undefined && o.ftLate.fromRound > o.rounds)
    throw new Error(
      `--ft-late: its round (${o.ftLate.fromRound}) is past the last round (--rounds ${o.rounds}); expected 1..${o.rounds}`,
    );
  if (o.branchFrom !== undefined && o.ftLate === undefined)
    throw new Error(
      "--branch-from: only with --ft-late (a plain chain has nothing to branch from)",
    );
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const { out, shard } = resolveSweepCli(o, join(root, "results", "block-sweep"));
  const configs = sweepConfigs(o);
  const splits = splitsCache({ dir: o.dataDir });
  const pool: MatrixPool | undefined =
    o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  const arena = trainingArena(o);
  try {
    const outcome = await runSweep<SweepConfig, ChainResult>({
      dir: out,
      name: "block-sweep",
      configs,
      key: chainKey,
      shard,
      run: async (c, ctx) => {
        const { train, test } = await splits(c.dataset as DatasetName);
        const denseDir = join(out, "dense", `${c.dataset}-s${c.seed}`);
        const dense = (): Module => {
          ctx.progress(`dense model ${c.dense.epochs} epochs -> ${denseDir}`);
          return runTraining({ config: c.dense, train, test, dir: denseDir, pool, arena }).model;
        };
        const dir = join(out, "chains", chainKey(c));
        for (const from of o.branchFrom ?? []) {
          const { late: _late, ...plainFineTune } = c.fineTune;
          const plainDir = join(from, "chains", chainKey({ ...c, fineTune: plainFineTune }));
          const copied = branchChain(c, plainDir, dir);
          if (copied > 0) {
            ctx.progress(`rounds 1-${copied} copied from ${plainDir}`);
            break;
          }
        }
        return runChain(c, {
          train,
          test,
          denseModel: dense,
          freshModel: () => lenet300100({ generator: new Generator(0) }),
          dir,
          pool,
          arena,
          progress: ctx.progress,
        });
      },
    });
    console.error(
      `block-sweep: ${outcome.ran.length} chains run, ${outcome.skipped.length} already done; points in ${join(out, "points")}`,
    );
  } finally {
    await pool?.close();
  }
});
