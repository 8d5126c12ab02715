// Scores per group: how much a group matters, higher = more worth keeping. Every score is
// computed over the group's real elements only (ragged tiles have no padding to read), and
// the rankings that use them (select.ts) skip groups already removed.
import { Generator } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { crossEntropyLoss, type Dataset, type LossFn, type Module } from "@tessera/nn";
import type { GroupLayout } from "./groups.ts";

/**
 * - "mean-abs": mean |w| over the group's real elements (the block-pruning paper's score;
 *   the default everywhere).
 * - "l1": sum |w|. "l2": sqrt(sum w²) (the ADMM papers' projection norm).
 * - "random": one uniform draw per group from the Generator passed in, in group order (the
 *   paper's random-mask baseline); the same generator state gives the same scores.
 * - "taylor": mean over the group's real elements of |w · dL/dw| averaged over batches, read
 *   from a TaylorAccumulator that a training or scoring loop fed.
 */
export type ScoreMethod = "mean-abs" | "l1" | "l2" | "random" | "taylor";

export interface ScoreOptions {
  /** Default "mean-abs". */
  score?: ScoreMethod;
  /** Required for "random". */
  generator?: Generator;
  /** Required for "taylor": holds the accumulated |w · dL/dw| of the parameter scored. */
  taylor?: TaylorAccumulator;
}

const METHODS: readonly ScoreMethod[] = ["mean-abs", "l1", "l2", "random", "taylor"];

/**
 * One score per group of `layout` for a parameter with values `weights` (row-major). For
 * "taylor", `importance` is the per-element accumulated |w · dL/dw| (see TaylorAccumulator).
 */
export function groupScores(
  weights: ArrayLike<number>,
  layout: GroupLayout,
  method: ScoreMethod = "mean-abs",
  extra: { generator?: Generator; importance?: ArrayLike<number> } = {},
): Float64Array {
  const fn = "groupScores";
  const g = layout.groupOf;
  if (weights.length !== g.length) {
    throw new Error(
      `${fn}: weights have ${weights.length} elements, the layout of shape [${layout.shape.join(",")}] has ${g.length}`,
    );
  }
  const out = new Float64Array(layout.count);
  switch (method) {
    case "mean-abs":
    case "l1":
      for (let i = 0; i < g.length; i++) out[g[i]!]! += Math.abs(weights[i]!);
      if (method === "mean-abs") for (let j = 0; j < out.length; j++) out[j]! /= layout.sizes[j]!;
      break;
    case "l2":
      for (let i = 0; i < g.length; i++) out[g[i]!]! += weights[i]! * weights[i]!;
      for (let j = 0; j < out.length; j++) out[j] = Math.sqrt(out[j]!);
      break;
    case "random": {
      const gen = extra.generator;
      if (gen === undefined || typeof gen.nextFloat !== "function")
        throw new Error(`${fn}: the "random" score needs a generator (new Generator(seed))`);
      for (let j = 0; j < out.length; j++) out[j] = gen.nextFloat();
      break;
    }
    case "taylor": {
      const imp = extra.importance;
      if (imp === undefined || imp.length !== g.length) {
        throw new Error(
          `${fn}: the "taylor" score needs the accumulated importance of ${g.length} elements, got ${imp === undefined ? "none" : imp.length}`,
        );
      }
      for (let i = 0; i < g.length; i++) out[g[i]!]! += imp[i]!;
      for (let j = 0; j < out.length; j++) out[j]! /= layout.sizes[j]!;
      break;
    }
    default:
      throw new Error(
        `${fn}: unknown score ${JSON.stringify(method)}; expected one of ${METHODS.join(", ")}`,
      );
  }
  for (let j = 0; j < out.length; j++) {
    if (!Number.isFinite(out[j]!))
      throw new Error(
        `${fn}: the ${method} score of group ${j} is ${out[j]} (a weight or gradient is not finite)`,
      );
  }
  return out;
}

/**
 * Accumulates |w · dL/dw| per element over batches, for the "taylor" score. Feed it after
 * each backward pass (e.g. `beforeStep: () => acc.accumulate()` in fit, or
 * accumulateTaylor below, which runs batches without stepping); `importance(name)` is the
 * sum divided by the number of batches.
 */
export class TaylorAccumulator {
  private readonly params = new Map<string, Variable>();
  private readonly sums = new Map<string, Float64Array>();
  private count = 0;

  constructor(model: Module, names: Iterable<string>) {
    for (const name of names) {
      const p = model.getParameter(name);
      this.params.set(name, p);
      this.sums.set(name, new Float64Array(p.data.size));
    }
    if (this.params.size === 0)
      throw new Error(`TaylorAccumulator: names must list at least one parameter`);
  }

  /** Batches accumulated so far. */
  get batches(): number {
    return this.count;
  }

  names(): string[] {
    return [...this.params.keys()];
  }

  /** Adds |w · g| of every tracked parameter from its current weights and gradient. */
  accumulate(): void {
    for (const [name, p] of this.params) {
      if (p.grad === null) {
        throw new Error(
          `TaylorAccumulator.accumulate: "${name}" has no gradient; call it after backward() and before zeroGrad()`,
        );
      }
      const w = p.data.data;
      const g = p.grad.data;
      const s = this.sums.get(name)!;
      for (let k = 0; k < s.length; k++) s[k]! += Math.abs(w[k]! * g[k]!);
    }
    this.count++;
  }

  /** Mean |w · dL/dw| per element over the accumulated batches. */
  importance(name: string): Float64Array {
    const s = this.sums.get(name);
    if (s === undefined) {
      throw new Error(
        `TaylorAccumulator.importance: "${name}" is not tracked; tracking ${this.names().join(", ")}`,
      );
    }
    if (this.count === 0) throw new Error(`TaylorAccumulator.importance: no batch accumulated yet`);
    const out = new Float64Array(s.length);
    for (let k = 0; k < s.length; k++) out[k] = s[k]! / this.count;
    return out;
  }

  reset(): void {
    for (const s of this.sums.values()) s.fill(0);
    this.count = 0;
  }
}

export interface AccumulateTaylorOptions {
  /** Number of batches to run. */
  batches: number;
  batchSize: number;
  /** Seeds which examples are drawn (the first batches of a seeded permutation). */
  seed: number;
  lossFn?: LossFn;
}

/**
 * Runs `batches` batches of `dataset` forward and backward through `model` and feeds each
 * batch's gradients to `acc`, without any optimizer step. The model stays in the mode it is
 * in (call eval() first for batch-norm running statistics); gradients are cleared before
 * each batch and at the end.
 */
export function accumulateTaylor(
  model: Module,
  acc: TaylorAccumulator,
  dataset: Dataset,
  options: AccumulateTaylorOptions,
): void {
  const fn = "accumulateTaylor";
  for (const f of ["batches", "batchSize"] as const) {
    const v = options[f];
    if (!Number.isSafeInteger(v) || v < 1)
      throw new RangeError(`${fn}: ${f} must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0)
    throw new RangeError(`${fn}: seed must be a non-negative integer, got ${String(options.seed)}`);
  const need = options.batches * options.batchSize;
  if (dataset.count < options.batchSize)
    throw new RangeError(
      `${fn}: the dataset has ${dataset.count} examples, fewer than one batch of ${options.batchSize}`,
    );
  const lossFn = options.lossFn ?? crossEntropyLoss;
  // A Generator made from the seed here: no shared default stream is advanced.
  const order = permutationFor(dataset.count, options.seed, need);
  for (let b = 0; b < options.batches; b++) {
    const idx = order.subarray(b * options.batchSize, (b + 1) * options.batchSize);
    model.zeroGrad();
    const batch = dataset.getBatch(idx);
    lossFn(model.forward(new Variable(batch.x)), batch.y).backward();
    acc.accumulate();
  }
  model.zeroGrad();
}

// Indices for `need` draws: whole seeded permutations back to back (wrapping past the end).
function permutationFor(count: number, seed: number, need: number): Int32Array {
  const out = new Int32Array(need);
  const gen = new Generator(seed);
  for (let filled = 0; filled < need;) {
    const p = gen.permutation(count);
    const take = Math.min(p.length, need - filled);
    out.set(p.subarray(0, take), filled);
    filled += take;
  }
  return out;
}
