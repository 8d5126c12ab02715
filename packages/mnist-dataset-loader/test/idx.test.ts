import fc from "fast-check";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  IDX_TYPE_CODES,
  readIdx,
  writeIdx,
  writeIdxFile,
  type IdxData,
  type IdxType,
} from "../src/index.ts";
import { tempDir } from "./helpers.ts";

const dir = tempDir();

// Element generators per IDX type (floats include NaN, infinities and -0).
const elem: Record<IdxType, fc.Arbitrary<number>> = {
  ubyte: fc.integer({ min: 0, max: 255 }),
  byte: fc.integer({ min: -128, max: 127 }),
  short: fc.integer({ min: -32768, max: 32767 }),
  int: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  float: fc.float(),
  double: fc.double(),
};
const make: Record<IdxType, (xs: number[]) => IdxData> = {
  ubyte: (xs) => Uint8Array.from(xs),
  byte: (xs) => Int8Array.from(xs),
  short: (xs) => Int16Array.from(xs),
  int: (xs) => Int32Array.from(xs),
  float: (xs) => Float32Array.from(xs),
  double: (xs) => Float64Array.from(xs),
};
const types = Object.keys(elem) as IdxType[];

const idxArray = fc
  .record({
    type: fc.constantFrom(...types),
    // rank 0..4, dims include 0 and 1
    shape: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }),
  })
  .chain(({ type, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return fc
      .array(elem[type], { minLength: n, maxLength: n })
      .map((xs) => ({ type, shape, data: make[type](xs) }));
  });

function sameElements(a: IdxData, b: IdxData): boolean {
  if (a.length !== b.length || a.constructor !== b.constructor) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

describe("readIdx / writeIdx round trips", () => {
  it("any type and rank, raw and gzip, bytes and files", () => {
    let k = 0;
    fc.assert(
      fc.property(idxArray, fc.boolean(), fc.boolean(), (arr, gzip, viaFile) => {
        const bytes = writeIdx(arr, { gzip });
        expect(bytes[0] === 0x1f && bytes[1] === 0x8b).toBe(gzip);
        let input: string | Uint8Array = bytes;
        if (viaFile) {
          // A misleading name: gzip is detected from the bytes, never from ".gz".
          input = join(dir, `rt-${k++}${gzip ? "" : ".gz"}`);
          writeFileSync(input, bytes);
        }
        const back = readIdx(input);
        expect(back.type).toBe(arr.type);
        expect(back.shape).toEqual(arr.shape);
        expect(sameElements(back.data, arr.data)).toBe(true);
      }),
      { numRuns: 150 },
    );
  });

  it("writeIdx infers the type from the typed array and writes the documented header", () => {
    const bytes = writeIdx({ shape: [2], data: new Int16Array([-2, 258]) });
    expect([...bytes]).toEqual([0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02]);
  });

  it("reads hand-written big-endian bytes of every type (not only its own output)", () => {
    const h = (code: number, n: number) => [0, 0, code, 1, 0, 0, 0, n];
    expect([...readIdx(new Uint8Array([...h(0x08, 2), 7, 255])).data]).toEqual([7, 255]);
    expect([...readIdx(new Uint8Array([...h(0x09, 2), 0xff, 0x80])).data]).toEqual([-1, -128]);
    expect([...readIdx(new Uint8Array([...h(0x0b, 1), 0x80, 0x00])).data]).toEqual([-32768]);
    expect([...readIdx(new Uint8Array([...h(0x0c, 1), 0x00, 0x01, 0x02, 0x03])).data]).toEqual([
      0x010203,
    ]);
    expect([...readIdx(new Uint8Array([...h(0x0d, 1), 0x3f, 0x80, 0x00, 0x00])).data]).toEqual([1]);
    expect([...readIdx(new Uint8Array([...h(0x0e, 1), 0xc0, 0, 0, 0, 0, 0, 0, 0])).data]).toEqual([
      -2,
    ]);
    // MNIST label magic 2049 = 00 00 08 01, image magic 2051 = 00 00 08 03.
    const img = readIdx(new Uint8Array([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 8]));
    expect(img.shape).toEqual([1, 1, 2]);
    expect(img.data).toBeInstanceOf(Uint8Array);
    expect(IDX_TYPE_CODES).toEqual({
      ubyte: 8,
      byte: 9,
      short: 11,
      int: 12,
      float: 13,
      double: 14,
    });
  });

  it("writeIdxFile writes what readIdx reads", () => {
    const p = join(dir, "w.idx.gz");
    writeIdxFile(
      p,
      { shape: [2, 2], data: new Float64Array([1.5, -0, Infinity, NaN]) },
      { gzip: true },
    );
    const back = readIdx(p);
    expect(back.type).toBe("double");
    expect(sameElements(back.data, new Float64Array([1.5, -0, Infinity, NaN]))).toBe(true);
  });

  it("writeIdx rejects inconsistent arguments, naming the function", () => {
    expect(() => writeIdx({ shape: [3], data: new Uint8Array(2) })).toThrow(
      /writeIdx: shape \[3\] holds 3 elements but data has 2/,
    );
    expect(() => writeIdx({ shape: [1.5], data: new Uint8Array(1) })).toThrow(
      /writeIdx: every dimension/,
    );
    expect(() => writeIdx({ shape: [1], data: new Uint8Array(1), type: "int" })).toThrow(
      /writeIdx: type "int" needs data as Int32Array/,
    );
  });
});

describe("readIdx errors name the source, the offset, expected and found", () => {
  const file = (name: string, bytes: Uint8Array | number[]) => {
    const p = join(dir, name);
    writeFileSync(p, bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
    return p;
  };

  it("wrong magic", () => {
    const p = file("bad-magic", [0x01, 0x00, 0x08, 0x01, 0, 0, 0, 0]);
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p}: at offset 0: expected IDX magic starting with 00 00`,
    );
    expect(() => readIdx(p)).toThrow(/found 01 00 08 01$/);
    expect(() => readIdx(new Uint8Array([0x50, 0x4b, 3, 4]))).toThrow(
      /readIdx: bytes: at offset 0: .* found 50 4b 03 04/,
    );
  });

  it("unknown type byte", () => {
    const p = file("bad-type", [0, 0, 0x0a, 1, 0, 0, 0, 0]);
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p}: at offset 2: expected an IDX type byte (one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e), found 0x0a`,
    );
  });

  it("short header", () => {
    expect(() => readIdx(file("short1", [0, 0, 8]))).toThrow(
      /short1: at offset 0: expected a 4-byte IDX magic .* found only 3 bytes/,
    );
    const p = file("short2", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0]);
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p}: at offset 4: expected 3 big-endian uint32 dimensions (12 bytes) for rank 3, found 6 bytes before end of data`,
    );
    expect(() => readIdx(new Uint8Array(0))).toThrow(
      /readIdx: bytes: at offset 0: .* found only 0 bytes/,
    );
  });

  it("truncated data", () => {
    const full = writeIdx({ shape: [10], data: new Uint8Array(10) });
    const p = file("trunc", full.subarray(0, full.length - 5));
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p}: at offset 8: expected 10 data bytes for shape [10] of ubyte (1 B each), file ending at 18, found 5 bytes (data is truncated or the header is wrong)`,
    );
    const f = writeIdx({ shape: [3], data: new Float64Array(3) });
    expect(() => readIdx(f.subarray(0, f.length - 1))).toThrow(
      /bytes: at offset 8: expected 24 data bytes .* found 23 bytes/,
    );
  });

  it("a header claiming far more data than the file holds fails before allocating", () => {
    // 4 dims of 2^32-1 doubles would be ~2^131 bytes: must be a message, not a RangeError from new Float64Array.
    const p = file("huge", [0, 0, 0x0e, 4, ...Array(16).fill(0xff), 1, 2, 3]);
    expect(() => readIdx(p)).toThrow(
      new RegExp(
        `readIdx: ${p}: at offset 20: expected \\d.* data bytes for shape \\[4294967295, 4294967295, 4294967295, 4294967295\\] of double .* found 3 bytes`,
      ),
    );
  });

  it("trailing bytes after the data", () => {
    const full = writeIdx({ shape: [2], data: new Uint8Array([1, 2]) });
    const p = file("trailing", new Uint8Array([...full, 9, 9, 9]));
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p}: at offset 10: expected end of data after 2 data bytes for shape [2] of ubyte, found 3 extra trailing bytes`,
    );
  });

  it("errors inside gzip name the file and say the offset is in the gunzipped data", () => {
    const p = file(
      "gz-trunc-data",
      gzipSync(writeIdx({ shape: [4], data: new Uint8Array(4) }).subarray(0, 10)),
    );
    expect(() => readIdx(p)).toThrow(
      `readIdx: ${p} (gunzipped): at offset 8: expected 4 data bytes`,
    );
  });

  it("corrupt and truncated gzip", () => {
    const gz = writeIdx({ shape: [100], data: new Uint8Array(100).fill(7) }, { gzip: true });
    const t = file("trunc.gz", gz.subarray(0, gz.length - 12));
    expect(() => readIdx(t)).toThrow(
      `readIdx: ${t}: at offset 0: expected a complete, valid gzip stream of ${gz.length - 12} bytes, found Z_BUF_ERROR: unexpected end of file`,
    );
    const bad = Uint8Array.from(gz);
    bad[bad.length - 6] = (bad[bad.length - 6] ?? 0) ^ 0xff; // inside the CRC-32 trailer
    const c = file("crc.gz", bad);
    expect(() => readIdx(c)).toThrow(
      new RegExp(
        `readIdx: ${c}: at offset 0: expected a complete, valid gzip stream .* found Z_DATA_ERROR`,
      ),
    );
    expect(() => readIdx(new Uint8Array([0x1f, 0x8b]))).toThrow(
      /readIdx: bytes: at offset 0: expected a complete, valid gzip stream of 2 bytes, found Z_BUF_ERROR/,
    );
  });

  it("gzip that decompresses beyond maxBytes is stopped (no gzip bomb)", () => {
    const gz = writeIdx({ shape: [100000], data: new Uint8Array(100000) }, { gzip: true });
    expect(() => readIdx(gz, { maxBytes: 1000 })).toThrow(
      /readIdx: bytes: at offset 0: expected gzip data that decompresses to at most 1000 bytes \(options.maxBytes\), found ERR_BUFFER_TOO_LARGE/,
    );
    const p = file("big-raw", writeIdx({ shape: [2000], data: new Uint8Array(2000) }));
    expect(() => readIdx(p, { maxBytes: 1000 })).toThrow(
      `readIdx: ${p}: at offset 0: expected a file of at most 1000 bytes (options.maxBytes), found 2008 bytes`,
    );
  });

  it("missing file and wrong argument types", () => {
    const p = join(dir, "does-not-exist");
    expect(() => readIdx(p)).toThrow(`readIdx: ${p}: cannot read file: ENOENT`);
    expect(() => readIdx(dir)).toThrow(`readIdx: ${dir}: cannot read file: not a regular file`);
    expect(() => readIdx(42 as unknown as string)).toThrow(
      /readIdx: expected a file path \(string\) or a Uint8Array, got number/,
    );
    expect(() => readIdx(new Uint8Array(4), { maxBytes: -1 })).toThrow(
      /readIdx: options.maxBytes must be a non-negative safe integer/,
    );
  });

  it("random corruptions of valid files throw an Error or parse to a consistent array, never anything else", () => {
    fc.assert(
      fc.property(
        idxArray,
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.nat(),
        (arr, gzip, at, v, cut) => {
          const bytes = Uint8Array.from(writeIdx(arr, { gzip }));
          if (bytes.length > 0) bytes[at % bytes.length] = v;
          const input = bytes.subarray(0, bytes.length - (cut % 3));
          try {
            const r = readIdx(input, { maxBytes: 1 << 20 });
            expect(r.data.length).toBe(r.shape.reduce((a, b) => a * b, 1));
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            expect((e as Error).message).toMatch(/^readIdx: bytes/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
