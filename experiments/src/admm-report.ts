// Tables and the residual chart of the ADMM experiments (experiments/admm-sweep.ts), for
// docs/results/admm.md (written by experiments/admm-report.ts from real points only). The
// block points are set beside the block sweep's chains at the same round (their magnitude
// 4x4 chains, mean over the seeds present), and every issue target is checked with its gap.
import type { TopLevelSpec } from "vega-lite";
import type { SweepPoint } from "./sweep/index.ts";
import { markdownTable } from "./sweep/index.ts";
import type { AdmmPointConfig, AdmmPointResult } from "./admm-experiments.ts";

export type AdmmPoint = SweepPoint<AdmmPointConfig, AdmmPointResult>;

/** The slice of a block-sweep point the comparison reads. */
export interface ChainPoint {
  config: { dataset: string; blockSize: number; method: string; seed: number };
  result: { rounds: { round: number; density: number; accuracyFineTuned: number }[] };
}

const pct = (x: number, digits = 2): string => (100 * x).toFixed(digits);
/** The rate with the retraining rate when an ADMM point has its own ("s1.5 rlr 0.0001"). */
const rateLabel = (c: AdmmPointConfig): string =>
  c.method === "admm" && c.budget.retrainLr !== undefined
    ? `${c.rate} rlr ${c.budget.retrainLr}`
    : c.rate;
const tag = (c: AdmmPointConfig): string => `${rateLabel(c)} s${c.seed}`;
const budget = (c: AdmmPointConfig): string =>
  c.method === "admm"
    ? `K=${c.budget.iterations} x E=${c.budget.epochsPerIteration} + R=${c.budget.retrainEpochs}${c.budget.retrainLr === undefined ? "" : ` at lr ${c.budget.retrainLr}`}`
    : `fine-tune ${c.budget.iterations * c.budget.epochsPerIteration + c.budget.retrainEpochs}`;

/** One row per point of an experiment: accuracy before / after retraining, rate, epochs, time. */
export function pointsTable(points: readonly AdmmPoint[]): string {
  return markdownTable(points, [
    { header: "dataset", value: (p) => p.config.dataset },
    { header: "rate", value: (p) => p.config.rate },
    { header: "method", value: (p) => p.config.method },
    { header: "seed", value: (p) => p.config.seed },
    { header: "kept %", value: (p) => pct(p.result.density, 3) },
    { header: "compression", value: (p) => `${p.result.compression.toFixed(1)}x` },
    { header: "dense %", value: (p) => pct(p.result.denseAccuracy) },
    { header: "after prune %", value: (p) => pct(p.result.accuracyPruned) },
    { header: "after retraining %", value: (p) => pct(p.result.accuracyFinal) },
    { header: "last residual (per layer)", value: (p) => lastResidual(p) },
    { header: "epochs", value: (p) => `${p.result.epochs} (${budget(p.config)})` },
    { header: "wall s", value: (p) => p.result.seconds.toFixed(0) },
  ]);
}

function lastResidual(p: AdmmPoint): string {
  const last = p.result.residuals[p.result.residuals.length - 1];
  if (last === undefined) return "-";
  return Object.values(last)
    .map((r) => r.toFixed(3))
    .join(" / ");
}

/** Structured points: compacted shapes, weights and measured forward speedups. */
export function compactTable(points: readonly AdmmPoint[]): string {
  const rows = points.filter((p) => p.result.compact !== undefined);
  return markdownTable(rows, [
    { header: "dataset", value: (p) => p.config.dataset },
    { header: "rate", value: (p) => rateLabel(p.config) },
    { header: "seed", value: (p) => p.config.seed },
    {
      header: "compacted shapes",
      value: (p) =>
        p.result.compact!.layers.map((l) => `${l.name} [${l.after.join(",")}]`).join(" "),
    },
    {
      header: "weights",
      value: (p) =>
        `${p.result.compact!.weightsAfter} of ${p.result.compact!.weightsBefore} (${(p.result.compact!.weightsBefore / p.result.compact!.weightsAfter).toFixed(1)}x)`,
    },
    { header: "accuracy %", value: (p) => pct(p.result.compact!.accuracy) },
    ...[1, 128].map((batch) => ({
      header: `speedup b=${batch}`,
      value: (p: AdmmPoint) => {
        const f = p.result.compact!.forward.find((x) => x.batch === batch);
        return f === undefined ? "-" : `${f.speedup.toFixed(2)}x`;
      },
    })),
  ]);
}

/** Block points beside the block chain (magnitude 4x4) at the same round. */
export function blockTable(points: readonly AdmmPoint[], chains: readonly ChainPoint[]): string {
  const rows = points
    .filter((p) => p.config.experiment === "lenet300100-block")
    .map((p) => {
      const round = Number(p.config.rate.replace(/^round/, ""));
      const accs = chains
        .filter(
          (c) =>
            c.config.dataset === p.config.dataset &&
            c.config.blockSize === 4 &&
            c.config.method === "magnitude",
        )
        .map((c) => c.result.rounds.find((r) => r.round === round)?.accuracyFineTuned)
        .filter((a): a is number => a !== undefined);
      const chain = accs.length === 0 ? null : accs.reduce((a, b) => a + b, 0) / accs.length;
      return { p, round, chain, n: accs.length };
    });
  return markdownTable(rows, [
    { header: "dataset", value: (r) => r.p.config.dataset },
    { header: "round", value: (r) => r.round },
    { header: "kept %", value: (r) => pct(r.p.result.density) },
    { header: "ADMM after prune %", value: (r) => pct(r.p.result.accuracyPruned) },
    { header: "ADMM retrained %", value: (r) => pct(r.p.result.accuracyFinal) },
    {
      header: "ADMM as BSR %",
      value: (r) => (r.p.result.bsr ? pct(r.p.result.bsr.accuracy) : "-"),
    },
    {
      header: "iterative block (chain) %",
      value: (r) => (r.chain === null ? "no chain point" : `${pct(r.chain)} (${r.n} seeds)`),
    },
    { header: "epochs", value: (r) => r.p.result.epochs },
  ]);
}

export interface TargetCheck {
  target: string;
  met: boolean | null;
  detail: string;
}

/**
 * Where the paper's rate misses 99.0%, the issue asks for the largest rate that reaches it: the
 * highest ADMM compression whose every seed ends at >= 99.0% (a rate with its own retraining
 * rate counts apart), as "; largest at >= 99.0%: ...".
 */
function largestAt99(ns: readonly AdmmPoint[]): string {
  const byRate = new Map<string, AdmmPoint[]>();
  for (const p of ns)
    if (p.config.method === "admm")
      byRate.set(rateLabel(p.config), [...(byRate.get(rateLabel(p.config)) ?? []), p]);
  let best: AdmmPoint[] | undefined;
  for (const ps of byRate.values())
    if (
      ps.every((p) => p.result.accuracyFinal >= 0.99) &&
      (best === undefined || ps[0]!.result.compression > best[0]!.result.compression)
    )
      best = ps;
  if (best === undefined) return "; no ADMM rate reaches 99.0%";
  const accs = best.map((p) => pct(p.result.accuracyFinal)).join(", ");
  return `; largest at >= 99.0%: ${best[0]!.result.compression.toFixed(1)}x (${rateLabel(best[0]!.config)}, ${accs}%)`;
}

/** The issue's targets, each met / not met / not measured, with the numbers. */
export function checkAdmmTargets(
  points: readonly AdmmPoint[],
  chains: readonly ChainPoint[],
): TargetCheck[] {
  const out: TargetCheck[] = [];
  const ns = points.filter((p) => p.config.experiment === "lenet5-nonstructured");
  const paper = ns.filter((p) => p.config.rate === "paper" && p.config.method === "admm");
  out.push(
    paper.length === 0
      ? { target: "LeNet-5 MNIST 71.2x at >= 99.0%", met: null, detail: "no point" }
      : {
          target: "LeNet-5 MNIST 71.2x at >= 99.0% (published 99.2%)",
          // Met when a stated budget reaches it (budgets differing in the retraining rate are
          // listed apart, each with its label).
          met: paper.some((p) => p.result.accuracyFinal >= 0.99),
          detail:
            paper
              .map(
                (p) =>
                  `${tag(p.config)}: ${pct(p.result.accuracyFinal)}% at ${p.result.compression.toFixed(1)}x`,
              )
              .join("; ") + largestAt99(ns),
        },
  );
  const pairs = ns
    .filter((p) => p.config.method === "admm")
    .map((a) => ({
      a,
      m: ns.find(
        (p) =>
          p.config.method === "magnitude" &&
          p.config.rate === a.config.rate &&
          p.config.seed === a.config.seed,
      ),
    }))
    .filter((x) => x.m !== undefined);
  out.push(
    pairs.length === 0
      ? { target: "ADMM beats magnitude right after the prune", met: null, detail: "no pairs" }
      : {
          target: "ADMM beats magnitude right after the prune, at every rate",
          met: pairs.every((x) => x.a.result.accuracyPruned > x.m!.result.accuracyPruned),
          detail: pairs
            .map(
              (x) =>
                `${tag(x.a.config)}: ${pct(x.a.result.accuracyPruned)} vs ${pct(x.m!.result.accuracyPruned)}`,
            )
            .join("; "),
        },
  );
  const st = points.filter(
    (p) => p.config.experiment === "lenet5-structured" && p.config.dataset === "mnist",
  );
  const good = st.filter(
    (p) =>
      p.result.compact !== undefined &&
      p.result.compact.weightsBefore / p.result.compact.weightsAfter >= 10 &&
      p.result.accuracyFinal >= 0.99,
  );
  out.push({
    target: "LeNet-5 structured MNIST: >= 10x fewer weights compacted at >= 99.0%",
    met: st.length === 0 ? null : good.length > 0,
    detail:
      st.length === 0
        ? "no point"
        : st
            .map(
              (p) =>
                `${tag(p.config)}: ${(p.result.compact!.weightsBefore / p.result.compact!.weightsAfter).toFixed(1)}x at ${pct(p.result.accuracyFinal)}%, b=128 speedup ${p.result.compact!.forward.find((f) => f.batch === 128)?.speedup.toFixed(2) ?? "-"}x`,
            )
            .join("; "),
  });
  const blk = points.filter(
    (p) => p.config.experiment === "lenet300100-block" && p.result.density <= 0.05,
  );
  const cmp = blk.map((p) => {
    const round = Number(p.config.rate.replace(/^round/, ""));
    const accs = chains
      .filter(
        (c) =>
          c.config.dataset === p.config.dataset &&
          c.config.blockSize === 4 &&
          c.config.method === "magnitude",
      )
      .map((c) => c.result.rounds.find((r) => r.round === round)?.accuracyFineTuned)
      .filter((a): a is number => a !== undefined);
    return { p, chain: accs.length === 0 ? null : accs.reduce((a, b) => a + b, 0) / accs.length };
  });
  const known = cmp.filter((x) => x.chain !== null);
  out.push({
    target: "ADMM 4x4 blocks >= iterative block pruning at <= 5% density",
    met: known.length === 0 ? null : known.every((x) => x.p.result.accuracyFinal >= x.chain!),
    detail:
      known.length === 0
        ? "no ADMM block point at <= 5% with a chain point beside it"
        : known
            .map(
              (x) =>
                `${x.p.config.dataset} ${x.p.config.rate}: ${pct(x.p.result.accuracyFinal)} vs ${pct(x.chain!)}`,
            )
            .join("; "),
  });
  return out;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  return markdownTable(checks, [
    { header: "target", value: (c) => c.target },
    { header: "met", value: (c) => (c.met === null ? "not measured" : c.met ? "yes" : "no") },
    { header: "measured", value: (c) => c.detail },
  ]);
}

/** Residual ||W − Z|| / ||W|| per layer against the ADMM iteration, one panel per point. */
export function residualChart(points: readonly AdmmPoint[], title: string): TopLevelSpec {
  const values = points.flatMap((p) =>
    p.result.residuals.flatMap((r, i) =>
      Object.entries(r).map(([layer, residual]) => ({
        point: `${p.config.dataset} ${p.config.rate} s${p.config.seed}`,
        layer,
        iteration: i + 1,
        residual,
      })),
    ),
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title,
    data: { values },
    facet: { field: "point", type: "nominal", title: null },
    columns: 3,
    spec: {
      width: 220,
      height: 160,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "iteration", type: "quantitative", title: "ADMM iteration" },
        y: {
          field: "residual",
          type: "quantitative",
          scale: { type: "log" },
          title: "||W − Z|| / ||W||",
        },
        color: { field: "layer", type: "nominal" },
      },
    },
  } as TopLevelSpec;
}
