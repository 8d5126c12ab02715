// Shared helpers of the benchmark scripts: machine info, tinybench timing, python runs.
import { Bench } from "tinybench";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { kernelsFromEnv } from "../src/index.ts";

/**
 * CPU model, Node version, date, load and the default kernel path (TESSERA_KERNELS; a table whose
 * columns name their paths overrides it per call), printed above every table.
 */
export function machineInfo(): string {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  const cores = (readFileSync("/proc/cpuinfo", "utf8").match(/^processor\s*:/gm) ?? []).length;
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
  return `cpu: ${cpu} (${cores} logical cores), node ${process.version}, ${new Date().toISOString()}, load average at start: ${load}, default kernel path: ${kernelsFromEnv(process.env)}`;
}

/**
 * Milliseconds per call of each task: the fastest call tinybench observed in one run (tasks run
 * one after another, so tasks compared in a ratio should share a call of this function). The
 * fastest call, not the median, because this machine is shared: other jobs stretch some calls,
 * and the minimum is the figure least distorted by them (as Python's timeit advises).
 */
export function fastestMs(tasks: [string, () => void][], timeMs = 150): number[] {
  const bench = new Bench({
    time: timeMs,
    iterations: 5,
    warmupTime: Math.max(20, timeMs / 3),
    warmupIterations: 3,
  });
  for (const [name, fn] of tasks) bench.add(name, fn);
  bench.runSync();
  return bench.tasks.map((t) => {
    const r = t.result as { latency?: { min: number; p50: number }; error?: unknown };
    if (r.latency === undefined)
      throw new Error(`benchmark task ${t.name} failed: ${String(r.error)}`);
    // A minimum of exactly 0 means the call was below the timer's resolution: use the median.
    return r.latency.min > 0 ? r.latency.min : r.latency.p50;
  });
}

/**
 * Runs a python script from this folder and parses the JSON it prints. OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE are removed from its environment, and OPENBLAS_NUM_THREADS / OMP_NUM_THREADS
 * set to `threads`. `python` is the interpreter (default python3). Returns undefined, with a
 * note on stderr, when the interpreter or the script's imports are missing.
 */
export function runPython(
  script: string,
  args: string[],
  threads: number,
  python = "python3",
): unknown {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
  };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  try {
    const out = execFileSync(python, [new URL(script, import.meta.url).pathname, ...args], {
      env,
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    return JSON.parse(out);
  } catch (e) {
    console.error(`python benchmark ${script} unavailable: ${(e as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

export function fmt(x: number | undefined, digits = 2): string {
  return x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits);
}

/** Deterministic uniform [-1, 1) values (mulberry32) so every run and library sees the same data. */
export function fillRandom<T extends Float32Array | Float64Array>(arr: T, seed: number): T {
  let s = seed >>> 0;
  for (let i = 0; i < arr.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    arr[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return arr;
}

/**
 * How much a second thread helps on this machine right now: the same pure-arithmetic loop on
 * one thread, then on the main thread and a worker at once (no shared memory, no pool). 2.0
 * means two free cores; near 1.0 means other jobs leave us about one core, and no 2-thread
 * figure in the tables can beat that.
 */
export async function parallelCapacity(): Promise<number> {
  const src = `function work() { let s = 0; const a = new Float64Array(4096).fill(1.0001);
    for (let r = 0; r < 15000; r++) for (let i = 0; i < 4096; i += 4) s += a[i] * a[i + 1] + a[i + 2] * a[i + 3];
    return s; }`;
  const { Worker } = await import("node:worker_threads");
  const work = new Function(`${src}; return work;`)() as () => number;
  work();
  let t = performance.now();
  work();
  const one = performance.now() - t;
  const w = new Worker(
    `${src}; const { parentPort } = require("node:worker_threads"); work();
    parentPort.postMessage("ready"); parentPort.on("message", () => { work(); parentPort.postMessage("done"); });`,
    { eval: true },
  );
  await new Promise((r) => w.once("message", r));
  t = performance.now();
  const done = new Promise((r) => w.once("message", r));
  w.postMessage("go");
  work();
  await done;
  const both = performance.now() - t;
  await w.terminate();
  return (2 * one) / both;
}

/** The two lines above every table: the machine, and its two-thread capacity at start. */
export async function tableHeader(): Promise<string[]> {
  return [
    machineInfo(),
    `two-thread capacity of the machine at start (plain JS loop, 2.0 = two free cores): ${fmt(await parallelCapacity())}`,
  ];
}

/** Exactly round(density * blocks) kept blocks, chosen by a seeded shuffle. */
export function blockMask(count: number, sparsity: number, seed: number): Uint8Array {
  const keep = Math.round((1 - sparsity) * count);
  const order = Array.from({ length: count }, (_, i) => i);
  const r = fillRandom(new Float64Array(count), seed);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(((r[i]! + 1) / 2) * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const mask = new Uint8Array(count);
  for (let i = 0; i < keep; i++) mask[order[i]!] = 1;
  return mask;
}
