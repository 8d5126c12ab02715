// Checkpoint loading refuses a stored dtype that differs from the destination parameter's:
// same-sized dtypes (I32 for F32) would otherwise load raw bits as numbers and train on garbage.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator } from "@tessera/tensor";
import { describe, expect, it } from "vitest";
import { loadModel, saveModel, stateFromRecords } from "../src/checkpoint.ts";
import { Linear, Sequential } from "../src/layers.ts";
import { loadSafetensors, saveSafetensors, type TensorRecord } from "../src/safetensors.ts";

const make = (seed: number) => {
  const g = new Generator(seed);
  return Sequential.named({ fc: new Linear(4, 3, { generator: g }) });
};
const snapshot = (m: ReturnType<typeof make>) =>
  [...m.stateDict()].map(([k, t]) => [k, Array.from(t.data)]);

/** The records of `path` with `key`'s bytes relabelled as `dtype` (same byte length). */
function relabel(path: string, key: string, dtype: "I32" | "U32"): Map<string, TensorRecord> {
  const file = loadSafetensors(path);
  const r = file.tensors.get(key)!;
  const b = r.data;
  const data =
    dtype === "I32"
      ? new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)
      : new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  file.tensors.set(key, { dtype, shape: r.shape, data });
  return file.tensors;
}

describe("checkpoint dtypes", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-ckpt-dtype-"));

  it("loadModel refuses a weight stored as I32 or U32 for a float32 parameter, model untouched", () => {
    const path = join(dir, "good.safetensors");
    saveModel(path, make(1));
    for (const dtype of ["I32", "U32"] as const) {
      const bad = join(dir, `bad-${dtype}.safetensors`);
      saveSafetensors(bad, relabel(path, "fc.weight", dtype));
      const target = make(2);
      const before = snapshot(target);
      expect(() => loadModel(bad, target)).toThrow(
        `loadModel(${bad}): dtype mismatch ("fc.weight" is ${dtype}, the model's is F32)`,
      );
      expect(snapshot(target)).toEqual(before);
    }
    // The same file with the right dtype loads bit for bit.
    const ok = make(3);
    loadModel(path, ok);
    expect(snapshot(ok)).toEqual(snapshot(make(1)));
  });

  it("stateFromRecords refuses F64 for F32 (no silent rounding) and passes unknown keys through", () => {
    const m = make(1);
    const w = m.stateDict().get("fc.weight")!;
    const f64: TensorRecord = { dtype: "F64", shape: [...w.shape], data: new Float64Array(12) };
    expect(() => stateFromRecords("here", new Map([["fc.weight", f64]]), m)).toThrow(
      `here: dtype mismatch ("fc.weight" is F64, the model's is F32)`,
    );
    const extra: TensorRecord = { dtype: "U8", shape: [1], data: new Uint8Array(1) };
    const r = stateFromRecords("here", new Map([["other", extra]]), m);
    expect(r.skipped).toEqual(["other"]);
    expect(r.state.size).toBe(0);
  });
});
