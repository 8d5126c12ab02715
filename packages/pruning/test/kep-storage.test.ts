// KEP storage: a model with KepConv2d layers saved in positions or patterns form and loaded
// into a fresh dense model computes exactly what it computed; index bytes are what the format
// says; corrupt or mismatched files are refused naming the function, tensor and expectation.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Generator, randn } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { loadSafetensors, serializeSafetensors, type Sequential } from "@tessera/nn";
import {
  KepConv2d,
  PruningState,
  applyKepMask,
  kepStorageBytes,
  loadKepModel,
  saveKepModel,
  toKep,
  type KepMaskInfo,
  type PatternLibrary,
} from "../src/index.ts";
import { convNet } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-kep-storage-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Built {
  model: Sequential;
  info: Map<string, KepMaskInfo>;
  libraries: Map<string, PatternLibrary>;
}

/** A KEP model: masks of the given mode (libraries for pattern mode), then toKep. */
function build(
  seed: number,
  n: number,
  mode: "free" | "pattern",
  planeFraction = 0,
  c1 = 3,
  c2 = 4,
  librarySize = 3,
): Built {
  const model = convNet(seed, c1, c2);
  const state = new PruningState(model, {
    "conv1.weight": { kind: "kernelElement" },
    "conv2.weight": { kind: "kernelElement" },
  });
  const info = applyKepMask(state, { n, mode, librarySize, planeFraction });
  toKep(model, state);
  const libraries = new Map<string, PatternLibrary>();
  if (mode === "pattern")
    for (const [name, i] of info) libraries.set(name.replace(/\.weight$/, ""), i.library!);
  return { model, info, libraries };
}

function outputs(model: Sequential, seed: number): Float32Array {
  const x = randn([2, 2, 4, 4], new Generator(seed));
  return model.forward(new Variable(x)).data.data as Float32Array;
}

describe("saveKepModel / loadKepModel", () => {
  it("round-trips positions and patterns forms (with and without removed planes) into a fresh dense model", () => {
    let k = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom("free" as const, "pattern" as const),
        fc.constantFrom(0, 0.3),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(1000),
        (n, mode, planeFraction, c2, librarySize, seed) => {
          const b = build(seed, n, mode, planeFraction, 3, c2, librarySize);
          const path = join(dir, `rt-${k++}.safetensors`);
          const rows = saveKepModel(path, b.model, { libraries: b.libraries });
          expect(rows.map((r) => r.format)).toEqual(
            mode === "pattern" ? ["patterns", "patterns"] : ["positions", "positions"],
          );
          const fresh = convNet(seed + 1, 3, c2);
          const { converted } = loadKepModel(path, fresh);
          expect(converted).toEqual(["conv1", "conv2"]);
          for (const name of converted) {
            const a = b.model.getSubmodule(name) as KepConv2d;
            const c = fresh.getSubmodule(name) as KepConv2d;
            expect(c).toBeInstanceOf(KepConv2d);
            expect(c.layout.ptr).toEqual(a.layout.ptr);
            expect(c.layout.pos).toEqual(a.layout.pos);
            expect(c.values.data.data).toEqual(a.values.data.data);
          }
          expect(outputs(fresh, seed)).toEqual(outputs(b.model, seed));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("reports index bytes as the format stores them: 4-bit positions for 3x3, or packed ids plus the library", () => {
    const free = build(1, 3, "free", 0, 4, 8);
    const [c1, c2] = kepStorageBytes(free.model);
    // conv2: 8·4 planes · 3 kept = 96 positions of 4 bits = 48 bytes; values 96 · 4 bytes.
    expect(c2).toEqual({
      name: "conv2",
      format: "positions",
      nnz: 96,
      denseBytes: 8 * 4 * 9 * 4,
      valueBytes: 384,
      indexBytes: 48,
    });
    expect(c1!.indexBytes).toBe(Math.ceil((4 * 2 * 3 * 4) / 8));
    const pat = build(1, 3, "pattern", 0, 4, 8);
    const rows = kepStorageBytes(pat.model, pat.libraries);
    const L = pat.libraries.get("conv2")!.patterns.length;
    const bits = Math.max(1, Math.ceil(Math.log2(L)));
    expect(rows[1]!.indexBytes).toBe(Math.ceil((32 * bits) / 8) + L * 3);
    // Removed planes: positions form adds one count byte per plane; patterns form one more id.
    const cut = build(1, 3, "free", 0.25, 4, 8);
    const r = kepStorageBytes(cut.model)[1]!;
    expect(r.nnz).toBe(96 - 8 * 3);
    expect(r.indexBytes).toBe(Math.ceil((72 * 4) / 8) + 32);
  });

  it("refuses corrupt or mismatched files, naming the function, the tensor and what was expected", () => {
    const b = build(2, 3, "pattern", 0.25, 3, 4);
    const path = join(dir, "good.safetensors");
    saveKepModel(path, b.model, { libraries: b.libraries });
    const file = loadSafetensors(path);
    const variant = (edit: (t: typeof file.tensors, m: Record<string, string>) => void) => {
      const tensors = new Map(file.tensors);
      const metadata = { ...file.metadata };
      edit(tensors, metadata);
      return serializeSafetensors(tensors, metadata);
    };
    const load = (bytes: Uint8Array) => () => loadKepModel(bytes, convNet(9));
    const ids = file.tensors.get("conv2.pattern_ids")!;
    expect(
      load(
        variant((t) =>
          t.set("conv2.pattern_ids", { ...ids, shape: [1], data: ids.data.slice(0, 1) }),
        ),
      ),
    ).toThrow(
      /loadKepModel\(<bytes>\): "conv2.pattern_ids" has 1 entries, expected \d+ \(12 plane ids of \d bits\)/,
    );
    // Ids past the library: 3 patterns and no empty plane take 2 bits, so id 3 is out of range.
    const full = build(2, 3, "pattern", 0, 3, 4);
    expect(full.libraries.get("conv2")!.patterns.length).toBe(3);
    const fullPath = join(dir, "full.safetensors");
    saveKepModel(fullPath, full.model, { libraries: full.libraries });
    const fullFile = loadSafetensors(fullPath);
    const fullIds = fullFile.tensors.get("conv2.pattern_ids")!;
    const outOfRange = new Map(fullFile.tensors);
    outOfRange.set("conv2.pattern_ids", {
      ...fullIds,
      data: new Uint8Array(fullIds.data.length).fill(255),
    });
    expect(load(serializeSafetensors(outOfRange, fullFile.metadata))).toThrow(
      /"conv2.pattern_ids": plane 0 has id 3, the library holds 3 patterns/,
    );
    expect(load(variant((t) => t.delete("conv1.patterns")))).toThrow(
      /loadKepModel\(<bytes>\): the file has no tensor "conv1.patterns"/,
    );
    const values = file.tensors.get("conv2.values")!;
    expect(
      load(
        variant((t) =>
          t.set("conv2.values", { dtype: "F32", shape: [2], data: new Float32Array(2) }),
        ),
      ),
    ).toThrow(new RegExp(`"conv2.values" has 2 values, expected ${values.data.length}`));
    expect(load(variant((_t, m) => delete m["tessera.kep"]))).toThrow(
      /the file has no "tessera.kep" metadata/,
    );
    // A model of other widths: the layer and both shapes are named; the model is unchanged.
    const other = convNet(9, 3, 5);
    expect(() => loadKepModel(path, other)).toThrow(
      /layer "conv2" is \[4,3,3,3\] stride 1 padding 0?1? in the file, \[5,3,3,3\] stride 1 padding 1 in the model/,
    );
    expect(other.getSubmodule("conv1")).not.toBeInstanceOf(KepConv2d);
    // Positions form: a position of 4 bits past the 3x3 plane.
    const f = build(3, 2, "free");
    const fpath = join(dir, "free.safetensors");
    saveKepModel(fpath, f.model);
    const ff = loadSafetensors(fpath);
    const pos = ff.tensors.get("conv1.positions")!;
    const bad = new Map(ff.tensors);
    bad.set("conv1.positions", { ...pos, data: new Uint8Array(pos.data.length).fill(0xff) });
    expect(() => loadKepModel(serializeSafetensors(bad, ff.metadata), convNet(9))).toThrow(
      /loadKepModel\(<bytes>\): layer "conv1": KepLayout: positions of plane 0 must be strictly ascending in 0..8, got 15,15/,
    );
    // Saving with a library that does not hold a plane's positions.
    const g = build(4, 2, "free");
    const lib = build(4, 2, "pattern").libraries;
    const onlyOne = new Map([
      ["conv2", { ...lib.get("conv2")!, patterns: [lib.get("conv2")!.patterns[0]!] }],
    ]);
    expect(() => saveKepModel(join(dir, "x.safetensors"), g.model, { libraries: onlyOne })).toThrow(
      /saveKepModel: plane \d+ of "conv2" keeps positions [\d,]+, which is not a pattern of its library \(1 patterns of 2\)/,
    );
  });
});
