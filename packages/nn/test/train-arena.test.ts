// fit's `arena` option: training with a BufferArena is bitwise the training without one (MLPs,
// a conv net with batch norm and dropout; SGD with momentum, Adam, AdamW; a ragged last batch;
// a beforeStep hook writing into the gradients; 1 and 2 threads), and it reuses its arrays.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Generator } from "@tessera/tensor";
import { BufferArena } from "@tessera/autograd";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { arrayDataset } from "../src/data.ts";
import {
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
} from "../src/layers.ts";
import type { Module } from "../src/module.ts";
import { Adam, AdamW, SGD, type Optimizer } from "../src/optim.ts";
import { fit, type FitOptions } from "../src/train.ts";

function data(count: number, shape: number[], classes: number, seed: number) {
  const g = new Generator(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: count * per }, () => g.normal(0, 1));
  const y = Int32Array.from({ length: count }, () => Math.floor(g.nextFloat() * classes));
  return arrayDataset(x, y, shape);
}

type Kind = "mlp" | "cnn";

function model(kind: Kind, hidden: number, seed: number): Module {
  const g = new Generator(seed);
  if (kind === "mlp")
    return new Sequential(
      new Linear(5, hidden, { generator: g }),
      new ReLU(),
      new Dropout(0.2, { generator: g }),
      new Linear(hidden, 3, { generator: g }),
    );
  return new Sequential(
    new Conv2d(1, 2, 3, { padding: 1, generator: g }),
    new BatchNorm2d(2),
    new ReLU(),
    // a second convolution, so one convolution's input gradient is computed too
    new Conv2d(2, 2, 3, { padding: 1, generator: g }),
    new MaxPool2d(2),
    new Flatten(),
    new Dropout(0.2, { generator: g }),
    new Linear(2 * 3 * 3, 3, { generator: g }),
  );
}

function optimizer(name: "sgd" | "adam" | "adamw", m: Module): Optimizer {
  if (name === "sgd") return new SGD(m.parameters(), { lr: 0.05, momentum: 0.9 });
  if (name === "adam") return new Adam(m.parameters(), { lr: 0.01 });
  return new AdamW(m.parameters(), { lr: 0.01 });
}

const bits = (a: ArrayLike<number>) =>
  Array.from(Float32Array.from(a), (v) => (Object.is(v, -0) ? "-0" : String(v)));

const caseArb = fc.record({
  kind: fc.constantFrom<Kind>("mlp", "cnn"),
  hidden: fc.integer({ min: 1, max: 9 }),
  count: fc.integer({ min: 3, max: 23 }),
  batchSize: fc.integer({ min: 1, max: 8 }),
  opt: fc.constantFrom<"sgd" | "adam" | "adamw">("sgd", "adam", "adamw"),
  hook: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1_000_000 }),
});

type Case = typeof caseArb extends fc.Arbitrary<infer C> ? C : never;

function run(c: Case, extra: Partial<FitOptions>) {
  const shape = c.kind === "mlp" ? [5] : [1, 6, 6];
  const m = model(c.kind, c.hidden, c.seed);
  const { history } = fit(m, {
    train: data(c.count, shape, 3, c.seed + 1),
    test: data(5, shape, 3, c.seed + 2),
    epochs: 2,
    batchSize: c.batchSize,
    optimizer: optimizer(c.opt, m),
    seed: c.seed,
    // an ADMM-like penalty added into the gradients in place
    ...(c.hook
      ? {
          beforeStep: ({ model: mm }) => {
            for (const p of mm.parameters()) {
              const w = p.data.data;
              const gr = p.grad!.data;
              for (let i = 0; i < gr.length; i++) gr[i] = gr[i]! + 0.01 * w[i]!;
            }
          },
        }
      : {}),
    ...extra,
  });
  return {
    history: history.map((h) => [h.trainLoss, h.trainAccuracy, h.testLoss!, h.testAccuracy!]),
    params: m.parameters().map((p) => bits(p.data.data)),
    buffers: [...m.namedBuffers()].map(([, b]) => bits(b.data)),
  };
}

function suite(pool: () => MatrixPool | undefined): void {
  it("fit with an arena trains to the same bits as without one", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const p = pool();
        const extra = p === undefined ? {} : { pool: p };
        const ref = run(c, extra);
        const arena = new BufferArena({ poison: true });
        expect(run(c, { ...extra, arena })).toEqual(ref);
        expect(arena.stats.reused).toBeGreaterThan(0);
      }),
      { numRuns: 30 },
    );
  });
}

describe("fit({ arena }), one thread", () => {
  suite(() => undefined);

  it("allocates nothing new after the first step of each batch size", () => {
    const arena = new BufferArena();
    const c = {
      kind: "cnn" as const,
      hidden: 4,
      count: 20,
      batchSize: 8,
      opt: "adam" as const,
      hook: false,
      seed: 3,
    };
    run({ ...c, count: 8 }, { arena }); // epochs of one full batch
    const first = arena.stats.allocated;
    run(c, { arena }); // two full batches and one of 4 per epoch
    const second = arena.stats.allocated - first;
    run(c, { arena });
    expect(second).toBeGreaterThan(0); // the batch of 4 has arrays of its own sizes
    expect(arena.stats.allocated - first - second).toBe(0);
  });

  it("rejects an arena that is not a BufferArena", () => {
    const m = model("mlp", 3, 1);
    expect(() =>
      fit(m, {
        train: data(4, [5], 3, 1),
        epochs: 1,
        batchSize: 2,
        optimizer: new SGD(m.parameters(), { lr: 0.1 }),
        seed: 1,
        arena: {} as BufferArena,
      }),
    ).toThrow(/fit: arena must be a BufferArena from @tessera\/autograd/);
  });
});

/** The suite on a two-thread pool that splits every job it can (minParallelFlops 0). */
function twoThreads(kernels?: "wasm"): void {
  let pool: MatrixPool;
  beforeAll(async () => {
    pool = createPool({ threads: 2, minParallelFlops: 0, ...(kernels ? { kernels } : {}) });
    await pool.ready();
  });
  afterAll(async () => {
    await pool.close();
  });
  suite(() => pool);
}

describe("fit({ arena }), two threads", () => twoThreads());

// The WebAssembly path: the fused convolutions (their output and input gradient handed out by the
// arena without a zero fill) and the pooled ReLU kernels, every job split over the threads.
describe("fit({ arena }), two threads, wasm kernels", () => twoThreads("wasm"));
