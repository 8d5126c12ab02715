// Metrics as JSON lines: one object per line, appended, so a crashed or interrupted run keeps
// every epoch written so far and the file can be tailed or read with any JSONL tool.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export type MetricsRecord = Record<string, unknown>;

export class MetricsLogger {
  readonly path: string;

  /** `truncate: true` starts the file empty; by default records append to what is there. */
  constructor(path: string, options: { truncate?: boolean } = {}) {
    if (typeof path !== "string" || path.length === 0)
      throw new Error(`MetricsLogger: path must be a non-empty string`);
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    if (options.truncate === true) writeFileSync(path, "");
  }

  /** Appends one record as a single JSON line. Non-finite numbers are written as null by JSON. */
  log(record: MetricsRecord): void {
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      throw new Error(
        `MetricsLogger.log: record must be a plain object, got ${Array.isArray(record) ? "array" : typeof record}`,
      );
    }
    appendFileSync(this.path, JSON.stringify(record) + "\n");
  }
}

/** Reads a JSONL metrics file back (one object per non-empty line). */
export function readMetrics(text: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      out.push(JSON.parse(line) as MetricsRecord);
    } catch (e) {
      throw new Error(`readMetrics: line ${i + 1} is not valid JSON: ${(e as Error).message}`);
    }
  });
  return out;
}
