import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { arrayDataset } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { runTraining, type TrainConfig } from "../src/train-run.ts";

// A small learnable problem in LeNet-300-100's input shape: the label is which of ten pixel
// bands is brightest.
function bands(count: number, seed: number) {
  const g = new Generator(seed);
  const x = new Uint8Array(count * 784);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = g.int(0, 10);
    y[i] = label;
    for (let p = 0; p < 784; p++) {
      const inBand = Math.floor(p / 78.4) === label;
      x[i * 784 + p] = Math.floor(g.nextFloat() * 100) + (inBand ? 150 : 0);
    }
  }
  return arrayDataset(x, y, [784], { mean: 0.5, std: 0.5 });
}

const config: TrainConfig = {
  model: "lenet300100",
  dataset: "synthetic",
  epochs: 3,
  batchSize: 16,
  optimizer: "adam",
  lr: 1e-3,
  schedule: "constant",
  momentum: 0.9,
  weightDecay: 0,
  seed: 7,
};

const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), "tessera-run-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("runTraining", () => {
  const train = bands(96, 1);
  const test = bands(48, 2);

  it("learns, and a run interrupted after each epoch resumes to identical numbers", () => {
    const whole = runTraining({ config, train, test, dir: freshDir() });
    expect(whole.finished).toBe(true);
    expect(whole.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(whole.history[2]!.testAccuracy).toBeGreaterThan(0.8);

    const dir = freshDir();
    const parts = [1, 2, 3].map(() =>
      runTraining({ config, train, test, dir, maxEpochsThisCall: 1 }),
    );
    expect(parts.map((p) => p.resumedFrom)).toEqual([0, 1, 2]);
    const strip = (h: { seconds: number }[]) => h.map((e) => ({ ...e, seconds: 0 }));
    expect(strip(parts[2]!.history)).toEqual(strip(whole.history));
    const metrics = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n");
    expect(metrics.map((l) => (JSON.parse(l) as { epoch: number }).epoch)).toEqual([1, 2, 3]);
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as {
      finalTestAccuracy: number;
    };
    expect(summary.finalTestAccuracy).toBe(whole.history[2]!.testAccuracy);
  });

  it("a finished run re-run does no work; more epochs extend it", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    const again = runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(again.resumedFrom).toBe(1);
    expect(again.history).toHaveLength(1);
    const longer = runTraining({ config: { ...config, epochs: 2 }, train, test, dir });
    expect(longer.history.map((h) => h.epoch)).toEqual([1, 2]);
  });

  it("refuses a directory holding another config, and bad configs", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(() => runTraining({ config: { ...config, lr: 0.5 }, train, test, dir })).toThrow(
      /different config/,
    );
    expect(() =>
      runTraining({ config: { ...config, epochs: 0 }, train, test, dir: freshDir() }),
    ).toThrow(/epochs must be a positive integer, got 0/);
    expect(() =>
      runTraining({
        config: { ...config, model: "vgg" as "lenet5" },
        train,
        test,
        dir: freshDir(),
      }),
    ).toThrow(/model must be one of/);
  });

  it("a corrupt checkpoint is reported, not trained over", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    writeFileSync(join(dir, "checkpoint.safetensors"), new Uint8Array([1, 2, 3]));
    expect(() => runTraining({ config, train, test, dir })).toThrow(/checkpoint\.safetensors/);
  });
});
