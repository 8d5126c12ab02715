// The speed experiment (issue 11, section 3): for every point of a block sweep, the whole
// pruned LeNet-300-100 timed as dense (masked), BSR and CSR at batch 1 and 128 with 1 and 2
// threads, and a fine-tuning epoch sparse (BsrLinear + Adam) vs dense (masked Linear + Adam).
// Inference is timed twice in the same reps: the models' forward, and each model through an
// inference plan (@tessera/pruning planInference: owned buffers, bias and ReLU fused into one
// pass after each product), on which the issue's inference target is judged.
// All ratios come from one run, variants alternating rep by rep. It is a sweep itself: one
// point per (chain, round), resumable and shardable like the block sweep.
//
//   pnpm speed                                   # results/block-sweep's first seed, magnitude
//   pnpm speed --sweep results/block-sweep --block-sizes 4 --rounds 5,10,16
//   pnpm speed --tiny-chain --rounds 10 --train-steps 50   # no sweep needed (minutes)
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { DATASET_NAMES, findWorkspaceRoot, type DatasetName } from "@tessera/mnist-dataset-loader";
import { createPool, type MatrixPool } from "@tessera/matrix";
import { Adam, fit, lenet300100, type Dataset, type Module } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import {
  choice,
  createCommand,
  list,
  nonNegativeInt,
  positiveInt,
  positiveNumber,
  runMain,
} from "./src/cli.ts";
import { splitsCache, type SplitPair } from "./src/data.ts";
import { acquireRunLock } from "./src/run-lock.ts";
import { addSweepOptions, readPointsDir, resolveSweepCli, runSweep } from "./src/sweep/index.ts";
import { BLOCK_METHODS, runChain, type ChainConfig } from "./src/block-chain.ts";
import {
  machineInfo,
  measureSpeed,
  selectPoints,
  speedKey,
  writeSpeedReport,
  type MachineInfo,
  type SpeedConfig,
  type SpeedPointResult,
  type SpeedResult,
} from "./src/speed.ts";

const program = addSweepOptions(
  createCommand("speed")
    .description(
      "Inference (dense / BSR / CSR) and fine-tuning epoch (dense / BSR) times of every block-sweep point",
    )
    .option("--sweep <dir>", "the block sweep's output directory (default results/block-sweep)")
    .option(
      "--report-only",
      "time nothing: rewrite the tables and charts from the points in --out (e.g. a merged sharded run)",
    )
    .option(
      "--tiny-chain",
      "no sweep needed: first run one quick chain per dataset and block size (dense 1 epoch and 1 fine-tuning epoch per round on 6000 examples) into <out>/tiny-chain, and time its checkpoints",
    )
    .option(
      "--dataset <names>",
      "datasets (default: every one found; mnist with --tiny-chain)",
      list("--dataset", choice("--dataset", DATASET_NAMES)),
    )
    .option(
      "--block-sizes <list>",
      "tile sizes (default: every one found; 4 with --tiny-chain)",
      list("--block-sizes", positiveInt("--block-sizes")),
    )
    .option(
      "--methods <list>",
      "chain methods",
      list("--methods", choice("--methods", BLOCK_METHODS)),
      ["magnitude"],
    )
    .option(
      "--seeds <list>",
      "chain seeds (default: the sweep's first seed)",
      list("--seeds", positiveInt("--seeds")),
    )
    .option(
      "--rounds <list>",
      "rounds to time (default: every round checkpoint found; 1..10 with --tiny-chain)",
      list("--rounds", positiveInt("--rounds")),
    )
    .option(
      "--batches <list>",
      "inference batch sizes",
      list("--batches", positiveInt("--batches")),
      [1, 128],
    )
    .option(
      "--threads <list>",
      "inference thread counts (one pool each, created once)",
      list("--threads", positiveInt("--threads")),
      [1, 2],
    )
    .option("--reps <n>", "timed inference repetitions per variant", positiveInt("--reps"), 9)
    .option(
      "--examples-per-rep <n>",
      "examples per inference repetition (batch 1: that many forwards)",
      positiveInt("--examples-per-rep"),
      256,
    )
    .option(
      "--warmup <n>",
      "untimed forwards of each variant before the timed reps (JIT tier-up out of the reps)",
      positiveInt("--warmup"),
      20,
    )
    .option(
      "--train-steps <n>",
      "training steps timed per repetition; 0 = a full epoch",
      nonNegativeInt("--train-steps"),
      0,
    )
    .option("--train-reps <n>", "timed training repetitions", positiveInt("--train-reps"), 3)
    .option(
      "--train-threads <n>",
      "threads for the training epoch",
      positiveInt("--train-threads"),
      2,
    )
    .option("--train-batch <n>", "fine-tuning batch size", positiveInt("--train-batch"), 128)
    .option("--lr <x>", "fine-tuning Adam learning rate", positiveNumber("--lr"), 2e-4)
    .option(
      "--data-dir <dir>",
      "directory holding the dataset files (default: search, fetching if missing)",
    ),
);

interface Options {
  sweep?: string;
  tinyChain?: boolean;
  reportOnly?: boolean;
  dataset?: DatasetName[];
  blockSizes?: number[];
  methods: string[];
  seeds?: number[];
  rounds?: number[];
  batches: number[];
  threads: number[];
  reps: number;
  examplesPerRep: number;
  warmup: number;
  trainSteps: number;
  trainReps: number;
  trainThreads: number;
  trainBatch: number;
  lr: number;
  dataDir?: string;
  out?: string;
  shard?: string;
  shards?: number;
}

/** The first `n` examples of a dataset (for the tiny chain's quick training). */
function firstExamples(data: Dataset, n: number): Dataset {
  return { count: Math.min(n, data.count), inputShape: data.inputShape, getBatch: data.getBatch };
}

/**
 * One quick magnitude chain per dataset and block size into `<dir>/chains/<key>/`, for timing
 * without a finished sweep. Its accuracies mean little (6000 examples, one epoch per stage);
 * its densities are the paper's schedule, which is what the timing depends on.
 */
async function tinyChains(
  dir: string,
  o: Options,
  load: (d: DatasetName) => Promise<SplitPair>,
  pool: MatrixPool | undefined,
): Promise<void> {
  const lock = acquireRunLock(dir, "speed --tiny-chain");
  try {
    const rounds = Math.max(...(o.rounds ?? [10]));
    for (const dataset of o.dataset ?? ["mnist"])
      for (const blockSize of o.blockSizes ?? [4]) {
        const { train, test } = await load(dataset);
        const config: ChainConfig = {
          dataset,
          blockSize,
          method: "magnitude",
          seed: 1,
          rounds,
          rates: { hidden: 0.2, output: 0.1 },
          fineTune: { epochs: 1, lr: 2e-4, schedule: "cosine", batchSize: 128 },
        };
        const key = `${dataset}-b${blockSize}-magnitude-s1`;
        const small = firstExamples(train, 6000);
        runChain(config, {
          train: small,
          test: firstExamples(test, 1000),
          denseModel: () => {
            const m = lenet300100({ generator: new Generator(1) });
            console.error(`speed: tiny chain ${key}: dense model, 1 epoch on 6000 examples`);
            fit(m, {
              train: small,
              epochs: 1,
              batchSize: 128,
              optimizer: new Adam(m.parameters(), { lr: 1e-3 }),
              seed: 1,
              pool,
            });
            return m;
          },
          freshModel: () => lenet300100({ generator: new Generator(0) }),
          dir: join(dir, "chains", key),
          pool,
          progress: (text) => console.error(`speed: tiny chain ${key}: ${text}`),
        });
      }
  } finally {
    lock.release();
  }
}

await runMain("speed", async () => {
  program.parse();
  const o = program.opts<Options>();
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const { out, shard } = resolveSweepCli(o, join(root, "results", "speed"));
  const machine = machineInfo();
  const command = `pnpm speed ${process.argv.slice(2).join(" ")}`.trim();
  if (o.reportOnly === true) {
    const { points, bad } = readPointsDir(out);
    if (bad.length > 0)
      throw new Error(`unreadable points: ${bad.map((b) => `${b.path} (${b.reason})`).join("; ")}`);
    if (points.length === 0) throw new Error(`no points in ${join(out, "points")}`);
    // The machine is the one the points were timed on, as recorded then.
    const recorded = join(out, "machine.json");
    const report = await writeSpeedReport(
      out,
      points as unknown as SpeedPointResult[],
      existsSync(recorded)
        ? (JSON.parse(readFileSync(recorded, "utf8")) as MachineInfo)
        : { ...machine, loadStart: [] }, // today's load says nothing of the timing's
      command,
    );
    console.log(report.markdown);
    return;
  }
  const load = splitsCache({ dir: o.dataDir });
  // One pool per thread count, created once and reused by every point.
  const pools = new Map<number, MatrixPool | undefined>();
  for (const t of new Set([...o.threads, o.trainThreads]))
    pools.set(t, t > 1 ? createPool({ threads: t }) : undefined);
  try {
    let sweepDir = o.sweep ?? join(root, "results", "block-sweep");
    if (o.tinyChain === true) {
      if (o.sweep !== undefined) throw new Error("--tiny-chain and --sweep exclude each other");
      sweepDir = join(out, "tiny-chain");
      await tinyChains(sweepDir, o, load, pools.get(o.trainThreads));
    }
    const points = selectPoints(join(sweepDir, "chains"), {
      datasets: o.dataset,
      blockSizes: o.blockSizes,
      methods: o.methods,
      seeds: o.seeds,
      rounds: o.rounds,
    });
    const configs: SpeedConfig[] = points.map((p) => ({
      dataset: p.dataset,
      blockSize: p.blockSize,
      method: p.method,
      seed: p.seed,
      round: p.round,
      chain: p.chain,
      inference: {
        batches: o.batches,
        threads: o.threads,
        reps: o.reps,
        examplesPerRep: o.examplesPerRep,
        warmup: o.warmup,
      },
      training: {
        batchSize: o.trainBatch,
        steps: o.trainSteps,
        reps: o.trainReps,
        threads: o.trainThreads,
        lr: o.lr,
      },
    }));
    const checkpoint = new Map(points.map((p) => [speedKey(p), p.checkpoint]));
    console.error(
      `speed: ${configs.length} points from ${sweepDir} on ${machine.cpu} (${machine.cores} cores), load ${machine.loadStart.join(" ")}`,
    );
    const outcome = await runSweep<SpeedConfig, SpeedResult>({
      dir: out,
      name: "speed",
      configs,
      key: speedKey,
      shard,
      run: async (c, ctx) => {
        const { train } = await load(c.dataset as DatasetName);
        return measureSpeed(c, {
          checkpoint: checkpoint.get(speedKey(c))!,
          freshModel: (): Module => lenet300100({ generator: new Generator(0) }),
          train,
          pools,
          progress: ctx.progress,
        });
      },
    });
    machine.loadEnd = loadavg().map((x) => Math.round(x * 100) / 100);
    machine.command = command;
    const report = await writeSpeedReport(out, outcome.points, machine, command);
    console.log(report.markdown);
    console.error(
      `speed: ${outcome.ran.length} points timed, ${outcome.skipped.length} already done; wrote ${report.files.join(", ")}`,
    );
  } finally {
    for (const p of pools.values()) await p?.close();
  }
});
