// One LeNet-300-100 (or, with --model, LeNet-5 or the 3x3 `smallCnn()`) training epoch on MNIST
// (60k images, batch 128, Adam 1e-3; --images N, or --steps S = S·128 images, times the first
// images only and scales to 60k), timed side by side in one run: Tessera's fit loop (1 and 2
// threads, on each kernel path: asm.js and WebAssembly SIMD), TensorFlow.js's pure-JS `cpu`
// backend and, when installed, PyTorch (/usr/bin/python3 with python3-torch; 1 and 2 threads)
// with the same model, loss, optimizer and batch. Beside the wall clock, each row has the CPU
// seconds of its process (user + system, all threads; for PyTorch time.process_time()), scaled
// the same way: on a machine shared with other jobs the CPU time is the steadier figure.
// With TESSERA_WASM_FMA=1 the wasm rows run the fused micro-kernel and are labelled `wasm+fma`;
// with TESSERA_WINOGRAD=0 the 3x3 and 5x5 layers take the direct product instead of Winograd
// F(2x2, r x r) and the wasm rows say "no Winograd" (LeNet-300-100 has no convolutions);
// with --arena Tessera's steps run through an autograd BufferArena (fit's arena option: the
// arrays a step allocates are reused by the next) and the rows say "+ arena". Every side runs one
// untimed warm-up step before its timed ones (Tessera's since session 12).
//   pnpm tsx experiments/bench/epoch-throughput.ts [--kernels asm,wasm] [--tfjs-steps N] [--no-tfjs] [--no-torch]
//   pnpm tsx experiments/bench/epoch-throughput.ts --model lenet5 --images 10000 --no-tfjs
//   pnpm tsx experiments/bench/epoch-throughput.ts --model small-cnn --steps 50 --no-tfjs
// (TF.js runs LeNet-300-100 only; small-cnn defaults to 50 timed steps.)
// TF.js is slow (~2 min per epoch); --tfjs-steps times that many steps and scales the time to
// a full epoch (stated in the table). PyTorch is skipped with a note where it is not installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadDataset } from "@tessera/mnist-dataset-loader";
import { Adam, arrayDataset, fit, lenet300100, lenet5, smallCnn } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { createPool, wasmFmaFromEnv, winogradFromEnv } from "@tessera/matrix";
import type { KernelPath } from "@tessera/matrix";
import { BufferArena, setMatrixPool } from "@tessera/autograd";
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
    .option(
      "--arena",
      "run Tessera's steps through an autograd BufferArena (arrays reused from step to step)",
    )
    .option("--no-tfjs", "do not time TensorFlow.js")
    .option("--no-torch", "do not time PyTorch")
    .option("--model <name>", "lenet300100, lenet5 or small-cnn", "lenet300100")
    .option(
      "--images <n>",
      "train on the first n images, times scaled to 60k",
      positiveInt("--images"),
    )
    .option(
      "--steps <n>",
      "train for n steps of 128 images (instead of --images; small-cnn default 50)",
      positiveInt("--steps"),
    )
    .parse()
    .opts<{
      tfjsSteps?: number;
      epochs: number;
      kernels: string;
      arena?: boolean;
      tfjs: boolean;
      torch: boolean;
      model: string;
      images?: number;
      steps?: number;
    }>();
  if (o.model !== "lenet300100" && o.model !== "lenet5" && o.model !== "small-cnn")
    throw new Error(
      `epoch-throughput: --model takes lenet300100, lenet5 or small-cnn, got "${o.model}"`,
    );
  if (o.images !== undefined && o.steps !== undefined)
    throw new Error("epoch-throughput: give --images or --steps, not both");
  const kernelPaths = o.kernels.split(",").map((k) => k.trim());
  for (const k of kernelPaths)
    if (k !== "asm" && k !== "wasm")
      throw new Error(`epoch-throughput: --kernels takes asm and/or wasm, got "${k}"`);

  const BATCH = 128;
  const raw = loadDataset("mnist", { split: "train" });
  const steps = Math.ceil(raw.count / BATCH);
  const steps50 = o.model === "small-cnn" && o.images === undefined ? 50 : undefined;
  const stepsTimed = o.steps ?? steps50;
  const count = Math.min(
    stepsTimed !== undefined ? stepsTimed * BATCH : (o.images ?? raw.count),
    raw.count,
  );
  if (!(count >= BATCH))
    throw new Error(
      `epoch-throughput: --images must be at least ${BATCH}, got ${String(o.images)}`,
    );
  /** Seconds for `count` images -> seconds per 60k-image epoch. */
  const scale = raw.count / count;

  /** Seconds per 60k-image epoch: wall clock and CPU (all threads of the process). */
  interface Timed {
    wall: number;
    cpu: number;
    /** Pool jobs posted to the worker in the timed epochs, and how many it took a share of. */
    jobs?: { posted: number; claimed: number };
  }

  async function tessera(threads: number, kernels: KernelPath): Promise<Timed> {
    // A 1-thread pool has no workers: it only carries the kernel path to every product.
    const pool = createPool({ threads, kernels });
    await pool.ready();
    setMatrixPool(pool);
    try {
      const shape = o.model !== "lenet300100" ? [1, 28, 28] : [784];
      const images = (k: number) =>
        arrayDataset(raw.images.subarray(0, k * 784), raw.labels.subarray(0, k), shape, NORMALIZE);
      const train = images(count);
      const generator = new Generator(1);
      const model =
        o.model === "lenet5"
          ? lenet5({ generator })
          : o.model === "small-cnn"
            ? smallCnn({ generator })
            : lenet300100({ generator });
      const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
      const arena = o.arena === true ? new BufferArena() : undefined;
      // One untimed warm-up step, as the peers get (PyTorch's and TF.js's loops below start
      // after one): the kernels compiled and tiered up, the arena's arrays and the optimizer
      // state allocated. Without it the first step's one-time costs weighed ~9x more in a
      // 50-step smallCnn() run than in a real 469-step epoch.
      fit(model, { train: images(BATCH), epochs: 1, batchSize: BATCH, optimizer, seed: 1, arena });
      const c0 = process.cpuUsage();
      const [posted0, claimed0] = [pool.posted, pool.claimed];
      const { history } = fit(model, {
        train,
        epochs: o.epochs,
        batchSize: BATCH,
        optimizer,
        seed: 1,
        arena,
      });
      const c = process.cpuUsage(c0);
      return {
        wall: scale * Math.min(...history.map((h) => h.seconds)),
        cpu: (scale * (c.user + c.system)) / 1e6 / o.epochs,
        jobs: { posted: pool.posted - posted0, claimed: pool.claimed - claimed0 },
      };
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
  function torch(threads: number, dir: string): Timed | string {
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
        cpu?: number;
        missing?: string;
      };
      return r.seconds === undefined
        ? `not installed (${r.missing})`
        : { wall: scale * r.seconds, cpu: scale * r.cpu! };
    } catch (e) {
      return `did not run (${(e as Error).message.split("\n")[0]})`;
    }
  }

  const loadAtStart = loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
  // Tessera first, then the peers (see tfjs() for why the order matters).
  const rows: [string, Timed | string][] = [];
  // TESSERA_WASM_FMA=1 (process-wide) makes the wasm rows run the fused micro-kernel: say so.
  const fma = wasmFmaFromEnv(process.env);
  const noWinograd = !winogradFromEnv(process.env) && o.model !== "lenet300100";
  for (const k of kernelPaths as KernelPath[]) {
    const path = k === "wasm" && fma ? "wasm+fma" : k;
    const label = `\`${path}\`${k === "wasm" && noWinograd ? ", no Winograd" : ""}${o.arena === true ? " + arena" : ""}`;
    rows.push([`Tessera ${label}, 1 thread`, await tessera(1, k)]);
    rows.push([`Tessera ${label}, 2 threads (caller + 1 worker)`, await tessera(2, k)]);
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
      { wall: tf.seconds, cpu: NaN },
    ]);
  }
  const torchTimes = rows
    .filter(([n, s]) => n.startsWith("PyTorch") && typeof s !== "string")
    .map(([, s]) => s as Timed);
  const torchBest = torchTimes.length > 0 ? Math.min(...torchTimes.map((s) => s.wall)) : undefined;
  const torchBestCpu =
    torchTimes.length > 0 ? Math.min(...torchTimes.map((s) => s.cpu)) : undefined;
  console.log(
    `machine: ${cpus()[0]?.model ?? "unknown"} x${cpus().length}, node ${process.version}, load average at start: ${loadAtStart}`,
  );
  console.log(
    `model: ${o.model}, ${count} images${stepsTimed !== undefined ? ` (${Math.ceil(count / BATCH)} steps)` : ""} timed${count < raw.count ? ", scaled to 60k" : ""}`,
  );
  console.log(
    `| implementation | seconds per epoch | CPU seconds per epoch | PyTorch (its faster thread count) / this, wall | same, CPU |`,
  );
  console.log(`|---|---|---|---|---|`);
  const ratio = (best: number | undefined, v: number) =>
    best !== undefined && Number.isFinite(v) ? `${(best / v).toFixed(2)}x` : "n/a";
  for (const [name, s] of rows) {
    if (typeof s === "string") console.log(`| ${name} | ${s} | | n/a | n/a |`);
    else
      console.log(
        `| ${name} | ${s.wall.toFixed(1)} | ${Number.isFinite(s.cpu) ? s.cpu.toFixed(1) : "n/a"} | ${ratio(torchBest, s.wall)} | ${ratio(torchBestCpu, s.cpu)} |`,
      );
  }
  // A worker that the OS keeps off its core leaves every chunk to the caller (the pool cancels
  // its unclaimed share): a two-thread row near the one-thread row with CPU seconds near wall
  // seconds. Seen once (2026-12-03, smallCnn() 2T 142 s against 70-91 s in the runs around it).
  for (const [name, s] of rows)
    if (typeof s !== "string" && s.jobs !== undefined && s.jobs.posted > 0)
      console.log(
        `${name}: the worker took a share of ${s.jobs.claimed} of ${s.jobs.posted} pool jobs`,
      );
});
