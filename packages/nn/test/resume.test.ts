import { Generator } from "@tessera/tensor";
import { describe, expect, it } from "vitest";
import { arrayDataset } from "../src/data.ts";
import { Linear, ReLU, Sequential } from "../src/layers.ts";
import { Adam } from "../src/optim.ts";
import { fit } from "../src/train.ts";

function data(n: number, seed: number) {
  const g = new Generator(seed);
  const x = new Float32Array(4 * n);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) x[4 * i + j] = g.normal();
    y[i] = x[4 * i]! + x[4 * i + 1]! > 0 ? 1 : 0;
  }
  return arrayDataset(x, y, [4]);
}

const model = () => {
  const g = new Generator(3);
  return new Sequential(
    new Linear(4, 8, { generator: g }),
    new ReLU(),
    new Linear(8, 2, { generator: g }),
  );
};

describe("fit startEpoch", () => {
  const train = data(50, 1);

  it("epochs 1..3 in one call equal epoch 1 then a call starting at epoch 2", () => {
    const a = model();
    const whole = fit(a, {
      train,
      epochs: 3,
      batchSize: 8,
      seed: 5,
      optimizer: new Adam(a.parameters(), { lr: 0.01 }),
    });
    const b = model();
    const opt = new Adam(b.parameters(), { lr: 0.01 });
    const first = fit(b, {
      train,
      epochs: 3,
      batchSize: 8,
      seed: 5,
      optimizer: opt,
      onEpochEnd: () => "stop",
    });
    const rest = fit(b, { train, epochs: 3, startEpoch: 2, batchSize: 8, seed: 5, optimizer: opt });
    const strip = (h: { seconds: number }[]) => h.map((e) => ({ ...e, seconds: 0 }));
    expect(first.history.map((h) => h.epoch)).toEqual([1]);
    expect(rest.history.map((h) => h.epoch)).toEqual([2, 3]);
    expect(strip([...first.history, ...rest.history])).toEqual(strip(whole.history));
  });

  it("rejects a start beyond the last epoch", () => {
    const a = model();
    const optimizer = new Adam(a.parameters(), { lr: 0.01 });
    expect(() =>
      fit(a, { train, epochs: 2, startEpoch: 3, batchSize: 8, seed: 5, optimizer }),
    ).toThrow(/startEpoch 3 is beyond epochs 2/);
    expect(() =>
      fit(a, { train, epochs: 2, startEpoch: 0, batchSize: 8, seed: 5, optimizer }),
    ).toThrow(/startEpoch must be a positive integer/);
  });
});
