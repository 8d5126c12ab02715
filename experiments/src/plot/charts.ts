// The block sweep's two charts as Vega-Lite specs built from plain rows. Density runs on a
// reversed log axis, so pruning harder goes right and the interesting low densities (the
// paper's rounds go 80% -> 2.9%) get as much room as the first rounds.
import type { TopLevelSpec } from "vega-lite";

export interface AccuracyRow {
  blockSize: number;
  method: string;
  seed: number;
  /** Fraction of weights kept, in (0, 1]. */
  density: number;
  accuracy: number;
}

export interface SpeedupRow {
  blockSize: number;
  /** Fraction of weights kept, in (0, 1]. */
  density: number;
  batch: number;
  threads: number;
  /** Dense time / sparse time (> 1: sparse is faster). */
  speedup: number;
}

export interface ChartOptions {
  title: string;
  /** Axis title of the y values (default "test accuracy" / "speedup over dense"). */
  yTitle?: string;
  /** Plot area size in pixels (per facet for the speedup chart). */
  width?: number;
  height?: number;
}

interface FieldRule {
  name: string;
  expected: string;
  ok: (v: unknown) => boolean;
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const positiveInt: FieldRule["ok"] = (v) => isNum(v) && Number.isInteger(v) && v >= 1;
const densityRule: FieldRule = {
  name: "density",
  expected: "a finite number in (0, 1] (fraction of weights kept)",
  ok: (v) => isNum(v) && v > 0 && v <= 1,
};

/** Throws naming the chart, the row, the field, the value and what was expected. */
function checkRows(fn: string, rows: readonly unknown[], rules: readonly FieldRule[]): void {
  if (!Array.isArray(rows) || rows.length === 0)
    throw new Error(`${fn}: rows is empty; expected at least one row`);
  rows.forEach((row, i) => {
    if (row === null || typeof row !== "object")
      throw new Error(`${fn}: rows[${i}] is ${JSON.stringify(row)}; expected an object`);
    for (const r of rules) {
      const v = (row as Record<string, unknown>)[r.name];
      if (!r.ok(v))
        throw new Error(
          `${fn}: rows[${i}].${r.name} is ${v === undefined ? "missing" : JSON.stringify(v)}` +
            `${typeof v === "string" ? " (a string)" : ""}; expected ${r.expected}`,
        );
    }
  });
}

const densityAxis = {
  field: "density",
  type: "quantitative",
  title: "density (fraction of weights kept, log scale)",
  scale: { type: "log", reverse: true, nice: false },
  axis: { format: ".1~%", grid: true },
} as const;

const blockColour = {
  field: "blockSize",
  type: "ordinal",
  title: "block size (b×b)",
  scale: { scheme: "tableau10" },
  // Solid symbols: the band layer's opacity would otherwise wash the legend out.
  legend: { symbolType: "circle", symbolOpacity: 1, symbolFillOpacity: 1 },
} as const;

/**
 * Accuracy against density per block size (colour), method as line dash: the mean over seeds
 * as a line with points, and the seeds' min-max spread as a band around it.
 */
export function accuracyVsDensityChart(
  rows: readonly AccuracyRow[],
  options: ChartOptions,
): TopLevelSpec {
  const fn = "accuracyVsDensityChart";
  checkRows(fn, rows, [
    { name: "blockSize", expected: "a positive integer", ok: positiveInt },
    {
      name: "method",
      expected: "a non-empty string",
      ok: (v) => typeof v === "string" && v !== "",
    },
    { name: "seed", expected: "an integer", ok: (v) => isNum(v) && Number.isInteger(v) },
    densityRule,
    { name: "accuracy", expected: "a finite number", ok: isNum },
  ]);
  const y = options.yTitle ?? "test accuracy";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: options.title,
      subtitle: "line: mean over seeds; band: min-max over seeds",
    },
    width: options.width ?? 560,
    height: options.height ?? 360,
    data: {
      values: rows.map(({ blockSize, method, seed, density, accuracy }) => ({
        blockSize,
        method,
        seed,
        density,
        accuracy,
      })),
    },
    transform: [
      {
        aggregate: [
          { op: "mean", field: "accuracy", as: "mean" },
          { op: "min", field: "accuracy", as: "min" },
          { op: "max", field: "accuracy", as: "max" },
          { op: "count", as: "seeds" },
        ],
        groupby: ["blockSize", "method", "density"],
      },
    ],
    encoding: { x: densityAxis },
    layer: [
      {
        mark: { type: "area", opacity: 0.15 },
        encoding: {
          y: { field: "min", type: "quantitative", title: y, scale: { zero: false } },
          y2: { field: "max" },
          color: blockColour,
          detail: { field: "method", type: "nominal" },
        },
      },
      {
        mark: { type: "line", point: { size: 24 }, strokeWidth: 1.6 },
        encoding: {
          y: { field: "mean", type: "quantitative", title: y },
          color: blockColour,
          strokeDash: {
            field: "method",
            type: "nominal",
            title: "method",
            legend: {
              symbolType: "stroke",
              // The line's colour is a field, so the dash samples get no stroke of their own.
              encode: { symbols: { update: { stroke: { value: "#333" } } } },
              symbolStrokeWidth: 2,
              symbolSize: 300,
            },
          },
          tooltip: [
            { field: "blockSize", title: "block" },
            { field: "method" },
            { field: "density", format: ".2%" },
            { field: "mean", format: ".4f" },
            { field: "min", format: ".4f" },
            { field: "max", format: ".4f" },
            { field: "seeds" },
          ],
        },
      },
    ],
  } as TopLevelSpec;
}

/**
 * Speedup over dense against density per block size (colour), one facet per batch size and
 * thread count, with a rule at 1 (below it the sparse form is slower). Several rows with the
 * same block size, density, batch and threads (e.g. seeds) are drawn as their mean.
 */
export function speedupVsDensityChart(
  rows: readonly SpeedupRow[],
  options: ChartOptions,
): TopLevelSpec {
  const fn = "speedupVsDensityChart";
  checkRows(fn, rows, [
    { name: "blockSize", expected: "a positive integer", ok: positiveInt },
    densityRule,
    { name: "batch", expected: "a positive integer", ok: positiveInt },
    { name: "threads", expected: "a positive integer", ok: positiveInt },
    { name: "speedup", expected: "a finite number > 0", ok: (v) => isNum(v) && v > 0 },
  ]);
  const y = options.yTitle ?? "speedup over dense (log scale)";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: options.title,
    data: {
      values: rows.map(({ blockSize, density, batch, threads, speedup }) => ({
        blockSize,
        density,
        batch,
        threads,
        speedup,
        setting: `batch ${batch}, ${threads} thread${threads === 1 ? "" : "s"}`,
      })),
    },
    facet: {
      column: { field: "batch", type: "ordinal", title: "batch size" },
      row: { field: "threads", type: "ordinal", title: "threads" },
    },
    resolve: { scale: { y: "shared" } },
    spec: {
      width: options.width ?? 300,
      height: options.height ?? 220,
      layer: [
        {
          mark: { type: "rule", strokeDash: [4, 3], color: "#555" },
          encoding: { y: { datum: 1, type: "quantitative" } },
        },
        {
          mark: { type: "line", point: { size: 24 }, strokeWidth: 1.6 },
          encoding: {
            x: densityAxis,
            y: {
              field: "speedup",
              aggregate: "mean",
              type: "quantitative",
              title: y,
              scale: { type: "log" },
            },
            color: blockColour,
            tooltip: [
              { field: "blockSize", title: "block" },
              { field: "setting" },
              { field: "density", format: ".2%" },
              { field: "speedup", aggregate: "mean", format: ".2f", title: "speedup" },
            ],
          },
        },
      ],
    },
  } as TopLevelSpec;
}
