// One LeNet-300-100 (or, with --model lenet5, LeNet-5) training epoch on MNIST (60k images,
// batch 128, Adam 1e-3; --images N times the first N images and scales to 60k), timed side by
// side in one run: Tessera's fit loop (1 and 2 threads, on each kernel path: asm.js and
// WebAssembly SIMD), TensorFlow.js's pure-JS `cpu` backend and, when installed, PyTorch
// (/usr/bin/python3 with python3-torch; 1 and 2 threads) with the same model, loss, optimizer
// and batch.
//   pnpm tsx experiments/bench/epoch-throughput.ts [--kernels asm,wasm] [--tfjs-steps N] [--no-tfjs] [--no-torch]
//   pnpm tsx experiments/bench/epoch-throughput.ts --model lenet5 --images 10000 --no-tfjs
// (TF.js runs LeNet-300-100 only.)
// TF.js is slow (~2 min per epoch); --tfjs-steps times that many steps and scales the time to
// a full epoch (stated in the table). PyTorch is skipped with a note where it is not installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadDataset } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, fit, lenet300100, lenet5 } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import type { KernelPath } from "@tessera/matrix";
import { setMatrixPool } from "@tessera/autograd";
import { NORMALIZE } from "../src/data.ts";
import { createCommand, positiveInt, runMain } from "../src/cli.ts";

await runMain("epoch-throughput", async () => {
  const o = createCommand("epoch-throughput")
    .option(
      "--tfjs-steps <n>",
      "TF.js steps to time (default: a full epoch)",
      positiveInt("--tfjs-steps"),
    )
    .option(
      "--epochs <n>",
      "Tessera epochs to time per thread count (best is kept)",
      positiveInt("--epochs"),
      1,
    )
    .option("--kernels <list>", "Tessera kernel paths to time, comma-separated", "asm,wasm")
    .option("--no-tfjs", "do not time TensorFlow.js")
    .option("--no-torch", "do not time PyTorch")
    .option("--model <name>", "lenet300100 or lenet5", "lenet300100")
    .option(
      "--images <n>",
      "train on the first n images, times scaled to 60k",
      positiveInt("--images"),
    )
    .parse()
    .opts<{
      tfjsSteps?: number;
      epochs: number;
      kernels: string;
      tfjs: boolean;
      torch: boolean;
      model: string;
      images?: number;
    }>();
  if (o.model !== "lenet300100" && o.model !== "lenet5")
    throw new Error(`epoch-throughput: --model takes lenet300100 or lenet5, got "${o.model}"`);
  const kernelPaths = o.kernels.split(",").map((k) => k.trim());
  for (const k of kernelPaths)
    if (k !== "asm" && k !== "wasm")
      throw new Error(`epoch-throughput: --kernels takes asm and/or wasm, got "${k}"`);

  const BATCH = 128;
  const raw = loadDataset("mnist", { split: "train" });
  const steps = Math.ceil(raw.count / BATCH);
  const count = Math.min(o.images ?? raw.count, raw.count);
  if (!(count >= BATCH))
    throw new Error(
      `epoch-throughput: --images must be at least ${BATCH}, got ${String(o.images)}`,
    );
  /** Seconds for `count` images -> seconds per 60k-image epoch. */
  const scale = raw.count / count;

  async function tessera(threads: number, kernels: KernelPath): Promise<number> {
    // A 1-thread pool has no workers: it only carries the kernel path to every product.
    const pool = createPool({ threads, kernels });
    await pool.ready();
    setMatrixPool(pool);
    try {
      const train =
        o.model === "lenet5"
          ? arrayDataset(
              raw.images.subarray(0, count * 784),
              raw.labels.subarray(0, count),
              [1, 28, 28],
              NORMALIZE,
            )
          : arrayDataset(
              raw.images.subarray(0, count * 784),
              raw.labels.subarray(0, count),
              [784],
              NORMALIZE,
            );
      const model =
        o.model === "lenet5"
          ? lenet5({ generator: new Generator(1) })
          : lenet300100({ generator: new Generator(1) });
      const { history } = fit(model, {
        train,
        epochs: o.epochs,
        batchSize: BATCH,
        optimizer: new Adam(model.parameters(), { lr: 1e-3 }),
        seed: 1,
      });
      return scale * Math.min(...history.map((h) => h.seconds));
    } finally {
      setMatrixPool(undefined);
      await pool.close();
    }
  }

  async function tfjs(): Promise<{ seconds: number; timed: number }> {
    // Imported only now: merely loading TF.js into the process slowed the Tessera epochs that
    // followed by ~27% (29.4 s -> 37.5 s per 60k on one thread, two paired ad-hoc runs on 20k
    // images; see docs/architecture.md), so Tessera is timed first with TF.js not yet loaded.
    const { createTfjsLenet300100 } = await import("../src/tfjs-lenet300100.ts");
    const trainer = await createTfjsLenet300100(1e-3, 1);
    const timed = Math.min(o.tfjsSteps ?? steps, steps);
    const x = new Float32Array(BATCH * 784);
    const y = new Uint8Array(BATCH);
    const a = 1 / 255 / NORMALIZE.std;
    const b = -NORMALIZE.mean / NORMALIZE.std;
    const batch = (s: number) => {
      const start = (s * BATCH) % (raw.count - BATCH);
      for (let i = 0; i < BATCH * 784; i++) x[i] = raw.images[start * 784 + i]! * a + b;
      y.set(raw.labels.subarray(start, start + BATCH));
    };
    batch(0);
    trainer.step(x, y, BATCH); // warm-up: kernels and optimizer state
    trainer.sync();
    const t0 = performance.now();
    for (let s = 0; s < timed; s++) {
      batch(s);
      trainer.step(x, y, BATCH);
    }
    trainer.sync();
    const seconds = ((performance.now() - t0) / 1000) * (steps / timed);
    trainer.dispose();
    return { seconds, timed };
  }

  /** PyTorch's epoch on `threads` threads, or a note saying why it did not run. */
  function torch(threads: number, dir: string): number | string {
    const script = new URL("epoch_torch.py", import.meta.url).pathname;
    const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads) };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    try {
      const out = execFileSync(
        "/usr/bin/python3",
        [
          script,
          join(dir, "images.u8"),
          join(dir, "labels.u8"),
          String(count),
          String(threads),
          o.model,
        ],
        { encoding: "utf8", env, maxBuffer: 1 << 20 },
      );
      const r = JSON.parse(out.trim().split("\n").at(-1)!) as {
        seconds?: number;
        missing?: string;
      };
      return r.seconds === undefined ? `not installed (${r.missing})` : scale * r.seconds;
    } catch (e) {
      return `did not run (${(e as Error).message.split("\n")[0]})`;
    }
  }

  const loadAtStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
  // Tessera first, then the peers (see tfjs() for why the order matters).
  const rows: [string, number | string][] = [];
  for (const k of kernelPaths as KernelPath[]) {
    rows.push([`Tessera \`${k}\`, 1 thread`, await tessera(1, k)]);
    rows.push([`Tessera \`${k}\`, 2 threads (caller + 1 worker)`, await tessera(2, k)]);
  }
  if (o.torch) {
    const dir = mkdtempSync(join(tmpdir(), "tessera-epoch-"));
    try {
      writeFileSync(join(dir, "images.u8"), raw.images);
      writeFileSync(join(dir, "labels.u8"), raw.labels);
      for (const t of [1, 2])
        rows.push([`PyTorch CPU, ${t} thread${t > 1 ? "s" : ""}`, torch(t, dir)]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (o.tfjs && o.model === "lenet300100") {
    const tf = await tfjs();
    rows.push([
      `TensorFlow.js 4.22 \`cpu\`${tf.timed < steps ? ` (${tf.timed} of ${steps} steps timed, scaled)` : ""}`,
      tf.seconds,
    ]);
  }
  const torchTimes = rows.filter(([n, s]) => n.startsWith("PyTorch") && typeof s === "number");
  const torchBest =
    torchTimes.length > 0 ? Math.min(...torchTimes.map(([, s]) => s as number)) : undefined;
  console.log(
    `machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, node ${process.version}, load average at start: ${loadAtStart}`,
  );
  console.log(
    `model: ${o.model}, ${count} images timed${count < raw.count ? ", scaled to 60k" : ""}`,
  );
  console.log(`| implementation | seconds per epoch | PyTorch (its faster thread count) / this |`);
  console.log(`|---|---|---|`);
  for (const [name, s] of rows) {
    const t = typeof s === "number" ? s.toFixed(1) : s;
    const vs =
      typeof s === "number" && torchBest !== undefined ? `${(torchBest / s).toFixed(2)}x` : "n/a";
    console.log(`| ${name} | ${t} | ${vs} |`);
  }
});
