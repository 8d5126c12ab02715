// The contract every part of @tessera/pruning shares: how a group structure is named, and
// what a pruned parameter looks like from outside (its dotted name, its group kind, its 0/1
// element mask). Masks, selection, BSR conversion and checkpoints all speak this.

/**
 * How a parameter's elements are grouped for scoring and removal. Every kind works on the
 * weight's matrix view: a Linear weight [out, in] as it is, a conv weight [F, C, k, k] as
 * [F, C·k·k] (rows are filters, columns are (c, i, j) positions).
 *
 * - element: every element is its own group (unstructured).
 * - block: R x C tiles from (0,0); the last tile of a row/column of tiles is ragged where the
 *   size does not divide the dimension (784 = 3·261 + 1). Never reordered.
 * - row: one output neuron / filter (a matrix-view row).
 * - column: one input feature / one (c, i, j) position across all filters (a matrix-view column).
 * - channel: all weights reading one input channel (conv: the k·k columns of c; Linear: = column).
 * - kernelElement: one element w[f, c, i, j], ranked within its k x k plane (KEP: keep the top
 *   n per plane). For a Linear weight a "plane" is one element.
 */
export type GroupKind =
  | { readonly kind: "element" }
  | { readonly kind: "block"; readonly rows: number; readonly cols: number }
  | { readonly kind: "row" }
  | { readonly kind: "column" }
  | { readonly kind: "channel" }
  | { readonly kind: "kernelElement" };

/** One pruned parameter as the rest of Tessera sees it. */
export interface PrunedEntry {
  /** Dotted parameter name, e.g. "fc1.weight". */
  readonly name: string;
  readonly kind: GroupKind;
  /** 0/1 per element of the parameter (same length as its data); 0 = pruned. */
  readonly mask: Float32Array;
}

/** Anything that can list its pruned parameters (a PruningState does). */
export interface PrunedSource {
  entries(): Iterable<PrunedEntry>;
}
