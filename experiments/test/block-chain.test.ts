import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { lenet300100, type Module } from "@tessera/nn";
import { Generator } from "@tessera/tensor";
import { BufferArena } from "@tessera/autograd";
import { loadPruned } from "@tessera/pruning";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import {
  branchChain,
  chainCheckpoint,
  chainKey,
  fineTuneEpochs,
  parseLateBudget,
  runChain,
  type ChainConfig,
} from "../src/block-chain.ts";
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

  it("fine-tunes through a BufferArena (block-sweep's default) to the same rounds and weights", () => {
    const plainDir = fresh();
    const arenaDir = fresh();
    const plain = runChain(config(), io(plainDir));
    const arena = new BufferArena({ poison: true });
    const withArena = runChain(config(), { ...io(arenaDir), arena });
    expect(arena.stats.reused).toBeGreaterThan(0);
    expect(withArena.rounds.map(({ fineTuneSeconds: _s, ...r }) => r)).toEqual(
      plain.rounds.map(({ fineTuneSeconds: _s, ...r }) => r),
    );
    const weights = (dir: string) => {
      const m = lenet300100({ generator: new Generator(0) });
      loadPruned(chainCheckpoint(dir, 3), m);
      return m.namedParameters().map(([n, p]) => [n, Array.from(p.data.data)]);
    };
    expect(weights(arenaDir)).toEqual(weights(plainDir));
  });

  it("fine-tunes with AdamW's decoupled decay when the budget has a weight decay", () => {
    const norm = (dir: string) => {
      const m = lenet300100({ generator: new Generator(0) });
      loadPruned(chainCheckpoint(dir, 1), m);
      const w = m.getParameter("fc1.weight").data.data;
      let s = 0;
      for (let k = 0; k < w.length; k++) s += w[k]! * w[k]!;
      return s;
    };
    const ft = config().fineTune;
    const plainDir = fresh();
    const decayDir = fresh();
    runChain(config({ rounds: 1 }), io(plainDir));
    // lr 1e-3 and decay 50 shrink every kept weight by 5% a step (3 steps of 32 here), on top
    // of Adam's step: the decayed layer must come out clearly smaller.
    runChain(config({ rounds: 1, fineTune: { ...ft, weightDecay: 50 } }), io(decayDir));
    expect(norm(decayDir)).toBeLessThan(0.9 * norm(plainDir));
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

  it("a late budget changes the rounds from its round on, and can continue a plain chain's rounds", () => {
    const ft = { epochs: 1, lr: 1e-3, schedule: "cosine" as const, batchSize: 32 };
    const late = { ...ft, late: { fromRound: 3, epochs: 2 } };
    expect([1, 2, 3, 4].map((r) => fineTuneEpochs(late, r))).toEqual([1, 1, 2, 2]);
    expect([1, 2, 3].map((r) => fineTuneEpochs(ft, r))).toEqual([1, 1, 1]);

    const strip = (rows: { fineTuneSeconds: number }[]) =>
      rows.map(({ fineTuneSeconds: _s, ...r }) => r);
    const plainDir = fresh();
    const plain = runChain(config(), io(plainDir));
    const longer = runChain(config({ fineTune: late }), io(fresh()));
    expect(strip(longer.rounds.slice(0, 2))).toEqual(strip(plain.rounds.slice(0, 2)));
    // Round 3 trains twice as long: a different model.
    expect(longer.rounds[2]!.trainLossFineTuned).not.toBe(plain.rounds[2]!.trainLossFineTuned);

    // branchChain copies rounds 1-2 of the plain chain (checkpoints + rows); continued under
    // the late budget they give the late chain's numbers.
    const branch = fresh();
    expect(branchChain(config({ fineTune: late }), plainDir, branch)).toBe(2);
    expect(readdirSync(branch).sort()).toEqual([
      "round-01.safetensors",
      "round-02.safetensors",
      "rounds.json",
    ]);
    const branched = runChain(config({ fineTune: late }), io(branch));
    expect(strip(branched.rounds)).toEqual(strip(longer.rounds));
    // A directory with rows is left alone; a plain chain of another config is refused.
    expect(branchChain(config({ fineTune: late }), plainDir, branch)).toBe(0);
    expect(() => branchChain(config({ seed: 4, fineTune: late }), plainDir, fresh())).toThrow(
      /branchChain: .*round-02.safetensors was written by config .*"seed":3.*expected .*"seed":4/,
    );
    expect(() => branchChain(config(), plainDir, fresh())).toThrow(/late is not set/);
  });

  it("keys a chain by its budget only where it differs from the plain one", () => {
    // The sweep's plain budget (these tests' config fine-tunes with batch 32).
    const ft = { ...config().fineTune, batchSize: 128 };
    const plain = config({ fineTune: ft });
    expect(chainKey(plain)).toBe("synthetic-b4-magnitude-s3");
    expect(chainKey(config({ fineTune: { ...ft, late: { fromRound: 11, epochs: 10 } } }))).toBe(
      "synthetic-b4-magnitude-s3-late11x10",
    );
    expect(chainKey(config({ fineTune: { ...ft, lr: 3e-4 } }))).toBe(
      "synthetic-b4-magnitude-s3-lr0.0003",
    );
    expect(
      chainKey(config({ fineTune: { ...ft, lr: 1e-4, late: { fromRound: 1, epochs: 10 } } })),
    ).toBe("synthetic-b4-magnitude-s3-late1x10-lr0.0001");
    expect(chainKey(config({ fineTune: { ...ft, weightDecay: 0.05 } }))).toBe(
      "synthetic-b4-magnitude-s3-wd0.05",
    );
    expect(chainKey(config({ fineTune: { ...ft, batchSize: 50 } }))).toBe(
      "synthetic-b4-magnitude-s3-bs50",
    );
  });

  it("parses a late budget and names the option when it cannot", () => {
    expect(parseLateBudget("--ft-late", "11:8")).toEqual({ fromRound: 11, epochs: 8 });
    for (const bad of ["11", "0:8", "11:0", "a:b", "11:8:1", "1.5:2", ""])
      expect(() => parseLateBudget("--ft-late", bad)).toThrow(
        /--ft-late: expected <round>:<epochs>/,
      );
  });
});
