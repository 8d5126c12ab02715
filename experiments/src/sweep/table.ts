// Points as tables: flat rows (one per point, nested config/result fields as dotted columns),
// CSV and JSON files of them, and a markdown table helper for the docs.
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { writeJsonAtomic, type SweepPoint } from "./store.ts";

export type Cell = string | number | boolean | null;
export type Row = Record<string, Cell>;

function flattenInto(row: Row, prefix: string, value: unknown): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenInto(row, `${prefix}.${k}`, v);
  } else if (Array.isArray(value)) {
    row[prefix] = JSON.stringify(value); // one cell: lists (e.g. per-round densities) stay whole
  } else if (value !== undefined) {
    row[prefix] = value as Cell;
  }
}

/**
 * One flat row per point: `key`, `config.<path>`, `result.<path>`, `seconds`, `host`, `commit`.
 * A result that is not an object becomes the single column `result`.
 */
export function pointRow(point: SweepPoint<unknown, unknown>): Row {
  const row: Row = { key: point.key };
  flattenInto(row, "config", point.config);
  flattenInto(row, "result", point.result);
  row.seconds = point.timing.seconds;
  row.host = point.host;
  row.commit = point.git?.commit ?? null;
  return row;
}

/** The columns of `rows` in first-appearance order. */
export function columnsOf(rows: readonly Row[]): string[] {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) seen.add(k);
  return [...seen];
}

function csvCell(v: Cell | undefined): string {
  if (v === null || v === undefined) return "";
  const s = String(v); // numbers in full (shortest round-trip) precision
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header line; missing cells are empty. */
export function toCsv(rows: readonly Row[], columns: readonly string[] = columnsOf(rows)): string {
  const lines = [columns.map(csvCell).join(",")];
  for (const r of rows) lines.push(columns.map((c) => csvCell(r[c])).join(","));
  return lines.join("\n") + "\n";
}

/** Every point as CSV (pointRow columns), written atomically. */
export function writePointsCsv(
  path: string,
  points: readonly SweepPoint<unknown, unknown>[],
): void {
  writeFileAtomic(path, new TextEncoder().encode(toCsv(points.map(pointRow))));
}

/** Every point as one JSON array, written atomically. */
export function writePointsJson(
  path: string,
  points: readonly SweepPoint<unknown, unknown>[],
): void {
  writeJsonAtomic(path, points);
}

export interface MarkdownColumn<T> {
  header: string;
  value: (row: T) => string | number;
  /** Default: right for numbers, left for text (decided by the first row). */
  align?: "left" | "right" | "center";
}

/** A GitHub-flavoured markdown table; `|` and newlines inside cells are escaped. */
export function markdownTable<T>(
  rows: readonly T[],
  columns: readonly MarkdownColumn<T>[],
): string {
  if (columns.length === 0)
    throw new Error("markdownTable: columns is empty; expected at least one");
  const esc = (v: string | number) => String(v).replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
  const first = rows[0];
  const rule = columns.map((c) => {
    const align =
      c.align ?? (first !== undefined && typeof c.value(first) === "number" ? "right" : "left");
    return align === "right" ? "---:" : align === "center" ? ":---:" : "---";
  });
  const lines = [
    `| ${columns.map((c) => esc(c.header)).join(" | ")} |`,
    `| ${rule.join(" | ")} |`,
    ...rows.map((r) => `| ${columns.map((c) => esc(c.value(r))).join(" | ")} |`),
  ];
  return lines.join("\n") + "\n";
}
