import { describe, expect, it } from "vitest";
import {
  accuracyRows,
  blockSizeTable,
  budgetTable,
  cells,
  checkTargets,
  roundsTable,
  splitByBudget,
  variantSection,
  type BlockPoint,
} from "../src/block-report.ts";
import type { RoundRow } from "../src/block-chain.ts";

const row = (round: number, density: number, acc: number): RoundRow => ({
  round,
  density,
  keptWeights: Math.round(density * 266200),
  layerDensity: {},
  accuracyPruned: acc - 0.01,
  accuracyFineTuned: acc,
  trainLossFineTuned: 0.1,
  bytes: { dense: 1000, csr: 400, bsr: 300 },
  fineTuneSeconds: 1,
});

function point(
  dataset: string,
  b: number,
  method: string,
  seed: number,
  accs: number[],
  dense = 0.98,
): BlockPoint {
  return {
    format: "tessera-sweep-point/1",
    sweep: "block-sweep",
    key: `${dataset}-b${b}-${method}-s${seed}`,
    config: {
      dataset,
      blockSize: b,
      method: method as "magnitude" | "random",
      seed,
      rounds: accs.length,
      rates: { hidden: 0.2, output: 0.1 },
      fineTune: { epochs: 1, lr: 1e-3, schedule: "cosine", batchSize: 128 },
    },
    result: { denseAccuracy: dense, rounds: accs.map((a, i) => row(i + 1, 0.8 ** (i + 1), a)) },
    timing: { started: "", finished: "", seconds: 1 },
    git: null,
    host: "h",
    shard: { index: 0, count: 1 },
  } as unknown as BlockPoint;
}

const tenRounds = (last: number) => [...Array(9).fill(0.979), last];

describe("block-sweep report", () => {
  it("averages over seeds per (dataset, block size, method, round)", () => {
    const cs = cells([
      point("mnist", 4, "magnitude", 1, [0.9, 0.8]),
      point("mnist", 4, "magnitude", 2, [0.92, 0.7]),
    ]);
    expect(cs).toHaveLength(2);
    expect(cs[0]!.fineTuned.mean).toBeCloseTo(0.91, 12);
    expect([cs[1]!.fineTuned.min, cs[1]!.fineTuned.max]).toEqual([0.7, 0.8]);
    expect(cs[0]!.seeds).toEqual([1, 2]);
  });

  it("checks the issue's targets against the measured gaps, and says what has not run", () => {
    const ok = checkTargets(cells([point("mnist", 4, "magnitude", 1, tenRounds(0.976))]));
    expect(ok[0]!.met).toBe(true); // 0.4 points below dense
    expect(ok[1]!.met).toBe(null); // round 16 not run
    expect(ok[2]!.met).toBe(null); // Fashion-MNIST not run
    const bad = checkTargets(cells([point("mnist", 4, "magnitude", 1, tenRounds(0.974))]));
    expect(bad[0]!.met).toBe(false); // 0.6 points below
    expect(bad[0]!.measured).toContain("0.60 points below");
  });

  it("magnitude must beat random in every cell run with both", () => {
    const better = checkTargets(
      cells([
        point("mnist", 2, "magnitude", 1, [0.95, 0.9]),
        point("mnist", 2, "random", 1, [0.9, 0.8]),
      ]),
    );
    expect(better[3]!.met).toBe(true);
    const tie = checkTargets(
      cells([
        point("mnist", 2, "magnitude", 1, [0.95, 0.8]),
        point("mnist", 2, "random", 1, [0.9, 0.8]),
      ]),
    );
    expect(tie[3]!.met).toBe(false);
    expect(tie[3]!.measured).toContain("mnist b2 round 2");
    expect(better[3]!.measured).not.toContain("tie within seed noise");
    // Ahead by 0.02 points: counted, and named as a tie within seed noise.
    const close = checkTargets(
      cells([
        point("mnist", 2, "magnitude", 1, [0.95, 0.8002]),
        point("mnist", 2, "random", 1, [0.9, 0.8]),
      ]),
    );
    expect(close[3]!.met).toBe(true);
    expect(close[3]!.measured).toContain(
      "ahead by less than 0.05 points (a tie within seed noise) in 1: mnist b2 round 2: 80.02 vs 80.00 (1 / 1 seeds)",
    );
  });

  it("tables every round with both methods and rows for the charts", () => {
    const ps = [
      point("mnist", 3, "magnitude", 1, [0.95, 0.9]),
      point("mnist", 3, "random", 1, [0.9, 0.8]),
    ];
    const md = roundsTable(cells(ps), "mnist", 3);
    expect(md.split("\n").filter((l) => l.startsWith("| 1 ") || l.startsWith("| 2 "))).toHaveLength(
      2,
    );
    expect(md).toContain("95.00");
    expect(md).toContain("80.00");
    expect(md).not.toContain("seeds (magnitude / random)");
    // Extra seeds of round 1 only: the table says how many seeds each round has.
    const extra = [
      ...ps,
      point("mnist", 3, "magnitude", 2, [0.97]),
      point("mnist", 3, "random", 2, [0.96]),
      point("mnist", 3, "random", 3, [0.96]),
    ];
    const mdExtra = roundsTable(cells(extra), "mnist", 3);
    expect(mdExtra).toContain("seeds (magnitude / random)");
    expect(mdExtra.split("\n").find((l) => l.startsWith("| 1 "))).toContain("| 2 / 3 ");
    expect(mdExtra.split("\n").find((l) => l.startsWith("| 2 "))).toContain("| 1 / 1 ");
    const rows = accuracyRows(ps, "mnist");
    expect(rows).toHaveLength(6); // dense + 2 rounds, per method
    expect(rows.filter((r) => r.density === 1).map((r) => r.accuracy)).toEqual([0.98, 0.98]);
  });

  it("sums up tile sizes at chosen rounds, with seed counts and '-' where a round is missing", () => {
    const ps = [
      point("mnist", 1, "magnitude", 1, [0.97, 0.96]),
      point("mnist", 1, "magnitude", 2, [0.95, 0.94]),
      point("mnist", 1, "random", 1, [0.9, 0.8]),
      point("mnist", 8, "magnitude", 1, [0.93]),
      point("fashion-mnist", 2, "magnitude", 1, [0.5, 0.4]),
    ];
    const md = blockSizeTable(cells(ps), "mnist", [1, 2]);
    const lines = md.split("\n");
    expect(lines[0]).toContain("round 2, 64.0%: magnitude");
    const b1 = lines.find((l) => l.startsWith("| 1x1"))!;
    // magnitude round 2 over seeds 1 and 2: (0.96 + 0.94) / 2; random round 2: one seed.
    expect(b1.split("|").map((c) => c.trim())).toEqual([
      "",
      "1x1 (elements)",
      "96.00 (2)",
      "90.00 (1)",
      "95.00 (2)",
      "80.00 (1)",
      "",
    ]);
    const b8 = lines.find((l) => l.startsWith("| 8x8"))!;
    expect(b8.split("|").map((c) => c.trim())).toEqual(["", "8x8", "93.00 (1)", "-", "-", "-", ""]);
    expect(md).not.toContain("2x2"); // another dataset's tile size
  });

  it("keeps chains with a late budget apart from the plain ones, with their own targets", () => {
    const late = (p: BlockPoint, fromRound: number, epochs: number): BlockPoint => ({
      ...p,
      key: `${p.key}-late${fromRound}x${epochs}`,
      config: { ...p.config, fineTune: { ...p.config.fineTune, late: { fromRound, epochs } } },
    });
    const sixteen = (last: number) => [...Array(15).fill(0.979), last];
    const plainM = point("mnist", 4, "magnitude", 1, sixteen(0.95));
    const plainR = point("mnist", 4, "random", 1, sixteen(0.9));
    const longM = late(point("mnist", 4, "magnitude", 1, sixteen(0.975)), 11, 8);
    const other = late(point("mnist", 4, "magnitude", 1, sixteen(0.96)), 11, 4);
    const { plain, variants } = splitByBudget([longM, plainM, other, plainR]);
    expect(plain.map((p) => p.key)).toEqual([plainM.key, plainR.key]);
    expect(variants.map((v) => v.map((p) => p.key))).toEqual([[other.key], [longM.key]]);
    // Averaging them together would give a round-16 mean of 0.9625 (and 2 seeds of seed 1).
    expect(
      cells(plain).find((c) => c.method === "magnitude" && c.round === 16)!.fineTuned.mean,
    ).toBe(0.95);

    const md = variantSection([longM], [...plain, point("mnist", 4, "magnitude", 2, sixteen(0.9))]);
    expect(md).toContain("## Longer fine-tuning from round 11: 8 epochs per round");
    // Round 16 is 0.5 points below dense (0.98): the 1.5-point target is met under this budget;
    // round 10 is before the late budget, so its row is left out of this section's targets.
    expect(md).toMatch(
      /round 16 \(2\.9%\): within 1\.5 points of dense \| dense 98\.00%, pruned 97\.50%.*\| yes/,
    );
    expect(md).not.toContain("round 10 (10.8%)");
    expect(md).toMatch(/\|\s+16 \| 2\.8 \| magnitude \| 97\.50 \(1\)\s+\| 95\.00 \(1\)/);
    expect(md).not.toMatch(/\|\s+10 \|/);

    // A longer budget from round 1 on is a longer budget in every round, and says so; its
    // targets include round 10.
    const every = late(point("mnist", 4, "magnitude", 1, sixteen(0.975)), 1, 10);
    const mdEvery = variantSection([every], plain);
    expect(mdEvery).toContain("## Longer fine-tuning in every round: 10 epochs per round");
    expect(mdEvery).toContain("10 epochs in every round instead of 1 epoch,");
    expect(mdEvery).not.toContain("rounds 1-0");
    expect(mdEvery).toContain("round 10 (10.8%)");
  });

  it("keeps chains fine-tuned at another learning rate apart, and names the rate", () => {
    const withLr = (p: BlockPoint, lr: number, late?: { fromRound: number; epochs: number }) => ({
      ...p,
      key: `${p.key}-lr${lr}`,
      config: { ...p.config, fineTune: { ...p.config.fineTune, lr, ...(late ? { late } : {}) } },
    });
    const sixteen = (last: number) => [...Array(15).fill(0.979), last];
    const plainM = point("mnist", 4, "magnitude", 1, sixteen(0.95));
    const low = withLr(point("mnist", 4, "magnitude", 1, sixteen(0.97)), 3e-4);
    const lowLong = withLr(point("mnist", 4, "magnitude", 1, sixteen(0.975)), 3e-4, {
      fromRound: 1,
      epochs: 10,
    });
    const { plain, variants } = splitByBudget([low, plainM, lowLong]);
    expect(plain.map((p) => p.key)).toEqual([plainM.key]);
    expect(
      variants
        .flat()
        .map((p) => p.key)
        .sort(),
    ).toEqual([low.key, lowLong.key].sort());
    expect(variants).toHaveLength(2);

    const md = variantSection([low], plain);
    expect(md).toContain("## Fine-tuning with learning rate 0.0003: 1 epoch per round");
    expect(md).toContain("1 epoch in every round as in the plain chains,");
    expect(md).toContain(
      "learning rate 0.0003 (the plain chains: Adam at learning rate 0.001, no decay, batch 128) and cosine decay",
    );
    expect(md).toContain("1 epoch with learning rate 0.0003 against 1 epoch plain per round");
    expect(md).toMatch(/\|\s+16 \| 2\.8 \| magnitude \| 97\.00 \(1\)\s+\| 95\.00 \(1\)/);
    const mdLong = variantSection([lowLong], plain);
    expect(mdLong).toContain(
      "## Longer fine-tuning in every round: 10 epochs per round with learning rate 0.0003",
    );
    // Weight decay is a budget of its own too, named with the optimizer it implies.
    const decayed: BlockPoint = {
      ...lowLong,
      key: `${plainM.key}-late1x10-wd0.05`,
      config: {
        ...lowLong.config,
        fineTune: { ...lowLong.config.fineTune, lr: 1e-3, weightDecay: 0.05 },
      },
    };
    // And so is another batch size.
    const small: BlockPoint = {
      ...decayed,
      key: `${plainM.key}-late1x10-bs50`,
      config: {
        ...decayed.config,
        fineTune: { ...plainM.config.fineTune, batchSize: 50, late: { fromRound: 1, epochs: 10 } },
      },
    };
    expect(splitByBudget([plainM, lowLong, decayed, small]).variants).toHaveLength(3);
    // Side by side: per budget, the gaps to dense (0.98) at rounds 10 and 16, mean and per seed.
    const table = budgetTable(plain, [[low], [lowLong]]);
    expect(table).toMatch(
      /\| plain: 1 epoch per round \| mnist 4x4 \| 1 \| asm \| 0\.10 \| 3\.00 \| 3\.00 \|/,
    );
    expect(table).toMatch(
      /with learning rate 0\.0003: 1 epoch per round \| mnist 4x4 \| 1 \| asm \| 0\.10 \| 1\.00 \| 1\.00 \|/,
    );
    expect(table).toMatch(
      /10 epochs per round with learning rate 0\.0003 \| .* \| 0\.50 \| 0\.50 \|/,
    );
    // Seeds in numeric order (10 after 2).
    const seeds = budgetTable(plain, [
      [withLr(point("mnist", 4, "magnitude", 10, sixteen(0.97)), 3e-4), { ...low, key: "x" }].map(
        (p, i) => ({ ...p, config: { ...p.config, seed: [10, 2][i]! } }),
      ),
    ]);
    expect(seeds).toContain("| mnist 4x4 | 2, 10 |");
    // Above dense reads as such, not as a negative gap "below".
    const above = variantSection(
      [withLr(point("mnist", 4, "magnitude", 1, sixteen(0.99)), 3e-4)],
      plain,
    );
    expect(above).toContain("pruned 99.00% at 2.8% density: 1.00 points above");
    // The kernel path shows where it is not asm.js (points before the field: asm.js).
    expect(variantSection([decayed], plain)).not.toContain("Kernel path");
    expect(variantSection([{ ...decayed, kernels: "wasm" }], plain)).toContain(
      "Kernel path: wasm (TESSERA_KERNELS;",
    );
    // The plain budget on the wasm path is a group of its own, never averaged with asm.js's.
    const plainWasm: BlockPoint = { ...plainM, kernels: "wasm" };
    const split = splitByBudget([plainM, plainWasm]);
    expect(split.plain).toEqual([plainM]);
    expect(split.variants).toEqual([[plainWasm]]);
    expect(variantSection([plainWasm], split.plain)).toContain(
      "## Fine-tuning with the plain budget: 1 epoch per round (wasm kernels)",
    );
    expect(variantSection([small], plain)).toContain(
      "## Longer fine-tuning in every round: 10 epochs per round with batch 50",
    );
    expect(variantSection([decayed], plain)).toContain(
      "## Longer fine-tuning in every round: 10 epochs per round with AdamW weight decay 0.05",
    );
  });
});
