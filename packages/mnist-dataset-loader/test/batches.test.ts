import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  batchCount,
  batches,
  epochPermutation,
  floatBatches,
  mix32,
  mulberry32,
  randomBelow,
  toFloat32,
  type BatchSource,
} from "../src/index.ts";

/** count samples of `size` bytes; sample i is filled with bytes derived from i. */
function dataset(count: number, size: number): BatchSource {
  const images = new Uint8Array(count * size);
  for (let i = 0; i < count; i++)
    for (let k = 0; k < size; k++) images[i * size + k] = (i * 13 + k) & 0xff;
  const labels = Uint8Array.from({ length: count }, (_, i) => (i * 7) % 10);
  return { images, labels, count };
}

describe("seeded PRNG", () => {
  it("mulberry32 and mix32 give pinned values (same on every platform: 32-bit integer math only)", () => {
    // A change here changes every shuffle order ever published with this loader: deliberate only.
    const g = mulberry32(1);
    expect([g(), g(), g()]).toEqual(PINNED_MULBERRY32_SEED1);
    expect([mix32(0), mix32(1), mix32(0xffffffff)]).toEqual(PINNED_MIX32);
  });

  it("randomBelow stays in range, including n = 1 and n = 2^32", () => {
    const g = mulberry32(7);
    for (const n of [1, 2, 3, 10, 1000, 2 ** 31 + 1, 2 ** 32]) {
      for (let i = 0; i < 50; i++) {
        const x = randomBelow(g, n);
        expect(Number.isInteger(x) && x >= 0 && x < n).toBe(true);
      }
    }
  });
});

describe("epochPermutation", () => {
  it("is a permutation, reproducible, and differs across epochs and seeds", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 20, max: 300 }),
        fc.nat({ max: 2 ** 32 - 2 }),
        fc.nat({ max: 1000 }),
        (n, seed, epoch) => {
          const p = epochPermutation(n, seed, epoch);
          expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
          expect(epochPermutation(n, seed, epoch)).toEqual(p);
          // For n >= 20 two independent orders coincide with probability 1/20! (about 4e-19).
          expect(epochPermutation(n, seed, epoch + 1)).not.toEqual(p);
          expect(epochPermutation(n, seed + 1, epoch)).not.toEqual(p);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("handles 0 and 1 items", () => {
    expect([...epochPermutation(0, 1, 2)]).toEqual([]);
    expect([...epochPermutation(1, 1, 2)]).toEqual([0]);
  });

  it("is close to uniform: where item 0 lands over 4000 fixed seeds", () => {
    const counts = [0, 0, 0, 0];
    for (let seed = 0; seed < 4000; seed++) {
      const p = epochPermutation(4, seed, 3);
      const k = p.indexOf(0);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    // Expected 1000 each, standard deviation about 27: the bounds are over 7 sigma away.
    for (const c of counts) {
      expect(c).toBeGreaterThan(800);
      expect(c).toBeLessThan(1200);
    }
  });

  it("rejects bad arguments", () => {
    expect(() => epochPermutation(-1, 0, 0)).toThrow(
      /epochPermutation: count must be an integer in \[0, 2\^32-1\], got -1/,
    );
    expect(() => epochPermutation(3, 1.5, 0)).toThrow(/epochPermutation: seed must be/);
    expect(() => epochPermutation(3, 0, -2)).toThrow(/epochPermutation: epoch must be/);
  });
});

describe("batches", () => {
  const arbs = {
    count: fc.nat({ max: 60 }),
    size: fc.integer({ min: 0, max: 6 }),
    batchSize: fc.integer({ min: 1, max: 20 }),
    seed: fc.nat(),
    epoch: fc.nat({ max: 50 }),
    dropLast: fc.boolean(),
    reuseBuffers: fc.boolean(),
    shuffle: fc.boolean(),
  };

  it("covers every index exactly once per epoch (or all full batches with dropLast), gathering the right samples", () => {
    fc.assert(
      fc.property(fc.record(arbs), ({ count, size, ...opts }) => {
        const ds = dataset(count, size);
        const seen: number[] = [];
        let nb = 0;
        for (const b of batches(ds, opts)) {
          expect(b.index).toBe(nb++);
          expect(b.size).toBe(b.indices.length);
          expect(
            b.size === opts.batchSize || (!opts.dropLast && b.size > 0 && b.size < opts.batchSize),
          ).toBe(true);
          expect(b.images.length).toBe(b.size * size);
          b.indices.forEach((i, k) => {
            expect(b.labels[k]).toBe(ds.labels[i]);
            expect(b.images.subarray(k * size, (k + 1) * size)).toEqual(
              ds.images.subarray(i * size, (i + 1) * size),
            );
          });
          seen.push(...b.indices);
        }
        expect(nb).toBe(batchCount(count, opts.batchSize, opts.dropLast));
        const full = Math.floor(count / opts.batchSize) * opts.batchSize;
        expect(seen.length).toBe(opts.dropLast ? full : count);
        expect(new Set(seen).size).toBe(seen.length);
        if (!opts.dropLast)
          expect([...seen].sort((a, b) => a - b)).toEqual(
            Array.from({ length: count }, (_, i) => i),
          );
        if (!opts.shuffle) expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i));
      }),
      { numRuns: 150 },
    );
  });

  it("is reproducible and follows epochPermutation(count, seed, epoch)", () => {
    const ds = dataset(103, 3);
    const order = (seed: number, epoch: number) =>
      [...batches(ds, { batchSize: 10, seed, epoch })].flatMap((b) => [...b.indices]);
    expect(order(5, 2)).toEqual(order(5, 2));
    expect(order(5, 2)).toEqual([...epochPermutation(103, 5, 2)]);
    expect(order(5, 3)).not.toEqual(order(5, 2));
    expect(order(6, 2)).not.toEqual(order(5, 2));
  });

  it("dropLast drops only the short last batch", () => {
    const ds = dataset(25, 1);
    expect([...batches(ds, { batchSize: 10 })].map((b) => b.size)).toEqual([10, 10, 5]);
    expect([...batches(ds, { batchSize: 10, dropLast: true })].map((b) => b.size)).toEqual([
      10, 10,
    ]);
    expect(
      [...batches(dataset(20, 1), { batchSize: 10, dropLast: true })].map((b) => b.size),
    ).toEqual([10, 10]);
    expect([...batches(dataset(3, 1), { batchSize: 10, dropLast: true })]).toEqual([]);
  });

  it("reuseBuffers gathers into one buffer; the default gives fresh ones; the dataset is never modified", () => {
    const ds = dataset(25, 4);
    const before = Uint8Array.from(ds.images);
    const reused = [...batches(ds, { batchSize: 10, seed: 1, reuseBuffers: true })].map(
      (b) => b.images.buffer,
    );
    expect(new Set(reused).size).toBe(1);
    const fresh = [...batches(ds, { batchSize: 10, seed: 1 })].map((b) => b.images.buffer);
    expect(new Set(fresh).size).toBe(3);
    expect(ds.images).toEqual(before);
  });

  it("floatBatches normalises the same samples", () => {
    const ds = dataset(7, 5);
    const f = [...floatBatches(ds, { batchSize: 3, seed: 9, normalize: { mean: 0.5, std: 0.5 } })];
    const u = [...batches(ds, { batchSize: 3, seed: 9 })];
    expect(f.length).toBe(3);
    f.forEach((b, i) => {
      expect(b.indices).toEqual(u[i]?.indices);
      expect(b.images).toEqual(
        toFloat32(u[i]?.images ?? new Uint8Array(), { mean: 0.5, std: 0.5 }),
      );
    });
  });

  it("rejects inconsistent datasets and options, naming the function", () => {
    // Thrown by the call itself, before any iteration.
    expect(() => batches(dataset(4, 2), { batchSize: 2, epoch: 1.5 })).toThrow(
      /batches: epoch must be/,
    );
    expect(() => floatBatches(dataset(4, 2), { batchSize: 2, normalize: { std: 0 } })).toThrow(
      /toFloat32: std must be finite and non-zero/,
    );
    expect(() => [...batches(dataset(4, 2), { batchSize: 0 })]).toThrow(
      /batchCount: batchSize must be a positive integer, got 0/,
    );
    expect(() => [
      ...batches(
        { images: new Uint8Array(5), labels: new Uint8Array(2), count: 2 },
        { batchSize: 1 },
      ),
    ]).toThrow(/batches: 5 image bytes do not split into 2 equal samples/);
    expect(() => [
      ...batches(
        { images: new Uint8Array(4), labels: new Uint8Array(3), count: 2 },
        { batchSize: 1 },
      ),
    ]).toThrow(/batches: dataset has count 2 but 3 labels/);
    expect(() => [...batches(dataset(4, 2), { batchSize: 2, seed: -1 })]).toThrow(
      /batches: seed must be an integer/,
    );
  });
});

describe("toFloat32", () => {
  it("maps bytes to [0,1] and with mean 0.5, std 0.5 to [-1,1]", () => {
    const b = Uint8Array.from({ length: 256 }, (_, i) => i);
    const f = toFloat32(b);
    for (let i = 0; i < 256; i++) expect(f[i]).toBe(Math.fround(i / 255));
    const g = toFloat32(b, { mean: 0.5, std: 0.5 });
    expect([g[0], g[255]]).toEqual([-1, 1]);
    for (let i = 0; i < 256; i++) expect(g[i]).toBe(Math.fround((i / 255 - 0.5) / 0.5));
  });

  it("per-channel mean/std over CHW images", () => {
    const b = new Uint8Array([255, 255, 0, 0, 255, 255, 0, 0]); // 2 images, 2 channels of 2 pixels
    const f = toFloat32(b, { mean: [1, 0], std: [1, 2], channelSize: 2 });
    expect([...f]).toEqual(
      [0, 0, 0, 0, 0, 0, 0, 0].map((_, i) =>
        Math.fround(i % 4 < 2 ? b[i]! / 255 - 1 : b[i]! / 255 / 2),
      ),
    );
  });

  it("rejects bad options", () => {
    expect(() => toFloat32(new Uint8Array(2), { std: 0 })).toThrow(
      /toFloat32: std must be finite and non-zero, got 0/,
    );
    expect(() => toFloat32(new Uint8Array(3), { mean: [0, 0] })).toThrow(
      /toFloat32: per-channel mean\/std need channelSize/,
    );
    expect(() => toFloat32(new Uint8Array(3), {}, new Float32Array(2))).toThrow(
      /toFloat32: out has length 2, expected 3/,
    );
  });
});

// `node_modules/.bin/tsx` printing mulberry32(1) x3 and mix32(0, 1, 2^32-1); the mulberry32 values
// equal the widely copied reference (bryc's JavaScript PRNG collection) times 2^32.
const PINNED_MULBERRY32_SEED1 = [2693262067, 11749833, 2265367787];
const PINNED_MIX32 = [0, 2261973619, 2578835075];
