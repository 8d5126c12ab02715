// Times training steps of a KEP sweep model, for the epoch budget in experiments/kep-sweep.ts's
// header: Adam on the first steps·batch training images of a dataset, one thread (no pool),
// on the kernel path TESSERA_KERNELS selects (asm.js when unset), scaled to a 60,000-image
// epoch. The load average is printed beside it: on the shared 2-core machine it matters more
// than anything else.
//
//   nice -n 10 pnpm tsx experiments/kep-pilot.ts --model lenet5 --steps 500
//   TESSERA_KERNELS=wasm nice -n 10 pnpm tsx experiments/kep-pilot.ts --model lenet5 --steps 500
import { cpus, loadavg } from "node:os";
import { DATASET_NAMES, loadDatasetAsync, type DatasetName } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, fit } from "@tessera/nn";
import { choice, createCommand, list, positiveInt, runMain } from "./src/cli.ts";
import { NORMALIZE } from "./src/data.ts";
import { KEP_MODELS, kepModel, type KepArch, type KepModelName } from "./src/kep-run.ts";

const program = createCommand("kep-pilot")
  .description("Seconds per training epoch of a KEP sweep model (one thread), from a few steps")
  .option(
    "--model <name>",
    `model (${KEP_MODELS.join(", ")})`,
    choice("--model", KEP_MODELS),
    "lenet5",
  )
  .option("--dataset <name>", "dataset", choice("--dataset", DATASET_NAMES), "mnist" as DatasetName)
  .option("--steps <n>", "training steps to time", positiveInt("--steps"), 500)
  .option("--batch-size <n>", "batch size", positiveInt("--batch-size"), 128)
  .option(
    "--channels <list>",
    "narrow-cnn: output channels of conv1..conv4",
    list("--channels", positiveInt("--channels")),
    [8, 8, 16, 16],
  )
  .option("--hidden <n>", "narrow-cnn: hidden units", positiveInt("--hidden"), 64)
  .option("--data-dir <dir>", "directory holding the dataset files (default: search)");

await runMain("kep-pilot", async () => {
  program.parse();
  const o = program.opts<{
    model: KepModelName;
    dataset: DatasetName;
    steps: number;
    batchSize: number;
    channels: number[];
    hidden: number;
    dataDir?: string;
  }>();
  if (o.channels.length !== 4)
    throw new Error(`--channels: expected 4 widths (conv1..conv4), got ${o.channels.length}`);
  const arch: KepArch =
    o.model === "lenet5"
      ? { model: "lenet5" }
      : {
          widths: {
            channels: o.channels as [number, number, number, number],
            hidden: o.hidden,
          },
        };
  const raw = await loadDatasetAsync(o.dataset, { split: "train", dir: o.dataDir });
  const count = Math.min(o.steps * o.batchSize, raw.count);
  const px = raw.channels * raw.rows * raw.cols;
  const train = arrayDataset(
    raw.images.subarray(0, count * px),
    raw.labels.subarray(0, count),
    [raw.channels, raw.rows, raw.cols],
    NORMALIZE,
  );
  const model = kepModel(arch, train.inputShape, 1);
  const before = loadavg();
  const c0 = process.cpuUsage();
  const { history } = fit(model, {
    train,
    epochs: 1,
    batchSize: o.batchSize,
    optimizer: new Adam(model.parameters(), { lr: 1e-3 }),
    seed: 1,
  });
  const cpu = process.cpuUsage(c0);
  const after = loadavg();
  const seconds = history[0]!.seconds;
  const steps = Math.ceil(count / o.batchSize);
  const scale = 60_000 / count;
  console.log(
    [
      `kep-pilot: ${o.model} on ${o.dataset}, ${steps} steps of ${o.batchSize} (${count} images), 1 thread, kernels ${process.env.TESSERA_KERNELS ?? "asm (default)"}`,
      `  ${seconds.toFixed(1)} s wall (${((1000 * seconds) / steps).toFixed(1)} ms per step), ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU`,
      `  per 60,000-image epoch: ${(scale * seconds).toFixed(0)} s wall, ${((scale * (cpu.user + cpu.system)) / 1e6).toFixed(0)} s CPU`,
      `  load average (1 min) ${before[0]!.toFixed(2)} before, ${after[0]!.toFixed(2)} after; ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), node ${process.version}`,
    ].join("\n"),
  );
});
