// With a @tessera/matrix pool set, linear and conv2d give bitwise the same results and
// gradients as on the calling thread alone (the pool splits rows, never a sum).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as T from "@tessera/tensor";
import { createPool, isShared, sharedFloat32 } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import {
  Variable,
  conv2d,
  getMatrixPool,
  add,
  linear,
  mul,
  noGrad,
  relu,
  setMatrixPool,
  softmaxCrossEntropy,
  sum,
} from "../src/index.ts";

let pool: MatrixPool;
beforeAll(async () => {
  pool = createPool({ threads: 2, minParallelFlops: 0 });
  await pool.ready();
});
afterAll(async () => {
  setMatrixPool(undefined);
  await pool.close();
});

/** Forward + backward of a small linear/relu/conv net; returns output and every gradient. */
function run(): T.Tensor[] {
  const g = new T.Generator(5);
  const x = new Variable(T.randn([16, 1, 8, 8], g), { requiresGrad: true });
  const cw = new Variable(T.randn([4, 1, 3, 3], g), { requiresGrad: true });
  const cb = new Variable(T.randn([4], g), { requiresGrad: true });
  const w = new Variable(T.randn([10, 4 * 6 * 6], g), { requiresGrad: true });
  const b = new Variable(T.randn([10], g), { requiresGrad: true });
  const h = relu(conv2d(x, cw, cb, { padding: 0 }));
  const logits = linear(h.reshape([16, -1]), w, b);
  const loss = softmaxCrossEntropy(
    logits,
    Int32Array.from({ length: 16 }, (_, i) => i % 10),
  );
  loss.backward();
  return [logits.data, x.grad!, cw.grad!, cb.grad!, w.grad!, b.grad!];
}

describe("setMatrixPool", () => {
  it("gives bitwise identical results and gradients with a 2-thread pool", () => {
    setMatrixPool(undefined);
    const alone = run();
    setMatrixPool(pool);
    expect(getMatrixPool()).toBe(pool);
    const pooled = run();
    setMatrixPool(undefined);
    pooled.forEach((t, i) => expect(T.equals(t, alone[i]!)).toBe(true));
  });

  it("keeps results on ordinary (non-shared) memory, so a synchronous loop leaks nothing to workers", () => {
    // Fresh SharedArrayBuffers would be posted to the worker, which keeps them until a
    // FinalizationRegistry callback runs, and a synchronous training loop never yields to
    // let it run. Ordinary arrays go through the pool's reused scratch instead.
    const x = new Variable(T.ones([4, 3]));
    const w = new Variable(T.ones([2, 3]));
    setMatrixPool(pool);
    expect(isShared(linear(x, w).data.data as Float32Array)).toBe(false);
    setMatrixPool(undefined);
    expect(sum(linear(x, w)).item()).toBe(24);
  });

  it("keeps results and gradients off shared memory even when the weights are shared", () => {
    // nn's layers keep their weights on SharedArrayBuffer; allocating outputs "like" them must
    // still give ordinary arrays, or every step would hand fresh buffers to the workers.
    const w = new Variable(new T.Tensor(sharedFloat32(2 * 3).fill(1), [2, 3]), {
      requiresGrad: true,
    });
    const x = new Variable(new T.Tensor(sharedFloat32(4 * 3).fill(1), [4, 3]), {
      requiresGrad: true,
    });
    setMatrixPool(pool);
    const y = linear(x, w);
    sum(y).backward();
    setMatrixPool(undefined);
    for (const arr of [y.data.data, x.grad!.data, w.grad!.data])
      expect(isShared(arr as Float32Array)).toBe(false);
    expect(sum(y).item()).toBe(24);
  });

  it("keeps conv2d's saved patches intact across a second forward and a no-grad forward before the backward", () => {
    // With a pool, conv2d keeps its patch matrix in a shared buffer reused from step to step
    // (shared-buffers.ts). Two recorded forwards before one backward (gradient accumulation)
    // and an evaluation forward in between must not overwrite the first one's patches.
    const g = new T.Generator(9);
    const w = new Variable(new T.Tensor(sharedFloat32(3 * 2 * 3 * 3), [3, 2, 3, 3]), {
      requiresGrad: true,
    });
    (w.data.data as Float32Array).set(T.randn([3, 2, 3, 3], g).data as Float32Array);
    const b = new Variable(T.randn([3], g), { requiresGrad: true });
    const inputs = [0, 1, 2, 3, 4, 5].map(() => T.randn([4, 2, 7, 7], g));
    const weights = [0, 1].map(() => T.randn([4, 3, 7, 7], g));
    const steps = () => {
      const out: T.Tensor[] = [];
      for (let step = 0; step < 2; step++) {
        w.zeroGrad();
        b.zeroGrad();
        const [x1, x2, x3] = inputs.slice(3 * step, 3 * step + 3).map((t) => new Variable(t));
        const y1 = conv2d(x1!, w, b, { padding: 1 });
        const evaluated = noGrad(() => conv2d(x3!, w, b, { padding: 1 }));
        const y2 = conv2d(x2!, w, b, { padding: 1 });
        add(sum(mul(y1, weights[0]!)), sum(mul(y2, weights[1]!))).backward();
        out.push(y1.data, y2.data, evaluated.data, w.grad!.clone(), b.grad!.clone());
      }
      return out;
    };
    setMatrixPool(undefined);
    const alone = steps();
    setMatrixPool(pool);
    const pooled = steps();
    setMatrixPool(undefined);
    pooled.forEach((t, i) => {
      expect(isShared(t.data as Float32Array)).toBe(false);
      expect(T.equals(t, alone[i]!)).toBe(true);
    });
  });

  it("rejects anything but a MatrixPool or undefined", () => {
    expect(() => setMatrixPool({} as MatrixPool)).toThrow(/setMatrixPool: expected a MatrixPool/);
  });
});
