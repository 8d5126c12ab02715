// The speed experiment of the block-pruning issue: for every point of a block sweep (a chain's
// round checkpoint), the whole pruned LeNet-300-100 timed three ways, side by side in one run:
//   dense: the masked Linear layers as trained (pruned weights are zeros in a dense matrix);
//   bsr:   toBsr, every pruned Linear as a BsrLinear of the chain's b x b tiles;
//   csr:   toBsr with the same masks seen as element groups, i.e. a BsrMatrix of 1x1 blocks,
//          which is CSR (indptr / indices / one value per stored entry) run by the same
//          kernels; @tessera/matrix's CsrMatrix has no autograd layer, and going through one
//          code path keeps the comparison about the storage format, not about two kernels.
// Inference at each batch size and thread count, through the modules' forward and through an
// inference plan per model (pruning's planInference) in the same reps, and a fine-tuning epoch (Adam) sparse
// (BsrLinear) against dense (masked Linear, the optimizer applying the masks), both stepping
// through a BufferArena of their own (reused step arrays, as fit's `arena` option), so neither
// side's epoch pays page faults and collections for fresh arrays the other is spared.
import { existsSync, readdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { BufferArena, Variable, noGrad } from "@tessera/autograd";
import { kernelsFromEnv, type KernelPath, type MatrixPool } from "@tessera/matrix";
import { Adam, type Module, type Dataset } from "@tessera/nn";
import {
  loadPruned,
  planInference,
  toBsr,
  type BsrConversion,
  type PrunedEntry,
  type PrunedSource,
  type PruningState,
} from "@tessera/pruning";
import { Tensor } from "@tessera/tensor";
import { chainCheckpoint, stateBytes } from "./block-chain.ts";
import { PlannedForward, firstBatch, timeForwardCpu, timeTraining } from "./timing.ts";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { renderChart, specPathFor, speedupVsDensityChart, type SpeedupRow } from "./plot/index.ts";
import { markdownTable, writePointsCsv, writePointsJson, type SweepPoint } from "./sweep/index.ts";
import { writeJsonAtomic } from "./sweep/store.ts";

/** One sweep point to time: a chain (its key's parts) and one of its rounds. */
export interface SpeedConfig {
  dataset: string;
  blockSize: number;
  method: string;
  seed: number;
  round: number;
  /** The chain's directory name under `<sweep>/chains/` (`<dataset>-b<b>-<method>-s<seed>`). */
  chain: string;
  inference: {
    batches: number[];
    threads: number[];
    /** Timed repetitions per (batch, threads, variant). */
    reps: number;
    /**
     * Examples per repetition: round(examplesPerRep / batch) forwards (at least one), so a
     * batch-1 repetition is long enough for the timer and not mostly call overhead.
     */
    examplesPerRep: number;
    /** Untimed forwards of each variant before the reps (absent in points timed before: 1). */
    warmup?: number;
  };
  training: {
    batchSize: number;
    /** 0: a full epoch per repetition; n > 0: n steps per repetition (a quick run). */
    steps: number;
    reps: number;
    threads: number;
    lr: number;
  };
}

export type Variant = "dense" | "bsr" | "csr";
export const VARIANTS: readonly Variant[] = ["dense", "bsr", "csr"];

export interface InferenceTiming {
  batch: number;
  threads: number;
  /** Median seconds of one forward pass of the whole model. */
  seconds: Record<Variant, number>;
  /** Dense seconds / sparse seconds (> 1: the sparse form is faster). */
  speedup: { bsr: number; csr: number };
  /**
   * Median CPU seconds of one forward (process.cpuUsage(): every thread of the process, so
   * with 2 threads the caller's and the worker's time summed, spin-waits included). Absent in
   * points timed before it was recorded.
   */
  cpuSeconds?: Record<Variant, number>;
  /** Dense CPU seconds / sparse CPU seconds: the ratio other jobs on the machine distort least. */
  cpuSpeedup?: { bsr: number; csr: number };
  /**
   * The same three models run through an InferencePlan each (@tessera/pruning: buffers owned
   * by the plan, bias and ReLU in the product's epilogue), timed in the same reps as the module
   * forwards. The issue's inference target is judged on these. Absent in older points.
   */
  plan?: PlanTiming;
}

export interface PlanTiming {
  seconds: Record<Variant, number>;
  speedup: { bsr: number; csr: number };
  cpuSeconds: Record<Variant, number>;
  cpuSpeedup: { bsr: number; csr: number };
  /** Largest |plan output - module forward output| on the timed batch (0: the same bits). */
  maxAbsDiff: Record<Variant, number>;
}

export interface SpeedResult {
  round: number;
  /** Kept weights / all weights of the three pruned matrices. */
  density: number;
  keptWeights: number;
  bytes: { dense: number; csr: number; bsr: number };
  /** The BSR conversion per layer (block shape, stored blocks, block density). */
  layers: { name: string; blockShape: number[]; nnzBlocks: number; density: number }[];
  inference: InferenceTiming[];
  training: {
    batchSize: number;
    threads: number;
    /** Steps timed per repetition, and whether that is a full epoch. */
    steps: number;
    fullEpoch: boolean;
    stepsPerEpoch: number;
    reps: number;
    /** Median seconds of the timed steps. */
    seconds: { dense: number; sparse: number };
    /** Median CPU seconds of the timed steps (all threads; absent in older points). */
    cpuSeconds?: { dense: number; sparse: number };
    /** Dense CPU seconds / sparse CPU seconds. */
    cpuSpeedup?: number;
    /**
     * True when both models' steps ran through a BufferArena each (arrays reused from step to
     * step); absent in points timed before, whose steps allocated fresh arrays.
     */
    arena?: boolean;
    /** Seconds of a full epoch: measured when fullEpoch, else scaled from the timed steps. */
    epochSeconds: { dense: number; sparse: number };
    speedup: number;
    /** Mean loss of the last repetition (both start from the same weights). */
    lastLoss: { dense: number; sparse: number };
  };
  /** Largest |sparse - dense| over the batch-max input's logits (float32 roundoff expected). */
  maxAbsDiff: { bsr: number; csr: number };
  /** Load average (1 min) when the point started and ended: the machine is shared. */
  load: { start: number; end: number };
}

export function speedKey(c: Pick<SpeedConfig, "chain" | "round">): string {
  return `${c.chain}-r${String(c.round).padStart(2, "0")}`;
}

/** The same masks seen as element groups: toBsr then stores 1x1 blocks, i.e. CSR. */
export function asElements(source: PrunedSource): PrunedSource {
  return {
    entries: (): PrunedEntry[] =>
      [...source.entries()].map((e) => ({ ...e, kind: { kind: "element" } })),
  };
}

export interface SpeedVariants {
  /** The masked dense model as loaded (pruned weights exactly 0). */
  dense: Module;
  /** Its pruning state (masks and kinds), bound to `dense`. */
  state: PruningState;
  bsr: Module;
  csr: Module;
  conversions: BsrConversion[];
}

/** Loads a round checkpoint three times: masked dense, BSR (the chain's tiles) and CSR. */
export function loadVariants(checkpoint: string, freshModel: () => Module): SpeedVariants {
  const fn = "loadVariants";
  if (!existsSync(checkpoint)) throw new Error(`${fn}: checkpoint ${checkpoint} does not exist`);
  const dense = freshModel();
  const state = loadPruned(checkpoint, dense).state;
  if (state === null) throw new Error(`${fn}: ${checkpoint} holds no pruning masks`);
  const bsr = freshModel();
  loadPruned(checkpoint, bsr);
  const conversions = toBsr(bsr, state);
  if (conversions.length === 0)
    throw new Error(`${fn}: ${checkpoint}: toBsr converted no layer (no element/block masks)`);
  const csr = freshModel();
  loadPruned(checkpoint, csr);
  toBsr(csr, asElements(state));
  return { dense, state, bsr, csr, conversions };
}

/** Largest |a - b| over two logit tensors of one shape. */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join())
    throw new Error(`maxAbsDiff: shapes [${a.shape}] and [${b.shape}] differ`);
  const x = a.contiguous().data;
  const y = b.contiguous().data;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** Forward pass in eval mode without a graph. */
export function logits(model: Module, x: Tensor): Tensor {
  model.eval();
  return noGrad(() => model.forward(new Variable(x)).data);
}

export interface SpeedIo {
  checkpoint: string;
  freshModel: () => Module;
  /** Training examples: the inputs of the inference batches and the training epoch. */
  train: Dataset;
  /** Pools by thread count; a missing or undefined entry runs on the calling thread only. */
  pools: ReadonlyMap<number, MatrixPool | undefined>;
  progress?: (text: string) => void;
}

function poolFor(io: SpeedIo, threads: number): MatrixPool | undefined {
  if (threads > 1 && io.pools.get(threads) === undefined)
    throw new Error(`measureSpeed: no pool of ${threads} threads was given (io.pools)`);
  return io.pools.get(threads);
}

/** Times one sweep point: inference of the three variants, then a training epoch of two. */
export function measureSpeed(config: SpeedConfig, io: SpeedIo): SpeedResult {
  const loadStart = loadavg()[0]!;
  const v = loadVariants(io.checkpoint, io.freshModel);
  const bytes = stateBytes(v.state, config.blockSize);
  const models = VARIANTS.map((name) => ({ name, model: v[name] }));
  const maxBatch = Math.max(...config.inference.batches);
  const xCheck = firstBatch(io.train, Math.min(maxBatch, io.train.count));
  const ref = logits(v.dense, xCheck);
  const diff = {
    bsr: maxAbsDiff(logits(v.bsr, xCheck), ref),
    csr: maxAbsDiff(logits(v.csr, xCheck), ref),
  };
  const inference: InferenceTiming[] = [];
  for (const threads of config.inference.threads)
    for (const batch of config.inference.batches) {
      io.progress?.(`inference batch ${batch}, ${threads} thread(s)`);
      const x = firstBatch(io.train, Math.min(batch, io.train.count));
      const pool = poolFor(io, threads);
      const plans = VARIANTS.map((name) => ({
        name,
        plan: planInference(v[name], { batch: x.shape[0]!, pool }),
      }));
      const s = timeForwardCpu(
        [
          ...models,
          ...plans.map((p) => ({ name: `${p.name} plan`, model: new PlannedForward(p.plan) })),
        ],
        x,
        {
          pool,
          reps: config.inference.reps,
          callsPerRep: Math.max(1, Math.round(config.inference.examplesPerRep / batch)),
          warmup: config.inference.warmup ?? 1,
        },
      );
      const pick = (m: Map<string, number>, suffix = ""): Record<Variant, number> => ({
        dense: m.get(`dense${suffix}`)!,
        bsr: m.get(`bsr${suffix}`)!,
        csr: m.get(`csr${suffix}`)!,
      });
      const seconds = pick(s.wall);
      const cpuSeconds = pick(s.cpu);
      const planSeconds = pick(s.wall, " plan");
      const planCpu = pick(s.cpu, " plan");
      const planDiff = (name: Variant): number => {
        const plan = plans.find((p) => p.name === name)!.plan;
        const y = new Tensor(plan.run(x).slice(), [plan.batch, plan.outFeatures]);
        return maxAbsDiff(y, logits(v[name], x));
      };
      inference.push({
        batch,
        threads,
        seconds,
        speedup: { bsr: seconds.dense / seconds.bsr, csr: seconds.dense / seconds.csr },
        cpuSeconds,
        cpuSpeedup: {
          bsr: cpuSeconds.dense / cpuSeconds.bsr,
          csr: cpuSeconds.dense / cpuSeconds.csr,
        },
        plan: {
          seconds: planSeconds,
          speedup: {
            bsr: planSeconds.dense / planSeconds.bsr,
            csr: planSeconds.dense / planSeconds.csr,
          },
          cpuSeconds: planCpu,
          cpuSpeedup: { bsr: planCpu.dense / planCpu.bsr, csr: planCpu.dense / planCpu.csr },
          maxAbsDiff: { dense: planDiff("dense"), bsr: planDiff("bsr"), csr: planDiff("csr") },
        },
      });
    }

  const t = config.training;
  io.progress?.(
    `training ${t.steps === 0 ? "a full epoch" : `${t.steps} steps`} x ${t.reps}, dense vs BSR`,
  );
  // Dense fine-tuning as the chain does it: masked Linear, Adam with the masks registered.
  const denseOpt = new Adam(v.dense.parameters(), { lr: t.lr });
  v.state.attach(denseOpt);
  const sparseOpt = new Adam(v.bsr.parameters(), { lr: t.lr });
  // One arena per model: both sides reuse their step arrays, so the ratio stays fair.
  const timing = timeTraining(
    [
      { name: "dense", model: v.dense, optimizer: denseOpt, arena: new BufferArena() },
      { name: "sparse", model: v.bsr, optimizer: sparseOpt, arena: new BufferArena() },
    ],
    io.train,
    {
      batchSize: t.batchSize,
      steps: t.steps === 0 ? undefined : t.steps,
      reps: t.reps,
      seed: config.seed * 1000 + config.round,
      pool: poolFor(io, t.threads),
    },
  );
  v.state.detach(denseOpt);
  const seconds = { dense: timing.seconds.get("dense")!, sparse: timing.seconds.get("sparse")! };
  const cpuSeconds = {
    dense: timing.cpuSeconds.get("dense")!,
    sparse: timing.cpuSeconds.get("sparse")!,
  };
  const scale = timing.stepsPerEpoch / timing.steps;
  return {
    round: config.round,
    density: v.state.density(),
    keptWeights: v.state.keptCount(),
    bytes,
    layers: v.conversions.map((c) => ({
      name: c.name,
      blockShape: [...c.blockShape],
      nnzBlocks: c.nnzBlocks,
      density: c.density,
    })),
    inference,
    training: {
      batchSize: t.batchSize,
      threads: t.threads,
      steps: timing.steps,
      fullEpoch: timing.steps === timing.stepsPerEpoch,
      stepsPerEpoch: timing.stepsPerEpoch,
      reps: t.reps,
      seconds,
      epochSeconds: { dense: seconds.dense * scale, sparse: seconds.sparse * scale },
      speedup: seconds.dense / seconds.sparse,
      cpuSeconds,
      cpuSpeedup: cpuSeconds.dense / cpuSeconds.sparse,
      arena: true,
      lastLoss: {
        dense: timing.lastLoss.get("dense")!,
        sparse: timing.lastLoss.get("sparse")!,
      },
    },
    maxAbsDiff: diff,
    load: { start: loadStart, end: loadavg()[0]! },
  };
}

/** A chain directory name `<dataset>-b<b>-<method>-s<seed>`, split into its parts. */
export function parseChainKey(
  key: string,
): { dataset: string; blockSize: number; method: string; seed: number } | null {
  const m = /^(.+)-b(\d+)-([a-z]+)-s(\d+)$/.exec(key);
  if (m === null) return null;
  return { dataset: m[1]!, blockSize: Number(m[2]), method: m[3]!, seed: Number(m[4]) };
}

/** The rounds whose checkpoint a chain directory holds, ascending. */
export function chainRounds(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => /^round-(\d+)\.safetensors$/.exec(f))
    .filter((m) => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

export interface SelectOptions {
  /** Default: every dataset found. */
  datasets?: readonly string[];
  /** Default: every block size found. */
  blockSizes?: readonly number[];
  /** Default: ["magnitude"]. */
  methods?: readonly string[];
  /** Default: the smallest seed found (the sweep's first). */
  seeds?: readonly number[];
  /** Default: every round whose checkpoint exists. A listed round that is missing is an error. */
  rounds?: readonly number[];
}

/** A chain and round chosen for timing, with its checkpoint's path. */
export interface SpeedPoint {
  chain: string;
  dataset: string;
  blockSize: number;
  method: string;
  seed: number;
  round: number;
  checkpoint: string;
}

/**
 * The sweep points under `<chainsDir>` (one directory per chain, `round-XX.safetensors` per
 * round) that the options select, ordered by dataset, block size, method, seed and round.
 */
export function selectPoints(chainsDir: string, o: SelectOptions = {}): SpeedPoint[] {
  const fn = "selectPoints";
  if (!existsSync(chainsDir))
    throw new Error(
      `${fn}: ${chainsDir} does not exist; run the block sweep first (pnpm block-sweep), point --sweep at its output, or use --tiny-chain`,
    );
  const chains = readdirSync(chainsDir)
    .map((name) => ({ name, key: parseChainKey(name) }))
    .filter((c) => c.key !== null)
    .map((c) => ({ name: c.name, ...c.key! }));
  const methods = o.methods ?? ["magnitude"];
  let pick = chains.filter(
    (c) =>
      (o.datasets === undefined || o.datasets.includes(c.dataset)) &&
      (o.blockSizes === undefined || o.blockSizes.includes(c.blockSize)) &&
      methods.includes(c.method),
  );
  const seeds = o.seeds ?? (pick.length === 0 ? [] : [Math.min(...pick.map((c) => c.seed))]);
  pick = pick.filter((c) => seeds.includes(c.seed));
  if (pick.length === 0)
    throw new Error(
      `${fn}: no chain in ${chainsDir} matches datasets ${o.datasets?.join(",") ?? "(any)"}, ` +
        `block sizes ${o.blockSizes?.join(",") ?? "(any)"}, methods ${methods.join(",")}, seeds ${seeds.join(",") || "(any)"}; ` +
        `found: ${chains.map((c) => c.name).join(", ") || "none"}`,
    );
  pick.sort(
    (a, b) =>
      a.dataset.localeCompare(b.dataset) ||
      a.blockSize - b.blockSize ||
      a.method.localeCompare(b.method) ||
      a.seed - b.seed,
  );
  const points: SpeedPoint[] = [];
  for (const c of pick) {
    const dir = join(chainsDir, c.name);
    const have = chainRounds(dir);
    const rounds = o.rounds ?? have;
    for (const round of rounds) {
      if (!have.includes(round))
        throw new Error(
          `${fn}: ${chainCheckpoint(dir, round)} does not exist (chain ${c.name} has rounds ${have.join(",") || "none"})`,
        );
      points.push({
        chain: c.name,
        dataset: c.dataset,
        blockSize: c.blockSize,
        method: c.method,
        seed: c.seed,
        round,
        checkpoint: chainCheckpoint(dir, round),
      });
    }
  }
  return points;
}

/** What the machine was: recorded with every speed run. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  /** Load averages (1, 5, 15 min). */
  loadStart: number[];
  loadEnd?: number[];
  /** The command that timed the points (a report rewritten later names both). */
  command?: string;
  /** The kernel path every product ran on (TESSERA_KERNELS); absent in runs before 2026-12-02 (asm). */
  kernels?: KernelPath;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    node: process.version,
    loadStart: loadavg().map((x) => Math.round(x * 100) / 100),
    kernels: kernelsFromEnv(process.env),
  };
}

export type SpeedPointResult = SweepPoint<SpeedConfig, SpeedResult>;

/**
 * Speedup rows for speedupVsDensityChart: BSR inference at one batch size (all threads), from
 * the inference plans where the point timed them, else from the module forwards.
 */
export function inferenceRows(points: readonly SpeedPointResult[], batch: number): SpeedupRow[] {
  return points.flatMap((p) =>
    p.result.inference
      .filter((i) => i.batch === batch)
      .map((i) => ({
        blockSize: p.config.blockSize,
        density: p.result.density,
        batch,
        threads: i.threads,
        speedup: i.plan?.speedup.bsr ?? i.speedup.bsr,
      })),
  );
}

/** Speedup rows of the training epoch (batch = the training batch size). */
export function trainingRows(points: readonly SpeedPointResult[]): SpeedupRow[] {
  return points.map((p) => ({
    blockSize: p.config.blockSize,
    density: p.result.density,
    batch: p.result.training.batchSize,
    threads: p.result.training.threads,
    speedup: p.result.training.speedup,
  }));
}

const x2 = (v: number) => `${v.toFixed(2)}x`;
/** A ratio a point may lack (CPU times were not recorded before): "-" then. */
const x2opt = (v: number | undefined) => (v === undefined ? "-" : x2(v));
const ms = (s: number) => (s * 1e3).toFixed(s < 1e-3 ? 4 : s < 1 ? 3 : 0);
const msOpt = (s: number | undefined) => (s === undefined ? "-" : ms(s));

/** What the CPU ratio columns mean (printed above the tables). */
export const CPU_NOTE =
  "The first group of columns times the models' forward (model.forward under noGrad: fresh " +
  "arrays for every product, bias and ReLU); the 'plan' columns time the same " +
  "models through an inference plan each (@tessera/pruning planInference: buffers owned by the " +
  "plan, bias and ReLU in the sparse products' epilogue and in one pass after each dense " +
  "product, consecutive BSR layers as one job on a pool), in the same reps; the targets " +
  "are judged on the plans. " +
  "Speedups are dense / sparse wall-clock medians; the cpu ratio columns divide CPU time instead " +
  "(process.cpuUsage(), user + system, median rep): it counts every thread of the process, so " +
  "with 2 threads it is the sum of both threads (the pool's spin-waits included) and says how " +
  "much work each form costs, not how long it takes; other jobs on a shared machine distort it " +
  "less than the wall clock.";

/** How the fine-tuning epoch is timed (printed above its table). */
export const TRAINING_NOTE =
  "Each step: forward, cross-entropy, backward, Adam, zeroGrad. 'step arrays: arena, both' " +
  "means the dense and the sparse model each stepped through a BufferArena of their own " +
  "(@tessera/autograd: the arrays a step allocates are reused by the next step, as fit's " +
  "arena option does; same numbers bit for bit), so neither side pays page faults and " +
  "collections for fresh arrays that the other is spared; 'fresh' rows were timed before, " +
  "with new arrays every step.";

/** One markdown row per (point, batch, threads): times and speedups, plus the training epoch. */
export function speedTable(points: readonly SpeedPointResult[]): string {
  const rows = points.flatMap((p) => p.result.inference.map((i) => ({ p, i })));
  const inference = markdownTable(rows, [
    { header: "chain", value: ({ p }) => p.config.chain },
    { header: "round", value: ({ p }) => p.config.round },
    { header: "density", value: ({ p }) => `${(100 * p.result.density).toFixed(1)}%` },
    { header: "batch", value: ({ i }) => i.batch },
    { header: "threads", value: ({ i }) => i.threads },
    { header: "dense ms", value: ({ i }) => ms(i.seconds.dense) },
    { header: "BSR ms", value: ({ i }) => ms(i.seconds.bsr) },
    { header: "CSR ms", value: ({ i }) => ms(i.seconds.csr) },
    { header: "BSR speedup", value: ({ i }) => x2(i.speedup.bsr) },
    { header: "CSR speedup", value: ({ i }) => x2(i.speedup.csr) },
    { header: "BSR cpu ratio", value: ({ i }) => x2opt(i.cpuSpeedup?.bsr) },
    { header: "CSR cpu ratio", value: ({ i }) => x2opt(i.cpuSpeedup?.csr) },
    { header: "plan dense ms", value: ({ i }) => msOpt(i.plan?.seconds.dense) },
    { header: "plan BSR ms", value: ({ i }) => msOpt(i.plan?.seconds.bsr) },
    { header: "plan CSR ms", value: ({ i }) => msOpt(i.plan?.seconds.csr) },
    { header: "plan BSR speedup", value: ({ i }) => x2opt(i.plan?.speedup.bsr) },
    { header: "plan CSR speedup", value: ({ i }) => x2opt(i.plan?.speedup.csr) },
    { header: "plan BSR cpu ratio", value: ({ i }) => x2opt(i.plan?.cpuSpeedup.bsr) },
    { header: "plan CSR cpu ratio", value: ({ i }) => x2opt(i.plan?.cpuSpeedup.csr) },
  ]);
  const training = markdownTable(points, [
    { header: "chain", value: (p) => p.config.chain },
    { header: "round", value: (p) => p.config.round },
    { header: "density", value: (p) => `${(100 * p.result.density).toFixed(1)}%` },
    { header: "threads", value: (p) => p.result.training.threads },
    {
      header: "timed",
      value: (p) =>
        p.result.training.fullEpoch
          ? `full epoch (${p.result.training.steps} steps)`
          : `${p.result.training.steps} of ${p.result.training.stepsPerEpoch} steps, scaled`,
    },
    { header: "dense epoch s", value: (p) => p.result.training.epochSeconds.dense.toFixed(2) },
    { header: "BSR epoch s", value: (p) => p.result.training.epochSeconds.sparse.toFixed(2) },
    { header: "speedup", value: (p) => x2(p.result.training.speedup) },
    { header: "cpu ratio", value: (p) => x2opt(p.result.training.cpuSpeedup) },
    {
      header: "step arrays",
      value: (p) => (p.result.training.arena === true ? "arena, both" : "fresh"),
    },
  ]);
  return `### Inference (whole model, median of the reps)\n\n${CPU_NOTE}\n\n${inference}\n### Fine-tuning epoch (Adam, batch ${points[0]?.result.training.batchSize ?? "?"})\n\n${TRAINING_NOTE}\n\n${training}`;
}

/** The issue's speed targets, checked on the 4x4 point nearest 10% density. */
export const TARGETS = {
  density: 0.1,
  blockSize: 4,
  inferenceBatch: 128,
  inferenceSpeedup: 5,
  trainingSpeedup: 3,
  /** Densities counted as "~10%": the paper's rounds 9-11 (13.5%, 10.8%, 8.7%). */
  nearFrom: 0.08,
  nearTo: 0.14,
} as const;

export interface TargetCheck {
  target: string;
  /** The point used, or null when the run has no 4x4 point. */
  point: string | null;
  measured: number | null;
  required: number;
  /** null: not judged (no 4x4 point, or the nearest one is outside 8-14% density). */
  met: boolean | null;
  /** measured / required (>= 1 when met). */
  ratio: number | null;
}

/**
 * For each dataset with 4x4 points: the point nearest 10% density (smallest |log density
 * ratio|), its BSR inference speedup at batch 128 for each thread count, and its training
 * speedup, each against the issue's targets. A run without a 4x4 point reports the targets
 * as not measured.
 */
export function checkTargets(points: readonly SpeedPointResult[]): TargetCheck[] {
  const candidates = points.filter((p) => p.config.blockSize === TARGETS.blockSize);
  const notMeasured = (target: string, required: number): TargetCheck => ({
    target,
    point: null,
    measured: null,
    required,
    met: null,
    ratio: null,
  });
  const infTarget = (threads: number | string, how = "") =>
    `4x4 BSR inference${how}, batch ${TARGETS.inferenceBatch}, ${threads} thread(s), ~10% density: >= ${TARGETS.inferenceSpeedup}x dense`;
  const trainTarget = `sparse fine-tuning epoch, ~10% density: >= ${TARGETS.trainingSpeedup}x dense`;
  if (candidates.length === 0)
    return [
      notMeasured(infTarget("any"), TARGETS.inferenceSpeedup),
      notMeasured(trainTarget, TARGETS.trainingSpeedup),
    ];
  const checks: TargetCheck[] = [];
  const byChain = new Map<string, SpeedPointResult[]>();
  for (const p of candidates)
    byChain.set(p.config.chain, [...(byChain.get(p.config.chain) ?? []), p]);
  for (const [, ps] of byChain) {
    const near = ps.reduce((a, b) =>
      Math.abs(Math.log(b.result.density / TARGETS.density)) <
      Math.abs(Math.log(a.result.density / TARGETS.density))
        ? b
        : a,
    );
    const where = `${near.config.chain} round ${near.config.round} (${(100 * near.result.density).toFixed(1)}%)`;
    // A run that holds no point near 10% (e.g. only early rounds) shows its nearest one but
    // does not judge the target on it.
    const nearTen =
      near.result.density >= TARGETS.nearFrom && near.result.density <= TARGETS.nearTo;
    const check = (target: string, measured: number, required: number): TargetCheck => ({
      target,
      point: where,
      measured,
      required,
      met: nearTen ? measured >= required : null,
      ratio: measured / required,
    });
    // Judged on the inference plans where the point timed them (module forwards otherwise).
    for (const i of near.result.inference.filter((i) => i.batch === TARGETS.inferenceBatch))
      checks.push(
        i.plan === undefined
          ? check(
              infTarget(i.threads, " (module forward)"),
              i.speedup.bsr,
              TARGETS.inferenceSpeedup,
            )
          : check(
              infTarget(i.threads, " (inference plans)"),
              i.plan.speedup.bsr,
              TARGETS.inferenceSpeedup,
            ),
      );
    if (!near.result.inference.some((i) => i.batch === TARGETS.inferenceBatch))
      checks.push({ ...notMeasured(infTarget("any"), TARGETS.inferenceSpeedup), point: where });
    const t = near.result.training;
    checks.push(
      check(
        `${trainTarget}${t.fullEpoch ? "" : ` (timed on ${t.steps} of ${t.stepsPerEpoch} steps)`}`,
        t.speedup,
        TARGETS.trainingSpeedup,
      ),
    );
  }
  return checks;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return markdownTable(checks, [
    { header: "target", value: (c) => c.target },
    { header: "point", value: (c) => c.point ?? "no 4x4 point in this run" },
    { header: "measured", value: (c) => (c.measured === null ? "-" : x2(c.measured)) },
    {
      header: "met?",
      value: (c) =>
        c.met === null
          ? c.point === null || c.measured === null
            ? "not measured"
            : "not judged: no 4x4 point at 8-14% density in this run"
          : c.met
            ? `yes, by ${x2(c.ratio!)} of the target`
            : `NO: ${x2(c.measured!)} is ${(100 * (1 - c.ratio!)).toFixed(0)}% short of ${x2(c.required)}`,
    },
  ]);
}

export interface SpeedReport {
  markdown: string;
  files: string[];
}

/**
 * Writes a speed run's outputs into `dir`: points.json / points.csv (every point, flat
 * columns), machine.json, speed.md (command, machine, the targets table, the times), and
 * speedupVsDensityChart SVGs (with their Vega-Lite specs) for BSR inference at batch 128 and
 * batch 1 and for the training epoch, each only when the run has rows for it.
 */
export async function writeSpeedReport(
  dir: string,
  points: readonly SpeedPointResult[],
  machine: MachineInfo,
  command: string,
): Promise<SpeedReport> {
  const files: string[] = [];
  const add = (name: string) => {
    files.push(join(dir, name));
    return join(dir, name);
  };
  writePointsJson(add("points.json"), points);
  writePointsCsv(add("points.csv"), points);
  writeJsonAtomic(add("machine.json"), machine);
  const how = points.every((p) => p.result.inference.every((i) => i.plan !== undefined))
    ? "inference plans"
    : "module forward where no plan was timed";
  const charts: { name: string; rows: SpeedupRow[]; title: string }[] = [
    {
      name: "inference-batch128.svg",
      rows: inferenceRows(points, 128),
      title: `BSR vs dense inference (${how}), whole LeNet-300-100, batch 128`,
    },
    {
      name: "inference-batch1.svg",
      rows: inferenceRows(points, 1),
      title: `BSR vs dense inference (${how}), whole LeNet-300-100, batch 1`,
    },
    {
      name: "training-epoch.svg",
      rows: trainingRows(points),
      title: "Sparse (BsrLinear + Adam) vs dense (masked Linear + Adam) fine-tuning epoch",
    },
  ];
  for (const c of charts) {
    if (c.rows.length === 0) continue;
    await renderChart(speedupVsDensityChart(c.rows, { title: c.title }), add(c.name));
    files.push(specPathFor(join(dir, c.name)));
  }
  const load = (l: readonly number[] | undefined) =>
    l === undefined || l.length === 0 ? "not recorded" : l.join(" / ");
  const partial = points.some((p) => !p.result.training.fullEpoch);
  const warmupCounts = [...new Set(points.map((p) => p.config.inference.warmup ?? 1))];
  const warmups =
    warmupCounts.length === 0
      ? "untimed forwards"
      : `${warmupCounts.join(" or ")} untimed forward${warmupCounts.length === 1 && warmupCounts[0] === 1 ? "" : "s"}`;
  const markdown = [
    `## Speed: whole pruned LeNet-300-100, dense (masked) vs BSR vs CSR`,
    ``,
    machine.command === undefined || machine.command === command
      ? `Command: \`${command}\``
      : `Command: \`${machine.command}\` (this report rewritten by \`${command}\`)`,
    ``,
    `Kernels: ${machine.kernels ?? "asm"} (TESSERA_KERNELS${machine.kernels === undefined ? ", not recorded then: the only path before 2026-12-01's wasm kernels, and the default since" : ""}). ` +
      `Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; load average ` +
      `(1/5/15 min) ${load(machine.loadStart)} at start, ${load(machine.loadEnd)} at end. ` +
      `Every ratio is measured side by side within its point (variants alternate rep by rep, after ${warmups} of each); ` +
      `CSR is toBsr with 1x1 blocks.` +
      (partial
        ? ` **Training was timed on a fixed number of steps, not a full epoch: epoch seconds are scaled from them.**`
        : ""),
    ``,
    `### Targets (issue 11)`,
    ``,
    targetsTable(checkTargets(points)),
    speedTable(points),
  ].join("\n");
  writeFileAtomic(add("speed.md"), new TextEncoder().encode(markdown));
  return { markdown, files };
}
