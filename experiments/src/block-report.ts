// Turns block-sweep points into what docs/results/block-pruning.md shows: per dataset and tile
// size the accuracy after pruning and after fine-tuning at each round (mean and range over
// seeds), magnitude against random tiles, storage, the issue's targets checked against the
// numbers, and the paper's claims beside them.
import type { SweepPoint } from "./sweep/index.ts";
import { markdownTable } from "./sweep/index.ts";
import type { AccuracyRow } from "./plot/index.ts";
import {
  DEFAULT_FT_BATCH,
  DEFAULT_FT_LR,
  type ChainConfig,
  type ChainResult,
  type FineTuneConfig,
  type RoundRow,
} from "./block-chain.ts";

export type BlockPoint = SweepPoint<ChainConfig & { dense?: unknown }, ChainResult>;

export interface Stat {
  mean: number;
  min: number;
  max: number;
  n: number;
}

function stat(xs: readonly number[]): Stat {
  if (xs.length === 0) return { mean: NaN, min: NaN, max: NaN, n: 0 };
  return {
    mean: xs.reduce((a, b) => a + b, 0) / xs.length,
    min: Math.min(...xs),
    max: Math.max(...xs),
    n: xs.length,
  };
}

/** One (dataset, block size, method, round) cell over seeds. */
export interface Cell {
  dataset: string;
  blockSize: number;
  method: string;
  round: number;
  density: Stat;
  pruned: Stat;
  fineTuned: Stat;
  dense: Stat;
  bytes: { dense: number; csr: number; bsr: number };
  seeds: number[];
}

const cellKey = (d: string, b: number, m: string, r: number) => `${d}|${b}|${m}|${r}`;

/** Groups the points' rounds by (dataset, block size, method, round), over seeds. */
export function cells(points: readonly BlockPoint[]): Cell[] {
  const groups = new Map<string, { c: ChainConfig; rows: RoundRow[]; dense: number[] }>();
  for (const p of points) {
    for (const row of p.result.rounds) {
      const k = cellKey(p.config.dataset, p.config.blockSize, p.config.method, row.round);
      let g = groups.get(k);
      if (g === undefined) groups.set(k, (g = { c: p.config, rows: [], dense: [] }));
      g.rows.push(row);
      g.dense.push(p.result.denseAccuracy);
    }
  }
  const out: Cell[] = [];
  for (const [k, g] of groups) {
    const round = Number(k.split("|")[3]);
    const seeds = points
      .filter(
        (p) =>
          p.config.dataset === g.c.dataset &&
          p.config.blockSize === g.c.blockSize &&
          p.config.method === g.c.method &&
          p.result.rounds.some((r) => r.round === round),
      )
      .map((p) => p.config.seed)
      .sort((a, b) => a - b);
    const last = g.rows[0]!;
    out.push({
      dataset: g.c.dataset,
      blockSize: g.c.blockSize,
      method: g.c.method,
      round,
      density: stat(g.rows.map((r) => r.density)),
      pruned: stat(g.rows.map((r) => r.accuracyPruned)),
      fineTuned: stat(g.rows.map((r) => r.accuracyFineTuned)),
      dense: stat(g.dense),
      bytes: last.bytes,
      seeds,
    });
  }
  return out.sort(
    (a, b) =>
      a.dataset.localeCompare(b.dataset) ||
      a.blockSize - b.blockSize ||
      a.method.localeCompare(b.method) ||
      a.round - b.round,
  );
}

/** Rows for accuracyVsDensityChart: every seed's fine-tuned accuracy per round (and round 0, dense). */
export function accuracyRows(points: readonly BlockPoint[], dataset: string): AccuracyRow[] {
  const rows: AccuracyRow[] = [];
  for (const p of points) {
    if (p.config.dataset !== dataset) continue;
    const base = { blockSize: p.config.blockSize, method: p.config.method, seed: p.config.seed };
    rows.push({ ...base, density: 1, accuracy: p.result.denseAccuracy });
    for (const r of p.result.rounds)
      rows.push({ ...base, density: r.density, accuracy: r.accuracyFineTuned });
  }
  return rows;
}

const pct = (x: number, d = 2) => (Number.isNaN(x) ? "-" : (100 * x).toFixed(d));
/** "97.95 (97.80-98.10)" over seeds, or "97.95" for one seed, in percent. */
export const statText = (s: Stat) =>
  s.n === 0 ? "-" : s.n === 1 ? pct(s.mean) : `${pct(s.mean)} (${pct(s.min)}-${pct(s.max)})`;

/** The issue's accuracy targets, checked against the cells. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean | null;
}

function find(cs: readonly Cell[], d: string, b: number, m: string, round: number) {
  return cs.find(
    (c) => c.dataset === d && c.blockSize === b && c.method === m && c.round === round,
  );
}

/** A gap to the dense model in points: "0.38 points below", or "0.04 points above". */
function gapText(gap: number): string {
  return gap < 0 ? `${(-gap).toFixed(2)} points above` : `${gap.toFixed(2)} points below`;
}

/**
 * Every fine-tuning budget side by side where a variant was run: per budget and (dataset, tile
 * size) of the magnitude chains, how far rounds 10 and 16 end below the dense model, on average
 * and per seed (the issue's targets: MNIST 4x4 within 0.5 and 1.5 points).
 */
export function budgetTable(
  plain: readonly BlockPoint[],
  variants: readonly BlockPoint[][],
): string {
  const pairs = new Set(variants.flat().map((p) => `${p.config.dataset}|${p.config.blockSize}`));
  const rows: { budget: string; d: string; b: number; ps: BlockPoint[] }[] = [];
  const groups: [string, readonly BlockPoint[]][] = [
    [`plain: ${epochsText(plain[0]?.config.fineTune.epochs ?? 0)} per round`, plain],
    ...variants.map((ps): [string, readonly BlockPoint[]] => [lateTitle(ps[0]!), ps]),
  ];
  for (const [budget, ps] of groups)
    for (const k of [...pairs].sort()) {
      const [d, bs] = k.split("|") as [string, string];
      const b = Number(bs);
      const mine = ps.filter(
        (p) =>
          p.config.dataset === d && p.config.blockSize === b && p.config.method === "magnitude",
      );
      if (mine.length > 0) rows.push({ budget, d, b, ps: mine });
    }
  const gap = (p: BlockPoint, round: number): number | undefined => {
    const r = p.result.rounds.find((x) => x.round === round);
    return r === undefined ? undefined : 100 * (p.result.denseAccuracy - r.accuracyFineTuned);
  };
  const mean = (ps: readonly BlockPoint[], round: number): string => {
    const gs = ps.map((p) => gap(p, round)).filter((g) => g !== undefined);
    return gs.length === 0 ? "-" : (gs.reduce((a, x) => a + x, 0) / gs.length).toFixed(2);
  };
  return markdownTable(rows, [
    { header: "budget", value: (r) => r.budget },
    { header: "chains", value: (r) => `${r.d} ${r.b}x${r.b}` },
    {
      header: "seeds",
      value: (r) =>
        r.ps
          .map((p) => p.config.seed)
          .sort((a, b) => a - b)
          .join(", "),
    },
    {
      header: "kernels",
      value: (r) => [...new Set(r.ps.map((p) => p.kernels ?? "asm"))].join(", "),
    },
    { header: "round 10: points below dense, mean", value: (r) => mean(r.ps, 10) },
    { header: "round 16: points below dense, mean", value: (r) => mean(r.ps, 16) },
    {
      header: "round 16, per seed",
      value: (r) =>
        [...r.ps]
          .sort((a, b) => a.config.seed - b.config.seed)
          .map((p) => gap(p, 16)?.toFixed(2) ?? "-")
          .join(" / "),
    },
  ]);
}

function epochsText(n: number): string {
  return `${n} epoch${n === 1 ? "" : "s"}`;
}

export function checkTargets(cs: readonly Cell[]): TargetCheck[] {
  const out: TargetCheck[] = [];
  const within = (d: string, round: number, points: number, label: string) => {
    const c = find(cs, d, 4, "magnitude", round);
    if (c === undefined) {
      out.push({ target: label, measured: "not run yet", met: null });
      return;
    }
    const gap = 100 * (c.dense.mean - c.fineTuned.mean);
    out.push({
      target: label,
      measured: `dense ${pct(c.dense.mean)}%, pruned ${pct(c.fineTuned.mean)}% at ${pct(c.density.mean, 1)}% density: ${gapText(gap)} (${c.seeds.length} seed${c.seeds.length === 1 ? "" : "s"})`,
      met: gap <= points,
    });
  };
  within("mnist", 10, 0.5, "MNIST, 4x4, round 10 (10.8%): within 0.5 points of dense");
  within("mnist", 16, 1.5, "MNIST, 4x4, round 16 (2.9%): within 1.5 points of dense");
  within(
    "fashion-mnist",
    10,
    1.5,
    "Fashion-MNIST, 4x4, round 10 (10.8%): within 1.5 points of dense",
  );
  // Magnitude beats random at every density and block size run with both.
  let compared = 0;
  let aheadAfterCut = 0;
  const losses: string[] = [];
  const margins: { text: string; margin: number }[] = [];
  for (const c of cs) {
    if (c.method !== "magnitude") continue;
    const r = find(cs, c.dataset, c.blockSize, "random", c.round);
    if (r === undefined) continue;
    compared++;
    if (c.pruned.mean > r.pruned.mean) aheadAfterCut++;
    const text = `${c.dataset} b${c.blockSize} round ${c.round}: ${pct(c.fineTuned.mean)} vs ${pct(r.fineTuned.mean)} (${c.seeds.length} / ${r.seeds.length} seeds)`;
    if (!(c.fineTuned.mean > r.fineTuned.mean)) losses.push(text);
    else margins.push({ text, margin: c.fineTuned.mean - r.fineTuned.mean });
  }
  // A lead of less than 0.05 points is a tie within seed noise: name those cells.
  const close = margins
    .filter((m) => m.margin < 0.0005)
    .sort((a, b) => a.margin - b.margin)
    .map((m) => m.text);
  out.push({
    target: "magnitude block pruning beats random block masks at every density and block size",
    measured:
      (compared === 0
        ? "not run yet"
        : losses.length === 0
          ? `better in all ${compared} (dataset, block size, round) cells`
          : `worse or equal in ${losses.length} of ${compared} cells: ${losses.join("; ")}`) +
      (close.length === 0
        ? ""
        : `; ahead by less than 0.05 points (a tie within seed noise) in ${close.length}: ${close.join("; ")}`) +
      (compared === 0
        ? ""
        : ` (right after the cut, before fine-tuning: ahead in ${aheadAfterCut} of ${compared})`),
    met: compared === 0 ? null : losses.length === 0,
  });
  return out;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return markdownTable(checks, [
    { header: "target", value: (c) => c.target },
    { header: "measured", value: (c) => c.measured },
    { header: "met", value: (c) => (c.met === null ? "not yet run" : c.met ? "yes" : "**no**") },
  ]);
}

/**
 * One table per dataset and block size: per round the density, accuracy right after the cut
 * and after fine-tuning for magnitude and random tiles (mean and min-max over seeds), and the
 * storage of the three pruned matrices.
 */
export function roundsTable(cs: readonly Cell[], dataset: string, blockSize: number): string {
  const mag = cs.filter(
    (c) => c.dataset === dataset && c.blockSize === blockSize && c.method === "magnitude",
  );
  const rounds = [
    ...new Set(
      cs.filter((c) => c.dataset === dataset && c.blockSize === blockSize).map((c) => c.round),
    ),
  ].sort((a, b) => a - b);
  const rows = rounds.map((round) => ({
    round,
    m: mag.find((c) => c.round === round),
    r: find(cs, dataset, blockSize, "random", round),
  }));
  const kb = (b: number) => (b / 1024).toFixed(1);
  // Rounds run with more seeds than others (extra seeds of one round only) say how many.
  const seedCount = (x: (typeof rows)[number]) =>
    `${x.m?.seeds.length ?? 0} / ${x.r?.seeds.length ?? 0}`;
  const varying = new Set(rows.map(seedCount)).size > 1;
  return markdownTable(rows, [
    { header: "round", value: (x) => x.round },
    ...(varying
      ? [
          {
            header: "seeds (magnitude / random)",
            value: (x: (typeof rows)[number]) => seedCount(x),
          },
        ]
      : []),
    { header: "density %", value: (x) => pct((x.m ?? x.r)!.density.mean, 1) },
    { header: "magnitude: after cut", value: (x) => (x.m ? statText(x.m.pruned) : "-") },
    { header: "magnitude: fine-tuned", value: (x) => (x.m ? statText(x.m.fineTuned) : "-") },
    { header: "random: after cut", value: (x) => (x.r ? statText(x.r.pruned) : "-") },
    { header: "random: fine-tuned", value: (x) => (x.r ? statText(x.r.fineTuned) : "-") },
    {
      header: "KiB dense / CSR / BSR",
      value: (x) => {
        const b = (x.m ?? x.r)!.bytes;
        return `${kb(b.dense)} / ${kb(b.csr)} / ${kb(b.bsr)}`;
      },
    },
  ]);
}

/**
 * The paper's trend in one table per dataset: one row per tile size, the fine-tuned accuracy of
 * magnitude and random tiles (mean over seeds, with the seed count) at the chosen rounds. A
 * round a tile size has not reached shows "-".
 */
export function blockSizeTable(
  cs: readonly Cell[],
  dataset: string,
  rounds: readonly number[],
): string {
  const sizes = [...new Set(cs.filter((c) => c.dataset === dataset).map((c) => c.blockSize))].sort(
    (a, b) => a - b,
  );
  const cellText = (c: Cell | undefined) =>
    c === undefined ? "-" : `${pct(c.fineTuned.mean)} (${c.seeds.length})`;
  const density = (round: number) => {
    const c = cs.find((x) => x.dataset === dataset && x.round === round);
    return c === undefined ? "" : `, ${pct(c.density.mean, 1)}%`;
  };
  return markdownTable(
    sizes.map((b) => ({ b })),
    [
      { header: "tiles", value: (x) => (x.b === 1 ? "1x1 (elements)" : `${x.b}x${x.b}`) },
      ...rounds.flatMap((round) =>
        (["magnitude", "random"] as const).map((m) => ({
          header: `round ${round}${density(round)}: ${m}`,
          value: (x: { b: number }) => cellText(find(cs, dataset, x.b, m, round)),
        })),
      ),
    ],
  );
}

/**
 * Splits points by fine-tuning budget: the plain chains (one budget for every round, the
 * default learning rate, asm.js kernels) and one group per other budget (block-sweep --ft-late,
 * --ft-lr, --ft-weight-decay, --ft-batch) or kernel path (TESSERA_KERNELS: the wasm path sums
 * in float32, so its chains are not the asm.js chains' numbers), which are never averaged with
 * the plain chains of the same dataset, tile size, method and seed. When no chain is plain, the
 * first group (in the order of its JSON text) stands in.
 */
export function splitByBudget(points: readonly BlockPoint[]): {
  plain: BlockPoint[];
  variants: BlockPoint[][];
} {
  const byBudget = new Map<string, BlockPoint[]>();
  for (const p of points) {
    const k = budgetKey(p);
    byBudget.set(k, [...(byBudget.get(k) ?? []), p]);
  }
  const keys = [...byBudget.keys()].sort();
  const plain = budgetKey({
    config: { fineTune: { lr: DEFAULT_FT_LR, batchSize: DEFAULT_FT_BATCH } },
    kernels: "asm",
  });
  const plainKey = byBudget.has(plain) ? plain : keys[0]!;
  return {
    plain: byBudget.get(plainKey) ?? [],
    variants: keys.filter((k) => k !== plainKey).map((k) => byBudget.get(k)!),
  };
}

/**
 * What sets a chain's group apart from the plain one: late budget, learning rate, decay, batch,
 * and the kernel path (points made before the field existed ran on asm.js).
 */
function budgetKey(p: {
  config: { fineTune: Pick<FineTuneConfig, "late" | "lr" | "weightDecay" | "batchSize"> };
  kernels?: string;
}): string {
  const ft = p.config.fineTune;
  return JSON.stringify([
    ft.late ?? null,
    ft.lr,
    ft.weightDecay ?? null,
    ft.batchSize,
    p.kernels ?? "asm",
  ]);
}

/** Learning rate, weight decay and batch of a budget where they differ from the plain one's. */
function optimizerText(ft: FineTuneConfig, plainLr: number): string | undefined {
  const parts = [
    ...(ft.lr === plainLr ? [] : [`learning rate ${ft.lr}`]),
    ...(ft.weightDecay === undefined ? [] : [`AdamW weight decay ${ft.weightDecay}`]),
    ...(ft.batchSize === DEFAULT_FT_BATCH ? [] : [`batch ${ft.batchSize}`]),
  ];
  return parts.length === 0 ? undefined : parts.join(", ");
}

/**
 * Which kernel path computed the chains, where it is not the default asm.js one (points made
 * before the field existed ran on asm.js): the wasm path sums in float32, so its numbers are
 * not the asm.js path's bit for bit.
 */
function kernelText(ps: readonly BlockPoint[]): string {
  const paths = [...new Set(ps.map((p) => p.kernels ?? "asm"))].sort();
  return paths.length === 1 && paths[0] === "asm"
    ? ""
    : ` Kernel path: ${paths.join(", ")} (TESSERA_KERNELS; float32 sums where asm.js sums in float64).`;
}

/** The section title of a budget variant. */
export function lateTitle(p: BlockPoint): string {
  const { late } = p.config.fineTune;
  const extra = optimizerText(p.config.fineTune, DEFAULT_FT_LR);
  const rate = extra === undefined ? "" : ` with ${extra}`;
  const path = (p.kernels ?? "asm") === "asm" ? "" : ` (${p.kernels} kernels)`;
  if (late === undefined)
    return `Fine-tuning with ${extra ?? "the plain budget"}: ${epochsText(p.config.fineTune.epochs)} per round${path}`;
  return late.fromRound <= 1
    ? `Longer fine-tuning in every round: ${epochsText(late.epochs)} per round${rate}${path}`
    : `Longer fine-tuning from round ${late.fromRound}: ${epochsText(late.epochs)} per round${rate}${path}`;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function anchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");
}

/**
 * The section of one budget variant (a late budget, another learning rate, or both): its
 * targets, and per dataset and tile size its rounds from the late budget's first round on beside
 * the plain budget's chains of the same seeds (rounds before it are the same protocol, and the
 * same numbers when branched from the plain chains).
 */
export function variantSection(ps: readonly BlockPoint[], plain: readonly BlockPoint[]): string {
  const ft = ps[0]!.config.fineTune;
  // A variant of the learning rate alone is a "late budget" of its own epochs from round 1.
  const late = ft.late ?? { fromRound: 1, epochs: ft.epochs };
  const cs = cells(ps).filter((c) => c.round >= late.fromRound);
  // The plain chains beside them are the same (dataset, tile size, method, seed) chains only,
  // so both columns average over the same seeds.
  const chain = (p: BlockPoint) =>
    `${p.config.dataset}|${p.config.blockSize}|${p.config.method}|${p.config.seed}`;
  const mine = new Set(ps.map(chain));
  const plainCells = cells(plain.filter((p) => mine.has(chain(p))));
  const plainEpochs = ft.epochs;
  const plainLr = plain[0]?.config.fineTune.lr ?? DEFAULT_FT_LR;
  const extra = optimizerText(ft, plainLr);
  const lrText =
    extra === undefined
      ? "same optimizer and learning rate"
      : `${extra} (the plain chains: Adam at learning rate ${plainLr}, no decay, batch ${plain[0]?.config.fineTune.batchSize ?? DEFAULT_FT_BATCH})`;
  // Column and heading names: the epochs, and the optimizer settings where the budgets differ.
  const mineName = `${epochsText(late.epochs)}${extra === undefined ? "" : ` with ${extra}`}`;
  const plainName = `${epochsText(plainEpochs)}${extra === undefined ? "" : ` plain`}`;
  const out = [
    `## ${lateTitle(ps[0]!)}\n\n` +
      `${ps.length} chain${ps.length === 1 ? "" : "s"} (${ps.map((p) => p.key).join(", ")}): ` +
      (late.fromRound <= 1
        ? `${epochsText(late.epochs)} in every round${late.epochs === plainEpochs ? " as in the plain chains" : ` instead of ${epochsText(plainEpochs)}`}, a fixed budget per round like the plain one, `
        : `rounds 1-${late.fromRound - 1} as above (${epochsText(plainEpochs)} each), then ${epochsText(late.epochs)} per round, `) +
      `${lrText} and cosine decay within each round. This is a stated change of the budget, reported beside ` +
      `the plain one, not in its place.` +
      kernelText(ps) +
      `\n\n` +
      // Rounds before the late budget's first are the plain protocol: their targets are above.
      targetsTable(checkTargets(cs).filter((t) => t.met !== null)),
  ];
  const keys = [...new Set(cs.map((c) => `${c.dataset}|${c.blockSize}`))].sort();
  for (const k of keys) {
    const [d, bs] = k.split("|") as [string, string];
    const b = Number(bs);
    const rows = cs
      .filter((c) => c.dataset === d && c.blockSize === b)
      .map((c) => ({
        c,
        before: plainCells.find(
          (x) =>
            x.dataset === d && x.blockSize === b && x.method === c.method && x.round === c.round,
        ),
      }));
    out.push(
      `### ${d}, ${b === 1 ? "element-wise (1x1)" : `${b}x${b} tiles`}: ${mineName} against ${plainName} per round\n\n` +
        `Fine-tuned test accuracy %, mean (min-max over seeds); the plain column is the same seeds' plain chains.\n\n` +
        markdownTable(rows, [
          { header: "round", value: (x) => x.c.round },
          { header: "density %", value: (x) => (100 * x.c.density.mean).toFixed(1) },
          { header: "tiles", value: (x) => x.c.method },
          {
            header: `${mineName}: fine-tuned (seeds)`,
            value: (x) => `${statText(x.c.fineTuned)} (${x.c.seeds.length})`,
          },
          {
            header: `${plainName}: fine-tuned (seeds)`,
            value: (x) =>
              x.before === undefined
                ? "-"
                : `${statText(x.before.fineTuned)} (${x.before.seeds.length})`,
          },
        ]),
    );
  }
  return out.join("\n");
}
