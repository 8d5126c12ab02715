import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BufferArena } from "@tessera/autograd";
import { createPool, kernelsFromEnv } from "@tessera/matrix";
import { Adam, lenet300100, type Module } from "@tessera/nn";
import { BsrLinear } from "@tessera/pruning";
import { Generator } from "@tessera/tensor";
import { runChain, type ChainConfig } from "../src/block-chain.ts";
import {
  checkTargets,
  loadVariants,
  logits,
  machineInfo,
  maxAbsDiff,
  measureSpeed,
  selectPoints,
  speedKey,
  speedTable,
  targetsTable,
  writeSpeedReport,
  type SpeedConfig,
  type SpeedPointResult,
  type SpeedResult,
} from "../src/speed.ts";
import { runSweep } from "../src/sweep/index.ts";
import { firstBatch, timeForwardCpu, timeTraining } from "../src/timing.ts";
import { bands } from "./helpers.ts";

const train = bands(160, 1);
const test = bands(48, 2);
const root = mkdtempSync(join(tmpdir(), "tessera-speed-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fresh = (): Module => lenet300100({ generator: new Generator(0) });

// Two tiny chains (4x4 and 3x3 tiles, 2 rounds each) whose checkpoints the speed sweep times.
const chainsDir = join(root, "sweep", "chains");
for (const blockSize of [3, 4]) {
  const config: ChainConfig = {
    dataset: "bands",
    blockSize,
    method: "magnitude",
    seed: 2,
    rounds: 2,
    rates: { hidden: 0.2, output: 0.1 },
    fineTune: { epochs: 1, lr: 1e-3, schedule: "constant", batchSize: 32 },
  };
  runChain(config, {
    train,
    test,
    denseModel: () => lenet300100({ generator: new Generator(5) }),
    freshModel: fresh,
    dir: join(chainsDir, `bands-b${blockSize}-magnitude-s2`),
  });
}

const speedConfig = (p: ReturnType<typeof selectPoints>[number]): SpeedConfig => ({
  dataset: p.dataset,
  blockSize: p.blockSize,
  method: p.method,
  seed: p.seed,
  round: p.round,
  chain: p.chain,
  // One forward per repetition and one repetition: the test checks structure, not speed.
  inference: { batches: [1, 16], threads: [1, 2], reps: 1, examplesPerRep: 1, warmup: 2 },
  training: { batchSize: 32, steps: 0, reps: 1, threads: 2, lr: 1e-3 },
});

describe("selectPoints", () => {
  it("finds every round of the chosen chains; default method magnitude and the first seed", () => {
    const pts = selectPoints(chainsDir);
    expect(pts.map((p) => `${p.chain}:${p.round}`)).toEqual([
      "bands-b3-magnitude-s2:1",
      "bands-b3-magnitude-s2:2",
      "bands-b4-magnitude-s2:1",
      "bands-b4-magnitude-s2:2",
    ]);
    expect(selectPoints(chainsDir, { blockSizes: [4], rounds: [2] })).toHaveLength(1);
  });

  it("names what is missing", () => {
    expect(() => selectPoints(chainsDir, { rounds: [3] })).toThrow(
      /round-03\.safetensors does not exist \(chain bands-b3-magnitude-s2 has rounds 1,2\)/,
    );
    expect(() => selectPoints(chainsDir, { methods: ["random"] })).toThrow(
      /no chain in .* matches .*methods random.*found: bands-b3-magnitude-s2, bands-b4-magnitude-s2/,
    );
    expect(() => selectPoints(join(root, "nowhere"))).toThrow(
      /does not exist; run the block sweep/,
    );
  });
});

describe("loadVariants", () => {
  it("BSR and CSR models compute the dense masked model's outputs within float32 roundoff", () => {
    for (const p of selectPoints(chainsDir)) {
      const v = loadVariants(p.checkpoint, fresh);
      // The BSR model holds the chain's tiles, the CSR model 1x1 blocks, in every layer.
      for (const name of ["fc1", "fc2", "fc3"]) {
        const b = v.bsr.getSubmodule(name) as BsrLinear;
        const c = v.csr.getSubmodule(name) as BsrLinear;
        expect(b).toBeInstanceOf(BsrLinear);
        expect(b.blockShape).toEqual([p.blockSize, p.blockSize]);
        expect(c.blockShape).toEqual([1, 1]);
        const mask = v.state.mask(`${name}.weight`);
        expect(c.weight.nnzBlocks).toBe(mask.reduce((a, m) => a + m, 0));
      }
      for (const batch of [1, 7, 48]) {
        const x = firstBatch(test, batch);
        const ref = logits(v.dense, x);
        const scale = Math.max(...Array.from(ref.data, Math.abs));
        expect(maxAbsDiff(logits(v.bsr, x), ref)).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
        expect(maxAbsDiff(logits(v.csr, x), ref)).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
      }
    }
  });

  it("maxAbsDiff sees a changed weight (the equality check can fail)", () => {
    const [p] = selectPoints(chainsDir, { blockSizes: [4], rounds: [1] });
    const v = loadVariants(p!.checkpoint, fresh);
    const b = v.bsr.getSubmodule("fc3") as BsrLinear;
    (b.data.data.data as Float32Array)[0]! += 0.5;
    const x = firstBatch(test, 8);
    expect(maxAbsDiff(logits(v.bsr, x), logits(v.dense, x))).toBeGreaterThan(1e-3);
  });
});

describe("timeForwardCpu", () => {
  it("runs the untimed warm-up forwards of every model before the reps, then reps x calls", () => {
    const calls = new Map<string, number>();
    const counting = (name: string): Module => {
      const m = fresh();
      const forward = m.forward.bind(m);
      m.forward = (x) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        return forward(x);
      };
      return m;
    };
    const models = ["a", "b"].map((name) => ({ name, model: counting(name) }));
    const x = firstBatch(test, 4);
    const t = timeForwardCpu(models, x, { reps: 3, callsPerRep: 2, warmup: 5 });
    expect([...t.wall.keys()]).toEqual(["a", "b"]);
    expect(calls.get("a")).toBe(5 + 3 * 2);
    expect(calls.get("b")).toBe(5 + 3 * 2);
    calls.clear();
    timeForwardCpu(models, x, { reps: 1 });
    expect(calls.get("a")).toBe(20 + 1); // the default warm-up
    expect(() => timeForwardCpu(models, x, { warmup: 0 })).toThrow(
      /timeForward: warmup must be a positive integer, got 0/,
    );
  });
});

describe("timeTraining", () => {
  it("gives every variant the same batches: identical models stay identical (with or without an arena)", () => {
    const a = fresh();
    const b = fresh();
    const arena = new BufferArena({ poison: true });
    const t = timeTraining(
      [
        { name: "a", model: a, optimizer: new Adam(a.parameters(), { lr: 1e-3 }) },
        { name: "b", model: b, optimizer: new Adam(b.parameters(), { lr: 1e-3 }), arena },
      ],
      train,
      { batchSize: 32, steps: 7, reps: 2, seed: 4 },
    );
    expect(t.steps).toBe(7);
    expect(t.stepsPerEpoch).toBe(5);
    expect(t.all.get("a")).toHaveLength(2);
    expect(t.lastLoss.get("a")).toBe(t.lastLoss.get("b"));
    for (const name of ["a", "b"]) expect(t.cpuSeconds.get(name)).toBeGreaterThan(0);
    for (const name of ["fc1.weight", "fc2.weight", "fc3.bias"])
      expect(a.getParameter(name).data.data).toEqual(b.getParameter(name).data.data);
    expect(arena.stats.reused).toBeGreaterThan(0);
    expect(() => timeTraining([], train, { batchSize: 32, steps: 0, seed: 1 })).toThrow(
      /timeTraining: steps must be a positive integer, got 0/,
    );
  });
});

describe("speed sweep over a tiny chain's checkpoints", () => {
  it(
    "times every point, resumes, and reports targets and charts",
    { timeout: 300_000 },
    async () => {
      const pool = createPool({ threads: 2 });
      const pools = new Map([
        [1, undefined],
        [2, pool],
      ]);
      const out = join(root, "speed");
      const points = selectPoints(chainsDir);
      const configs = points.map(speedConfig);
      const byKey = new Map(points.map((p) => [speedKey(p), p.checkpoint]));
      let runs = 0;
      const sweep = () =>
        runSweep<SpeedConfig, SpeedResult>({
          dir: out,
          name: "speed",
          configs,
          key: speedKey,
          progress: { stream: { write: () => true }, tty: false },
          run: (c) => {
            runs++;
            return measureSpeed(c, {
              checkpoint: byKey.get(speedKey(c))!,
              freshModel: fresh,
              train,
              pools,
            });
          },
        });
      try {
        const first = await sweep();
        expect(first.ran).toHaveLength(4);
        expect(runs).toBe(4);
        for (const p of first.points) {
          const r = p.result;
          expect(r.round).toBe(p.config.round);
          expect(r.inference.map((i) => `${i.batch}/${i.threads}`)).toEqual([
            "1/1",
            "16/1",
            "1/2",
            "16/2",
          ]);
          for (const i of r.inference) {
            for (const s of Object.values(i.seconds)) expect(s).toBeGreaterThan(0);
            expect(i.speedup.bsr).toBeCloseTo(i.seconds.dense / i.seconds.bsr, 12);
            for (const s of Object.values(i.cpuSeconds!)) expect(s).toBeGreaterThan(0);
            expect(i.cpuSpeedup!.bsr).toBeCloseTo(i.cpuSeconds!.dense / i.cpuSeconds!.bsr, 12);
            expect(i.cpuSpeedup!.csr).toBeCloseTo(i.cpuSeconds!.dense / i.cpuSeconds!.csr, 12);
            // The plans, timed in the same reps, compute the modules' bits.
            const plan = i.plan!;
            for (const s of Object.values(plan.seconds)) expect(s).toBeGreaterThan(0);
            for (const s of Object.values(plan.cpuSeconds)) expect(s).toBeGreaterThan(0);
            expect(plan.speedup.bsr).toBeCloseTo(plan.seconds.dense / plan.seconds.bsr, 12);
            expect(plan.speedup.csr).toBeCloseTo(plan.seconds.dense / plan.seconds.csr, 12);
            expect(plan.cpuSpeedup.bsr).toBeCloseTo(
              plan.cpuSeconds.dense / plan.cpuSeconds.bsr,
              12,
            );
            expect(plan.maxAbsDiff).toEqual({ dense: 0, bsr: 0, csr: 0 });
          }
          expect(r.training).toMatchObject({
            steps: 5,
            stepsPerEpoch: 5,
            fullEpoch: true,
            reps: 1,
            arena: true,
          });
          expect(r.training.speedup).toBeCloseTo(
            r.training.seconds.dense / r.training.seconds.sparse,
            12,
          );
          expect(r.training.cpuSpeedup).toBeCloseTo(
            r.training.cpuSeconds!.dense / r.training.cpuSeconds!.sparse,
            12,
          );
          // Same weights, same batches: masked dense and BSR training agree in loss.
          expect(Math.abs(r.training.lastLoss.dense - r.training.lastLoss.sparse)).toBeLessThan(
            1e-4,
          );
          expect(r.maxAbsDiff.bsr).toBeLessThan(1e-4);
          expect(r.maxAbsDiff.csr).toBeLessThan(1e-4);
          expect(r.layers.map((l) => l.name)).toEqual(["fc1", "fc2", "fc3"]);
          expect(r.bytes.bsr).toBeLessThan(r.bytes.dense);
        }
        expect(first.points.map((p) => +(100 * p.result.density).toFixed(1))).toEqual([
          80.1,
          64.1,
          80.0,
          64.1, // 3x3: whole ragged tiles move round 1 by 0.1 point
        ]);
        // A second run finds every point finished and times nothing.
        const again = await sweep();
        expect(again.skipped).toHaveLength(4);
        expect(runs).toBe(4);

        const machine = { ...machineInfo(), loadEnd: [0, 0, 0] };
        const report = await writeSpeedReport(out, first.points, machine, "test");
        for (const f of ["points.json", "points.csv", "machine.json", "speed.md"])
          expect(existsSync(join(out, f))).toBe(true);
        for (const f of ["inference-batch1", "training-epoch"]) {
          expect(readFileSync(join(out, `${f}.svg`), "utf8")).toMatch(/^<svg/);
          expect(existsSync(join(out, `${f}.vl.json`))).toBe(true);
        }
        // No batch-128 point in this run: no chart drawn from nothing.
        expect(existsSync(join(out, "inference-batch128.svg"))).toBe(false);
        expect(report.markdown).toContain(machine.cpu);
        expect(report.markdown).toContain(
          `Kernels: ${kernelsFromEnv(process.env)} (TESSERA_KERNELS)`,
        );
        expect(JSON.parse(readFileSync(join(out, "machine.json"), "utf8")).kernels).toBe(
          kernelsFromEnv(process.env),
        );
        expect(report.markdown).toContain("| BSR cpu ratio | CSR cpu ratio | plan dense ms |");
        expect(report.markdown).toContain("the targets are judged on the plans");
        expect(report.markdown).toContain(
          "(variants alternate rep by rep, after 2 untimed forwards of each)",
        );
        expect(report.markdown).toContain("sum of both threads");
        expect(report.markdown).toContain("| cpu ratio | step arrays |");
        expect(report.markdown).toContain("each stepped through a BufferArena of their own");
        expect(report.markdown).toMatch(
          /4x4 BSR inference, batch 128, any thread\(s\).*not measured/,
        );
        const csv = readFileSync(join(out, "points.csv"), "utf8").split("\n");
        expect(csv).toHaveLength(6); // header, 4 points, final newline
      } finally {
        await pool.close();
      }
    },
  );
});

describe("speedTable", () => {
  const point = (cpu: boolean) =>
    ({
      config: { chain: "m-b4-magnitude-s1", blockSize: 4, round: 10 },
      result: {
        density: 0.108,
        inference: [
          {
            batch: 128,
            threads: 2,
            seconds: { dense: 0.006, bsr: 0.002, csr: 0.003 },
            speedup: { bsr: 3, csr: 2 },
            ...(cpu
              ? {
                  cpuSeconds: { dense: 0.012, bsr: 0.003, csr: 0.004 },
                  cpuSpeedup: { bsr: 4, csr: 3 },
                  plan: {
                    seconds: { dense: 0.005, bsr: 0.001, csr: 0.0025 },
                    speedup: { bsr: 5, csr: 2 },
                    cpuSeconds: { dense: 0.01, bsr: 0.002, csr: 0.004 },
                    cpuSpeedup: { bsr: 5, csr: 2.5 },
                    maxAbsDiff: { dense: 0, bsr: 0, csr: 0 },
                  },
                }
              : {}),
          },
        ],
        training: {
          batchSize: 128,
          threads: 2,
          fullEpoch: true,
          steps: 469,
          stepsPerEpoch: 469,
          epochSeconds: { dense: 6, sparse: 2 },
          speedup: 3,
          ...(cpu ? { cpuSpeedup: 3.5, arena: true } : {}),
        },
      },
    }) as unknown as SpeedPointResult;

  it("puts the CPU-time ratios and the plans' times beside the modules', '-' for points timed without them, and whether training reused its arrays", () => {
    const rows = speedTable([point(true), point(false)])
      .split("\n")
      .filter((l) => l.startsWith("| m-b4"));
    expect(rows).toEqual([
      "| m-b4-magnitude-s1 | 10 | 10.8% | 128 | 2 | 6.000 | 2.000 | 3.000 | 3.00x | 2.00x | 4.00x | 3.00x | 5.000 | 1.000 | 2.500 | 5.00x | 2.00x | 5.00x | 2.50x |",
      "| m-b4-magnitude-s1 | 10 | 10.8% | 128 | 2 | 6.000 | 2.000 | 3.000 | 3.00x | 2.00x | - | - | - | - | - | - | - | - | - |",
      "| m-b4-magnitude-s1 | 10 | 10.8% | 2 | full epoch (469 steps) | 6.00 | 2.00 | 3.00x | 3.50x | arena, both |",
      "| m-b4-magnitude-s1 | 10 | 10.8% | 2 | full epoch (469 steps) | 6.00 | 2.00 | 3.00x | - | fresh |",
    ]);
  });
});

describe("checkTargets", () => {
  const point = (
    chain: string,
    blockSize: number,
    density: number,
    b128: number[],
    train: number,
    planned?: number[],
  ) =>
    ({
      config: { chain, blockSize, round: 1 },
      result: {
        density,
        inference: b128.map((speedup, k) => ({
          batch: 128,
          threads: k + 1,
          speedup: { bsr: speedup },
          ...(planned === undefined ? {} : { plan: { speedup: { bsr: planned[k] } } }),
        })),
        training: { speedup: train, fullEpoch: true, steps: 469, stepsPerEpoch: 469 },
      },
    }) as unknown as SpeedPointResult;

  it("uses the 4x4 point nearest 10% density and says by how much each target is met or missed", () => {
    const checks = checkTargets([
      point("m-b4-magnitude-s1", 4, 0.135, [9, 9], 9),
      point("m-b4-magnitude-s1", 4, 0.108, [6, 4], 2.4),
      point("m-b4-magnitude-s1", 4, 0.087, [1, 1], 1),
      point("m-b2-magnitude-s1", 2, 0.1, [1, 1], 1),
    ]);
    expect(checks.map((c) => [c.point, c.measured, c.met])).toEqual([
      ["m-b4-magnitude-s1 round 1 (10.8%)", 6, true],
      ["m-b4-magnitude-s1 round 1 (10.8%)", 4, false],
      ["m-b4-magnitude-s1 round 1 (10.8%)", 2.4, false],
    ]);
    expect(checks[1]!.ratio).toBeCloseTo(0.8, 12);
    expect(checks[2]!.ratio).toBeCloseTo(0.8, 12);
    expect(targetsTable(checks)).toMatch(/\| NO: 4\.00x is 20% short of 5\.00x \|/);
  });

  it("judges inference on the plans where the point timed them, and says which it used", () => {
    const checks = checkTargets([point("m-b4-magnitude-s1", 4, 0.108, [3, 2], 2.4, [5.5, 4.5])]);
    expect(checks.map((c) => [c.target.includes("(inference plans)"), c.measured, c.met])).toEqual([
      [true, 5.5, true],
      [true, 4.5, false],
      [false, 2.4, false],
    ]);
    const old = checkTargets([point("m-b4-magnitude-s1", 4, 0.108, [3, 2], 2.4)]);
    expect(old[0]!.target).toContain("(module forward)");
    expect(old[0]!.measured).toBe(3);
  });

  it("does not judge a target on a point far from 10% density", () => {
    const checks = checkTargets([point("m-b4-magnitude-s1", 4, 0.411, [9, 9], 9)]);
    expect(checks.map((c) => [c.measured, c.met])).toEqual([
      [9, null],
      [9, null],
      [9, null],
    ]);
    expect(targetsTable(checks)).toContain("not judged: no 4x4 point at 8-14% density");
  });
});
