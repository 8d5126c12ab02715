// The main job (`pnpm start`): train LeNet-300-100 on MNIST briefly, block-prune it with 4x4
// tiles over the paper's first 10 rounds (to ~10.8% of the weights), convert it to Block
// Sparse Row layers, and print one table: accuracy dense and pruned, density, storage and the
// BSR-vs-dense inference time. Everything lands in results/start/ (checkpoints, results.json,
// summary.md, a plot); a re-run resumes where an interrupted one stopped.
import { join } from "node:path";
import { mkdirSync } from "node:fs";
import { findWorkspaceRoot, writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { createPool } from "@tessera/matrix";
import { evaluate, lenet300100 } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { loadPruned, planInference, savePruned, saveBsrModel, toBsr } from "@tessera/pruning";
import { createCommand, positiveInt, runMain } from "./src/cli.ts";
import { loadSplitsAsync } from "./src/data.ts";
import { DEFAULT_CONFIG, runTraining, type TrainConfig } from "./src/train-run.ts";
import {
  LENET300100_LAYERS,
  chainCheckpoint,
  runChain,
  type ChainConfig,
} from "./src/block-chain.ts";
import { PlannedForward, firstBatch, timeForward } from "./src/timing.ts";
import { asElements } from "./src/speed.ts";
import { accuracyVsDensityChart, renderChart } from "./src/plot/index.ts";
import { markdownTable } from "./src/sweep/index.ts";

const program = createCommand("start")
  .description(
    "Train LeNet-300-100 on MNIST, block-prune it (4x4) to ~10% density, run it as BSR, and summarise",
  )
  .option("--epochs <n>", "dense training epochs", positiveInt("--epochs"), 4)
  .option(
    "--rounds <n>",
    "pruning rounds (20% of hidden tiles, 10% of output tiles each)",
    positiveInt("--rounds"),
    10,
  )
  .option("--ft-epochs <n>", "fine-tuning epochs per round", positiveInt("--ft-epochs"), 2)
  .option("--block-size <b>", "tile size b (b x b)", positiveInt("--block-size"), 4)
  .option("--threads <n>", "threads for matrix products", positiveInt("--threads"), 2)
  .option(
    "--data-dir <dir>",
    "directory holding the MNIST files (default: search, fetching if missing)",
  )
  .option("--out <dir>", "output directory (default results/start)");

interface Options {
  epochs: number;
  rounds: number;
  ftEpochs: number;
  blockSize: number;
  threads: number;
  dataDir?: string;
  out?: string;
}

const pct = (x: number, digits = 2) => `${(100 * x).toFixed(digits)}%`;
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const count = (n: number) => n.toLocaleString("en-US");
/** Weights of the three pruned matrices (biases are not pruned). */
const prunableWeights = LENET300100_LAYERS.reduce((s, l) => s + l.shape[0] * l.shape[1], 0);

await runMain("start", async () => {
  program.parse();
  const o = program.opts<Options>();
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const out = o.out ?? join(root, "results", "start");
  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const { train, test } = await loadSplitsAsync("mnist", { dir: o.dataDir });
  const pool = o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
  try {
    const dense: TrainConfig = {
      model: "lenet300100",
      dataset: "mnist",
      ...DEFAULT_CONFIG,
      epochs: o.epochs,
      seed: 1,
    };
    const chain: ChainConfig = {
      dataset: "mnist",
      blockSize: o.blockSize,
      method: "magnitude",
      seed: 1,
      rounds: o.rounds,
      rates: { hidden: 0.2, output: 0.1 },
      fineTune: { epochs: o.ftEpochs, lr: 1e-3, schedule: "cosine", batchSize: 128 },
    };
    console.error(`start: 1/4 dense LeNet-300-100, ${o.epochs} epochs (-> ${join(out, "dense")})`);
    const denseModel = runTraining({
      config: dense,
      train,
      test,
      dir: join(out, "dense"),
      pool,
      progress: true,
    }).model;
    console.error(`start: 2/4 ${o.rounds} rounds of ${o.blockSize}x${o.blockSize} block pruning`);
    const chainDir = join(out, "chain");
    const result = runChain(chain, {
      train,
      test,
      denseModel: () => denseModel,
      freshModel: () => lenet300100({ generator: new Generator(0) }),
      dir: chainDir,
      pool,
      progress: (text) => console.error(`  ${text}`),
    });
    const last = result.rounds[result.rounds.length - 1]!;

    console.error(`start: 3/4 converting to BSR and timing inference`);
    const pruned = lenet300100({ generator: new Generator(0) });
    const { state } = loadPruned(chainCheckpoint(chainDir, last.round), pruned);
    if (state === null) throw new Error(`the round ${last.round} checkpoint holds no masks`);
    savePruned(join(out, "pruned.safetensors"), pruned, state);
    const bsr = lenet300100({ generator: new Generator(0) });
    loadPruned(chainCheckpoint(chainDir, last.round), bsr);
    const converted = toBsr(bsr, state);
    saveBsrModel(join(out, "pruned-bsr.safetensors"), bsr);
    const csr = lenet300100({ generator: new Generator(0) });
    loadPruned(chainCheckpoint(chainDir, last.round), csr);
    toBsr(csr, asElements(state));
    const bsrAccuracy = evaluate(bsr, test, { batchSize: 1000, pool }).accuracy;
    const models = [
      { name: "dense", model: pruned },
      { name: "bsr", model: bsr },
      { name: "csr", model: csr },
    ];
    // The modules' forward (a fresh array for every product, bias and ReLU, as training runs
    // them) and each model compiled into an inference plan (@tessera/pruning planInference:
    // buffers reused, bias and ReLU in the sparse products' epilogue, the BSR layers as one job
    // on a pool), timed in the same reps.
    const timing = [128, 1].map((batch) => ({
      batch,
      seconds: timeForward(
        [
          ...models,
          ...models.slice(0, 2).map(({ name, model }) => ({
            name: `${name} plan`,
            model: new PlannedForward(planInference(model, { batch, pool })),
          })),
        ],
        firstBatch(test, batch),
        { pool, reps: 15, callsPerRep: batch === 1 ? 50 : 2 },
      ),
    }));

    console.error(`start: 4/4 writing ${out}`);
    const rows = [{ round: 0, density: 1, accuracy: result.denseAccuracy }].concat(
      result.rounds.map((r) => ({
        round: r.round,
        density: r.density,
        accuracy: r.accuracyFineTuned,
      })),
    );
    await renderChart(
      accuracyVsDensityChart(
        rows.map((r) => ({
          blockSize: o.blockSize,
          method: "magnitude",
          seed: 1,
          density: r.density,
          accuracy: r.accuracy,
        })),
        {
          title: `LeNet-300-100 on MNIST, ${o.blockSize}x${o.blockSize} block pruning (pnpm start)`,
        },
      ),
      join(out, "accuracy-vs-density.svg"),
    );
    const summary = {
      command: `pnpm start ${process.argv.slice(2).join(" ")}`.trim(),
      dense: { config: dense, testAccuracy: result.denseAccuracy },
      chain: { config: chain, rounds: result.rounds },
      pruned: {
        density: last.density,
        keptWeights: last.keptWeights,
        testAccuracy: last.accuracyFineTuned,
        bsrTestAccuracy: bsrAccuracy,
        bytes: last.bytes,
        layers: converted,
      },
      inference: timing.map((t) => ({
        batch: t.batch,
        threads: o.threads,
        seconds: Object.fromEntries(t.seconds),
      })),
      totalSeconds: (performance.now() - t0) / 1000,
    };
    writeFileAtomic(
      join(out, "results.json"),
      new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"),
    );
    const table: { what: string; value: string }[] = [
      { what: `dense test accuracy (${o.epochs} epochs)`, value: pct(result.denseAccuracy) },
      {
        what: `pruned test accuracy (round ${last.round}, after ${last.round * o.ftEpochs} fine-tuning epochs)`,
        value: pct(last.accuracyFineTuned),
      },
      { what: "same, run as BSR", value: pct(bsrAccuracy) },
      {
        what: "weight density",
        value: `${pct(last.density, 1)} (${count(last.keptWeights)} of ${count(prunableWeights)} weights)`,
      },
      {
        what: "storage dense / CSR / BSR",
        value: `${kb(last.bytes.dense)} / ${kb(last.bytes.csr)} / ${kb(last.bytes.bsr)}`,
      },
      ...timing.flatMap((t) => {
        const ms = (name: string) => (t.seconds.get(name)! * 1e3).toFixed(3);
        const x = (a: string, b: string) => (t.seconds.get(a)! / t.seconds.get(b)!).toFixed(2);
        const where = `batch ${t.batch}, ${o.threads} thread${o.threads > 1 ? "s" : ""}`;
        return [
          {
            what: `inference, ${where}`,
            value: `dense ${ms("dense")} ms, BSR ${ms("bsr")} ms (${x("dense", "bsr")}x), CSR ${ms("csr")} ms (${x("dense", "csr")}x)`,
          },
          {
            what: `inference plans, ${where}`,
            value: `dense ${ms("dense plan")} ms, BSR ${ms("bsr plan")} ms (${x("dense plan", "bsr plan")}x)`,
          },
        ];
      }),
    ];
    const md = markdownTable(table, [
      { header: "", value: (r) => r.what },
      { header: "LeNet-300-100, MNIST", value: (r) => r.value },
    ]);
    writeFileAtomic(join(out, "summary.md"), new TextEncoder().encode(md));
    console.log(md);
    console.log(
      `\nsaved in ${out}: pruned.safetensors (torch prune naming), pruned-bsr.safetensors (scipy BSR arrays), results.json, accuracy-vs-density.svg` +
        ` (${summary.totalSeconds.toFixed(0)} s)`,
    );
  } finally {
    await pool?.close();
  }
});
