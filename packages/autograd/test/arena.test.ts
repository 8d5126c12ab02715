// BufferArena: training inside arena.step() gives the same bits as training without it (small
// MLPs, BSR layers, a conv + pooling net; 1 and 2 threads), later steps allocate nothing new,
// and the ownership rule holds: kept arrays, returned values and gradients still held in .grad
// are not recycled; recycled arrays come back zeroed; poison turns stale reads into NaN.
// Planted faults: an arena that does not zero reused arrays, and a graph whose backward runs
// in a later step than its forward (its saved arrays recycled), are both caught.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { BsrMatrix, createPool } from "@tessera/matrix";
import type { FloatArray, MatrixPool } from "@tessera/matrix";
import {
  BufferArena,
  Variable,
  bsrLinear,
  conv2d,
  linear,
  maxPool2d,
  relu,
  reshape,
  setMatrixPool,
  softmaxCrossEntropy,
} from "../src/index.ts";
import { seedArb } from "./helpers.ts";

interface Net {
  params: Variable[];
  forward(x: Variable): Variable;
}

const normal32 = (shape: number[], g: T.Generator) => T.randn(shape, g, "float32", 0, 0.5);
const param = (t: T.Tensor) => new Variable(t, { requiresGrad: true });

/** in -> hidden (dense or BSR with a seeded block mask) -> relu -> classes, float32. */
function mlp(
  inF: number,
  hidden: number,
  classes: number,
  block: [number, number] | null,
  seed: number,
): Net {
  const g = new T.Generator(seed);
  const w1 = normal32([hidden, inF], g);
  const b1 = param(normal32([hidden], g));
  const w2 = param(normal32([classes, hidden], g));
  const b2 = param(normal32([classes], g));
  if (block === null) {
    const p1 = param(w1);
    return {
      params: [p1, b1, w2, b2],
      forward: (x) => linear(relu(linear(x, p1, b1)), w2, b2),
    };
  }
  const [R, C] = block;
  const mask = new Uint8Array(Math.ceil(hidden / R) * Math.ceil(inF / C));
  for (let i = 0; i < mask.length; i++) mask[i] = g.nextFloat() < 0.6 ? 1 : 0;
  const m = BsrMatrix.fromDense(w1.data as Float32Array, hidden, inF, block, {
    mask,
  }) as BsrMatrix<FloatArray>;
  const data = param(new T.Tensor(m.data, [m.nnzBlocks, R, C]));
  return {
    params: [data, b1, w2, b2],
    forward: (x) => linear(relu(bsrLinear(x, m, data, b1)), w2, b2),
  };
}

/** [n, 1, s, s] -> conv 3x3 (2 filters, padding 1) -> relu -> 2x2 max pool -> linear. */
function convNet(s: number, classes: number, seed: number): Net {
  const g = new T.Generator(seed);
  const k = param(normal32([2, 1, 3, 3], g));
  const kb = param(normal32([2], g));
  const p = Math.floor(s / 2);
  const w = param(normal32([classes, 2 * p * p], g));
  const b = param(normal32([classes], g));
  return {
    params: [k, kb, w, b],
    forward: (x) => {
      const h = maxPool2d(relu(conv2d(x, k, kb, { padding: 1 })), { kernel: 2 });
      return linear(reshape(h, [x.shape[0]!, 2 * p * p]), w, b);
    },
  };
}

interface Batch {
  x: T.Tensor;
  y: Int32Array;
}

function batches(shape: number[], classes: number, count: number, seed: number): Batch[] {
  const g = new T.Generator(seed);
  return Array.from({ length: count }, () => ({
    x: normal32(shape, g),
    y: Int32Array.from({ length: shape[0]! }, () => Math.floor(g.nextFloat() * classes)),
  }));
}

/** One SGD-with-momentum step per batch; the losses and the final parameters. */
function train(net: Net, data: Batch[], arena?: BufferArena) {
  const momentum = net.params.map((p) => new Float32Array(p.size));
  const losses: number[] = [];
  for (const { x, y } of data) {
    const step = () => {
      const loss = softmaxCrossEntropy(net.forward(new Variable(x)), y);
      const l = loss.item();
      loss.backward();
      net.params.forEach((p, i) => {
        const w = p.data.data as Float32Array;
        const gr = p.grad!.data as Float32Array;
        const b = momentum[i]!;
        for (let j = 0; j < w.length; j++) {
          b[j] = 0.9 * b[j]! + gr[j]!;
          w[j] = w[j]! - 0.05 * b[j]!;
        }
        p.zeroGrad();
      });
      return l;
    };
    losses.push(arena === undefined ? step() : arena.step(step));
  }
  return { losses, params: net.params.map((p) => Float32Array.from(p.data.data as Float32Array)) };
}

const bits = (a: ArrayLike<number>) =>
  Array.from(Float32Array.from(a), (v) => (Object.is(v, -0) ? "-0" : String(v)));

function expectSameRun(a: ReturnType<typeof train>, b: ReturnType<typeof train>): void {
  expect(bits(b.losses)).toEqual(bits(a.losses));
  a.params.forEach((p, i) => expect(bits(b.params[i]!)).toEqual(bits(p)));
}

const caseArb = fc.record({
  n: fc.integer({ min: 1, max: 6 }),
  inF: fc.integer({ min: 1, max: 11 }),
  hidden: fc.integer({ min: 1, max: 9 }),
  classes: fc.integer({ min: 2, max: 4 }),
  block: fc.option(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }))),
  seed: seedArb,
});

function sameBitsSuite(): void {
  it("MLPs (dense and BSR hidden layer) train to the same bits with and without an arena", () => {
    fc.assert(
      fc.property(caseArb, ({ n, inF, hidden, classes, block, seed }) => {
        const data = batches([n, inF], classes, 4, seed + 1);
        const ref = train(mlp(inF, hidden, classes, block, seed), data);
        const arena = new BufferArena();
        expectSameRun(ref, train(mlp(inF, hidden, classes, block, seed), data, arena));
        expect(arena.stats.reused).toBeGreaterThan(0);
      }),
      { numRuns: 40 },
    );
  });

  it("LeNet-sized layers (past the kernels' blocking, ragged 4x4 blocks) train to the same bits", () => {
    for (const block of [null, [4, 4]] as const) {
      const data = batches([33, 203], 10, 3, 11);
      const ref = train(mlp(203, 70, 10, block === null ? null : [...block], 12), data);
      const run = train(
        mlp(203, 70, 10, block === null ? null : [...block], 12),
        data,
        new BufferArena(),
      );
      expectSameRun(ref, run);
    }
  });

  it("a conv + max-pool net trains to the same bits with and without an arena", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 9 }),
        seedArb,
        (n, s, seed) => {
          const data = batches([n, 1, s, s], 3, 4, seed + 1);
          const ref = train(convNet(s, 3, seed), data);
          expectSameRun(ref, train(convNet(s, 3, seed), data, new BufferArena()));
        },
      ),
      { numRuns: 25 },
    );
  });
}

describe("BufferArena, one thread", () => {
  sameBitsSuite();

  it("after the first step, steps of the same shapes allocate nothing new", () => {
    for (const net of [mlp(20, 12, 3, [2, 3], 1), mlp(20, 12, 3, null, 1), convNet(8, 3, 1)]) {
      const shape = net.params.length > 0 && net.params[0]!.ndim === 4 ? [5, 1, 8, 8] : [5, 20];
      const data = batches(shape, 3, 4, 2);
      const arena = new BufferArena();
      train(net, data.slice(0, 1), arena);
      const first = arena.stats;
      expect(first.allocated).toBeGreaterThan(0);
      expect(first.reused).toBe(0);
      train(net, data.slice(1), arena);
      expect(arena.stats.allocated).toBe(first.allocated);
      expect(arena.stats.reused).toBe(3 * first.allocated);
      expect(arena.stats.free).toBe(first.allocated);
    }
  });

  it("planted fault: an arena that hands out reused arrays without zeroing them is caught", () => {
    // col2im / pooling backward / bias sums add into their output arrays
    class NoZero extends BufferArena {
      protected override clearForReuse(): void {}
    }
    const data = batches([3, 1, 6, 6], 3, 4, 5);
    const ref = train(convNet(6, 3, 4), data);
    const bad = train(convNet(6, 3, 4), data, new NoZero());
    expect(bits(bad.params[0]!)).not.toEqual(bits(ref.params[0]!));
    const mref = train(mlp(7, 5, 3, [2, 2], 4), batches([3, 7], 3, 4, 5));
    const mbad = train(mlp(7, 5, 3, [2, 2], 4), batches([3, 7], 3, 4, 5), new NoZero());
    expect(bits(mbad.params[1]!)).not.toEqual(bits(mref.params[1]!));
  });

  it("planted fault: a backward run in a later step than its forward reads recycled arrays", () => {
    const data = batches([4, 9], 3, 1, 6);
    const run = (arena: BufferArena | null) => {
      const net = mlp(9, 6, 3, null, 7);
      let loss: Variable;
      if (arena === null)
        loss = softmaxCrossEntropy(net.forward(new Variable(data[0]!.x)), data[0]!.y);
      else
        loss = arena.step(() =>
          softmaxCrossEntropy(net.forward(new Variable(data[0]!.x)), data[0]!.y),
        );
      // the misuse: the graph's saved arrays belonged to the first step
      if (arena === null) loss.backward();
      else
        arena.step(() => {
          // the next step's allocations take the recycled arrays back
          net.forward(new Variable(T.ones([4, 9], "float32")));
          loss.backward();
        });
      return net.params.map((p) => bits(p.grad!.data));
    };
    const ref = run(null);
    expect(run(new BufferArena())).not.toEqual(ref);
    // poison: the stale saved arrays read as NaN
    const poisoned = new BufferArena({ poison: true });
    const net = mlp(9, 6, 3, null, 7);
    const loss = poisoned.step(() =>
      softmaxCrossEntropy(net.forward(new Variable(data[0]!.x)), data[0]!.y),
    );
    loss.backward();
    // the second layer's weight gradient reads the poisoned softmax and relu output
    expect(Array.from(net.params[2]!.grad!.data).every(Number.isNaN)).toBe(true);
  });

  it("gradients still held in .grad at the end of a step are not recycled (accumulation)", () => {
    const data = batches([4, 9], 3, 3, 8);
    const accumulate = (arena?: BufferArena) => {
      const net = mlp(9, 6, 3, [3, 2], 9);
      for (const { x, y } of data) {
        const body = () => softmaxCrossEntropy(net.forward(new Variable(x)), y).backward();
        if (arena === undefined) body();
        else arena.step(body);
      }
      return net.params.map((p) => bits(p.grad!.data));
    };
    expect(accumulate(new BufferArena({ poison: true }))).toEqual(accumulate());
  });

  it("keeps float32 and float64 arrays of one length apart", () => {
    const arena = new BufferArena();
    const x32 = new Variable(T.ones([2, 3], "float32"));
    const w32 = param(T.ones([2, 3], "float32"));
    const x64 = new Variable(T.ones([2, 3], "float64"));
    const w64 = new Variable(T.ones([2, 3], "float64"), { requiresGrad: true });
    arena.step(() => {
      linear(x32, w32);
    });
    // same length (4), other type: a new float64 array, not the free float32 one
    const y = arena.step(() => linear(x64, w64).data.data);
    expect(y).toBeInstanceOf(Float64Array);
    expect(arena.stats).toMatchObject({ allocated: 2, reused: 0, free: 1 });
    const z = arena.step(() => linear(x32, w32).data.data);
    expect(z).toBeInstanceOf(Float32Array);
    expect(arena.stats).toMatchObject({ allocated: 2, reused: 1, free: 0 });
  });

  it("keep() and a returned Variable / Tensor / array survive the step; the rest is recycled", () => {
    const arena = new BufferArena({ poison: true });
    const x = new Variable(new T.Tensor(Float32Array.of(0, 1, 2, 3, 4, 5), [2, 3]));
    const w = param(T.ones([2, 3], "float32"));
    let kept: Variable | undefined;
    let dropped: Variable | undefined;
    const out = arena.step(() => {
      kept = arena.keep(linear(x, w));
      dropped = linear(x, w);
      return relu(linear(x, w));
    });
    expect(Array.from(out.data.data)).toEqual([3, 3, 12, 12]);
    expect(Array.from(kept!.data.data)).toEqual([3, 3, 12, 12]);
    expect(Array.from(dropped!.data.data).every(Number.isNaN)).toBe(true);
    const t = arena.step(() => linear(x, w).data);
    const a = arena.step(() => linear(x, w).data.data as Float32Array);
    expect(Array.from(t.data)).toEqual([3, 3, 12, 12]);
    expect(Array.from(a)).toEqual([3, 3, 12, 12]);
  });

  it("hands out zero-filled arrays, restores the previous arena, and rejects misuse", () => {
    const outer = new BufferArena();
    const inner = new BufferArena();
    const x = new Variable(T.ones([2, 2], "float32"));
    const w = param(T.ones([2, 2], "float32"));
    outer.step(() => {
      inner.step(() => linear(x, w));
      expect(inner.stats.free).toBe(0); // the returned output is kept
      linear(x, w);
      expect(outer.stats.allocated).toBe(1);
      expect(() => outer.step(() => 0)).toThrow(/already running/);
    });
    expect(outer.stats.free).toBe(1);
    // a recycled array comes back as zeros (here: the gradient of a bias-free layer's weight)
    const grads = outer.step(() => {
      const y = linear(x, w);
      y.backward(T.ones([2, 2], "float32"));
      return Array.from(w.grad!.data);
    });
    expect(grads).toEqual([2, 2, 2, 2]);
    expect(() => new BufferArena({ poison: 1 as unknown as boolean })).toThrow(
      /BufferArena: options.poison must be a boolean, got number/,
    );
    expect(() => outer.step(3 as unknown as () => void)).toThrow(/expected a function/);
    expect(() => outer.keep({} as Variable)).toThrow(/BufferArena.keep: expected a Variable/);
    // a step that throws recycles nothing: the array it took from the free list is not back
    const before = outer.stats.free;
    expect(before).toBeGreaterThan(0);
    expect(() =>
      outer.step(() => {
        linear(x, w);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(outer.stats.free).toBe(before - 1);
    // an async fn: loud, and (like a throwing step) nothing is recycled
    expect(() => outer.step(async () => linear(x, w))).toThrow(
      /BufferArena.step: fn returned a promise; a step must run synchronously/,
    );
    expect(outer.stats.free).toBe(before - 1);
    outer.clear();
    expect(outer.stats).toEqual({ allocated: 0, reused: 0, free: 0, freeBytes: 0 });
  });
});

for (const kernels of ["asm", "wasm"] as const)
  describe(`BufferArena, two threads (${kernels} kernels)`, () => {
    let pool: MatrixPool;
    beforeAll(async () => {
      pool = createPool({ threads: 2, minParallelFlops: 0, kernels });
      await pool.ready();
      setMatrixPool(pool);
    });
    afterAll(async () => {
      setMatrixPool(undefined);
      await pool.close();
    });
    sameBitsSuite();

    it("hands out arrays on shared memory while a pool is set (the workers use them in place)", () => {
      const arena = new BufferArena();
      const [inPool, noPool] = [true, false].map((withPool) => {
        if (!withPool) setMatrixPool(undefined);
        const a = arena.step(() =>
          arena.keep(relu(new Variable(new T.Tensor(new Float32Array(6), [6])))),
        );
        setMatrixPool(pool);
        return a.data.data.buffer instanceof SharedArrayBuffer;
      });
      expect([inPool, noPool]).toEqual([true, false]);
    });
  });
