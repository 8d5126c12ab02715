// Selection rules: which alive groups to remove. Pure functions of scores and alive flags;
// they never revive a group (removed groups are not candidates and are never returned).
//
// Removal order, everywhere: ascending score; on equal scores the lower group index goes
// first. (Global selection breaks ties by layer order, then group index.)

function checkAlive(fn: string, scores: ArrayLike<number>, alive: Uint8Array): void {
  if (!(alive instanceof Uint8Array) || alive.length !== scores.length) {
    throw new Error(
      `${fn}: alive must be a Uint8Array of one flag per group (${scores.length}), got ${alive instanceof Uint8Array ? alive.length : typeof alive}`,
    );
  }
  for (let j = 0; j < scores.length; j++) {
    if (alive[j] !== 0 && Number.isNaN(scores[j]!))
      throw new Error(`${fn}: score of alive group ${j} is NaN`);
  }
}

function checkFraction(fn: string, name: string, v: number): void {
  if (typeof v !== "number" || !(v >= 0 && v <= 1))
    throw new RangeError(`${fn}: ${name} must be in [0, 1], got ${String(v)}`);
}

/** The alive groups in removal order (ascending score, then ascending index). */
export function removalOrder(scores: ArrayLike<number>, alive: Uint8Array): Int32Array {
  checkAlive("removalOrder", scores, alive);
  let n = 0;
  for (let j = 0; j < alive.length; j++) if (alive[j] !== 0) n++;
  const idx = new Int32Array(n);
  n = 0;
  for (let j = 0; j < alive.length; j++) if (alive[j] !== 0) idx[n++] = j;
  // Index as the tie break makes the order total, so the result does not depend on the
  // sort algorithm's stability.
  idx.sort((a, b) => scores[a]! - scores[b]! || a - b);
  return idx;
}

/**
 * The paper's iterative rule: remove round(fraction · alive) of the groups still alive
 * (Math.round: halves round up), lowest scores first. Returns the removed group indices.
 */
export function selectFraction(
  scores: ArrayLike<number>,
  alive: Uint8Array,
  fraction: number,
): Int32Array {
  checkFraction("selectFraction", "fraction", fraction);
  const order = removalOrder(scores, alive);
  return order.slice(0, Math.round(fraction * order.length));
}

/**
 * One-shot to a target density by weights: K = round(density · total elements) is the number
 * of elements to keep; groups are removed in removal order while the kept count stays >= K,
 * stopping at the first group whose removal would go below it (so every removed group
 * scores no higher than every kept one). Density after is >= the target and exceeds it by
 * less than one group. Already below the target: nothing is removed.
 */
export function selectToDensity(
  scores: ArrayLike<number>,
  alive: Uint8Array,
  sizes: Int32Array,
  density: number,
): Int32Array {
  const fn = "selectToDensity";
  checkFraction(fn, "density", density);
  if (sizes.length !== scores.length)
    throw new Error(`${fn}: sizes has ${sizes.length} groups, scores ${scores.length}`);
  let total = 0;
  let kept = 0;
  for (let j = 0; j < sizes.length; j++) {
    total += sizes[j]!;
    if (alive[j] !== 0) kept += sizes[j]!;
  }
  const target = Math.round(density * total);
  const order = removalOrder(scores, alive);
  let n = 0;
  while (n < order.length && kept - sizes[order[n]!]! >= target) kept -= sizes[order[n++]!]!;
  return order.slice(0, n);
}

export interface GlobalLayer {
  scores: ArrayLike<number>;
  alive: Uint8Array;
  sizes: Int32Array;
}

/**
 * How scores of different layers are made comparable before a global ranking:
 * - "none": as they are (torch.nn.utils.prune.global_unstructured's choice; fine for
 *   per-element magnitudes such as mean-abs).
 * - "max": each layer's scores divided by its largest alive score (the block-pruning
 *   authors' normalisation), so every layer's best group scores 1.
 */
export type GlobalNormalization = "none" | "max";

/**
 * One-shot to a global target density: the alive groups of all layers ranked together by
 * (normalised) score, removed as in selectToDensity against K = round(density · all
 * elements of all layers). Ties: layer order, then group index. Returns the removed groups
 * per layer.
 */
export function selectGlobal(
  layers: readonly GlobalLayer[],
  density: number,
  normalize: GlobalNormalization = "none",
): Int32Array[] {
  const fn = "selectGlobal";
  checkFraction(fn, "density", density);
  if (normalize !== "none" && normalize !== "max")
    throw new Error(`${fn}: normalize must be "none" or "max", got ${JSON.stringify(normalize)}`);
  let total = 0;
  let kept = 0;
  const cand: { layer: number; group: number; score: number }[] = [];
  layers.forEach((l, li) => {
    if (l.sizes.length !== l.scores.length)
      throw new Error(
        `${fn}: layer ${li}: sizes has ${l.sizes.length} groups, scores ${l.scores.length}`,
      );
    const order = removalOrder(l.scores, l.alive);
    let max = 0;
    for (const j of order) max = Math.max(max, l.scores[j]!);
    const scale = normalize === "max" && max > 0 ? 1 / max : 1;
    for (let j = 0; j < l.sizes.length; j++) {
      total += l.sizes[j]!;
      if (l.alive[j] !== 0) kept += l.sizes[j]!;
    }
    for (const j of order) cand.push({ layer: li, group: j, score: l.scores[j]! * scale });
  });
  cand.sort((a, b) => a.score - b.score || a.layer - b.layer || a.group - b.group);
  const target = Math.round(density * total);
  const removed: number[][] = layers.map(() => []);
  for (const c of cand) {
    const size = layers[c.layer]!.sizes[c.group]!;
    if (kept - size < target) break;
    kept -= size;
    removed[c.layer]!.push(c.group);
  }
  return removed.map((r) => Int32Array.from(r));
}

/**
 * KEP's rule: within each partition (a kernel plane), keep the n alive groups that come last
 * in removal order (the n highest scores; on ties the higher index stays) and remove the
 * other alive ones. Partitions with n or fewer alive groups lose nothing.
 */
export function selectTopPerPartition(
  scores: ArrayLike<number>,
  alive: Uint8Array,
  partitionOf: Int32Array,
  partitionCount: number,
  n: number,
): Int32Array {
  const fn = "selectTopPerPartition";
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`${fn}: n must be an integer >= 0, got ${String(n)}`);
  if (partitionOf.length !== scores.length)
    throw new Error(
      `${fn}: partitionOf has ${partitionOf.length} entries, scores ${scores.length}`,
    );
  const order = removalOrder(scores, alive);
  // Walk the removal order backwards: the first n seen in a partition are its best.
  const keptIn = new Int32Array(partitionCount);
  const remove = new Uint8Array(scores.length);
  for (let r = order.length - 1; r >= 0; r--) {
    const j = order[r]!;
    const p = partitionOf[j]!;
    if (keptIn[p]! < n) keptIn[p]!++;
    else remove[j] = 1;
  }
  return order.filter((j) => remove[j] === 1);
}
