// Where one training epoch spends its time: trains a model (LeNet-300-100 unless --model says
// otherwise) on the first --images MNIST images (batch 128, Adam 1e-3) under V8's sampling
// profiler and prints the epoch time (scaled to 60k images) and the functions with the most
// self time on the calling thread.
//   pnpm tsx experiments/bench/profile-epoch.ts --images 20000 --threads 2
//   pnpm tsx experiments/bench/profile-epoch.ts --model lenet5 --images 5000 --kernels wasm
// --arena reuses each step's arrays (fit's arena option), as the sweeps and the epoch bench do.
// --jobs adds the pool's clock per job kind (time in run() and waiting on workers, per step).
// --no-profile times the same loop without the profiler, which inflates ordinary JS (sampled)
// against the asm.js kernels, so compare variants with it before trusting a profile's shares.
// --phases runs fit's step by hand instead (the same batches in a seeded order, forward, loss,
// backward, Adam's step, zeroGrad, in the arena with --arena) and prints the caller's clock per
// phase: where the step's time goes beyond the pool's job kinds.
// No TF.js and no benchmark harness in the process: this is the bare `fit` loop.
import { Option } from "commander";
import { Session } from "node:inspector/promises";
import { loadDataset } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, crossEntropyLoss, fit } from "@tessera/nn";
import type { Dataset, Module } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { createPool, jobKindName, kernelPath, winogradFromEnv } from "@tessera/matrix";
import { BufferArena, Variable, setMatrixPool } from "@tessera/autograd";
import { NORMALIZE } from "../src/data.ts";
import { DEFAULT_CONFIG, MODEL_NAMES, buildModel, type ModelName } from "../src/train-run.ts";
import { createCommand, nonNegativeInt, positiveInt, runMain } from "../src/cli.ts";

await runMain("profile-epoch", async () => {
  const o = createCommand("profile-epoch")
    .option(
      "--images <n>",
      "training images to use (from the start of the set)",
      positiveInt("--images"),
      20000,
    )
    .option("--threads <n>", "threads (caller + workers)", positiveInt("--threads"), 2)
    .option("--top <n>", "functions to list", nonNegativeInt("--top"), 12)
    .addOption(
      new Option("--model <name>", "model to train").choices(MODEL_NAMES).default("lenet300100"),
    )
    .addOption(
      new Option("--kernels <path>", "kernel path (default: TESSERA_KERNELS, else asm)").choices([
        "asm",
        "wasm",
      ]),
    )
    .option("--no-profile", "only time the epoch (no profiler attached)")
    .option(
      "--jobs",
      "also print the pool's time per job kind: runs, ms a step in run() on the calling thread, ms a step of it waiting on workers",
    )
    .option(
      "--arena",
      "run the steps through an autograd BufferArena (fit's arena option: arrays reused from step to step)",
    )
    .option(
      "--phases",
      "run fit's step by hand and print ms a step per phase (batch, forward, loss, backward, optimizer step, zeroGrad)",
    )
    .parse()
    .opts<{
      images: number;
      threads: number;
      top: number;
      model: ModelName;
      kernels?: "asm" | "wasm";
      profile: boolean;
      arena?: boolean;
      jobs?: boolean;
      phases?: boolean;
    }>();

  interface ProfileNode {
    id: number;
    callFrame: { functionName: string; url: string };
  }
  interface Profile {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
  }

  const raw = loadDataset("mnist", { split: "train" });
  const n = Math.min(o.images, raw.count);
  const train = arrayDataset(
    raw.images.subarray(0, n * 784),
    raw.labels.subarray(0, n),
    o.model === "lenet300100" ? [784] : [1, 28, 28],
    NORMALIZE,
  );
  // A 1-thread pool has no workers: it only carries the kernel path to every product.
  const pool =
    o.threads > 1 || o.kernels !== undefined
      ? createPool({ threads: o.threads, kernels: o.kernels })
      : undefined;
  if (pool) await pool.ready();
  setMatrixPool(pool);
  const model = buildModel({ ...DEFAULT_CONFIG, model: o.model, dataset: "mnist" }, [1, 28, 28]);

  const session = new Session();
  if (o.profile) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  const cpu0 = process.cpuUsage();
  const arena = o.arena === true ? new BufferArena() : undefined;
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  const phases = o.phases === true ? handSteps(model, train, optimizer, arena) : undefined;
  const { history } =
    phases === undefined
      ? fit(model, { train, epochs: 1, batchSize: 128, optimizer, seed: 1, progress: false, arena })
      : { history: [{ seconds: phases.seconds }] };
  const cpu = process.cpuUsage(cpu0);
  const profile = o.profile
    ? ((await session.post("Profiler.stop")) as unknown as { profile: Profile }).profile
    : undefined;
  if (o.profile) session.disconnect();
  setMatrixPool(undefined);
  await pool?.close();
  const seconds = history[0]!.seconds;
  // CPU seconds of the whole process (all threads, user + system), the steadier figure on a
  // shared machine; the same scaling to 60k images.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${o.model}, ${n} images, ${o.threads} thread(s), ${pool?.kernels ?? kernelPath()} kernels${winogradFromEnv(process.env) ? "" : " (TESSERA_WINOGRAD=0: no Winograd)"}: ${seconds.toFixed(1)} s, ${((seconds * 60000) / n).toFixed(1)} s per 60k-image epoch, ${((cpuSeconds * 60000) / n).toFixed(1)} CPU s${o.profile ? "" : " (no profiler)"}${o.arena === true ? ", arena" : ""}`,
  );
  if (phases !== undefined) {
    const steps = Math.ceil(n / 128);
    console.log("| phase | ms a step |\n|---|---|");
    for (const [name, ms] of phases.ms) console.log(`| ${name} | ${(ms / steps).toFixed(3)} |`);
  }
  if (o.jobs === true && pool !== undefined) {
    // The pool's own clock (MatrixPool.msByKind), beside the sampling profile: on a two-thread
    // LeNet-300-100 step the profile charged 32% of the caller's samples to waiting, this clock
    // (without the profiler) ~0.3 ms of a ~6-ms step.
    const steps = Math.ceil(n / 128);
    console.log(
      "| job kind | runs | ms a step in run() | of it waiting on workers |\n|---|---|---|---|",
    );
    for (const [kind, t] of [...pool.msByKind].sort((a, b) => b[1].run - a[1].run))
      console.log(
        `| ${jobKindName(kind)} | ${pool.jobsByKind.get(kind) ?? 0} | ${(t.run / steps).toFixed(3)} | ${(t.waiting / steps).toFixed(3)} |`,
      );
  }
  if (profile === undefined) process.exit(0);

  // Self time per function: each sample is charged to the node it landed in.
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)!.callFrame;
    // Package and file ("matrix/pool.ts"): several packages have a pool.ts or an index.ts.
    const parts = frame.url.split("/");
    const pkg = parts.at(-3) === "src" ? parts.at(-4) : parts.at(-3);
    const file = frame.url ? `${pkg}/${parts.at(-1)}` : "";
    const name = `${frame.functionName || "(anonymous)"}${file ? ` (${file})` : ""}`;
    const dt = profile.timeDeltas[i]!;
    self.set(name, (self.get(name) ?? 0) + dt);
    total += dt;
  });
  console.log("| function | self time | share |\n|---|---|---|");
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, o.top))
    console.log(`| ${name} | ${(us / 1e6).toFixed(2)} s | ${((100 * us) / total).toFixed(1)}% |`);
});

/**
 * One epoch of fit's step by hand (batch 128, the order a seeded permutation, no progress),
 * with the calling thread's clock read between the phases.
 */
function handSteps(
  model: Module,
  train: Dataset,
  optimizer: Adam,
  arena: BufferArena | undefined,
): { seconds: number; ms: Map<string, number> } {
  const names = ["batch", "forward", "loss", "backward", "optimizer step", "zeroGrad"] as const;
  const ms = new Map<string, number>(names.map((p) => [p, 0]));
  const order = new Generator(1).permutation(train.count);
  const t0 = performance.now();
  for (let start = 0; start < train.count; start += 128) {
    let t = performance.now();
    const lap = (phase: (typeof names)[number]) => {
      const now = performance.now();
      ms.set(phase, ms.get(phase)! + now - t);
      t = now;
    };
    const batch = train.getBatch(order.subarray(start, Math.min(start + 128, train.count)));
    lap("batch");
    const step = () => {
      const logits = model.forward(new Variable(batch.x));
      lap("forward");
      const loss = crossEntropyLoss(logits, batch.y);
      loss.data.item();
      lap("loss");
      loss.backward();
      lap("backward");
      optimizer.step();
      lap("optimizer step");
      model.zeroGrad();
      lap("zeroGrad");
      return 0;
    };
    if (arena === undefined) step();
    else arena.step(step);
  }
  return { seconds: (performance.now() - t0) / 1000, ms };
}
