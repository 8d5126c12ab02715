// Trains one of the reference models on a dataset, resumably.
//   pnpm train --model lenet300100 --dataset mnist --epochs 10
// Re-running the same command continues from the last finished epoch (results/ is kept).
// One process per run directory: a second `pnpm train` on the same --out refuses (docs/runs.md).
import { Option } from "commander";
import { existsSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool } from "@tessera/matrix";
import {
  createCommand,
  intInRange,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  runMain,
} from "./src/cli.ts";
import { DATASET_INPUT_SHAPES, loadSplitsAsync } from "./src/data.ts";
import { acquireRunLock } from "./src/run-lock.ts";
import {
  DEFAULT_CONFIG,
  MODEL_NAMES,
  OPTIMIZER_NAMES,
  SCHEDULE_NAMES,
  checkModelInput,
  runTraining,
  validateConfig,
  type TrainConfig,
} from "./src/train-run.ts";

const program = createCommand("train")
  .description("Train a reference model; re-running the same command resumes the run.")
  .addOption(new Option("--model <name>", "model").choices(MODEL_NAMES).default("lenet300100"))
  .addOption(new Option("--dataset <name>", "dataset").choices(DATASET_NAMES).default("mnist"))
  .option("--epochs <n>", "epochs", positiveInt("--epochs"), DEFAULT_CONFIG.epochs)
  .option(
    "--batch-size <n>",
    "mini-batch size",
    positiveInt("--batch-size"),
    DEFAULT_CONFIG.batchSize,
  )
  .addOption(
    new Option("--optimizer <name>", "optimizer")
      .choices(OPTIMIZER_NAMES)
      .default(DEFAULT_CONFIG.optimizer),
  )
  .option("--lr <x>", "learning rate", positiveNumber("--lr"), DEFAULT_CONFIG.lr)
  .addOption(
    new Option("--schedule <name>", "learning-rate schedule")
      .choices(SCHEDULE_NAMES)
      .default(DEFAULT_CONFIG.schedule),
  )
  .option(
    "--momentum <x>",
    "SGD momentum",
    nonNegativeNumber("--momentum"),
    DEFAULT_CONFIG.momentum,
  )
  .option(
    "--weight-decay <x>",
    "weight decay",
    nonNegativeNumber("--weight-decay"),
    DEFAULT_CONFIG.weightDecay,
  )
  .option(
    "--seed <n>",
    "seed for initialisation and shuffling",
    nonNegativeInt("--seed"),
    DEFAULT_CONFIG.seed,
  )
  .option(
    "--data-dir <dir>",
    "directory holding the dataset files, the only place searched (default: search datasets/, " +
      "$TESSERA_DATASETS, installed copies)",
  )
  .option(
    "--no-fetch",
    "fail instead of fetching a missing dataset from the offline sources (pnpm datasets:fetch)",
  )
  .option(
    "--threads <n>",
    "threads for matrix products (results do not depend on it)",
    intInRange("--threads", 1, 256),
    2,
  )
  .option("--out <dir>", "run directory (default: results/train/<dataset>-<model>-s<seed>)");

interface Options {
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
}

await runMain("train", async () => {
  program.parse();
  const o = program.opts<Options>();
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
  // The whole configuration is checked before any data is read or any file written.
  validateConfig(config);
  try {
    checkModelInput(config.model, DATASET_INPUT_SHAPES[o.dataset]);
  } catch (e) {
    throw new Error(
      `--model ${o.model} does not fit --dataset ${o.dataset}: ${(e as Error).message}`,
    );
  }
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const dir = o.out ?? join(root, "results", "train", `${o.dataset}-${o.model}-s${o.seed}`);
  // The directory's lock first: a run already going there is refused before data is loaded.
  const existed = existsSync(dir);
  const lock = acquireRunLock(dir, "train");
  // A dataset found nowhere is fetched into datasets/ first (offline sources only), so the
  // recorded commands work on a fresh checkout; an explicit --data-dir is never filled.
  let splits;
  try {
    splits = await loadSplitsAsync(o.dataset, { dir: o.dataDir, fetch: o.fetch });
  } catch (e) {
    // Leave no trace of a run that never started: the lock, and the directory if it is ours.
    lock.release();
    if (!existed) rmdirIfEmpty(dir);
    throw e;
  }
  const { train, test } = splits;
  const from = [...new Set(splits.provenance.train.files.map((f) => dirOf(f.path)))].join(", ");
  console.error(
    `training ${o.model} on ${o.dataset} (${train.count} / ${test.count}, from ${from}) -> ${dir}`,
  );
  const pool = o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  let r;
  try {
    r = runTraining({
      config,
      train,
      test,
      dir,
      data: splits.provenance,
      lock,
      pool,
      progress: true,
    });
  } finally {
    await pool?.close();
    lock.release();
  }
  if (r.removedTemporaries.length > 0)
    console.error(`removed ${r.removedTemporaries.length} temporary file(s) of killed writes`);
  if (r.resumedFrom > 0) console.error(`resumed after epoch ${r.resumedFrom}`);
  const last = r.history[r.history.length - 1];
  const diverged =
    r.divergedAtEpoch === null
      ? ""
      : `; DIVERGED at epoch ${r.divergedAtEpoch} (train loss ${last?.trainLoss.toPrecision(3)}): try a smaller --lr`;
  console.log(
    `${o.model} on ${o.dataset}: ${r.history.length} epochs, final test accuracy ` +
      `${last?.testAccuracy !== undefined ? (100 * last.testAccuracy).toFixed(2) + "%" : "n/a"}` +
      diverged,
  );
});

function rmdirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty (or already gone): leave it
  }
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}
