// PruningState: the masks of a model's pruned parameters, kept beside the model. It owns
// them (0/1 Float32Arrays plus alive flags per group), applies them to the weights, lends
// them to optimizers (which only apply them: optimizer.setMask), and is what checkpoints
// save. A model pruned this way can be saved, loaded, evaluated and resumed with no
// optimizer in sight.
import type { Variable } from "@tessera/autograd";
import type { Module, Optimizer } from "@tessera/nn";
import {
  aliveFromMask,
  checkGroupKind,
  describeKind,
  groupLayout,
  maskFromAlive,
  type GroupLayout,
} from "./groups.ts";
import { groupScores, type ScoreOptions } from "./scores.ts";
import type { SparsitySchedule } from "./schedule.ts";
import {
  selectFraction,
  selectGlobal,
  selectToDensity,
  selectTopPerPartition,
  type GlobalNormalization,
} from "./select.ts";
import type { GroupKind, PrunedEntry, PrunedSource } from "./types.ts";

/**
 * A group kind, optionally with `pruneBias` (row groups only): also zero, and keep at zero,
 * the bias entry of each removed row, so a removed output neuron / filter outputs exactly 0
 * (what PyTorch users ask of structured pruning). The bias is the sibling "<module>.bias".
 * Example: { kind: "row", pruneBias: true }.
 */
export type PruneSpec = GroupKind & { readonly pruneBias?: boolean };

/** Parameter name -> its group kind (with options). */
export type PruneConfig = Record<string, PruneSpec> | Map<string, PruneSpec>;

interface Slot {
  name: string;
  kind: GroupKind;
  param: Variable;
  layout: GroupLayout;
  alive: Uint8Array;
  mask: Float32Array;
  bias: { name: string; param: Variable; mask: Float32Array } | null;
}

/** Per-layer rates or targets: one number for every pruned parameter, or one per name. */
export type PerLayer = number | Record<string, number> | Map<string, number>;

/** What a prune operation removed: groups per parameter name. */
export type Removed = Map<string, number>;

/** The kind alone (no options, no stray fields), so entries() carry a clean GroupKind. */
export function plainKind(kind: GroupKind): GroupKind {
  return kind.kind === "block"
    ? { kind: "block", rows: kind.rows, cols: kind.cols }
    : ({ kind: kind.kind } as GroupKind);
}

export class PruningState implements PrunedSource {
  readonly model: Module;
  private readonly slots = new Map<string, Slot>();
  // Optimizers attached by this state; kept so further pruning re-registers the masks (which
  // clears the optimizer state of newly removed positions).
  private readonly optimizers = new Set<Optimizer>();

  /**
   * Tracks the named parameters of `model` with all groups alive (density 1). Names are
   * dotted parameter names ("fc1.weight"); each weight must be [out, in] or [F, C, kh, kw].
   */
  constructor(model: Module, config: PruneConfig) {
    const fn = "PruningState";
    this.model = model;
    const entries = config instanceof Map ? [...config] : Object.entries(config);
    if (entries.length === 0)
      throw new Error(
        `${fn}: the config names no parameter (e.g. { "fc1.weight": { kind: "block", rows: 4, cols: 4 } })`,
      );
    for (const [name, value] of entries) {
      const kind = plainKind(checkGroupKind(`${fn}("${name}")`, value));
      const pruneBias = value.pruneBias;
      if (pruneBias !== undefined && typeof pruneBias !== "boolean")
        throw new Error(
          `${fn}: "${name}": pruneBias must be a boolean, got ${JSON.stringify(pruneBias)}`,
        );
      const param = model.getParameter(name);
      let layout: GroupLayout;
      try {
        layout = groupLayout(kind, param.data.shape);
      } catch (e) {
        throw new Error(`${fn}: "${name}": ${(e as Error).message}`);
      }
      if (param.data.data.length !== layout.groupOf.length)
        throw new Error(`${fn}: "${name}" must own contiguous storage`);
      let bias: Slot["bias"] = null;
      if (pruneBias === true) {
        if (kind.kind !== "row")
          throw new Error(
            `${fn}: "${name}": pruneBias needs row groups, got ${describeKind(kind)}`,
          );
        const biasName = name.endsWith("weight") ? `${name.slice(0, -"weight".length)}bias` : "";
        const b = model.namedParameters().find(([n]) => n === biasName)?.[1];
        if (b === undefined || b.data.size !== layout.rows) {
          throw new Error(
            `${fn}: "${name}": pruneBias needs a bias parameter "${biasName}" of ${layout.rows} elements, ${b === undefined ? "found none" : `found ${b.data.size}`}`,
          );
        }
        bias = { name: biasName, param: b, mask: new Float32Array(layout.rows).fill(1) };
      }
      const alive = new Uint8Array(layout.count).fill(1);
      this.slots.set(name, {
        name,
        kind,
        param,
        layout,
        alive,
        mask: maskFromAlive(layout, alive),
        bias,
      });
    }
  }

  // ---- reading ---------------------------------------------------------------------------

  /** Names of the pruned parameters, in config order. */
  names(): string[] {
    return [...this.slots.keys()];
  }

  private slot(fn: string, name: string): Slot {
    const s = this.slots.get(name);
    if (s === undefined) {
      throw new Error(
        `PruningState.${fn}: "${name}" is not pruned here; pruned: ${this.names().join(", ") || "(none)"}`,
      );
    }
    return s;
  }

  /** The PrunedSource view: name, kind and the live 0/1 mask of every pruned parameter. */
  entries(): PrunedEntry[] {
    return [...this.slots.values()].map((s) => ({ name: s.name, kind: s.kind, mask: s.mask }));
  }

  kind(name: string): GroupKind {
    return this.slot("kind", name).kind;
  }

  layout(name: string): GroupLayout {
    return this.slot("layout", name).layout;
  }

  /** The live element mask (0 = pruned). Do not write to it: use the prune operations. */
  mask(name: string): Float32Array {
    return this.slot("mask", name).mask;
  }

  /** The live per-group flags (1 = alive). Do not write to it. */
  alive(name: string): Uint8Array {
    return this.slot("alive", name).alive;
  }

  /** Bias masks of row-pruned parameters with pruneBias: bias name -> mask over its rows. */
  biasMasks(): Map<string, { weight: string; mask: Float32Array }> {
    const out = new Map<string, { weight: string; mask: Float32Array }>();
    for (const s of this.slots.values())
      if (s.bias !== null) out.set(s.bias.name, { weight: s.name, mask: s.bias.mask });
    return out;
  }

  /** Whether `name` was configured with pruneBias. */
  prunesBias(name: string): boolean {
    return this.slot("prunesBias", name).bias !== null;
  }

  /** Kept elements / elements of one pruned parameter, or of all of them together (no name). */
  density(name?: string): number {
    let kept = 0;
    let total = 0;
    for (const s of name === undefined ? this.slots.values() : [this.slot("density", name)]) {
      for (let j = 0; j < s.layout.count; j++) if (s.alive[j] !== 0) kept += s.layout.sizes[j]!;
      total += s.layout.groupOf.length;
    }
    return total === 0 ? 1 : kept / total;
  }

  /** Density of every pruned parameter by name. */
  densities(): Map<string, number> {
    return new Map(this.names().map((n) => [n, this.density(n)]));
  }

  /** Elements kept over all pruned parameters. */
  keptCount(): number {
    let kept = 0;
    for (const s of this.slots.values())
      for (let j = 0; j < s.layout.count; j++) if (s.alive[j] !== 0) kept += s.layout.sizes[j]!;
    return kept;
  }

  /** Scores of every group of `name` under `options` (see scores.ts), removed groups included. */
  scores(name: string, options: ScoreOptions = {}): Float64Array {
    const s = this.slot("scores", name);
    return groupScores(s.param.data.data, s.layout, options.score ?? "mean-abs", {
      generator: options.generator,
      importance:
        options.score === "taylor" && options.taylor !== undefined
          ? options.taylor.importance(name)
          : undefined,
    });
  }

  // ---- masks on weights and optimizers ---------------------------------------------------

  /** w *= mask for every pruned parameter (pruned entries become exactly 0), biases too. */
  apply(): void {
    for (const s of this.slots.values()) {
      const w = s.param.data.data as Float32Array | Float64Array;
      for (let k = 0; k < w.length; k++) if (s.mask[k] === 0) w[k] = 0;
      if (s.bias !== null) {
        const b = s.bias.param.data.data as Float32Array | Float64Array;
        for (let k = 0; k < b.length; k++) if (s.bias.mask[k] === 0) b[k] = 0;
      }
    }
  }

  /**
   * Registers the masks with `optimizer` (optimizer.setMask for each pruned parameter and
   * pruned bias), so gradients are masked, pruned entries stay exactly 0 after every step and
   * the optimizer's state at pruned positions is cleared. Later prune operations re-register
   * automatically. The optimizer must manage the pruned parameters.
   */
  attach(optimizer: Optimizer): this {
    this.optimizers.add(optimizer);
    this.register(optimizer);
    return this;
  }

  /** Removes this state's masks from `optimizer` and stops updating it. */
  detach(optimizer: Optimizer): this {
    if (this.optimizers.delete(optimizer)) {
      for (const s of this.slots.values()) {
        optimizer.setMask(s.param, null);
        if (s.bias !== null) optimizer.setMask(s.bias.param, null);
      }
    }
    return this;
  }

  private register(optimizer: Optimizer): void {
    for (const s of this.slots.values()) {
      optimizer.setMask(s.param, s.mask);
      if (s.bias !== null) optimizer.setMask(s.bias.param, s.bias.mask);
    }
  }

  /**
   * Makes pruning permanent: applies the masks, removes them from every attached optimizer
   * and forgets them. The weights keep their zeros; the state is empty afterwards (entries()
   * lists nothing), and a checkpoint saved now holds plain "fc1.weight" keys.
   */
  strip(): void {
    this.apply();
    for (const o of [...this.optimizers]) this.detach(o);
    this.slots.clear();
  }

  // ---- pruning ---------------------------------------------------------------------------

  /**
   * Removes the listed groups of `name` (already removed ones are ignored): the one place
   * where masks change. Updates the mask in place (so references held elsewhere stay live),
   * zeroes the weights, and re-registers the masks with attached optimizers. Returns the
   * number of groups newly removed.
   */
  removeGroups(name: string, groups: ArrayLike<number>): number {
    const s = this.slot("removeGroups", name);
    let n = 0;
    for (let i = 0; i < groups.length; i++) {
      const j = groups[i]!;
      if (!Number.isSafeInteger(j) || j < 0 || j >= s.layout.count) {
        throw new RangeError(
          `PruningState.removeGroups: group ${j} of "${name}" is out of range [0, ${s.layout.count})`,
        );
      }
      if (s.alive[j] !== 0) {
        s.alive[j] = 0;
        n++;
      }
    }
    if (n > 0) this.refresh(s);
    return n;
  }

  private refresh(s: Slot): void {
    maskFromAlive(s.layout, s.alive, s.mask);
    if (s.bias !== null) for (let r = 0; r < s.layout.rows; r++) s.bias.mask[r] = s.alive[r]!;
    this.applySlot(s);
    for (const o of this.optimizers) this.register(o);
  }

  private applySlot(s: Slot): void {
    const w = s.param.data.data as Float32Array | Float64Array;
    for (let k = 0; k < w.length; k++) if (s.mask[k] === 0) w[k] = 0;
    if (s.bias !== null) {
      const b = s.bias.param.data.data as Float32Array | Float64Array;
      for (let k = 0; k < b.length; k++) if (s.bias.mask[k] === 0) b[k] = 0;
    }
  }

  /**
   * Replaces the masks of `name` by `mask` (0/1 per element, whole groups only), e.g. when
   * loading a checkpoint. Unlike the prune operations this may revive groups; the weights
   * at masked positions are zeroed.
   */
  setMask(name: string, mask: ArrayLike<number>): void {
    const s = this.slot("setMask", name);
    s.alive.set(aliveFromMask("PruningState.setMask", name, s.layout, mask));
    this.refresh(s);
  }

  private perLayer(fn: string, value: PerLayer, what: string): Map<string, number> {
    const out = new Map<string, number>();
    if (typeof value === "number") {
      for (const n of this.names()) out.set(n, value);
    } else {
      const m = value instanceof Map ? value : new Map(Object.entries(value));
      for (const [n, v] of m) {
        this.slot(fn, n);
        out.set(n, v);
      }
    }
    for (const [n, v] of out) {
      if (typeof v !== "number" || !(v >= 0 && v <= 1))
        throw new RangeError(
          `PruningState.${fn}: ${what} for "${n}" must be in [0, 1], got ${String(v)}`,
        );
    }
    return out;
  }

  /**
   * The paper's iterative step: for each named parameter remove round(rate · alive groups)
   * of its alive groups, lowest scores first (see selectFraction). `rates` is one rate for
   * all or a rate per name (names left out are not pruned). Returns groups removed per name.
   */
  pruneFraction(rates: PerLayer, options: ScoreOptions = {}): Removed {
    const out: Removed = new Map();
    for (const [name, rate] of this.perLayer("pruneFraction", rates, "rate")) {
      const s = this.slots.get(name)!;
      out.set(
        name,
        this.removeGroups(name, selectFraction(this.scores(name, options), s.alive, rate)),
      );
    }
    return out;
  }

  /**
   * One-shot to a target density by weights. scope "layer" (default): each named parameter
   * to its own target (selectToDensity). scope "global": `target` must be one number; the
   * groups of all pruned parameters are ranked together (selectGlobal, with `normalize`).
   * Never revives: a parameter already below its target loses nothing.
   */
  pruneToDensity(
    target: PerLayer,
    options: ScoreOptions & { scope?: "layer" | "global"; normalize?: GlobalNormalization } = {},
  ): Removed {
    const fn = "pruneToDensity";
    const out: Removed = new Map();
    if ((options.scope ?? "layer") === "global") {
      if (typeof target !== "number")
        throw new Error(
          `PruningState.${fn}: a global target must be one number, got per-layer values`,
        );
      this.perLayer(fn, target, "target density");
      const names = this.names();
      const removed = selectGlobal(
        names.map((n) => {
          const s = this.slots.get(n)!;
          return { scores: this.scores(n, options), alive: s.alive, sizes: s.layout.sizes };
        }),
        target,
        options.normalize ?? "none",
      );
      names.forEach((n, i) => out.set(n, this.removeGroups(n, removed[i]!)));
      return out;
    }
    if (options.scope !== undefined && options.scope !== "layer")
      throw new Error(
        `PruningState.${fn}: scope must be "layer" or "global", got ${JSON.stringify(options.scope)}`,
      );
    for (const [name, d] of this.perLayer(fn, target, "target density")) {
      const s = this.slots.get(name)!;
      const sel = selectToDensity(this.scores(name, options), s.alive, s.layout.sizes, d);
      out.set(name, this.removeGroups(name, sel));
    }
    return out;
  }

  /**
   * Gradual pruning: at a pruning step of `schedule` (schedule.isPruningStep(step)), prunes
   * every named parameter (or those in `names`) to schedule.densityAt(step); otherwise does
   * nothing. Returns null when `step` is not a pruning step.
   */
  pruneToSchedule(
    schedule: SparsitySchedule,
    step: number,
    options: ScoreOptions & {
      names?: string[];
      scope?: "layer" | "global";
      normalize?: GlobalNormalization;
    } = {},
  ): Removed | null {
    if (!schedule.isPruningStep(step)) return null;
    const d = schedule.densityAt(step);
    if (options.scope === "global") return this.pruneToDensity(d, options);
    const names = options.names ?? this.names();
    return this.pruneToDensity(new Map(names.map((n) => [n, d])), options);
  }

  /**
   * KEP: in each kernel plane of every named kernelElement parameter, keep the n alive
   * elements with the highest scores and remove the others (selectTopPerPartition).
   */
  keepTopPerPartition(n: number, options: ScoreOptions & { names?: string[] } = {}): Removed {
    const out: Removed = new Map();
    for (const name of options.names ?? this.names()) {
      const s = this.slot("keepTopPerPartition", name);
      if (s.layout.partitionOf === null) {
        throw new Error(
          `PruningState.keepTopPerPartition: "${name}" has ${describeKind(s.kind)} groups; keeping the top n per plane needs kernelElement groups`,
        );
      }
      const sel = selectTopPerPartition(
        this.scores(name, options),
        s.alive,
        s.layout.partitionOf,
        s.layout.partitionCount,
        n,
      );
      out.set(name, this.removeGroups(name, sel));
    }
    return out;
  }
}
