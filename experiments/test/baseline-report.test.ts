import { describe, expect, it } from "vitest";
import { commandFor, renderBaselines } from "../src/baseline-report.ts";
import { DEFAULT_CONFIG } from "../src/train-run.ts";

const config = {
  ...DEFAULT_CONFIG,
  model: "lenet300100" as const,
  dataset: "mnist",
  epochs: 2,
  schedule: "constant" as const,
};
const epoch = (e: number, acc: number) => ({
  epoch: e,
  epochs: 2,
  trainLoss: 0.1,
  trainAccuracy: 0.99,
  testLoss: 0.1,
  testAccuracy: acc,
  seconds: 10,
  lr: 1e-3,
});

describe("baseline report", () => {
  it("reconstructs the command, leaving defaults out", () => {
    expect(commandFor(config)).toBe(
      "pnpm train --model lenet300100 --dataset mnist --epochs 2 --schedule constant --seed 1",
    );
    expect(commandFor({ ...config, optimizer: "sgd", momentum: 0.5 })).toContain(
      "--optimizer sgd --schedule constant --momentum 0.5",
    );
  });

  it("reports the final epoch against the target, not the best one", () => {
    const md = renderBaselines(
      [{ dir: "x", config, history: [epoch(1, 0.981), epoch(2, 0.979)] }],
      "m",
    );
    expect(md).toContain(
      "| mnist | lenet300100 | 2 of 2 | 97.90% | 98.00% | no | 98.10% (1) | 10.0 |",
    );
    const unfinished = renderBaselines([{ dir: "x", config, history: [epoch(1, 0.97)] }], "m");
    expect(unfinished).toContain("| not yet |");
    const ahead = renderBaselines([{ dir: "x", config, history: [epoch(1, 0.985)] }], "m");
    expect(ahead).toContain("| yes, so far |");
  });
});
