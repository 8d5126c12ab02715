import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  loadSafetensors,
  parseSafetensors,
  saveSafetensors,
  serializeSafetensors,
  type TensorRecord,
} from "../src/safetensors.ts";

const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

// Builds a file by hand from a header object and raw data bytes, padding like the spec says.
function handBuild(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let json = new TextEncoder().encode(JSON.stringify(header));
  if (pad) {
    const padded = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe("safetensors against files written by the reference Python package", () => {
  it("reads every dtype, shape and value of reference.safetensors", () => {
    const { tensors, metadata } = loadSafetensors(join(fixtures, "reference.safetensors"));
    expect(metadata).toEqual({});
    expect([...tensors.keys()].sort()).toEqual(
      [
        "bn.running_var",
        "empty",
        "fc.bias",
        "fc.weight",
        "flags",
        "labels",
        "scalar",
        "steps",
      ].sort(),
    );
    const w = tensors.get("fc.weight")!;
    expect(w.dtype).toBe("F32");
    expect(w.shape).toEqual([2, 3]);
    expect([...w.data]).toEqual([1.5, -2.25, 3.0, 0.0, Math.fround(1e-8), -7.0]);
    expect(tensors.get("bn.running_var")).toEqual({
      dtype: "F64",
      shape: [3],
      data: new Float64Array([1, 2, 3]),
    });
    expect(tensors.get("labels")).toEqual({
      dtype: "I32",
      shape: [3],
      data: new Int32Array([3, -1, 2147483647]),
    });
    expect(tensors.get("steps")).toEqual({
      dtype: "I64",
      shape: [1],
      data: new BigInt64Array([9007199254740993n]),
    });
    expect(tensors.get("flags")).toEqual({
      dtype: "U8",
      shape: [3],
      data: new Uint8Array([1, 0, 255]),
    });
    expect(tensors.get("empty")).toEqual({
      dtype: "F32",
      shape: [0, 4],
      data: new Float32Array(0),
    });
    expect(tensors.get("scalar")).toEqual({
      dtype: "F32",
      shape: [],
      data: new Float32Array([2.5]),
    });
  });

  it("writes byte-identical files to the reference writer", () => {
    for (const name of ["reference.safetensors", "reference-meta.safetensors"]) {
      const ref = new Uint8Array(readFileSync(join(fixtures, name)));
      const { tensors, metadata } = parseSafetensors(ref, name);
      const ours = serializeSafetensors(tensors, metadata);
      expect(Buffer.from(ours).equals(Buffer.from(ref))).toBe(true);
    }
    expect(loadSafetensors(join(fixtures, "reference-meta.safetensors")).metadata).toEqual({
      format: "pt",
    });
  });

  it("pads the header with spaces to a multiple of 8 bytes", () => {
    const bytes = serializeSafetensors({
      a: { dtype: "F32", shape: [1], data: new Float32Array([1]) },
    });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    const json = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(json.trimEnd()).toBe('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    expect(json.length - json.trimEnd().length).toBe((8 - (json.trimEnd().length % 8)) % 8);
  });
});

describe("safetensors round trip", () => {
  it("saves atomically and loads back equal records (property)", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-st-"));
    const shapeArb = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 3 });
    const recArb = fc
      .tuple(shapeArb, fc.constantFrom("F32", "F64", "I32", "U8"))
      .map(([shape, dtype]) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data =
          dtype === "F32"
            ? Float32Array.from({ length: n }, (_, i) => i * 0.5 - 1)
            : dtype === "F64"
              ? Float64Array.from({ length: n }, (_, i) => i / 3)
              : dtype === "I32"
                ? Int32Array.from({ length: n }, (_, i) => i - 5)
                : Uint8Array.from({ length: n }, (_, i) => i % 256);
        return { dtype, shape, data } as TensorRecord;
      });
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.string({ minLength: 1, maxLength: 6 }).filter((s) => s !== "__metadata__"),
          recArb,
          { maxKeys: 5 },
        ),
        (recs) => {
          const path = join(dir, "m.safetensors");
          saveSafetensors(path, recs, { note: "x" });
          const back = loadSafetensors(path);
          expect(back.metadata).toEqual({ note: "x" });
          expect(Object.fromEntries(back.tensors)).toEqual(recs);
        },
      ),
      { numRuns: 40 },
    );
    // No temporary files are left behind.
    expect(readdirSync(dir)).toEqual(["m.safetensors"]);
  });

  it("accepts subarray views as tensor data", () => {
    const backing = new Float32Array([9, 1, 2, 3, 9]);
    const bytes = serializeSafetensors({
      v: { dtype: "F32", shape: [3], data: backing.subarray(1, 4) },
    });
    expect([...parseSafetensors(bytes).tensors.get("v")!.data]).toEqual([1, 2, 3]);
  });
});

describe("safetensors rejects malformed files with clear errors", () => {
  const good = () =>
    handBuild(
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "I32", shape: [1], data_offsets: [8, 12] },
      },
      new Uint8Array(12),
    );

  it("accepts the hand-built good file", () => {
    const f = parseSafetensors(good());
    expect(f.tensors.get("b")).toEqual({ dtype: "I32", shape: [1], data: new Int32Array(1) });
  });
  it("names the file when reading from disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-st-"));
    const p = join(dir, "bad.safetensors");
    writeFileSync(p, good().subarray(0, 5));
    expect(() => loadSafetensors(p)).toThrow(/bad\.safetensors.*truncated/);
    expect(() => loadSafetensors(join(dir, "missing.safetensors"))).toThrow(
      /missing\.safetensors.*cannot read/,
    );
  });
  it("truncated data section", () => {
    const g = good();
    expect(() => parseSafetensors(g.subarray(0, g.length - 1), "t.st")).toThrow(
      /t\.st.*"b".*run past/,
    );
  });
  it("header length beyond file size", () => {
    const g = good();
    new DataView(g.buffer).setBigUint64(0, 1n << 40n, true);
    expect(() => parseSafetensors(g)).toThrow(/header length 1099511627776 exceeds/);
  });
  it("header that is not JSON", () => {
    const g = good();
    g[9] = 0x01;
    expect(() => parseSafetensors(g)).toThrow(/not valid UTF-8 JSON/);
  });
  it("overlapping offsets", () => {
    const f = handBuild(
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "I32", shape: [1], data_offsets: [4, 8] },
      },
      new Uint8Array(8),
    );
    expect(() => parseSafetensors(f)).toThrow(/"b".*overlap/);
  });
  it("gaps between tensors", () => {
    const f = handBuild(
      {
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "I32", shape: [1], data_offsets: [8, 12] },
      },
      new Uint8Array(12),
    );
    expect(() => parseSafetensors(f)).toThrow(/gap.*"b" begins at 8.*ends at 4/);
  });
  it("trailing bytes not covered by any tensor", () => {
    const f = handBuild(
      { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } },
      new Uint8Array(8),
    );
    expect(() => parseSafetensors(f)).toThrow(/cover 4 data bytes but the file holds 8/);
  });
  it("offsets out of range or reversed", () => {
    const f = handBuild(
      { a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } },
      new Uint8Array(4),
    );
    expect(() => parseSafetensors(f)).toThrow(/end before begin/);
    const g = handBuild(
      { a: { dtype: "F32", shape: [1], data_offsets: [-4, 0] } },
      new Uint8Array(4),
    );
    expect(() => parseSafetensors(g)).toThrow(/invalid data_offsets/);
  });
  it("unknown dtype", () => {
    const f = handBuild(
      { a: { dtype: "F8_E4M3", shape: [1], data_offsets: [0, 1] } },
      new Uint8Array(1),
    );
    expect(() => parseSafetensors(f)).toThrow(/"a" has unknown dtype "F8_E4M3"/);
  });
  it("shape / byte length mismatch", () => {
    const f = handBuild(
      { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } },
      new Uint8Array(8),
    );
    expect(() => parseSafetensors(f)).toThrow(
      /"a" of dtype F32 and shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/,
    );
  });
  it("bad shapes and non-string metadata", () => {
    const f = handBuild(
      { a: { dtype: "F32", shape: [-1], data_offsets: [0, 0] } },
      new Uint8Array(0),
    );
    expect(() => parseSafetensors(f)).toThrow(/invalid shape/);
    const m = handBuild({ __metadata__: { k: 3 } }, new Uint8Array(0));
    expect(() => parseSafetensors(m)).toThrow(/metadata "k" must be a string/);
  });
  it("serialize validates its records", () => {
    expect(() =>
      serializeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float32Array(3) } }),
    ).toThrow(/shape \[2\] \(2 elements\) but 3/);
    expect(() =>
      serializeSafetensors({ a: { dtype: "F32", shape: [2], data: new Float64Array(2) } }),
    ).toThrow(/Float64Array/);
    expect(() =>
      serializeSafetensors({ a: { dtype: "Q4" as "F32", shape: [0], data: new Float32Array(0) } }),
    ).toThrow(/unknown dtype Q4/);
  });
});
