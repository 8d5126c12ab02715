// Group layouts: which group every element of a parameter belongs to, for each GroupKind.
// One representation serves every kind and every rule that scores, selects or masks: a
// group index per element (`groupOf`), the number of real elements per group (`sizes`), and
// for kernel elements the plane each group is ranked within (`partitionOf`). Ragged tiles
// thus hold only their real elements by construction: no padding exists to be read.
import type { GroupKind } from "./types.ts";
import { fmt } from "./util.ts";

export interface GroupLayout {
  readonly kind: GroupKind;
  /** The parameter's shape as given ([out, in] or [F, C, kh, kw]). */
  readonly shape: readonly number[];
  /** Matrix view: rows (outputs / filters) and columns (inputs / (c, i, j) positions). */
  readonly rows: number;
  readonly cols: number;
  /** Number of groups. */
  readonly count: number;
  /** Group index of every element, in the parameter's row-major order. */
  readonly groupOf: Int32Array;
  /** Number of real elements in each group (ragged tiles are smaller). */
  readonly sizes: Int32Array;
  /**
   * kernelElement only: the plane (f, c) = f·C + c each group is ranked within, and the
   * number of planes; null / 0 for the other kinds (one partition: the whole parameter).
   */
  readonly partitionOf: Int32Array | null;
  readonly partitionCount: number;
}

/** Checks a GroupKind value, naming the calling function in the error. */
export function checkGroupKind(fn: string, kind: unknown): GroupKind {
  const k = kind as GroupKind;
  if (k === null || typeof k !== "object" || typeof k.kind !== "string") {
    throw new Error(
      `${fn}: a group kind must be an object like { kind: "block", rows: 4, cols: 4 }, got ${JSON.stringify(kind)}`,
    );
  }
  switch (k.kind) {
    case "element":
    case "row":
    case "column":
    case "channel":
    case "kernelElement":
      return k;
    case "block":
      for (const f of ["rows", "cols"] as const) {
        const v = k[f];
        if (!Number.isSafeInteger(v) || v < 1)
          throw new RangeError(
            `${fn}: block ${f} must be a positive integer, got ${JSON.stringify(v)}`,
          );
      }
      return k;
    default:
      throw new Error(
        `${fn}: unknown group kind ${JSON.stringify((k as { kind: unknown }).kind)}; expected element, block, row, column, channel or kernelElement`,
      );
  }
}

/** A short label for a kind: "block 4x4", "row", ... (used in errors and checkpoints). */
export function describeKind(kind: GroupKind): string {
  return kind.kind === "block" ? `block ${kind.rows}x${kind.cols}` : kind.kind;
}

/**
 * The group of every element of a parameter of `shape` under `kind`. Shapes: [out, in]
 * (Linear) or [F, C, kh, kw] (conv, grouped through its [F, C·kh·kw] matrix view). On a
 * 2-d weight "channel" means one input feature (= column) and "kernelElement" makes every
 * element its own plane (so keeping the top n per plane keeps everything): the definitions
 * that make a Linear layer a 1x1 convolution.
 */
export function groupLayout(kind: GroupKind, shape: readonly number[]): GroupLayout {
  const fn = "groupLayout";
  checkGroupKind(fn, kind);
  if (
    !Array.isArray(shape) ||
    (shape.length !== 2 && shape.length !== 4) ||
    !shape.every((d) => Number.isSafeInteger(d) && d > 0)
  ) {
    throw new Error(
      `${fn}: ${describeKind(kind)} groups need a weight of shape [out, in] or [F, C, kh, kw] with positive sizes, got ${Array.isArray(shape) ? fmt(shape) : JSON.stringify(shape)}`,
    );
  }
  const rows = shape[0]!;
  const cols = shape.length === 2 ? shape[1]! : shape[1]! * shape[2]! * shape[3]!;
  const plane = shape.length === 2 ? 1 : shape[2]! * shape[3]!;
  const n = rows * cols;
  const groupOf = new Int32Array(n);
  let count: number;
  let partitionOf: Int32Array | null = null;
  let partitionCount = 0;
  switch (kind.kind) {
    case "element":
      count = n;
      for (let i = 0; i < n; i++) groupOf[i] = i;
      break;
    case "block": {
      const bc = Math.ceil(cols / kind.cols);
      count = Math.ceil(rows / kind.rows) * bc;
      for (let r = 0; r < rows; r++) {
        const base = Math.floor(r / kind.rows) * bc;
        for (let c = 0; c < cols; c++) groupOf[r * cols + c] = base + Math.floor(c / kind.cols);
      }
      break;
    }
    case "row":
      count = rows;
      for (let r = 0; r < rows; r++) groupOf.fill(r, r * cols, (r + 1) * cols);
      break;
    case "column":
      count = cols;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) groupOf[r * cols + c] = c;
      break;
    case "channel":
      // Conv: the kh·kw columns of input channel c are contiguous in the [F, C·kh·kw] view.
      count = cols / plane;
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) groupOf[r * cols + c] = Math.floor(c / plane);
      break;
    case "kernelElement":
      count = n;
      for (let i = 0; i < n; i++) groupOf[i] = i;
      // Elements of one plane (f, c) are contiguous: plane index = element index / (kh·kw).
      partitionCount = n / plane;
      partitionOf = new Int32Array(n);
      for (let i = 0; i < n; i++) partitionOf[i] = Math.floor(i / plane);
      break;
  }
  const sizes = new Int32Array(count);
  for (let i = 0; i < n; i++) sizes[groupOf[i]!]!++;
  return {
    kind,
    shape: [...shape],
    rows,
    cols,
    count,
    groupOf,
    sizes,
    partitionOf,
    partitionCount,
  };
}

/** The 0/1 element mask that keeps exactly the groups flagged alive. */
export function maskFromAlive(
  layout: GroupLayout,
  alive: Uint8Array,
  out: Float32Array = new Float32Array(layout.groupOf.length),
): Float32Array {
  const g = layout.groupOf;
  for (let i = 0; i < g.length; i++) out[i] = alive[g[i]!] === 0 ? 0 : 1;
  return out;
}

/**
 * Alive flags from an element mask. Every group must be entirely kept or entirely removed:
 * a partly masked group means the mask was made for another kind or shape, and is refused.
 */
export function aliveFromMask(
  fn: string,
  name: string,
  layout: GroupLayout,
  mask: ArrayLike<number>,
): Uint8Array {
  const g = layout.groupOf;
  if (mask.length !== g.length) {
    throw new Error(
      `${fn}: mask of "${name}" has ${mask.length} elements, the parameter ${fmt(layout.shape)} has ${g.length}`,
    );
  }
  const kept = new Int32Array(layout.count);
  for (let i = 0; i < g.length; i++) {
    const m = mask[i]!;
    if (m !== 0 && m !== 1)
      throw new Error(`${fn}: mask of "${name}" must hold only 0 and 1, element ${i} is ${m}`);
    if (m === 1) kept[g[i]!]!++;
  }
  const alive = new Uint8Array(layout.count);
  for (let j = 0; j < layout.count; j++) {
    if (kept[j] !== 0 && kept[j] !== layout.sizes[j]) {
      throw new Error(
        `${fn}: mask of "${name}" keeps ${kept[j]} of the ${layout.sizes[j]} elements of ${describeKind(layout.kind)} group ${j}; a mask must keep or remove whole groups`,
      );
    }
    alive[j] = kept[j]! > 0 ? 1 : 0;
  }
  return alive;
}
