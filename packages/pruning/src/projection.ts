// Euclidean projections onto the ADMM constraint sets (StructADMM, method 3 of
// shared/reference/papers.md): "at most k groups of this kind are nonzero". Because the groups
// of one kind partition the weight, ||W − Z||² for Z supported on a set S of groups is
// minimised by Z = W on S, and then equals the sum of the squared norms of the groups left
// out; so the exact projection keeps the k groups of largest L2 norm. This holds for
// unequal group sizes too (ragged tiles): the objective only sees norms, not sizes, which is
// why a target is a number of groups and a density is turned into one (round(d · groups)).
//
// Ties are broken with the frame's one removal order (select.ts removalOrder: ascending
// score, lower group index removed first), so the projection and the pruning rules agree.
//
// Filter + column (the paper's combined structured set) is the intersection "at most kr
// nonzero rows and at most kc nonzero columns". Its exact projection maximises the squared
// mass of a kr x kc submatrix (a biclique problem, NP-hard in general), so we project
// sequentially as the authors' code does (filter, then column): keep the top kr rows by L2
// norm, then the top kc columns by L2 norm of the row-pruned matrix. The result lies in the
// intersection and the map is idempotent, but it is not the nearest point in general
// (test/projection.test.ts shows a case where it is not).
import { groupLayout, type GroupLayout } from "./groups.ts";
import { groupScores } from "./scores.ts";
import { removalOrder } from "./select.ts";
import type { GroupKind } from "./types.ts";
import { fmt } from "./util.ts";

/** A kept amount: an absolute number of groups, or a fraction of the groups (rounded). */
export type KeepTarget = { readonly keep: number } | { readonly density: number };

/**
 * An ADMM constraint set with its target. Single kinds: at most `target` groups of `set`
 * nonzero ("element" = non-structured, "row" = filter, "column" = column / shape, "channel",
 * "block" R x C). "filterColumn": at most `rows` nonzero rows (filters) and at most `cols`
 * nonzero columns.
 */
export type AdmmConstraint =
  | { readonly set: Exclude<GroupKind, { kind: "kernelElement" }>; readonly target: KeepTarget }
  | {
      readonly set: { readonly kind: "filterColumn" };
      readonly rows: KeepTarget;
      readonly cols: KeepTarget;
    };

export interface Projection {
  /** The projected values (same length as the input). */
  readonly values: Float64Array;
  /**
   * The 0/1 element mask of the groups kept by the projection (the support the hard prune
   * keeps). For filterColumn: kept row x kept column.
   */
  readonly mask: Float32Array;
  /** Kept flags per row group and per column group (filterColumn), else per group of `set`. */
  readonly kept: Uint8Array;
  readonly keptColumns: Uint8Array | null;
}

/** The number of groups to keep out of `count` for a target, checked. */
export function keptGroupCount(fn: string, target: KeepTarget, count: number): number {
  const t = target as { keep?: unknown; density?: unknown };
  if (t === null || typeof t !== "object" || "keep" in t === "density" in t) {
    throw new Error(
      `${fn}: a target must be { keep: n } or { density: d } (exactly one), got ${JSON.stringify(target)}`,
    );
  }
  if ("keep" in t) {
    const k = t.keep as number;
    if (!Number.isSafeInteger(k) || k < 0 || k > count)
      throw new RangeError(
        `${fn}: keep must be an integer in [0, ${count}] (the groups there are), got ${String(k)}`,
      );
    return k;
  }
  const d = t.density as number;
  if (typeof d !== "number" || !(d >= 0 && d <= 1))
    throw new RangeError(`${fn}: density must be in [0, 1], got ${String(d)}`);
  return Math.round(d * count);
}

/**
 * Kept flags of the top-k groups of `layout` by L2 norm of `values`: the groups removed are
 * the first count − k of the frame's removal order (ties: lower index removed first).
 */
export function topGroupsByL2(
  values: ArrayLike<number>,
  layout: GroupLayout,
  k: number,
): Uint8Array {
  const alive = new Uint8Array(layout.count).fill(1);
  const order = removalOrder(groupScores(values, layout, "l2"), alive);
  for (let j = 0; j < layout.count - k; j++) alive[order[j]!] = 0;
  return alive;
}

function checkValues(fn: string, values: ArrayLike<number>, shape: readonly number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n)
    throw new Error(
      `${fn}: values have ${values.length} elements, the shape ${fmt(shape)} has ${n}`,
    );
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!))
      throw new Error(`${fn}: value ${i} is ${values[i]}; a projection needs finite values`);
  }
}

/**
 * Projects `values` (a parameter of `shape`, [out, in] or [F, C, kh, kw], row-major) onto
 * `constraint`. Returns the projected values, the kept mask and the kept group flags.
 */
export function project(
  values: ArrayLike<number>,
  shape: readonly number[],
  constraint: AdmmConstraint,
): Projection {
  const fn = "project";
  if (constraint === null || typeof constraint !== "object" || typeof constraint.set !== "object")
    throw new Error(
      `${fn}: a constraint must be { set: { kind: ... }, target: { keep | density } }, got ${JSON.stringify(constraint)}`,
    );
  if (constraint.set.kind === "filterColumn") {
    const c = constraint as Extract<AdmmConstraint, { set: { kind: "filterColumn" } }>;
    const rowLayout = groupLayout({ kind: "row" }, shape);
    checkValues(fn, values, shape);
    const colLayout = groupLayout({ kind: "column" }, shape);
    const keptRows = topGroupsByL2(
      values,
      rowLayout,
      keptGroupCount(`${fn} (filterColumn rows)`, c.rows, rowLayout.count),
    );
    const n = values.length;
    const cols = rowLayout.cols;
    const rowPruned = new Float64Array(n);
    for (let i = 0; i < n; i++)
      rowPruned[i] = keptRows[Math.floor(i / cols)] === 0 ? 0 : values[i]!;
    const keptCols = topGroupsByL2(
      rowPruned,
      colLayout,
      keptGroupCount(`${fn} (filterColumn cols)`, c.cols, colLayout.count),
    );
    const mask = new Float32Array(n);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const keep = keptRows[Math.floor(i / cols)] !== 0 && keptCols[i % cols] !== 0;
      mask[i] = keep ? 1 : 0;
      out[i] = keep ? values[i]! : 0;
    }
    return { values: out, mask, kept: keptRows, keptColumns: keptCols };
  }
  const c = constraint as Extract<AdmmConstraint, { target: KeepTarget }>;
  if (c.set.kind === ("kernelElement" as string))
    throw new Error(
      `${fn}: kernelElement is not an ADMM set (KEP ranks within planes); use element, row, column, channel, block or filterColumn`,
    );
  const layout = groupLayout(c.set, shape);
  checkValues(fn, values, shape);
  const kept = topGroupsByL2(values, layout, keptGroupCount(fn, c.target, layout.count));
  const n = values.length;
  const mask = new Float32Array(n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const keep = kept[layout.groupOf[i]!] !== 0;
    mask[i] = keep ? 1 : 0;
    out[i] = keep ? values[i]! : 0;
  }
  return { values: out, mask, kept, keptColumns: null };
}
