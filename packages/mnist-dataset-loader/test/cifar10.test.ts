import fc from "fast-check";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  CIFAR10_FILES,
  CIFAR10_RECORD_BYTES,
  loadDataset,
  mulberry32,
  readCifar10Batch,
  writeCifar10Batch,
} from "../src/index.ts";
import { patternBytes, sameBytes, tempDir } from "./helpers.ts";

const dir = tempDir();

// Labels from fast-check; pixels from a seeded generator (fast-check is slow at 3072 bytes/image).
const batchArb = fc.integer({ min: 1, max: 6 }).chain((count) =>
  fc.record({
    labels: fc.uint8Array({ min: 0, max: 9, minLength: count, maxLength: count }),
    images: fc.nat().map((seed) => {
      const g = mulberry32(seed);
      return Uint8Array.from({ length: count * 3072 }, () => g() & 0xff);
    }),
  }),
);

describe("CIFAR-10 binary batches", () => {
  it("round trip through writeCifar10Batch / readCifar10Batch, raw and gzip", () => {
    fc.assert(
      fc.property(batchArb, fc.boolean(), ({ labels, images }, gzip) => {
        const raw = writeCifar10Batch({ images, labels });
        expect(raw.length).toBe(labels.length * CIFAR10_RECORD_BYTES);
        const b = readCifar10Batch(gzip ? gzipSync(raw) : raw);
        expect(b.count).toBe(labels.length);
        expect([b.channels, b.rows, b.cols]).toEqual([3, 32, 32]);
        expect(b.labels).toEqual(labels);
        expect(sameBytes(b.images, images)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it("reads the documented record layout: label byte, then 1024 R, 1024 G, 1024 B", () => {
    const rec = new Uint8Array(CIFAR10_RECORD_BYTES);
    rec[0] = 7;
    rec.fill(1, 1, 1025);
    rec.fill(2, 1025, 2049);
    rec.fill(3, 2049);
    const b = readCifar10Batch(rec);
    expect([...b.labels]).toEqual([7]);
    expect([
      b.images[0],
      b.images[1023],
      b.images[1024],
      b.images[2047],
      b.images[2048],
      b.images[3071],
    ]).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it("wrong record size names the file, offset, expected and found", () => {
    const p = join(dir, "short.bin");
    const raw = writeCifar10Batch({
      images: new Uint8Array(2 * 3072),
      labels: new Uint8Array([1, 2]),
    });
    writeFileSync(p, raw.subarray(0, raw.length - 100));
    expect(() => readCifar10Batch(p)).toThrow(
      `readCifar10Batch: ${p}: at offset 3073: expected a whole number of 3073-byte records (1 label + 3072 pixels), i.e. 3073 or 6146 bytes, found 6046 bytes (1 whole records and 2973 bytes of a partial record)`,
    );
  });

  it("an empty batch is a corrupt file, not zero records: refused on read, write and load", () => {
    const p = join(dir, "empty.bin");
    writeFileSync(p, new Uint8Array(0));
    expect(() => readCifar10Batch(p)).toThrow(
      `readCifar10Batch: ${p}: at offset 0: expected at least one 3073-byte record (an official batch holds 10000), found 0 bytes (an empty file)`,
    );
    writeFileSync(join(dir, "empty.bin.gz"), gzipSync(new Uint8Array(0)));
    expect(() => readCifar10Batch(join(dir, "empty.bin.gz"))).toThrow(/found 0 bytes/);
    expect(() =>
      writeCifar10Batch({ images: new Uint8Array(0), labels: new Uint8Array(0) }),
    ).toThrow("writeCifar10Batch: a batch needs at least one record, got 0 labels");
    const d = join(dir, "one-empty");
    mkdirSync(d);
    const one = writeCifar10Batch({ images: new Uint8Array(3072), labels: Uint8Array.of(3) });
    for (let i = 1; i <= 5; i++)
      writeFileSync(join(d, `data_batch_${i}.bin`), i === 4 ? new Uint8Array(0) : one);
    expect(() => loadDataset("cifar-10", { split: "train", dir: d, env: {} })).toThrow(
      `readCifar10Batch: ${join(d, "data_batch_4.bin")}: at offset 0: expected at least one`,
    );
  });

  it("a label above 9 names the record's offset", () => {
    const raw = writeCifar10Batch({
      images: new Uint8Array(3 * 3072),
      labels: new Uint8Array([1, 2, 3]),
    });
    raw[2 * 3073] = 10;
    expect(() => readCifar10Batch(raw)).toThrow(
      "readCifar10Batch: bytes: at offset 6146: expected a label byte in 0..9 for record 2, found 10",
    );
  });

  it("writeCifar10Batch validates its arguments", () => {
    expect(() =>
      writeCifar10Batch({ images: new Uint8Array(10), labels: new Uint8Array(1) }),
    ).toThrow(/writeCifar10Batch: 1 labels need 3072 image bytes/);
    expect(() =>
      writeCifar10Batch({ images: new Uint8Array(3072), labels: new Uint8Array([12]) }),
    ).toThrow(/writeCifar10Batch: label 0 is 12/);
  });

  it("loadDataset('cifar-10') concatenates data_batch_1..5 in order, from cifar-10-batches-bin/ or the dir itself", () => {
    const made: { images: Uint8Array; labels: Uint8Array }[] = [];
    const nested = join(dir, "nested");
    const flat = join(dir, "flat");
    mkdirSync(join(nested, "cifar-10-batches-bin"), { recursive: true });
    mkdirSync(flat, { recursive: true });
    [...CIFAR10_FILES.train, ...CIFAR10_FILES.test].forEach((name, k) => {
      const count = k + 1;
      const labels = Uint8Array.from({ length: count }, (_, i) => (i + k) % 10);
      const images = patternBytes(count * 3072, k);
      made.push({ images, labels });
      const bytes = writeCifar10Batch({ images, labels });
      writeFileSync(join(nested, "cifar-10-batches-bin", name), bytes);
      writeFileSync(join(flat, name), bytes);
    });
    for (const d of [nested, flat]) {
      const train = loadDataset("cifar-10", { split: "train", dir: d, installed: false, env: {} });
      expect(train.count).toBe(1 + 2 + 3 + 4 + 5);
      expect([train.channels, train.rows, train.cols]).toEqual([3, 32, 32]);
      const want = made.slice(0, 5);
      expect(train.labels).toEqual(Uint8Array.from(want.flatMap((m) => [...m.labels])));
      expect(sameBytes(train.images, Buffer.concat(want.map((m) => m.images)))).toBe(true);
      const test = loadDataset("cifar-10", { split: "test", dir: d, installed: false, env: {} });
      expect(test.count).toBe(6);
      expect(sameBytes(test.images, made[5]?.images)).toBe(true);
    }
  });

  it("loadDataset('cifar-10') lists where it looked when batches are missing", () => {
    const d = join(dir, "empty");
    mkdirSync(d);
    expect(() =>
      loadDataset("cifar-10", { split: "test", dir: d, cwd: d, installed: false, env: {} }),
    ).toThrow(`${join(d, "cifar-10-batches-bin")} (options.dir): missing test_batch.bin`);
  });
});
