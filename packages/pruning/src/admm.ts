// ADMM pruning (StructADMM, method 3 of shared/reference/papers.md) on the pruning frame.
//
// minimise loss(W) subject to W_i in S_i. With Z_i (the projected copy) and U_i (the scaled
// dual), one ADMM iteration is: train W for E epochs on loss + sum_i rho_i/2 ||W_i − Z_i + U_i||²
// (the penalty's gradient rho_i (W_i − Z_i + U_i) is added to .grad in fit's beforeStep, no
// graph is built for it); Z_i = Proj_Si(W_i + U_i); U_i = U_i + W_i − Z_i; rho_i *= growth.
// Then the hard prune: a PruningState whose masks are Z's support, so masks, checkpoints and
// BSR conversion work exactly as for every other method here, and masked retraining with a
// new optimizer (the authors' "reset momentum").
//
// Z and U are float64 (they accumulate differences of weights over many iterations); the
// penalty is added to the float32 gradient elementwise, in a fixed order, so runs are
// bitwise reproducible.
import { renameSync, writeFileSync, existsSync } from "node:fs";
import type { BufferArena, Variable } from "@tessera/autograd";
import type { MatrixPool } from "@tessera/matrix";
import {
  evaluate,
  fit,
  loadSafetensors,
  recordToTensor,
  saveSafetensors,
  tensorToRecord,
  type Dataset,
  type Module,
  type Optimizer,
  type TensorRecord,
} from "@tessera/nn";
import { pruningFromRecords, pruningToRecords } from "./checkpoint.ts";
import { project, type AdmmConstraint } from "./projection.ts";
import { PruningState, type PruneSpec } from "./state.ts";

export interface AdmmLayerConfig {
  readonly constraint: AdmmConstraint;
  /** Penalty weight rho_i (the authors' code: 1e-4 .. 7e-3). */
  readonly rho: number;
}

export interface AdmmConfig {
  /** Parameter name ("conv2.weight") -> its constraint set and rho. */
  readonly layers: Record<string, AdmmLayerConfig> | Map<string, AdmmLayerConfig>;
  /** rho_i is multiplied by this after every ADMM update (default 1: fixed rho). */
  readonly rhoGrowth?: number;
  /** Upper bound on rho_i after growth (default Infinity). */
  readonly rhoMax?: number;
}

interface Layer {
  name: string;
  param: Variable;
  shape: number[];
  constraint: AdmmConstraint;
  rho: number;
  z: Float64Array;
  u: Float64Array;
  /** Z's support (the kept groups of the last projection), for the hard prune. */
  mask: Float32Array;
}

/** One ADMM update's record per layer. */
export interface AdmmLayerLog {
  name: string;
  /** ||W − Z|| / ||W|| right after the update (the primal residual the papers plot). */
  residual: number;
  /** rho used in the epochs before this update (growth applies after it). */
  rho: number;
}

function checkPositiveFinite(fn: string, what: string, v: number): number {
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v))
    throw new RangeError(`${fn}: ${what} must be a positive finite number, got ${String(v)}`);
  return v;
}

/** The frame's group kind for the hard prune of a constraint (filterColumn: elements). */
export function constraintKind(constraint: AdmmConstraint): PruneSpec {
  // The frame has one group kind per parameter; the intersection of rows and columns is
  // not one of them, so its mask (kept rows x kept columns) is held as element groups.
  // compactModel later removes the dead rows and columns whatever kind the mask has.
  return constraint.set.kind === "filterColumn" ? { kind: "element" } : constraint.set;
}

/**
 * Per-layer ADMM state: Z, U, rho and the number of updates done. Construction sets
 * Z = Proj(W) from the current (pretrained) weights and U = 0.
 */
export class AdmmPruner {
  readonly model: Module;
  readonly rhoGrowth: number;
  readonly rhoMax: number;
  /** ADMM updates (Z, U steps) done so far. */
  iteration = 0;
  private readonly layers: Layer[] = [];

  constructor(model: Module, config: AdmmConfig) {
    const fn = "AdmmPruner";
    this.model = model;
    this.rhoGrowth = checkPositiveFinite(fn, "rhoGrowth", config.rhoGrowth ?? 1);
    this.rhoMax = config.rhoMax ?? Infinity;
    if (typeof this.rhoMax !== "number" || !(this.rhoMax > 0))
      throw new RangeError(`${fn}: rhoMax must be > 0, got ${String(config.rhoMax)}`);
    const entries =
      config.layers instanceof Map ? [...config.layers] : Object.entries(config.layers);
    if (entries.length === 0) throw new Error(`${fn}: no layers to prune (config.layers is empty)`);
    for (const [name, lc] of entries) {
      const param = model.getParameter(name);
      const rho = checkPositiveFinite(fn, `rho of "${name}"`, lc.rho);
      const shape = [...param.shape];
      const p = project(param.data.data as ArrayLike<number>, shape, lc.constraint);
      this.layers.push({
        name,
        param,
        shape,
        constraint: lc.constraint,
        rho,
        z: p.values,
        u: new Float64Array(p.values.length),
        mask: p.mask,
      });
    }
  }

  names(): string[] {
    return this.layers.map((l) => l.name);
  }

  rho(name: string): number {
    return this.layer("rho", name).rho;
  }

  z(name: string): Float64Array {
    return this.layer("z", name).z;
  }

  u(name: string): Float64Array {
    return this.layer("u", name).u;
  }

  private layer(fn: string, name: string): Layer {
    const l = this.layers.find((x) => x.name === name);
    if (l === undefined)
      throw new Error(
        `AdmmPruner.${fn}: "${name}" is not an ADMM layer; the layers are ${this.names().join(", ")}`,
      );
    return l;
  }

  /**
   * Adds rho_i (W_i − Z_i + U_i) to each ADMM layer's gradient in place: the gradient of the
   * penalty rho_i/2 ||W_i − Z_i + U_i||². Call after backward, before the optimizer step
   * (fit's beforeStep).
   */
  addPenaltyGradients(): void {
    for (const l of this.layers) {
      const g = l.param.grad;
      if (g === null)
        throw new Error(
          `AdmmPruner.addPenaltyGradients: "${l.name}" has no gradient; call it after backward() and before the optimizer step`,
        );
      const gd = g.data as Float32Array | Float64Array;
      const w = l.param.data.data as Float32Array | Float64Array;
      for (let i = 0; i < w.length; i++) gd[i]! += l.rho * (w[i]! - l.z[i]! + l.u[i]!);
    }
  }

  /** ||W − Z|| / ||W|| per layer (0 for an all-zero W equal to Z). */
  residuals(): Map<string, number> {
    const out = new Map<string, number>();
    for (const l of this.layers) {
      const w = l.param.data.data as ArrayLike<number>;
      let d = 0;
      let n = 0;
      for (let i = 0; i < w.length; i++) {
        d += (w[i]! - l.z[i]!) ** 2;
        n += w[i]! * w[i]!;
      }
      out.set(l.name, n === 0 ? Math.sqrt(d) : Math.sqrt(d / n));
    }
    return out;
  }

  /**
   * The ADMM update: Z = Proj(W + U); U = U + W − Z; then rho *= growth (capped at rhoMax),
   * with U rescaled by rho_old / rho_new (the scaled dual keeps its meaning).
   */
  update(): AdmmLayerLog[] {
    const rhos = this.layers.map((l) => l.rho);
    for (const l of this.layers) {
      const w = l.param.data.data as ArrayLike<number>;
      const v = new Float64Array(w.length);
      for (let i = 0; i < w.length; i++) v[i] = w[i]! + l.u[i]!;
      const p = project(v, l.shape, l.constraint);
      l.z = p.values;
      l.mask = p.mask;
      const rho = Math.min(l.rho * this.rhoGrowth, this.rhoMax);
      // U is the scaled dual lambda / rho: when rho changes, U is rescaled by rho_old / rho_new
      // so the dual lambda itself is unchanged (Boyd et al. 2011, sec. 3.4.1). Without it, a
      // growing rho multiplies the accumulated dual and pushes Z away from W.
      const scale = l.rho / rho;
      for (let i = 0; i < w.length; i++) l.u[i] = (l.u[i]! + w[i]! - l.z[i]!) * scale;
      l.rho = rho;
    }
    this.iteration++;
    const res = this.residuals();
    return this.layers.map((l, i) => ({ name: l.name, residual: res.get(l.name)!, rho: rhos[i]! }));
  }

  /**
   * The hard prune: a PruningState over the ADMM layers whose masks are Z's support (the
   * groups the last projection kept), applied to the weights. Group kinds: the constraint's
   * set (filterColumn: elements, see constraintKind).
   */
  hardPrune(): PruningState {
    const state = new PruningState(
      this.model,
      new Map(this.layers.map((l) => [l.name, constraintKind(l.constraint)])),
    );
    for (const l of this.layers) state.setMask(l.name, l.mask);
    state.apply();
    return state;
  }

  /**
   * Z, U (F64) and Z's support mask (F32) as records "<prefix>z.<name>", "<prefix>u.<name>",
   * "<prefix>mask.<name>", and rho per layer plus the iteration as metadata "<prefix>state"
   * (rho is stored as a decimal string that round-trips exactly).
   */
  toRecords(prefix = "admm."): {
    records: Map<string, TensorRecord>;
    metadata: Record<string, string>;
  } {
    const records = new Map<string, TensorRecord>();
    for (const l of this.layers) {
      records.set(`${prefix}z.${l.name}`, { dtype: "F64", shape: l.shape, data: l.z.slice() });
      records.set(`${prefix}u.${l.name}`, { dtype: "F64", shape: l.shape, data: l.u.slice() });
      records.set(`${prefix}mask.${l.name}`, {
        dtype: "F32",
        shape: l.shape,
        data: l.mask.slice(),
      });
    }
    const state = {
      iteration: this.iteration,
      rho: Object.fromEntries(this.layers.map((l) => [l.name, l.rho])),
    };
    return { records, metadata: { [`${prefix}state`]: JSON.stringify(state) } };
  }

  /** Restores Z, U, the support, rho and the iteration from toRecords' output. */
  loadRecords(
    records: ReadonlyMap<string, TensorRecord>,
    metadata: Record<string, string>,
    prefix = "admm.",
  ): void {
    const fn = "AdmmPruner.loadRecords";
    const json = metadata[`${prefix}state`];
    if (json === undefined) throw new Error(`${fn}: no metadata "${prefix}state"`);
    const st = JSON.parse(json) as { iteration: number; rho: Record<string, number> };
    for (const l of this.layers) {
      const get = (kind: string, dtype: string): TensorRecord => {
        const r = records.get(`${prefix}${kind}.${l.name}`);
        if (r === undefined) throw new Error(`${fn}: no record "${prefix}${kind}.${l.name}"`);
        if (r.dtype !== dtype || r.data.length !== l.z.length)
          throw new Error(
            `${fn}: "${prefix}${kind}.${l.name}" is ${r.dtype} of ${r.data.length} elements, expected ${dtype} of ${l.z.length}`,
          );
        return r;
      };
      const rho = st.rho[l.name];
      if (typeof rho !== "number") throw new Error(`${fn}: no rho for "${l.name}" in the metadata`);
      l.z = Float64Array.from(get("z", "F64").data as Float64Array);
      l.u = Float64Array.from(get("u", "F64").data as Float64Array);
      l.mask = Float32Array.from(get("mask", "F32").data as Float32Array);
      l.rho = rho;
    }
    this.iteration = st.iteration;
  }
}

/** One line of an ADMM run's log (the JSONL file holds these in order). */
export type AdmmLogLine =
  | {
      event: "admm";
      iteration: number;
      trainLoss: number;
      layers: AdmmLayerLog[];
      testLoss?: number;
      testAccuracy?: number;
      seconds: number;
    }
  | {
      event: "hardPrune";
      density: number;
      kept: Record<string, number>;
      testLoss?: number;
      testAccuracy?: number;
    }
  | {
      event: "retrain";
      epoch: number;
      trainLoss: number;
      testLoss?: number;
      testAccuracy?: number;
      seconds: number;
    };

export interface AdmmRunOptions {
  train: Dataset;
  /** Evaluated after every ADMM iteration, after the hard prune and after each retraining epoch. */
  test?: Dataset;
  /** K: ADMM updates. */
  iterations: number;
  /** E: training epochs before each update. */
  epochsPerIteration: number;
  /** Masked retraining epochs after the hard prune (0: none). */
  retrainEpochs: number;
  batchSize: number;
  /** fit's seed for ADMM iteration i is seed + i; for retraining seed + iterations + 1. */
  seed: number;
  /**
   * Makes the optimizer: once for the ADMM phase, and again for retraining (the authors'
   * "reset momentum": no Adam moments carried over from the penalised phase).
   */
  optimizer: (params: Variable[]) => Optimizer;
  /**
   * Makes the retraining optimizer when it should differ from the ADMM phase's (a lower learning
   * rate, say); default `optimizer`.
   */
  retrainOptimizer?: (params: Variable[]) => Optimizer;
  /**
   * Checkpoint file (safetensors): written after every ADMM iteration and every retraining
   * epoch; when it exists the run resumes from it.
   */
  checkpoint?: string;
  /** JSONL log, rewritten from the checkpointed history each time (so a resume never duplicates lines). */
  logFile?: string;
  pool?: MatrixPool;
  /**
   * Run every training step inside this arena (fit's `arena` option: the step's arrays are
   * reused by the next; the same numbers bit for bit). Default none.
   */
  arena?: BufferArena;
  /** Called after each line is logged and checkpointed (a throw here acts like a kill). */
  onLog?: (line: AdmmLogLine) => void;
}

export interface AdmmRunResult {
  pruner: AdmmPruner;
  state: PruningState;
  log: AdmmLogLine[];
}

function layerConfig(config: AdmmConfig, name: string): AdmmLayerConfig {
  return config.layers instanceof Map
    ? config.layers.get(name)!
    : (config.layers as Record<string, AdmmLayerConfig>)[name]!;
}

function writeTextAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * The whole ADMM pruning run on `model` (already pretrained): K iterations of E epochs with
 * the penalty, the hard prune, and masked retraining with a fresh optimizer. Resumable from
 * `options.checkpoint` (model, optimizer, Z, U, rho, iteration, masks and the log so far):
 * a resumed run gives the same numbers as an uninterrupted one.
 */
export function runAdmm(model: Module, config: AdmmConfig, options: AdmmRunOptions): AdmmRunResult {
  const fn = "runAdmm";
  for (const k of ["iterations", "epochsPerIteration", "retrainEpochs", "batchSize"] as const) {
    const v = options[k];
    const min = k === "retrainEpochs" || k === "iterations" ? 0 : 1;
    if (!Number.isSafeInteger(v) || v < min)
      throw new RangeError(`${fn}: ${k} must be an integer >= ${min}, got ${String(v)}`);
  }
  const pruner = new AdmmPruner(model, config);
  let optimizer = options.optimizer(model.parameters());
  let state: PruningState | null = null;
  let log: AdmmLogLine[] = [];
  let retrainDone = 0;

  // Everything that decides the numbers; a checkpoint made under another setting is refused.
  const identity = JSON.stringify({
    layers: pruner.names().map((n) => [n, layerConfig(config, n)]),
    rhoGrowth: pruner.rhoGrowth,
    rhoMax: String(pruner.rhoMax),
    iterations: options.iterations,
    epochsPerIteration: options.epochsPerIteration,
    retrainEpochs: options.retrainEpochs,
    batchSize: options.batchSize,
    seed: options.seed,
  });
  if (options.checkpoint !== undefined && existsSync(options.checkpoint)) {
    const file = loadSafetensors(options.checkpoint);
    const meta = file.metadata;
    if (meta["admm.config"] !== identity)
      throw new Error(
        `${fn}: ${options.checkpoint} was written by a run with another configuration (${meta["admm.config"]}), this one is ${identity}; use another checkpoint path or delete it`,
      );
    const modelState = new Map<string, ReturnType<typeof recordToTensor>>();
    const optState = new Map<string, TensorRecord>();
    for (const [k, r] of file.tensors) {
      if (k.startsWith("model.")) modelState.set(k.slice(6), recordToTensor(r, k));
      if (k.startsWith("optimizer.")) optState.set(k.slice(10), r);
    }
    model.loadStateDict(modelState);
    pruner.loadRecords(file.tensors, meta);
    log = JSON.parse(meta["admm.log"] ?? "[]") as AdmmLogLine[];
    if (meta["admm.phase"] === "retrain") {
      state = pruningFromRecords(model, file.tensors, meta);
      if (state === null) throw new Error(`${fn}: checkpoint in the retrain phase has no masks`);
      optimizer = (options.retrainOptimizer ?? options.optimizer)(model.parameters());
      state.attach(optimizer);
      retrainDone = Number(meta["admm.retrainEpochs"]);
    }
    optimizer.loadStateDict(optState);
  }

  const save = (phase: "admm" | "retrain"): void => {
    if (options.checkpoint === undefined && options.logFile === undefined) return;
    if (options.logFile !== undefined)
      writeTextAtomic(options.logFile, log.map((l) => JSON.stringify(l)).join("\n") + "\n");
    if (options.checkpoint === undefined) return;
    const records = new Map<string, TensorRecord>();
    for (const [n, t] of model.stateDict()) records.set(`model.${n}`, tensorToRecord(t));
    for (const [n, r] of optimizer.stateDict()) records.set(`optimizer.${n}`, r);
    const a = pruner.toRecords();
    for (const [k, r] of a.records) records.set(k, r);
    let metadata: Record<string, string> = {
      ...a.metadata,
      "admm.config": identity,
      "admm.phase": phase,
      "admm.retrainEpochs": String(retrainDone),
      "admm.log": JSON.stringify(log),
    };
    if (state !== null) {
      const p = pruningToRecords(state);
      for (const [k, r] of p.records) records.set(k, r);
      metadata = { ...metadata, ...p.metadata };
    }
    saveSafetensors(options.checkpoint, records, metadata);
  };
  const emit = (line: AdmmLogLine, phase: "admm" | "retrain"): void => {
    log.push(line);
    save(phase);
    options.onLog?.(line);
  };
  const testMetrics = (): { testLoss?: number; testAccuracy?: number } => {
    if (options.test === undefined) return {};
    const e = evaluate(model, options.test, { batchSize: options.batchSize, pool: options.pool });
    return { testLoss: e.loss, testAccuracy: e.accuracy };
  };

  // ADMM phase.
  while (state === null && pruner.iteration < options.iterations) {
    const i = pruner.iteration + 1;
    const t0 = performance.now();
    const r = fit(model, {
      train: options.train,
      epochs: options.epochsPerIteration,
      batchSize: options.batchSize,
      optimizer,
      seed: options.seed + i,
      pool: options.pool,
      arena: options.arena,
      beforeStep: () => pruner.addPenaltyGradients(),
    });
    const layers = pruner.update();
    emit(
      {
        event: "admm",
        iteration: i,
        trainLoss: r.history[r.history.length - 1]!.trainLoss,
        layers,
        ...testMetrics(),
        seconds: Math.round(performance.now() - t0) / 1000,
      },
      "admm",
    );
  }

  // Hard prune, then retraining with a fresh optimizer.
  if (state === null) {
    state = pruner.hardPrune();
    optimizer = (options.retrainOptimizer ?? options.optimizer)(model.parameters());
    state.attach(optimizer);
    const kept: Record<string, number> = {};
    for (const [n, d] of state.densities()) kept[n] = d;
    emit({ event: "hardPrune", density: state.density(), kept, ...testMetrics() }, "retrain");
  }
  const retrainSeed = options.seed + options.iterations + 1;
  if (retrainDone < options.retrainEpochs) {
    let t0 = performance.now();
    fit(model, {
      train: options.train,
      epochs: options.retrainEpochs,
      startEpoch: retrainDone + 1,
      batchSize: options.batchSize,
      optimizer,
      seed: retrainSeed,
      pool: options.pool,
      arena: options.arena,
      onEpochEnd: (s) => {
        retrainDone = s.epoch;
        emit(
          {
            event: "retrain",
            epoch: s.epoch,
            trainLoss: s.trainLoss,
            ...testMetrics(),
            seconds: Math.round(performance.now() - t0) / 1000,
          },
          "retrain",
        );
        t0 = performance.now();
      },
    });
  }
  return { pruner, state, log };
}
