// One chain of the block-pruning protocol (Huang et al. 2021, method 1 of
// shared/reference/papers.md): start from a trained dense LeNet-300-100, then for each round
// remove a fixed fraction of each layer's alive b x b tiles (20% of the hidden layers', 10% of
// the output layer's), measure the accuracy right after the cut, fine-tune with the mask
// fixed (Adam, or AdamW when the budget has a weight decay), and measure again. Each round
// continues from the previous round's result (the last one, not the "best" one: the authors
// select on the test set, which we do not copy).
//
// A chain checkpoints after every round (model + masks in torch.nn.utils.prune naming, and
// the rows so far), so a killed chain resumes at the round it was in. The same function
// serves the sweep (experiments/block-sweep.ts) and the main job (experiments/start.ts).
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Generator } from "@tessera/tensor";
import type { BufferArena } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import {
  Adam,
  AdamW,
  constantLr,
  cosineLr,
  evaluate,
  fit,
  loadSafetensors,
  type Dataset,
  type Module,
  type ProgressReporter,
} from "@tessera/nn";
import {
  PruningState,
  loadPruned,
  savePruned,
  storageBytes,
  type GroupKind,
} from "@tessera/pruning";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { OptionError } from "./cli.ts";

/** The LeNet-300-100 layers the paper prunes, with their per-round removal rates. */
export const LENET300100_LAYERS = [
  { name: "fc1.weight", shape: [300, 784], hidden: true },
  { name: "fc2.weight", shape: [100, 300], hidden: true },
  { name: "fc3.weight", shape: [10, 100], hidden: false },
] as const;

export type BlockMethod = "magnitude" | "random";
export const BLOCK_METHODS: readonly BlockMethod[] = ["magnitude", "random"];

export interface FineTuneConfig {
  /** Epochs of masked fine-tuning after each round's cut. */
  epochs: number;
  /** Adam learning rate (cosine-decayed to 0 over each round's epochs when schedule is "cosine"). */
  lr: number;
  schedule: "constant" | "cosine";
  batchSize: number;
  /**
   * A longer budget for the late rounds: from round `fromRound` on, each round fine-tunes for
   * `late.epochs` epochs instead of `epochs`. Absent: every round gets the same budget (the
   * sweep's default; chains run before this field existed have the same config and key).
   */
  late?: { fromRound: number; epochs: number };
  /**
   * Decoupled weight decay (AdamW: w *= 1 - lr * weightDecay each step) during fine-tuning.
   * Absent: plain Adam without decay (every chain run before this field existed).
   */
  weightDecay?: number;
}

/**
 * Parses a late budget written "<round>:<epochs>" ("11:8": from round 11 on, 8 epochs per
 * round), for a command-line option; the error names the option.
 */
export function parseLateBudget(
  option: string,
  value: string,
): { fromRound: number; epochs: number } {
  const m = /^(\d+):(\d+)$/.exec(value.trim());
  const fromRound = m === null ? NaN : Number(m[1]);
  const epochs = m === null ? NaN : Number(m[2]);
  const ok = (n: number) => Number.isSafeInteger(n) && n >= 1;
  if (!ok(fromRound) || !ok(epochs))
    throw new OptionError(option, "<round>:<epochs>, two integers >= 1 (e.g. 11:8)", value);
  return { fromRound, epochs };
}

/** Fine-tuning epochs of round r under a budget (the late budget from its round on). */
export function fineTuneEpochs(ft: FineTuneConfig, round: number): number {
  return ft.late !== undefined && round >= ft.late.fromRound ? ft.late.epochs : ft.epochs;
}

/** Fine-tuning learning rate of the sweep's chains unless --ft-lr says otherwise. */
export const DEFAULT_FT_LR = 1e-3;
/** Fine-tuning batch size of the sweep's chains unless --ft-batch says otherwise. */
export const DEFAULT_FT_BATCH = 128;

/**
 * A chain's key: dataset, tile size, method and seed, then its budget where it differs from the
 * plain one (`-late<round>x<epochs>`, `-lr<x>`, `-wd<x>`, `-bs<n>`), so chains run before
 * these options existed keep the keys they were stored under.
 */
export function chainKey(c: ChainConfig): string {
  const late = c.fineTune.late;
  const budget = late === undefined ? "" : `-late${late.fromRound}x${late.epochs}`;
  const lr = c.fineTune.lr === DEFAULT_FT_LR ? "" : `-lr${c.fineTune.lr}`;
  const wd = c.fineTune.weightDecay === undefined ? "" : `-wd${c.fineTune.weightDecay}`;
  const bs = c.fineTune.batchSize === DEFAULT_FT_BATCH ? "" : `-bs${c.fineTune.batchSize}`;
  return `${c.dataset}-b${c.blockSize}-${c.method}-s${c.seed}${budget}${lr}${wd}${bs}`;
}

export interface ChainConfig {
  dataset: string;
  /** Tile size b (b x b tiles from (0,0), ragged at the edges); 1 = element-wise pruning. */
  blockSize: number;
  /** "magnitude": the paper's mean |w| per tile; "random": seeded random tile scores. */
  method: BlockMethod;
  seed: number;
  rounds: number;
  /** Fraction of alive tiles removed per round: hidden layers, output layer. */
  rates: { hidden: number; output: number };
  fineTune: FineTuneConfig;
}

/** One round's outcome. Accuracies are test-set fractions. */
export interface RoundRow {
  round: number;
  /** Kept weights / all weights over the three pruned matrices. */
  density: number;
  keptWeights: number;
  /** Kept weights / all weights per layer ("fc1.weight" ...). */
  layerDensity: Record<string, number>;
  accuracyPruned: number;
  accuracyFineTuned: number;
  trainLossFineTuned: number;
  /** Storage of the three pruned weight matrices (float32 values, int32 indices). */
  bytes: { dense: number; csr: number; bsr: number };
  fineTuneSeconds: number;
}

export interface ChainResult {
  denseAccuracy: number;
  rounds: RoundRow[];
}

export function blockKind(blockSize: number): GroupKind {
  return blockSize === 1
    ? { kind: "element" }
    : { kind: "block", rows: blockSize, cols: blockSize };
}

/** Starts a PruningState over the three LeNet-300-100 weights with b x b tiles. */
export function lenetPruningState(model: Module, blockSize: number): PruningState {
  const kind = blockKind(blockSize);
  return new PruningState(model, Object.fromEntries(LENET300100_LAYERS.map((l) => [l.name, kind])));
}

/** Dense / CSR / BSR bytes of the pruned weights under the state's masks. */
export function stateBytes(
  state: PruningState,
  blockSize: number,
): { dense: number; csr: number; bsr: number } {
  const out = { dense: 0, csr: 0, bsr: 0 };
  for (const l of LENET300100_LAYERS) {
    const b = storageBytes(state.mask(l.name), l.shape, [blockSize, blockSize]);
    out.dense += b.dense;
    out.csr += b.csr;
    out.bsr += b.bsr;
  }
  return out;
}

export interface ChainIo {
  train: Dataset;
  test: Dataset;
  /** Builds the dense starting model (already trained); called once unless resuming past round 0. */
  denseModel: () => Module;
  /** A model of the same architecture to load a round checkpoint into. */
  freshModel: () => Module;
  /** Where round checkpoints and rows are kept (survives a kill). */
  dir: string;
  pool?: MatrixPool;
  /** Every fine-tuning step runs inside it (reused step arrays; the same numbers bit for bit). */
  arena?: BufferArena;
  /** Per-round progress text ("round 3/16: 51.3% ..."). */
  progress?: (text: string) => void;
  /** Fit's progress reporter for the fine-tuning epochs (default: silent). */
  fitProgress?: ProgressReporter | boolean;
  evalBatchSize?: number;
}

const ROWS_FILE = "rounds.json";
const roundFile = (r: number) => `round-${String(r).padStart(2, "0")}.safetensors`;

function writeJson(path: string, value: unknown): void {
  writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
}

/** The last round whose checkpoint and row were both written, with the rows so far. */
function resumePoint(dir: string): { rows: RoundRow[]; denseAccuracy: number } | null {
  const path = join(dir, ROWS_FILE);
  if (!existsSync(path)) return null;
  const saved = JSON.parse(readFileSync(path, "utf8")) as {
    denseAccuracy: number;
    rows: RoundRow[];
  };
  // Rows are written after the round's checkpoint, so every row has its checkpoint.
  const have = new Set(readdirSync(dir));
  const rows = saved.rows.filter((r) => have.has(roundFile(r.round)));
  return { rows, denseAccuracy: saved.denseAccuracy };
}

/**
 * Runs (or resumes) one chain and returns every round's row. Deterministic: the shuffling of
 * round r's fine-tuning and the random baseline's tile scores are seeded from (seed, r), so a
 * resumed chain gives the same numbers as an uninterrupted one.
 */
export function runChain(config: ChainConfig, io: ChainIo): ChainResult {
  mkdirSync(io.dir, { recursive: true });
  const evalBatchSize = io.evalBatchSize ?? 1000;
  const resumed = resumePoint(io.dir);
  let model: Module;
  let state: PruningState;
  let rows: RoundRow[];
  let denseAccuracy: number;
  if (resumed !== null && resumed.rows.length > 0) {
    rows = resumed.rows;
    denseAccuracy = resumed.denseAccuracy;
    model = io.freshModel();
    const path = join(io.dir, roundFile(rows.length));
    const loaded = loadPruned(path, model).state;
    if (loaded === null) throw new Error(`runChain: ${path} holds no pruning masks`);
    state = loaded;
  } else {
    model = io.denseModel();
    denseAccuracy = evaluate(model, io.test, { batchSize: evalBatchSize, pool: io.pool }).accuracy;
    state = lenetPruningState(model, config.blockSize);
    rows = [];
  }
  const rates = Object.fromEntries(
    LENET300100_LAYERS.map((l) => [l.name, l.hidden ? config.rates.hidden : config.rates.output]),
  );
  const ft = config.fineTune;
  const stepsPerEpoch = Math.ceil(io.train.count / ft.batchSize);
  for (let round = rows.length + 1; round <= config.rounds; round++) {
    const roundSeed = config.seed * 1000 + round;
    state.pruneFraction(
      rates,
      config.method === "random"
        ? { score: "random", generator: new Generator(roundSeed) }
        : { score: "mean-abs" },
    );
    const accuracyPruned = evaluate(model, io.test, {
      batchSize: evalBatchSize,
      pool: io.pool,
    }).accuracy;
    io.progress?.(
      `round ${round}/${config.rounds}: density ${(100 * state.density()).toFixed(1)}%, ` +
        `pruned ${(100 * accuracyPruned).toFixed(2)}%, fine-tuning`,
    );
    const epochs = fineTuneEpochs(ft, round);
    const lr =
      ft.schedule === "cosine"
        ? cosineLr({ lr: ft.lr, totalSteps: epochs * stepsPerEpoch })
        : constantLr(ft.lr);
    // A fresh optimizer per round: the state of the pruned positions would be cleared by
    // attach anyway, and a per-round optimizer keeps the round checkpoint to model + masks.
    const optimizer =
      ft.weightDecay === undefined
        ? new Adam(model.parameters(), { lr })
        : new AdamW(model.parameters(), { lr, weightDecay: ft.weightDecay });
    state.attach(optimizer);
    const t0 = performance.now();
    const { history } = fit(model, {
      train: io.train,
      epochs,
      batchSize: ft.batchSize,
      optimizer,
      seed: roundSeed,
      pool: io.pool,
      arena: io.arena,
      progress: io.fitProgress ?? false,
    });
    const fineTuneSeconds = (performance.now() - t0) / 1000;
    state.detach(optimizer);
    const accuracyFineTuned = evaluate(model, io.test, {
      batchSize: evalBatchSize,
      pool: io.pool,
    }).accuracy;
    const row: RoundRow = {
      round,
      density: state.density(),
      keptWeights: state.keptCount(),
      layerDensity: Object.fromEntries(state.densities()),
      accuracyPruned,
      accuracyFineTuned,
      trainLossFineTuned: history[history.length - 1]!.trainLoss,
      bytes: stateBytes(state, config.blockSize),
      fineTuneSeconds,
    };
    rows = [...rows, row];
    savePruned(join(io.dir, roundFile(round)), model, state, {
      round: String(round),
      config: JSON.stringify(config),
    });
    writeJson(join(io.dir, ROWS_FILE), { denseAccuracy, rows });
    io.progress?.(
      `round ${round}/${config.rounds}: density ${(100 * row.density).toFixed(1)}%, ` +
        `pruned ${(100 * accuracyPruned).toFixed(2)}% -> fine-tuned ${(100 * accuracyFineTuned).toFixed(2)}%`,
    );
  }
  return { denseAccuracy, rounds: rows };
}

/** Path of round r's checkpoint in a chain directory (for the speed experiment). */
export function chainCheckpoint(dir: string, round: number): string {
  return join(dir, roundFile(round));
}

/**
 * Starts a late-budget chain (config.fineTune.late) from a finished plain chain's rounds: the
 * rounds before the late budget's first are the plain protocol, and a chain resumed from round
 * checkpoints gives the numbers of an uninterrupted one (tested), so copying them saves their
 * epochs without changing a number. Copies round checkpoints 1..fromRound-1 and their rows
 * from `plainDir` into `dir` (only when `dir` holds no rows yet), after checking that the plain
 * chain's stored config is this config without `late`. Returns the number of rounds copied (0
 * when `dir` already has rows or the plain chain has not reached fromRound-1).
 */
export function branchChain(config: ChainConfig, plainDir: string, dir: string): number {
  const late = config.fineTune.late;
  if (late === undefined)
    throw new Error("branchChain: config.fineTune.late is not set; only a late budget branches");
  if (resumePoint(dir)?.rows.length) return 0;
  const plain = resumePoint(plainDir);
  const upto = late.fromRound - 1;
  if (plain === null || plain.rows.length < upto || upto === 0) return 0;
  const { late: _late, ...plainFineTune } = config.fineTune;
  const expected = JSON.stringify({ ...config, fineTune: plainFineTune });
  const path = join(plainDir, roundFile(upto));
  const stored = loadSafetensors(path).metadata.config;
  if (stored === undefined || JSON.stringify(JSON.parse(stored)) !== expected)
    throw new Error(
      `branchChain: ${path} was written by config ${stored ?? "(none)"}, expected ${expected}`,
    );
  mkdirSync(dir, { recursive: true });
  for (let r = 1; r <= upto; r++)
    copyFileSync(join(plainDir, roundFile(r)), join(dir, roundFile(r)));
  writeJson(join(dir, ROWS_FILE), {
    denseAccuracy: plain.denseAccuracy,
    rows: plain.rows.slice(0, upto),
  });
  return upto;
}
