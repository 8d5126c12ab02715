import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator } from "@tessera/tensor";
import { mul } from "@tessera/autograd";
import { describe, expect, it } from "vitest";
import { arrayDataset } from "../src/data.ts";
import { Linear, ReLU, Sequential } from "../src/layers.ts";
import { readMetrics } from "../src/metrics.ts";
import { Adam, SGD } from "../src/optim.ts";
import { crossEntropyLoss, evaluate, fit } from "../src/train.ts";

// Three Gaussian blobs in 2-d, well separated: a small MLP must classify them almost perfectly.
function blobs(n: number, seed: number) {
  const g = new Generator(seed);
  const centers = [
    [2, 0],
    [-1, 1.7],
    [-1, -1.7],
  ];
  const x = new Float32Array(2 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c;
    x[2 * i] = centers[c]![0]! + g.normal(0, 0.4);
    x[2 * i + 1] = centers[c]![1]! + g.normal(0, 0.4);
  }
  return arrayDataset(x, y, [2]);
}

function mlp(seed: number) {
  const g = new Generator(seed);
  return new Sequential(
    new Linear(2, 16, { generator: g }),
    new ReLU(),
    new Linear(16, 3, { generator: g }),
  );
}

describe("fit", () => {
  it("learns a separable problem; same seed gives identical losses", () => {
    const run = () => {
      const model = mlp(1);
      const { history } = fit(model, {
        train: blobs(300, 1),
        test: blobs(150, 2),
        epochs: 8,
        batchSize: 32,
        optimizer: new Adam(model.parameters(), { lr: 0.02 }),
        seed: 7,
      });
      return { model, history };
    };
    const a = run();
    const b = run();
    const last = a.history[a.history.length - 1]!;
    expect(last.trainAccuracy).toBeGreaterThan(0.97);
    expect(last.testAccuracy!).toBeGreaterThan(0.97);
    expect(a.history[0]!.trainLoss).toBeGreaterThan(last.trainLoss);
    expect(a.history.map((h) => h.trainLoss)).toEqual(b.history.map((h) => h.trainLoss));
    expect(a.history.map((h) => h.testLoss)).toEqual(b.history.map((h) => h.testLoss));
    expect(evaluate(a.model, blobs(150, 2), { batchSize: 32 })).toEqual({
      loss: last.testLoss,
      accuracy: last.testAccuracy,
    });
  });

  it("a different shuffling seed gives different losses", () => {
    const losses = (seed: number) => {
      const model = mlp(1);
      return fit(model, {
        train: blobs(90, 1),
        epochs: 1,
        batchSize: 16,
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        seed,
      }).history[0]!.trainLoss;
    };
    expect(losses(1)).not.toBe(losses(2));
  });

  it("stops with an error naming epoch and step on a non-finite loss", () => {
    const model = mlp(1);
    let calls = 0;
    // 30 examples at batch 8 = 4 steps per epoch; the 6th loss (epoch 2, step 2) is NaN.
    const lossFn = (logits: Parameters<typeof crossEntropyLoss>[0], y: Int32Array) => {
      calls++;
      const l = crossEntropyLoss(logits, y);
      return calls === 6 ? mul(l, NaN) : l;
    };
    expect(() =>
      fit(model, {
        train: blobs(30, 1),
        epochs: 3,
        batchSize: 8,
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        seed: 1,
        lossFn,
      }),
    ).toThrow(/fit: loss is NaN at epoch 2, step 2 of 4/);
    // the progress reporter is closed (a live bar stopped) when training fails
    let closed = 0;
    const reporter = { startEpoch() {}, step() {}, endEpoch() {}, close: () => closed++ };
    calls = 0;
    expect(() =>
      fit(model, {
        train: blobs(30, 1),
        epochs: 3,
        batchSize: 8,
        optimizer: new SGD(model.parameters(), { lr: 0.1 }),
        seed: 1,
        lossFn,
        progress: reporter,
      }),
    ).toThrow(/epoch 2, step 2/);
    expect(closed).toBe(1);
  });

  it("writes one JSONL metrics line and one plain progress line per epoch; stops on request", () => {
    const model = mlp(3);
    const dir = mkdtempSync(join(tmpdir(), "tessera-fit-"));
    const logFile = join(dir, "metrics.jsonl");
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => lines.push(s) };
    const seen: number[] = [];
    const { history } = fit(model, {
      train: blobs(60, 1),
      test: blobs(30, 2),
      epochs: 5,
      batchSize: 20,
      optimizer: new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }),
      seed: 3,
      logFile,
      progress: { stream },
      beforeStep: (info) => seen.push(info.globalStep),
      onEpochEnd: (s) => (s.epoch === 3 ? "stop" : undefined),
    });
    expect(history).toHaveLength(3);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const recs = readMetrics(readFileSync(logFile, "utf8"));
    expect(recs.map((r) => r.epoch)).toEqual([1, 2, 3]);
    expect(Object.keys(recs[0]!).sort()).toEqual([
      "epoch",
      "epochs",
      "lr",
      "seconds",
      "testAccuracy",
      "testLoss",
      "trainAccuracy",
      "trainLoss",
    ]);
    expect(recs[2]!.trainLoss).toBe(history[2]!.trainLoss);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^epoch 1\/5 {2}loss \d\.\d{4} {2}acc \d+\.\d{2}% {2}test loss \d\.\d{4} {2}test acc \d+\.\d{2}% {2}lr 0\.0500 {2}\d+\.\d s\n$/,
    );
  });

  it("trains models with batch norm and dropout deterministically; evaluate restores the mode", async () => {
    const { BatchNorm1d, Dropout } = await import("../src/layers.ts");
    const run = () => {
      const g = new Generator(4);
      const model = new Sequential(
        new Linear(2, 16, { generator: g }),
        new BatchNorm1d(16),
        new ReLU(),
        new Dropout(0.2, { generator: g }),
        new Linear(16, 3, { generator: g }),
      );
      const { history } = fit(model, {
        train: blobs(120, 1),
        test: blobs(60, 2),
        epochs: 4,
        batchSize: 16,
        optimizer: new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true }),
        seed: 11,
      });
      return { model, history };
    };
    const a = run();
    const b = run();
    expect(a.history.map((h) => [h.trainLoss, h.testLoss])).toEqual(
      b.history.map((h) => [h.trainLoss, h.testLoss]),
    );
    expect(a.history[3]!.testAccuracy!).toBeGreaterThan(0.9);
    expect(a.model.training).toBe(true);
    a.model.eval();
    evaluate(a.model, blobs(30, 3));
    expect(a.model.training).toBe(false);
  });

  it("validates its options", () => {
    const model = mlp(1);
    const opt = new SGD(model.parameters(), { lr: 0.1 });
    const train = blobs(10, 1);
    expect(() => fit(model, { train, epochs: 0, batchSize: 4, optimizer: opt, seed: 1 })).toThrow(
      /fit: epochs must be a positive integer, got 0/,
    );
    expect(() => fit(model, { train, epochs: 1, batchSize: 1.5, optimizer: opt, seed: 1 })).toThrow(
      /batchSize/,
    );
    expect(() =>
      fit(model, { train: {} as never, epochs: 1, batchSize: 4, optimizer: opt, seed: 1 }),
    ).toThrow(/train must be a Dataset/);
    expect(() => fit(model, { train, epochs: 1, batchSize: 4, optimizer: opt, seed: -1 })).toThrow(
      /seed/,
    );
  });
});
