// The paper's CIFAR-10 experiment in a CPU-sized form (experiments/src/cifar-head.ts): a small
// CNN trunk and the paper's 512-300-10 head trained densely, then the trunk frozen and the
// head block-pruned (4x4 tiles, the paper's per-round rule: 16 rounds leave ~3% of the head)
// and run as BSR. Needs the CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin from
// cifar-10-binary.tar.gz) in datasets/cifar-10/ (or --data-dir). Resumable: run the same
// command again after a kill.
//
//   pnpm cifar-head                              # defaults: 4 dense epochs, 16 rounds
//   pnpm cifar-head --one-shot --target-density 0.03 --ft-epochs 5
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import {
  DatasetNotFoundError,
  findWorkspaceRoot,
  writeFileAtomic,
} from "@tessera/mnist-dataset-loader";
import { createPool } from "@tessera/matrix";
import {
  createCommand,
  fraction,
  list,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  runMain,
} from "./src/cli.ts";
import { loadSplitsAsync, type SplitPair } from "./src/data.ts";
import { cifarHeadTable, runCifarHead, type CifarHeadConfig } from "./src/cifar-head.ts";

const program = createCommand("cifar-head")
  .description(
    "CIFAR-10: small CNN trunk + 512-300-10 head, trunk frozen, head block-pruned to ~3% and run as BSR",
  )
  .option(
    "--widths <list>",
    "trunk conv widths (three stages; the last x 16 = head input)",
    list("--widths", positiveInt("--widths")),
    [16, 32, 32],
  )
  .option("--hidden <n>", "head hidden width", positiveInt("--hidden"), 300)
  .option("--epochs <n>", "dense training epochs (trunk + head)", positiveInt("--epochs"), 4)
  .option("--lr <x>", "dense Adam learning rate", positiveNumber("--lr"), 1e-3)
  .option("--batch <n>", "batch size", positiveInt("--batch"), 128)
  .option("--block-size <b>", "head tile size b (b x b)", positiveInt("--block-size"), 4)
  .option("--rounds <n>", "pruning rounds (the paper's 16)", positiveInt("--rounds"), 16)
  .option("--rate-hidden <x>", "fc1 tiles removed per round", fraction("--rate-hidden"), 0.2)
  .option("--rate-output <x>", "fc2 tiles removed per round", fraction("--rate-output"), 0.1)
  .option("--one-shot", "prune the head to --target-density at once instead of in rounds")
  .option(
    "--target-density <x>",
    "one-shot density per head layer",
    fraction("--target-density"),
    0.03,
  )
  .option("--ft-epochs <n>", "head fine-tuning epochs per round", positiveInt("--ft-epochs"), 1)
  .option("--ft-lr <x>", "head fine-tuning Adam learning rate", positiveNumber("--ft-lr"), 2e-4)
  .option(
    "--train-limit <n>",
    "use only the first n training images (0 = all; stated in the results)",
    nonNegativeInt("--train-limit"),
    0,
  )
  .option("--seed <n>", "seed (weights, shuffling)", nonNegativeInt("--seed"), 1)
  .option("--threads <n>", "threads for matrix products", positiveInt("--threads"), 2)
  .option("--data-dir <dir>", "directory holding the CIFAR-10 binary batches")
  .option("--out <dir>", "run directory (default results/cifar-head)");

interface Options {
  widths: number[];
  hidden: number;
  epochs: number;
  lr: number;
  batch: number;
  blockSize: number;
  rounds: number;
  rateHidden: number;
  rateOutput: number;
  oneShot?: boolean;
  targetDensity: number;
  ftEpochs: number;
  ftLr: number;
  trainLimit: number;
  seed: number;
  threads: number;
  dataDir?: string;
  out?: string;
}

await runMain("cifar-head", async () => {
  program.parse();
  const o = program.opts<Options>();
  if (o.widths.length !== 3)
    throw new Error(`--widths: expected three conv widths, got ${o.widths.join(",")}`);
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const out = o.out ?? join(root, "results", "cifar-head");
  let splits: SplitPair;
  try {
    splits = await loadSplitsAsync("cifar-10", { dir: o.dataDir });
  } catch (e) {
    if (!(e instanceof DatasetNotFoundError)) throw e;
    throw new Error(
      `CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin) not found; looked in: ${e.tried.join("; ")}. ` +
        `Put them in datasets/cifar-10/ or pass --data-dir`,
    );
  }
  const config: CifarHeadConfig = {
    widths: [o.widths[0]!, o.widths[1]!, o.widths[2]!],
    hidden: o.hidden,
    seed: o.seed,
    trainLimit: o.trainLimit,
    dense: { epochs: o.epochs, lr: o.lr, batchSize: o.batch },
    prune: {
      blockSize: o.blockSize,
      mode: o.oneShot === true ? "one-shot" : "rounds",
      rounds: o.rounds,
      rates: { hidden: o.rateHidden, output: o.rateOutput },
      targetDensity: o.targetDensity,
      ftEpochs: o.ftEpochs,
      ftLr: o.ftLr,
      batchSize: o.batch,
    },
  };
  mkdirSync(out, { recursive: true });
  const pool = o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  try {
    const t0 = performance.now();
    const result = runCifarHead(config, {
      train: splits.train,
      test: splits.test,
      dir: out,
      pool,
      progress: (text) => console.error(`cifar-head: ${text}`),
    });
    const md =
      `Command: \`pnpm cifar-head ${process.argv.slice(2).join(" ")}\`\n\n` +
      cifarHeadTable(config, result);
    writeFileAtomic(join(out, "summary.md"), new TextEncoder().encode(md));
    console.log(md);
    console.error(
      `cifar-head: done in ${((performance.now() - t0) / 1000).toFixed(0)} s; results in ${out}`,
    );
  } finally {
    await pool?.close();
  }
});
