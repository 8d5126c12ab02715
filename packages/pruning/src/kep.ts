// Kernel-element pruning (KEP, issue 13; method 2 of shared/reference/papers.md): the mask
// builders and the controllable penalty. The paper's full text was not available: keeping the
// top n elements per k x k plane, the pattern-library option, removing whole planes and the
// ramped penalty on the masked-out elements come from its abstract; how the library is derived
// (the L most frequent top-n patterns), how a plane picks its pattern (most score kept), the
// plane-norm rule and the ramp shapes are our reconstruction.
//
// Everything works on a conv weight [F, C, kh, kw] whose planes p = f·C + c hold kh·kw
// contiguous elements (positions u·kw + v), the order KepLayout and the kernelElement group
// kind use.
import type { Variable } from "@tessera/autograd";
import type { Module, StepInfo } from "@tessera/nn";
import { polynomialDecay } from "./schedule.ts";
import type { ScoreOptions } from "./scores.ts";
import { removalOrder } from "./select.ts";
import type { PruningState } from "./state.ts";
import type { PrunedSource } from "./types.ts";
import { fmt } from "./util.ts";

type Shape4 = readonly [number, number, number, number];

function checkShape(fn: string, shape: readonly number[]): Shape4 {
  if (shape.length !== 4 || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new RangeError(
      `${fn}: expected a conv weight shape [F, C, kh, kw] of positive integers, got ${fmt(shape)}`,
    );
  return shape as unknown as Shape4;
}

function checkN(fn: string, n: number, k2: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > k2)
    throw new RangeError(`${fn}: n must be an integer in 1..${k2} (kh·kw), got ${String(n)}`);
}

function checkScores(fn: string, scores: ArrayLike<number>, shape: Shape4): void {
  const size = shape[0] * shape[1] * shape[2] * shape[3];
  if (scores.length !== size)
    throw new RangeError(
      `${fn}: scores have ${scores.length} entries, expected ${size} for weight ${fmt(shape)}`,
    );
  for (let i = 0; i < size; i++)
    if (Number.isNaN(scores[i]!)) throw new RangeError(`${fn}: score ${i} is NaN`);
}

/**
 * The n positions with the highest scores in every plane, ascending within the plane: an
 * Int32Array [planes · n]. Ties follow the frame's rule (selectTopPerPartition): among equal
 * scores the higher position stays.
 */
export function topPerPlane(
  scores: ArrayLike<number>,
  shape: readonly number[],
  n: number,
): Int32Array {
  const fn = "topPerPlane";
  const s = checkShape(fn, shape);
  const k2 = s[2] * s[3];
  checkN(fn, n, k2);
  checkScores(fn, scores, s);
  const planes = s[0] * s[1];
  const out = new Int32Array(planes * n);
  const plane = new Float64Array(k2);
  const all = new Uint8Array(k2).fill(1);
  for (let p = 0; p < planes; p++) {
    for (let q = 0; q < k2; q++) plane[q] = scores[p * k2 + q]!;
    // The last n of the removal order are the n kept ones.
    const kept = removalOrder(plane, all).slice(k2 - n);
    kept.sort();
    out.set(kept, p * n);
  }
  return out;
}

/** A pattern library: `patterns[i]` is n ascending positions of a kh x kw plane. */
export interface PatternLibrary {
  readonly kh: number;
  readonly kw: number;
  readonly n: number;
  readonly patterns: readonly Int32Array[];
  /** Planes of the weight the library was derived from whose own top-n pattern is patterns[i]. */
  readonly counts: readonly number[];
}

function lexCompare(a: Int32Array, b: Int32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/**
 * The library of pattern mode: each plane's top-n pattern (topPerPlane) is counted, and the
 * `size` most frequent distinct ones are kept (fewer when the weight has fewer distinct
 * patterns), most frequent first. Equal counts go to the pattern of larger layer score first:
 * the sum over its positions q (ascending) of T[q], T[q] the float64 sum of the scores at
 * position q over all planes (ascending plane). Then, on equal layer scores, by positions,
 * lexicographically ascending; so the library is a function of the scores alone.
 *
 * Why the layer score: on 5x5 planes most top-n patterns are distinct once n is past a few
 * (LeNet-5's conv2 at its initial weights: 989 distinct of 1,000 planes at n = 5, all 1,000 at
 * n = 8), so nearly every count is 1, and ordering by positions alone filled the library with
 * patterns of the top-left positions 0, 1, 2, ... whatever the weights.
 */
export function derivePatternLibrary(
  scores: ArrayLike<number>,
  shape: readonly number[],
  options: { n: number; size: number },
): PatternLibrary {
  const fn = "derivePatternLibrary";
  const s = checkShape(fn, shape);
  const { n, size } = options;
  if (!Number.isSafeInteger(size) || size < 1)
    throw new RangeError(`${fn}: size must be an integer >= 1, got ${String(size)}`);
  const top = topPerPlane(scores, s, n);
  const planes = s[0] * s[1];
  const byKey = new Map<string, { pattern: Int32Array; count: number }>();
  for (let p = 0; p < planes; p++) {
    const pattern = top.slice(p * n, (p + 1) * n);
    const key = pattern.join(",");
    const e = byKey.get(key);
    if (e === undefined) byKey.set(key, { pattern, count: 1 });
    else e.count++;
  }
  const k2 = s[2] * s[3];
  const layer = new Float64Array(k2);
  for (let p = 0; p < planes; p++) for (let q = 0; q < k2; q++) layer[q]! += scores[p * k2 + q]!;
  const entries = [...byKey.values()].map((e) => {
    let mass = 0;
    for (const q of e.pattern) mass += layer[q]!;
    return { ...e, mass };
  });
  const ranked = entries.sort(
    (a, b) => b.count - a.count || b.mass - a.mass || lexCompare(a.pattern, b.pattern),
  );
  const kept = ranked.slice(0, size);
  return {
    kh: s[2],
    kw: s[3],
    n,
    patterns: kept.map((e) => e.pattern),
    counts: kept.map((e) => e.count),
  };
}

function checkLibrary(fn: string, library: PatternLibrary, shape: Shape4): void {
  if (library.kh !== shape[2] || library.kw !== shape[3])
    throw new RangeError(
      `${fn}: the library is for ${library.kh}x${library.kw} planes, the weight ${fmt(shape)} has ${shape[2]}x${shape[3]}`,
    );
  if (library.patterns.length === 0) throw new RangeError(`${fn}: the library holds no pattern`);
  const k2 = shape[2] * shape[3];
  library.patterns.forEach((pat, i) => {
    const ok =
      pat.length === library.n &&
      pat.every((q, j) => q >= 0 && q < k2 && (j === 0 || q > pat[j - 1]!));
    if (!ok)
      throw new RangeError(
        `${fn}: pattern ${i} must be ${library.n} ascending positions in 0..${k2 - 1}, got ${Array.from(pat).join(",")}`,
      );
  });
}

/**
 * Pattern mode's choice: each plane takes the library pattern keeping the most score (the sum
 * of its scores over the pattern's positions, in float64); equal sums go to the lower library
 * index (the more frequent pattern). Returns one library index per plane.
 */
export function assignPatterns(
  scores: ArrayLike<number>,
  shape: readonly number[],
  library: PatternLibrary,
): Int32Array {
  const fn = "assignPatterns";
  const s = checkShape(fn, shape);
  checkScores(fn, scores, s);
  checkLibrary(fn, library, s);
  const k2 = s[2] * s[3];
  const planes = s[0] * s[1];
  const ids = new Int32Array(planes);
  for (let p = 0; p < planes; p++) {
    let best = -1;
    let bestSum = -Infinity;
    library.patterns.forEach((pat, i) => {
      let sum = 0;
      for (const q of pat) sum += scores[p * k2 + q]!;
      if (sum > bestSum) {
        bestSum = sum;
        best = i;
      }
    });
    ids[p] = best;
  }
  return ids;
}

/**
 * The 0/1 mask [F, C, kh, kw] of per-plane positions: plane p keeps `positions[p·n ..
 * p·n + n)` (topPerPlane's layout), or, with a library, plane p keeps library pattern
 * ids[p] (an id of -1 keeps nothing: a removed plane).
 */
export function planeMask(
  shape: readonly number[],
  kept: { positions: Int32Array; n: number } | { library: PatternLibrary; ids: Int32Array },
): Float32Array {
  const fn = "planeMask";
  const s = checkShape(fn, shape);
  const k2 = s[2] * s[3];
  const planes = s[0] * s[1];
  const mask = new Float32Array(planes * k2);
  if ("positions" in kept) {
    if (kept.positions.length !== planes * kept.n)
      throw new RangeError(
        `${fn}: positions has ${kept.positions.length} entries, expected planes · n = ${planes * kept.n}`,
      );
    for (let e = 0; e < kept.positions.length; e++)
      mask[Math.floor(e / kept.n) * k2 + kept.positions[e]!] = 1;
    return mask;
  }
  checkLibrary(fn, kept.library, s);
  if (kept.ids.length !== planes)
    throw new RangeError(`${fn}: ids has ${kept.ids.length} entries, expected ${planes} planes`);
  for (let p = 0; p < planes; p++) {
    const id = kept.ids[p]!;
    if (id === -1) continue;
    const pat = kept.library.patterns[id];
    if (pat === undefined)
      throw new RangeError(
        `${fn}: plane ${p} has pattern id ${id}, the library holds ${kept.library.patterns.length}`,
      );
    for (const q of pat) mask[p * k2 + q] = 1;
  }
  return mask;
}

/** L2 norm of every plane of `weight` [F, C, kh, kw] (float64). */
export function planeNorms(weight: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const fn = "planeNorms";
  const s = checkShape(fn, shape);
  const k2 = s[2] * s[3];
  const planes = s[0] * s[1];
  if (weight.length !== planes * k2)
    throw new RangeError(
      `${fn}: weight has ${weight.length} entries, expected ${planes * k2} for ${fmt(s)}`,
    );
  const out = new Float64Array(planes);
  for (let p = 0; p < planes; p++) {
    let sum = 0;
    for (let q = 0; q < k2; q++) sum += weight[p * k2 + q]! ** 2;
    out[p] = Math.sqrt(sum);
  }
  return out;
}

/**
 * Connectivity sparsity: the round(fraction · planes) planes of smallest L2 norm (ties: the
 * lower plane index goes first, the frame's removal order), ascending.
 */
export function planesToRemove(norms: ArrayLike<number>, fraction: number): Int32Array {
  if (typeof fraction !== "number" || !(fraction >= 0 && fraction <= 1))
    throw new RangeError(`planesToRemove: fraction must be in [0, 1], got ${String(fraction)}`);
  const order = removalOrder(norms, new Uint8Array(norms.length).fill(1));
  const out = order.slice(0, Math.round(fraction * norms.length));
  out.sort();
  return out;
}

export type KepMode = "free" | "pattern";

export interface KepMaskOptions extends ScoreOptions {
  /** Elements kept per plane (1..kh·kw). */
  n: number;
  /** "free" (default): the top n positions of each plane; "pattern": a library pattern. */
  mode?: KepMode;
  /** Pattern mode: library size L (default 8). */
  librarySize?: number;
  /**
   * Connectivity sparsity: also remove this fraction of the planes of each layer, those of
   * smallest L2 norm over the elements the mode kept (default 0).
   */
  planeFraction?: number;
  /** Parameters to mask (default: every parameter of the state). */
  names?: readonly string[];
}

/** What applyKepMask decided for one parameter. */
export interface KepMaskInfo {
  name: string;
  shape: [number, number, number, number];
  n: number;
  mode: KepMode;
  /** Pattern mode: the library and each plane's pattern id (-1: plane removed). */
  library: PatternLibrary | null;
  patternIds: Int32Array | null;
  /** Planes removed by the connectivity rule, ascending. */
  planesRemoved: Int32Array;
}

/**
 * Builds KEP masks in `state` (kernelElement parameters [F, C, kh, kw], all groups alive): the
 * scores are the state's per-element scores under `options` (|w| by default, or "taylor"),
 * then the mode's mask, then the optional plane removal. Like every prune operation of the
 * state, it zeroes the removed weights (see preservingWeights to keep them for a penalty
 * phase). Returns per parameter what was chosen.
 */
export function applyKepMask(
  state: PruningState,
  options: KepMaskOptions,
): Map<string, KepMaskInfo> {
  const fn = "applyKepMask";
  const mode = options.mode ?? "free";
  if (mode !== "free" && mode !== "pattern")
    throw new Error(`${fn}: mode must be "free" or "pattern", got ${JSON.stringify(mode)}`);
  const out = new Map<string, KepMaskInfo>();
  for (const name of options.names ?? state.names()) {
    const layout = state.layout(name);
    if (layout.kind.kind !== "kernelElement" || layout.shape.length !== 4)
      throw new Error(
        `${fn}: "${name}" must be a conv weight [F, C, kh, kw] with kernelElement groups, got ${layout.kind.kind} groups on ${fmt(layout.shape)}`,
      );
    const shape = [...layout.shape] as [number, number, number, number];
    const k2 = shape[2] * shape[3];
    checkN(`${fn}("${name}")`, options.n, k2);
    // The rules choose among all k² positions of a plane; a position removed earlier could be
    // chosen and would then stay removed, leaving a plane short of n.
    const removedBefore = state.alive(name).indexOf(0);
    if (removedBefore >= 0)
      throw new Error(
        `${fn}: "${name}" already has removed elements (element ${removedBefore}); KEP masks are built on a state with every element alive`,
      );
    const scores = state.scores(name, options);
    let library: PatternLibrary | null = null;
    let ids: Int32Array | null = null;
    let mask: Float32Array;
    if (mode === "free") {
      mask = planeMask(shape, { positions: topPerPlane(scores, shape, options.n), n: options.n });
    } else {
      library = derivePatternLibrary(scores, shape, {
        n: options.n,
        size: options.librarySize ?? 8,
      });
      ids = assignPatterns(scores, shape, library);
      mask = planeMask(shape, { library, ids });
    }
    let removed: Int32Array = new Int32Array(0);
    const fraction = options.planeFraction ?? 0;
    if (fraction !== 0) {
      const w = state.model.getParameter(name).data.data as ArrayLike<number>;
      const kept = Float64Array.from(mask, (m, i) => m * w[i]!);
      removed = planesToRemove(planeNorms(kept, shape), fraction);
      for (const p of removed) {
        mask.fill(0, p * k2, (p + 1) * k2);
        if (ids !== null) ids[p] = -1;
      }
    }
    const drop: number[] = [];
    for (let i = 0; i < mask.length; i++) if (mask[i] === 0) drop.push(i);
    // kernelElement groups are single elements, so group index = element index.
    state.removeGroups(name, drop);
    out.set(name, {
      name,
      shape,
      n: options.n,
      mode,
      library,
      patternIds: ids,
      planesRemoved: removed,
    });
  }
  return out;
}

/**
 * Runs `build` (which prunes `state`) and then puts back the values the pruned parameters had
 * before: the masks change, the weights do not. KEP's penalty phase needs exactly this (the
 * mask is chosen on the pretrained weights, which stay dense until the hard cut,
 * state.apply()).
 */
export function preservingWeights<T>(state: PruningState, build: () => T): T {
  const saved = state.names().map((n) => {
    const data = state.model.getParameter(n).data.data as Float32Array | Float64Array;
    return { data, copy: data.slice() };
  });
  const result = build();
  for (const s of saved) s.data.set(s.copy);
  return result;
}

/**
 * lambda(t) of the penalty, a pure function of the optimizer step:
 * - constant: lambda at every step;
 * - ramp: 0 until beginStep, then lambda · (1 − (1 − p)^power) with p = (t − beginStep) /
 *   (endStep − beginStep) clamped to [0, 1]: power 1 is a linear ramp, 3 the frame's cubic
 *   (Zhu & Gupta) shape; the same polynomialDecay of schedule.ts, from 0 to 1, scaled by lambda.
 */
export type PenaltySchedule =
  | { readonly kind: "constant"; readonly lambda: number }
  | {
      readonly kind: "ramp";
      readonly lambda: number;
      readonly beginStep: number;
      readonly endStep: number;
      /** Default 1 (linear). */
      readonly power?: number;
    };

/** The schedule as a function step -> lambda (validated once). */
export function penaltyLambda(schedule: PenaltySchedule): (step: number) => number {
  const fn = "penaltyLambda";
  const lambda = schedule.lambda;
  if (typeof lambda !== "number" || !(lambda >= 0) || !Number.isFinite(lambda))
    throw new RangeError(`${fn}: lambda must be a finite number >= 0, got ${String(lambda)}`);
  if (schedule.kind === "constant") return () => lambda;
  if (schedule.kind !== "ramp")
    throw new Error(
      `${fn}: kind must be "constant" or "ramp", got ${JSON.stringify((schedule as { kind: unknown }).kind)}`,
    );
  let decay: ReturnType<typeof polynomialDecay>;
  try {
    decay = polynomialDecay({
      initialSparsity: 0,
      finalSparsity: 1,
      beginStep: schedule.beginStep,
      endStep: schedule.endStep,
      power: schedule.power ?? 1,
    });
  } catch (e) {
    throw new RangeError(`${fn}: ${(e as Error).message.replace(/^polynomialDecay: /, "")}`);
  }
  return (step) => lambda * decay.sparsityAt(step);
}

/**
 * KEP's controllable regularisation: lambda(t) · ||(1 − M) ⊙ W||² over the masked-out
 * elements of every masked parameter, applied as a gradient term (no graph):
 * addGradients(step) adds 2 · lambda(t) · (1 − M) ⊙ W to each parameter's .grad. The masks are
 * read live from `masks` (a PruningState's entries, or a Map name -> 0/1 mask).
 */
export class MaskPenalty {
  private readonly params: { name: string; param: Variable; mask: Float32Array }[];
  readonly lambdaAt: (step: number) => number;

  constructor(
    model: Module,
    masks: PrunedSource | ReadonlyMap<string, Float32Array>,
    schedule: PenaltySchedule,
  ) {
    const fn = "MaskPenalty";
    this.lambdaAt = penaltyLambda(schedule);
    const list: { name: string; mask: Float32Array }[] =
      masks instanceof Map
        ? [...(masks as ReadonlyMap<string, Float32Array>)].map(([name, mask]) => ({ name, mask }))
        : [...(masks as PrunedSource).entries()];
    if (list.length === 0) throw new Error(`${fn}: no masked parameter`);
    this.params = list.map(({ name, mask }) => {
      const param = model.getParameter(name);
      if (mask.length !== param.data.data.length)
        throw new RangeError(
          `${fn}: mask of "${name}" has ${mask.length} elements, the parameter ${fmt(param.data.shape)} has ${param.data.data.length}`,
        );
      return { name, param, mask };
    });
  }

  /** lambda(step) · sum over masked-out elements of w² (float64). */
  value(step: number): number {
    return this.lambdaAt(step) * this.outsideSquared();
  }

  /** ||(1 − M) ⊙ W|| over all masked parameters: how far the weights are from the cut. */
  outsideNorm(): number {
    return Math.sqrt(this.outsideSquared());
  }

  private outsideSquared(): number {
    let sum = 0;
    for (const { param, mask } of this.params) {
      const w = param.data.data as ArrayLike<number>;
      for (let i = 0; i < w.length; i++) if (mask[i] === 0) sum += w[i]! * w[i]!;
    }
    return sum;
  }

  /** Adds 2 · lambda(step) · (1 − M) ⊙ W to every masked parameter's gradient. */
  addGradients(step: number): void {
    const c = 2 * this.lambdaAt(step);
    if (c === 0) return;
    for (const { name, param, mask } of this.params) {
      const g = param.grad;
      if (g === null)
        throw new Error(
          `MaskPenalty.addGradients: "${name}" has no gradient; call it after backward() and before the optimizer step`,
        );
      const gd = g.data as Float32Array | Float64Array;
      const w = param.data.data as ArrayLike<number>;
      for (let i = 0; i < w.length; i++) if (mask[i] === 0) gd[i]! += c * w[i]!;
    }
  }

  /** fit's beforeStep hook: the gradient term at the optimizer's step (info.globalStep). */
  readonly beforeStep = (info: StepInfo): void => this.addGradients(info.globalStep);
}
