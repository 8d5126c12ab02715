// The KEP sweep's configurations and its run function (experiments/kep-sweep.ts is the command
// line around them): per model, dataset, seed, n and method one point of
// experiments/src/kep-run.ts. KEP methods run with and without the penalty ramp; the baselines
// (unstructured magnitude, filter pruning) without it unless asked, at the KEP kept count of
// every pruned layer. Two models: the narrow small CNN (3x3 planes; its points keep the keys
// and configs they had before LeNet-5 joined) and LeNet-5 (5x5 planes; keys and dense
// directories carry "lenet5").
import { join } from "node:path";
import type { DatasetName } from "@tessera/mnist-dataset-loader";
import type { BufferArena } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import type { SplitPair } from "./data.ts";
import {
  denseKepModel,
  kepModel,
  kepKernelSize,
  kepModelName,
  runKepPoint,
  type KepArch,
  type KepMethod,
  type KepModelName,
  type KepWidths,
  type KepScore,
  type KepPointConfig,
  type KepPointResult,
} from "./kep-run.ts";
import { runSweep, type SweepOutcome, type SweepSpec } from "./sweep/index.ts";
import type { Shard } from "./sweep/shard.ts";

/** One model of the sweep: its architecture, the conv weights it prunes and its n grid. */
export interface KepModelSpec {
  arch: KepArch;
  /** Pruned conv weights, e.g. ["conv2.weight"]. */
  layers: string[];
  /** Elements kept per plane (1..k² of the pruned layers' k x k planes). */
  ns: number[];
}

/**
 * The models of the command line: the narrow CNN of `widths` pruned in `layers` at `n`, LeNet-5
 * pruned in `lenet5Layers` at `lenet5N` (layer names without ".weight"); `fullGrid`: n = 1..k²
 * for each instead.
 */
export function kepModelSpecs(o: {
  models: readonly KepModelName[];
  widths: KepWidths;
  layers: readonly string[];
  lenet5Layers: readonly string[];
  n: readonly number[];
  lenet5N: readonly number[];
  fullGrid: boolean;
}): KepModelSpec[] {
  return o.models.map((m) => {
    const lenet = m === "lenet5";
    const arch: KepArch = lenet ? { model: "lenet5" } : { widths: o.widths };
    const k = kepKernelSize(arch);
    return {
      arch,
      layers: (lenet ? o.lenet5Layers : o.layers).map((l) => `${l}.weight`),
      ns: o.fullGrid
        ? Array.from({ length: k * k }, (_, i) => i + 1)
        : [...(lenet ? o.lenet5N : o.n)],
    };
  });
}

export interface KepSweepOptions {
  datasets: string[];
  seeds: number[];
  models: KepModelSpec[];
  methods: KepMethod[];
  /** Mask scores; each is a separate set of points. */
  scores: KepScore[];
  /** Batches of the Taylor score. */
  taylorBatches: number;
  /** Penalty variants of the KEP methods: true = with the ramp, false = cut at once. */
  penalty: boolean[];
  /** Also run the baselines with the penalty ramp (default: only without). */
  baselinePenalty: boolean;
  librarySize: number;
  /** Connectivity sparsity: fraction of planes removed per layer (0: none). */
  planeFraction: number;
  lambda: number;
  rampPower: number;
  denseEpochs: number;
  penaltyEpochs: number;
  fineTuneEpochs: number;
  lr: number;
  batchSize: number;
}

/**
 * The point's key: "<dataset>-<method>-n<n>[-p<fraction>][-taylor]-<cut|ramp>-s<seed>" for the
 * narrow CNN (as before LeNet-5 joined, so its stored points are found again), with
 * "-lenet5" after the dataset for LeNet-5 ("mnist-lenet5-kep-free-n5-cut-s1").
 */
export function kepPointKey(c: KepPointConfig): string {
  const model = c.dense.model === undefined ? "" : `-${c.dense.model}`;
  const planes = c.planeFraction > 0 ? `-p${c.planeFraction}` : "";
  const score = c.score === "magnitude" ? "" : `-${c.score}`;
  return `${c.dataset}${model}-${c.method}-n${c.n}${planes}${score}-${c.penalty === null ? "cut" : "ramp"}-s${c.seed}`;
}

/**
 * Every point of the sweep, in a fixed order (models, datasets, seeds, n, scores, methods,
 * penalty). Refuses an n outside 1..k² of a model's pruned layers (before anything runs).
 */
export function kepSweepConfigs(o: KepSweepOptions): KepPointConfig[] {
  const out: KepPointConfig[] = [];
  for (const m of o.models) {
    const k2 = kepKernelSize(m.arch) ** 2;
    for (const n of m.ns)
      if (!Number.isSafeInteger(n) || n < 1 || n > k2)
        throw new RangeError(
          `kepSweepConfigs: n must be an integer in 1..${k2} for ${kepModelName(m.arch)} (k x k planes), got ${String(n)}`,
        );
  }
  for (const m of o.models)
    for (const dataset of o.datasets)
      for (const seed of o.seeds)
        for (const n of m.ns)
          for (const score of o.scores)
            for (const method of o.methods) {
              const kep = method === "kep-free" || method === "kep-pattern";
              const variants = kep ? o.penalty : o.baselinePenalty ? o.penalty : [false];
              for (const withPenalty of [...new Set(variants)])
                out.push({
                  dataset,
                  seed,
                  method,
                  n,
                  score,
                  taylorBatches: o.taylorBatches,
                  librarySize: o.librarySize,
                  planeFraction: o.planeFraction,
                  layers: [...m.layers],
                  penalty: withPenalty ? { lambda: o.lambda, power: o.rampPower } : null,
                  penaltyEpochs: o.penaltyEpochs,
                  fineTuneEpochs: o.fineTuneEpochs,
                  lr: o.lr,
                  batchSize: o.batchSize,
                  // The architecture first after the dataset: the narrow CNN's config keeps its
                  // field order (dataset, widths, ...), so stored points compare equal.
                  dense: {
                    dataset,
                    ...m.arch,
                    epochs: o.denseEpochs,
                    lr: o.lr,
                    batchSize: o.batchSize,
                    seed,
                  },
                });
            }
  return out;
}

/** Where the dense model of a point lives under `denseDir`. */
export function denseDirOf(denseDir: string, c: KepPointConfig): string {
  const d = c.dense;
  const arch =
    d.model === undefined ? `c${d.widths.channels.join("x")}-h${d.widths.hidden}` : d.model;
  return join(denseDir, `${c.dataset}-${arch}-s${c.seed}`);
}

/**
 * Trains the dense models the configurations need (each once; already trained ones are
 * loaded), so that shards started afterwards find them: `pnpm kep-sweep --dense-only`.
 */
export async function trainKepDenseModels(
  configs: readonly KepPointConfig[],
  io: {
    denseDir: string;
    splits: (name: DatasetName) => Promise<SplitPair>;
    pool?: MatrixPool;
    arena?: BufferArena;
    progress?: (t: string) => void;
  },
): Promise<{ dir: string; accuracy: number }[]> {
  const out: { dir: string; accuracy: number }[] = [];
  const seen = new Set<string>();
  for (const c of configs) {
    const dir = denseDirOf(io.denseDir, c);
    if (seen.has(dir)) continue;
    seen.add(dir);
    const { train, test } = await io.splits(c.dataset as DatasetName);
    const progress = (t: string) => io.progress?.(`${dir}: ${t}`);
    out.push({
      dir,
      accuracy: denseKepModel(c.dense, {
        train,
        test,
        dir,
        pool: io.pool,
        arena: io.arena,
        progress,
      }).accuracy,
    });
  }
  return out;
}

/**
 * Runs (this shard of) the sweep into `out`: points/<key>.json per finished point; the dense
 * models under `denseDir` (default `<out>/dense`; shards may share one, a model another shard
 * is training is waited for).
 */
export async function runKepSweep(
  configs: readonly KepPointConfig[],
  io: {
    out: string;
    denseDir?: string;
    shard?: Shard;
    splits: (name: DatasetName) => Promise<SplitPair>;
    pool?: MatrixPool;
    /** Every training step runs inside it (reused step arrays; the same numbers bit for bit). */
    arena?: BufferArena;
    progress?: SweepSpec<KepPointConfig, KepPointResult>["progress"];
  },
): Promise<SweepOutcome<KepPointConfig, KepPointResult>> {
  return runSweep<KepPointConfig, KepPointResult>({
    dir: io.out,
    name: "kep-sweep",
    configs,
    key: kepPointKey,
    shard: io.shard,
    progress: io.progress,
    run: async (c, ctx) => {
      const { train, test } = await io.splits(c.dataset as DatasetName);
      const d = c.dense;
      const denseDir = denseDirOf(io.denseDir ?? join(io.out, "dense"), c);
      const dense = () =>
        denseKepModel(d, {
          train,
          test,
          dir: denseDir,
          pool: io.pool,
          arena: io.arena,
          progress: ctx.progress,
        });
      return runKepPoint(c, {
        train,
        test,
        dense,
        freshModel: () => kepModel(d, train.inputShape, 0),
        scratchDir: ctx.scratchDir,
        pool: io.pool,
        arena: io.arena,
        progress: ctx.progress,
      });
    },
  });
}
