// Where one LeNet-300-100 training epoch spends its time: trains on the first --images MNIST
// images (batch 128, Adam 1e-3) under V8's sampling profiler and prints the epoch time
// (scaled to 60k images) and the functions with the most self time on the calling thread.
//   pnpm tsx experiments/bench/profile-epoch.ts --images 20000 --threads 2
// No TF.js and no benchmark harness in the process: this is the bare `fit` loop.
import { Command } from "commander";
import { Session } from "node:inspector/promises";
import { loadDataset } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, fit, lenet300100 } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import { setMatrixPool } from "@tessera/autograd";
import { NORMALIZE } from "../src/data.ts";

const o = new Command()
  .option("--images <n>", "training images to use (from the start of the set)", Number, 20000)
  .option("--threads <n>", "threads (caller + workers)", Number, 2)
  .option("--top <n>", "functions to list", Number, 12)
  .parse()
  .opts<{ images: number; threads: number; top: number }>();

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
  [784],
  NORMALIZE,
);
const pool = o.threads > 1 ? createPool({ threads: o.threads }) : undefined;
if (pool) await pool.ready();
setMatrixPool(pool);
const model = lenet300100({ generator: new Generator(1) });

const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.start");
const { history } = fit(model, {
  train,
  epochs: 1,
  batchSize: 128,
  optimizer: new Adam(model.parameters(), { lr: 1e-3 }),
  seed: 1,
  progress: false,
});
const { profile } = (await session.post("Profiler.stop")) as unknown as { profile: Profile };
session.disconnect();
setMatrixPool(undefined);
await pool?.close();

// Self time per function: each sample is charged to the node it landed in.
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame;
  const file = frame.url.split("/").at(-1) ?? "";
  const name = `${frame.functionName || "(anonymous)"}${file ? ` (${file})` : ""}`;
  const dt = profile.timeDeltas[i]!;
  self.set(name, (self.get(name) ?? 0) + dt);
  total += dt;
});
const seconds = history[0]!.seconds;
console.log(
  `${n} images, ${o.threads} thread(s): ${seconds.toFixed(1)} s, ${((seconds * 60000) / n).toFixed(1)} s per 60k-image epoch`,
);
console.log("| function | self time | share |\n|---|---|---|");
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, o.top))
  console.log(`| ${name} | ${(us / 1e6).toFixed(2)} s | ${((100 * us) / total).toFixed(1)}% |`);
