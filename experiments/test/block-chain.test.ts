import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lenet300100, type Module } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { loadPruned } from "@tessera/pruning";
import { chainCheckpoint, runChain, type ChainConfig } from "../src/block-chain.ts";
import { bands } from "./helpers.ts";

const train = bands(96, 1);
const test = bands(48, 2);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  const d = mkdtempSync(join(tmpdir(), "tessera-chain-"));
  dirs.push(d);
  return d;
};

const config = (over: Partial<ChainConfig> = {}): ChainConfig => ({
  dataset: "synthetic",
  blockSize: 4,
  method: "magnitude",
  seed: 3,
  rounds: 3,
  rates: { hidden: 0.2, output: 0.1 },
  fineTune: { epochs: 1, lr: 1e-3, schedule: "cosine", batchSize: 32 },
  ...over,
});
const model = (): Module => lenet300100({ generator: new Generator(5) });
const io = (dir: string) => ({
  train,
  test,
  denseModel: model,
  freshModel: () => lenet300100({ generator: new Generator(0) }),
  dir,
});

describe("runChain", () => {
  it("follows the paper's per-round densities and keeps pruned tiles at zero", () => {
    const dir = fresh();
    const r = runChain(config(), io(dir));
    // fc1 300x784 in 4x4 tiles: 75 x 196 = 14,700 tiles; round(0.2 * alive) per round.
    expect(r.rounds.map((x) => x.round)).toEqual([1, 2, 3]);
    expect(r.rounds.map((x) => +(100 * x.density).toFixed(1))).toEqual([80.0, 64.1, 51.3]);
    for (const row of r.rounds) {
      expect(row.bytes.bsr).toBeLessThan(row.bytes.dense);
      expect(row.accuracyFineTuned).toBeGreaterThanOrEqual(0);
    }
    const m = lenet300100({ generator: new Generator(0) });
    const { state } = loadPruned(chainCheckpoint(dir, 3), m);
    const w = m.getParameter("fc1.weight").data.data;
    const mask = state!.mask("fc1.weight");
    let zeros = 0;
    for (let k = 0; k < w.length; k++) if (mask[k] === 0) zeros += w[k] === 0 ? 1 : 0;
    expect(zeros).toBe(mask.length - mask.reduce((a, b) => a + b, 0));
  });

  it("resumes at the round it stopped in, with the numbers of an uninterrupted chain", () => {
    const whole = runChain(config(), io(fresh()));
    const dir = fresh();
    // "Killed" after round 1: the same directory continued with the full config.
    runChain(config({ rounds: 1 }), io(dir));
    let denseCalls = 0;
    const resumed = runChain(config(), {
      ...io(dir),
      denseModel: () => {
        denseCalls++;
        return model();
      },
    });
    expect(denseCalls).toBe(0);
    expect(resumed.rounds.map(({ fineTuneSeconds: _s, ...r }) => r)).toEqual(
      whole.rounds.map(({ fineTuneSeconds: _s, ...r }) => r),
    );
    expect(readdirSync(dir).filter((f) => f.endsWith(".safetensors"))).toHaveLength(3);
  });

  it("random tiles are a different, seeded selection of as many tiles", () => {
    const a = runChain(config({ method: "random", rounds: 1 }), io(fresh()));
    const b = runChain(config({ method: "random", rounds: 1 }), io(fresh()));
    const m = runChain(config({ rounds: 1 }), io(fresh()));
    // Same number of tiles removed per layer; ragged edge tiles hold fewer weights, so the
    // densities by weight differ in the fourth digit.
    expect(a.rounds[0]!.density).toBeCloseTo(m.rounds[0]!.density, 3);
    expect(a.rounds).toEqual(
      b.rounds.map((r, i) => ({ ...r, fineTuneSeconds: a.rounds[i]!.fineTuneSeconds })),
    );
    expect(a.rounds[0]!.accuracyPruned).not.toBe(m.rounds[0]!.accuracyPruned);
  });
});
