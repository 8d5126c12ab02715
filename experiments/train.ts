// Trains one of the reference models on a dataset, resumably.
//   pnpm train --model lenet300100 --dataset mnist --epochs 10
// Re-running the same command continues from the last finished epoch (results/ is kept).
import { Command, Option } from "commander";
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { setMatrixPool } from "@tessera/autograd";
import { createPool } from "@tessera/matrix";
import { loadSplitsAsync } from "./src/data.ts";
import {
  DEFAULT_CONFIG,
  MODEL_NAMES,
  OPTIMIZER_NAMES,
  SCHEDULE_NAMES,
  runTraining,
  type TrainConfig,
} from "./src/train-run.ts";

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got "${v}"`);
  return n;
};

const program = new Command()
  .name("train")
  .description("Train a reference model; re-running the same command resumes the run.")
  .addOption(new Option("--model <name>", "model").choices(MODEL_NAMES).default("lenet300100"))
  .addOption(new Option("--dataset <name>", "dataset").choices(DATASET_NAMES).default("mnist"))
  .option("--epochs <n>", "epochs", num, DEFAULT_CONFIG.epochs)
  .option("--batch-size <n>", "mini-batch size", num, DEFAULT_CONFIG.batchSize)
  .addOption(
    new Option("--optimizer <name>", "optimizer")
      .choices(OPTIMIZER_NAMES)
      .default(DEFAULT_CONFIG.optimizer),
  )
  .option("--lr <x>", "learning rate", num, DEFAULT_CONFIG.lr)
  .addOption(
    new Option("--schedule <name>", "learning-rate schedule")
      .choices(SCHEDULE_NAMES)
      .default(DEFAULT_CONFIG.schedule),
  )
  .option("--momentum <x>", "SGD momentum", num, DEFAULT_CONFIG.momentum)
  .option("--weight-decay <x>", "weight decay", num, DEFAULT_CONFIG.weightDecay)
  .option("--seed <n>", "seed for initialisation and shuffling", num, DEFAULT_CONFIG.seed)
  .option("--data-dir <dir>", "directory holding the dataset files (default: search)")
  .option(
    "--no-fetch",
    "fail instead of fetching a missing dataset from the offline sources (pnpm datasets:fetch)",
  )
  .option("--threads <n>", "threads for matrix products (results do not depend on it)", num, 2)
  .option("--out <dir>", "run directory (default: results/train/<dataset>-<model>-s<seed>)")
  .parse();

const o = program.opts<{
  model: TrainConfig["model"];
  dataset: DatasetName;
  epochs: number;
  batchSize: number;
  optimizer: TrainConfig["optimizer"];
  lr: number;
  schedule: TrainConfig["schedule"];
  momentum: number;
  weightDecay: number;
  seed: number;
  dataDir?: string;
  fetch: boolean;
  out?: string;
  threads: number;
}>();
if (!Number.isSafeInteger(o.threads) || o.threads < 1)
  throw new RangeError(`--threads must be a positive integer, got ${o.threads}`);

const config: TrainConfig = {
  model: o.model,
  dataset: o.dataset,
  epochs: o.epochs,
  batchSize: o.batchSize,
  optimizer: o.optimizer,
  lr: o.lr,
  schedule: o.schedule,
  momentum: o.momentum,
  weightDecay: o.weightDecay,
  seed: o.seed,
};
const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
const dir = o.out ?? join(root, "results", "train", `${o.dataset}-${o.model}-s${o.seed}`);
// A dataset found nowhere is fetched into datasets/ first (offline sources only), so the
// recorded commands work on a fresh checkout.
const { train, test } = await loadSplitsAsync(o.dataset, { dir: o.dataDir, fetch: o.fetch });
console.error(`training ${o.model} on ${o.dataset} (${train.count} / ${test.count}) -> ${dir}`);
const pool = o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
setMatrixPool(pool);
const r = runTraining({ config, train, test, dir, progress: true });
setMatrixPool(undefined);
await pool?.close();
if (r.resumedFrom > 0) console.error(`resumed after epoch ${r.resumedFrom}`);
const last = r.history[r.history.length - 1];
console.log(
  `${o.model} on ${o.dataset}: ${r.history.length} epochs, final test accuracy ` +
    `${last?.testAccuracy !== undefined ? (100 * last.testAccuracy).toFixed(2) + "%" : "n/a"}`,
);
