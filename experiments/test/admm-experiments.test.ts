import { mkdtempSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Generator } from "@tessera/tensor";
import { BufferArena } from "@tessera/autograd";
import { arrayDataset, lenet300100, type Dataset, type Module } from "@tessera/nn";
import { PruningState } from "@tessera/pruning";
import { runSweep } from "../src/sweep/index.ts";
import { DEFAULT_CONFIG, runTraining } from "../src/train-run.ts";
import {
  admmPointKey,
  admmSweepConfigs,
  chainKeptTiles,
  runAdmmPoint,
  type AdmmPointConfig,
  type AdmmPointResult,
  type AdmmSweepOptions,
} from "../src/admm-experiments.ts";
import {
  blockTable,
  checkAdmmTargets,
  compactTable,
  pointsTable,
  residualChart,
  targetsTable,
  type AdmmPoint,
  type ChainPoint,
} from "../src/admm-report.ts";
import { renderChart } from "../src/plot/index.ts";
import { bands } from "./helpers.ts";

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "tessera-admm-sweep-"));
}

/** bands() as 1x28x28 images, for LeNet-5. */
function images(count: number, seed: number): Dataset {
  const flat = bands(count, seed);
  const idx = Int32Array.from({ length: count }, (_, i) => i);
  const b = flat.getBatch(idx);
  return arrayDataset(b.x.data as Float32Array, b.y, [1, 28, 28]);
}

const { epochs: _e, seed: _s, ...denseDefaults } = DEFAULT_CONFIG;
const tiny: AdmmSweepOptions = {
  experiments: ["lenet5-nonstructured", "lenet5-structured", "lenet300100-block"],
  datasets: ["mnist"],
  seeds: [1],
  iterations: 1,
  epochsPerIteration: 1,
  retrainEpochs: 1,
  rho: 1e-3,
  rhoGrowth: 1.5,
  lr: 1e-3,
  batchSize: 32,
  blockRounds: [3],
  blockEpochsPerRound: 1,
  denseEpochs: { lenet5: 1, lenet300100: 1 },
  denseDefaults: { ...denseDefaults, batchSize: 32 },
};

function io(c: AdmmPointConfig, out: string, scratchDir: string) {
  const lenet5 = c.dense.model === "lenet5";
  const train = lenet5 ? images(64, 1) : bands(64, 1);
  const test = lenet5 ? images(64, 2) : bands(64, 2);
  const dir = join(out, "dense", `${c.dense.model}-s${c.seed}`);
  return {
    train,
    test,
    scratchDir,
    timingReps: 1,
    denseModel: (): Module =>
      runTraining({ config: c.dense, train, test, dir, progress: false }).model,
  };
}

describe("ADMM experiments", () => {
  it("the block points take the block chain's kept tile counts (PruningState.pruneFraction rounds)", () => {
    const model = lenet300100({ generator: new Generator(1) });
    const b = { kind: "block", rows: 4, cols: 4 } as const;
    const st = new PruningState(model, { "fc1.weight": b, "fc2.weight": b, "fc3.weight": b });
    for (let r = 1; r <= 16; r++) {
      st.pruneFraction({ "fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1 });
      for (const [n, rate] of [
        ["fc1.weight", 0.2],
        ["fc2.weight", 0.2],
        ["fc3.weight", 0.1],
      ] as const) {
        const alive = st.alive(n).reduce((a, v) => a + v, 0);
        expect(chainKeptTiles(st.layout(n).count, rate, r)).toBe(alive);
      }
    }
  });

  it("lists each experiment's points with its epoch budget", () => {
    const configs = admmSweepConfigs({ ...tiny, blockRounds: [13], blockEpochsPerRound: 2 });
    expect(configs.map(admmPointKey)).toEqual([
      "lenet5-nonstructured-mnist-paper-admm-s1",
      "lenet5-nonstructured-mnist-paper-magnitude-s1",
      "lenet5-nonstructured-mnist-x2-admm-s1",
      "lenet5-nonstructured-mnist-x2-magnitude-s1",
      "lenet5-nonstructured-mnist-x4-admm-s1",
      "lenet5-nonstructured-mnist-x4-magnitude-s1",
      "lenet5-structured-mnist-s1-admm-s1",
      "lenet5-structured-mnist-s1.5-admm-s1",
      "lenet5-structured-mnist-s2-admm-s1",
      "lenet300100-block-mnist-round13-admm-s1",
    ]);
    // Round 13 of the chain: 26 epochs = 18 ADMM iterations of one epoch + 8 retraining.
    const blk = configs[9]!.budget;
    expect([blk.iterations, blk.epochsPerIteration, blk.retrainEpochs]).toEqual([18, 1, 8]);
    // --structured-rates / --nonstructured-rates pick rates; --retrain-lr is in the ADMM points'
    // keys and budgets only.
    const picked = admmSweepConfigs({
      ...tiny,
      experiments: ["lenet5-nonstructured", "lenet5-structured"],
      structuredRates: ["s1.5"],
      nonstructuredRates: ["paper"],
      retrainLr: 1e-4,
    });
    expect(picked.map(admmPointKey)).toEqual([
      "lenet5-nonstructured-mnist-paper-admm-rlr0.0001-s1",
      "lenet5-nonstructured-mnist-paper-magnitude-s1",
      "lenet5-structured-mnist-s1.5-admm-rlr0.0001-s1",
    ]);
    expect(picked[2]!.budget.retrainLr).toBe(1e-4);
    // The magnitude point's config is the one it had without --retrain-lr (a re-run finds it).
    expect(picked[1]!.budget).toEqual(
      admmSweepConfigs({ ...tiny, experiments: ["lenet5-nonstructured"] })[1]!.budget,
    );
    const fakeResult = {
      density: 0.1,
      compression: 10,
      denseAccuracy: 0.99,
      accuracyPruned: 0.99,
      accuracyFinal: 0.99,
      residuals: [],
      epochs: 3,
      seconds: 1,
    };
    expect(pointsTable([{ key: "k", config: picked[2]!, result: fakeResult } as never])).toContain(
      "R=1 at lr 0.0001",
    );
  });

  it("runs every experiment end to end on tiny data through the sweep, and a re-run skips them", async () => {
    const out = tmp();
    const configs = admmSweepConfigs(tiny);
    const run = () =>
      runSweep<AdmmPointConfig, AdmmPointResult>({
        dir: out,
        name: "admm-sweep",
        configs,
        key: admmPointKey,
        run: (c, ctx) => runAdmmPoint(c, io(c, out, ctx.scratchDir)),
        progress: { stream: { write: () => true } },
      });
    const first = await run();
    expect(first.ran).toHaveLength(configs.length);
    const byKey = new Map(first.points.map((p) => [p.key, p.result]));
    for (const [key, r] of byKey) {
      expect(r.epochs).toBe(key.includes("block") ? 3 : 2);
      for (const a of [r.denseAccuracy, r.accuracyPruned, r.accuracyFinal])
        expect(a >= 0 && a <= 1).toBe(true);
    }
    // Non-structured: ADMM and magnitude keep the same counts, the paper's fractions.
    const pa = byKey.get("lenet5-nonstructured-mnist-paper-admm-s1")!;
    const pm = byKey.get("lenet5-nonstructured-mnist-paper-magnitude-s1")!;
    expect(pa.layerDensity).toEqual(pm.layerDensity);
    expect(pa.layerDensity["fc1.weight"]).toBe(Math.round(0.009 * 400000) / 400000);
    expect(pa.compression).toBeCloseTo(430500 / (100 + 2000 + 3600 + 350), 6);
    expect(pa.residuals).toHaveLength(1);
    expect(pm.residuals).toHaveLength(0);
    // Structured: compacted shapes, same accuracy as the masked model, timings recorded.
    const s1 = byKey.get("lenet5-structured-mnist-s1-admm-s1")!;
    expect(s1.compact!.layers.map((l) => l.after)).toEqual([
      [12, 1, 5, 5],
      [25, 12, 5, 5],
      [125, 400],
      [10, 125],
    ]);
    expect(s1.compact!.accuracy).toBe(s1.accuracyFinal);
    // The middle rate keeps what STRUCTURED_RATES' comment says: 39480 weights, 10.9x.
    const s15 = byKey.get("lenet5-structured-mnist-s1.5-admm-s1")!;
    expect(s15.compact!.layers.map((l) => l.after)).toEqual([
      [12, 1, 5, 5],
      [22, 12, 5, 5],
      [90, 352],
      [10, 90],
    ]);
    expect(s1.compact!.forward.map((f) => f.batch)).toEqual([1, 128]);
    // Block: BSR with the chain's tile counts after 3 rounds, same accuracy in BSR form.
    const blk = byKey.get("lenet300100-block-mnist-round3-admm-s1")!;
    expect(blk.bsr!.layers.map((l) => l.nnzBlocks)).toEqual([
      chainKeptTiles(75 * 196, 0.2, 3),
      chainKeptTiles(25 * 75, 0.2, 3),
      chainKeptTiles(3 * 25, 0.1, 3),
    ]);
    expect(blk.bsr!.accuracy).toBe(blk.accuracyFinal);
    // The report's tables, targets and residual chart from these points.
    const pts = first.points as AdmmPoint[];
    const checks = checkAdmmTargets(pts, []);
    expect(checks[0]!.met).toBe(pa.accuracyFinal >= 0.99);
    expect(checks[1]!.met).toBe(
      pa.accuracyPruned > pm.accuracyPruned &&
        byKey.get("lenet5-nonstructured-mnist-x2-admm-s1")!.accuracyPruned >
          byKey.get("lenet5-nonstructured-mnist-x2-magnitude-s1")!.accuracyPruned &&
        byKey.get("lenet5-nonstructured-mnist-x4-admm-s1")!.accuracyPruned >
          byKey.get("lenet5-nonstructured-mnist-x4-magnitude-s1")!.accuracyPruned,
    );
    expect(checks[3]!.met).toBeNull(); // round 3 keeps > 5%: nothing to compare
    expect(targetsTable(checks).trim().split("\n")).toHaveLength(2 + checks.length);
    expect(pointsTable(pts).trim().split("\n")).toHaveLength(2 + pts.length);
    expect(compactTable(pts)).toContain(
      "conv1 [12,1,5,5] conv2 [25,12,5,5] fc1 [125,400] fc2 [10,125]",
    );
    const chain: ChainPoint = {
      config: { dataset: "mnist", blockSize: 4, method: "magnitude", seed: 1 },
      result: { rounds: [{ round: 3, density: 0.5, accuracyFineTuned: 0.5 }] },
    };
    expect(blockTable(pts, [chain])).toContain("50.00 (1 seeds)");
    const svg = join(out, "residual.svg");
    await renderChart(residualChart(pts, "residuals"), svg);
    expect(readFileSync(svg, "utf8")).toContain("<svg");
    const again = await run();
    expect(again.ran).toHaveLength(0);
    expect(again.skipped).toHaveLength(configs.length);
  }, 300_000);

  it("names the largest rate at >= 99.0% where the paper's rate misses it", () => {
    const pt = (rate: string, method: string, compression: number, acc: number, rlr?: number) =>
      ({
        config: {
          experiment: "lenet5-nonstructured",
          dataset: "mnist",
          rate,
          method,
          seed: 1,
          budget: rlr === undefined ? {} : { retrainLr: rlr },
        },
        result: { accuracyFinal: acc, accuracyPruned: acc, compression },
      }) as never as AdmmPoint;
    const detail = (ps: AdmmPoint[]) => checkAdmmTargets(ps, [])[0]!;
    const miss = detail([
      pt("paper", "admm", 71.2, 0.9892),
      pt("x2", "admm", 35.6, 0.991),
      pt("x4", "admm", 17.8, 0.9906),
      pt("paper", "magnitude", 71.2, 0.995), // magnitude points do not count
    ]);
    expect(miss.met).toBe(false);
    expect(miss.detail).toBe("paper s1: 98.92% at 71.2x; largest at >= 99.0%: 35.6x (x2, 99.10%)");
    expect(detail([pt("paper", "admm", 71.2, 0.98), pt("x2", "admm", 35.6, 0.985)]).detail).toBe(
      "paper s1: 98.00% at 71.2x; no ADMM rate reaches 99.0%",
    );
    // A budget with its own retraining rate is listed and judged apart, under its label.
    const both = detail([
      pt("paper", "admm", 71.2, 0.9892),
      pt("paper", "admm", 71.2, 0.9903, 1e-4),
    ]);
    expect(both.met).toBe(true);
    expect(both.detail).toBe(
      "paper s1: 98.92% at 71.2x; paper rlr 0.0001 s1: 99.03% at 71.2x; largest at >= 99.0%: 71.2x (paper rlr 0.0001, 99.03%)",
    );
  });

  it("an ADMM point trains through a BufferArena (admm-sweep's default) to the same result", () => {
    // The ADMM point runs both of runAdmmPoint's fits (the penalised phase and retraining); a
    // magnitude point's fine-tuning is a plain fit like the KEP points' (kep-sweep.test.ts).
    const c = admmSweepConfigs({ ...tiny, experiments: ["lenet5-nonstructured"] })[0]!;
    expect(c.method).toBe("admm");
    const arena = new BufferArena({ poison: true });
    const out = tmp();
    const dirs = ["plain", "arena"].map((d) => join(out, d));
    for (const d of dirs) mkdirSync(d);
    const plain = runAdmmPoint(c, io(c, out, dirs[0]!));
    const withArena = runAdmmPoint(c, { ...io(c, out, dirs[1]!), arena });
    expect({ ...withArena, seconds: 0 }).toEqual({ ...plain, seconds: 0 });
    expect(arena.stats.reused).toBeGreaterThan(0);
  }, 300_000);

  it("a magnitude point killed during fine-tuning resumes to the same result", () => {
    const c = admmSweepConfigs({
      ...tiny,
      experiments: ["lenet5-nonstructured"],
      retrainEpochs: 2,
    })[1]!;
    expect(c.method).toBe("magnitude");
    const out = tmp();
    const scratchA = join(out, "a");
    const scratchB = join(out, "b");
    mkdirSync(scratchA);
    mkdirSync(scratchB);
    const a = runAdmmPoint(c, io(c, out, scratchA));
    expect(() =>
      runAdmmPoint(c, {
        ...io(c, out, scratchB),
        progress: (t) => {
          if (t.startsWith("magnitude fine-tune epoch 2")) throw new Error("killed");
        },
      }),
    ).toThrow("killed");
    const b = runAdmmPoint(c, io(c, out, scratchB));
    expect({ ...b, seconds: 0 }).toEqual({ ...a, seconds: 0 });
  }, 300_000);
});
