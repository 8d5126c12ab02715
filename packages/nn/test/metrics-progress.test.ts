import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricsLogger, readMetrics } from "../src/metrics.ts";
import { createProgress, formatEpochSummary, isDiverged } from "../src/progress.ts";

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { chunks, stream: { isTTY, write: (s: string) => chunks.push(s) } };
}

describe("MetricsLogger", () => {
  it("appends one JSON line per record, creating the folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-m-"));
    const path = join(dir, "sub", "metrics.jsonl");
    const log = new MetricsLogger(path);
    log.log({ epoch: 1, loss: 0.5 });
    log.log({ epoch: 2, loss: 0.25 });
    expect(readFileSync(path, "utf8")).toBe('{"epoch":1,"loss":0.5}\n{"epoch":2,"loss":0.25}\n');
    new MetricsLogger(path).log({ epoch: 3 });
    expect(readMetrics(readFileSync(path, "utf8"))).toHaveLength(3);
    new MetricsLogger(path, { truncate: true }).log({ epoch: 1 });
    expect(readMetrics(readFileSync(path, "utf8"))).toEqual([{ epoch: 1 }]);
    expect(() => log.log([] as unknown as Record<string, unknown>)).toThrow(/plain object/);
    expect(() => readMetrics("{}\nnope")).toThrow(/line 2/);
  });
});

describe("progress", () => {
  const summary = {
    epoch: 2,
    epochs: 3,
    trainLoss: 0.12345,
    trainAccuracy: 0.9512,
    seconds: 1.24,
    lr: 0.001,
  };
  it("prints plain lines when not a TTY", () => {
    const { chunks, stream } = sink(false);
    const p = createProgress({ stream, plainEvery: 2 });
    p.startEpoch(2, 3, 5);
    for (let i = 1; i <= 5; i++) p.step(i, 1 / i);
    p.endEpoch(summary);
    expect(chunks).toEqual([
      "epoch 2/3  step 2/5  loss 0.5000\n",
      "epoch 2/3  step 4/5  loss 0.2500\n",
      "epoch 2/3  loss 0.1235  acc 95.12%  lr 0.00100  1.2 s\n",
    ]);
  });
  it("a diverged epoch (loss not finite or above 2 ln 10) says so; a run stuck at chance does not", () => {
    for (const trainLoss of [3.9e9, Infinity, NaN, 4.7]) {
      expect(isDiverged({ trainLoss })).toBe(true);
      expect(formatEpochSummary({ ...summary, trainLoss })).toMatch(/ DIVERGED \(.*\)$/);
    }
    for (const trainLoss of [0.05, Math.log(10), 4.6]) {
      expect(isDiverged({ trainLoss })).toBe(false);
      expect(formatEpochSummary({ ...summary, trainLoss })).not.toContain("DIVERGED");
    }
    expect(isDiverged({ trainLoss: 5 }, 100)).toBe(false); // 2 ln 100 = 9.2
  });
  it("summary includes test metrics when present", () => {
    expect(formatEpochSummary({ ...summary, testLoss: 0.2, testAccuracy: 0.9 })).toContain(
      "test loss 0.2000  test acc 90.00%",
    );
  });
  it("draws a bar on a TTY and ends with the summary line", () => {
    const { chunks, stream } = sink(true);
    const p = createProgress({ stream });
    p.startEpoch(1, 1, 4);
    for (let i = 1; i <= 4; i++) p.step(i, 0.5);
    p.endEpoch({ ...summary, epoch: 1, epochs: 1 });
    const out = chunks.join("");
    expect(out).toContain("epoch 1/1 [");
    expect(out).toContain("loss 0.5000");
    expect(chunks[chunks.length - 1]).toMatch(/^epoch 1\/1 {2}loss 0\.1235/);
  });
  it("none prints nothing; bad options throw", () => {
    const { chunks, stream } = sink(false);
    const p = createProgress({ stream, mode: "none" });
    p.startEpoch(1, 1, 1);
    p.step(1, 1);
    p.endEpoch(summary);
    expect(chunks).toEqual([]);
    expect(() => createProgress({ mode: "fancy" as "none" })).toThrow(/mode must be/);
    expect(() => createProgress({ plainEvery: -1 })).toThrow(/plainEvery/);
  });
});
