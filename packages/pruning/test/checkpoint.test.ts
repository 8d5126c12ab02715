import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Adam,
  SGD,
  evaluate,
  fit,
  loadModel,
  loadSafetensors,
  recordToTensor,
  saveSafetensors,
  tensorToRecord,
  type TensorRecord,
} from "@tessera/nn";
import type { Tensor } from "@tessera/tensor";
import {
  PRUNING_METADATA_KEY,
  PruningState,
  loadPruned,
  pruningFromRecords,
  pruningToRecords,
  savePruned,
  type GroupKind,
} from "../src/index.ts";
import { dataset, mlp } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-pruning-ckpt-"));
let fileNo = 0;
const tmp = () => join(dir, `m${fileNo++}.safetensors`);
const data = (m: ReturnType<typeof mlp>, name: string) =>
  Array.from(m.getParameter(name).data.data);

describe("savePruned / loadPruned (torch.nn.utils.prune naming)", () => {
  it("writes <p>_orig and <p>_mask for pruned parameters, plain names for the rest, kinds in metadata", () => {
    const model = mlp(1);
    const st = new PruningState(model, {
      "fc1.weight": { kind: "block", rows: 4, cols: 4 },
      "fc2.weight": { kind: "row", pruneBias: true },
    });
    st.pruneFraction(0.3);
    const path = tmp();
    savePruned(path, model, st, { note: "round 1" });
    const file = loadSafetensors(path);
    expect([...file.tensors.keys()].sort()).toEqual(
      [
        "fc1.weight_orig",
        "fc1.weight_mask",
        "fc1.bias",
        "fc2.weight_orig",
        "fc2.weight_mask",
        "fc2.bias_orig",
        "fc2.bias_mask",
        "fc3.weight",
        "fc3.bias",
      ].sort(),
    );
    expect(file.tensors.get("fc1.weight_mask")!.dtype).toBe("F32");
    expect(file.tensors.get("fc1.weight_mask")!.shape).toEqual([10, 12]);
    expect(JSON.parse(file.metadata[PRUNING_METADATA_KEY]!)).toEqual({
      "fc1.weight": { kind: "block", rows: 4, cols: 4 },
      "fc2.weight": { kind: "row", pruneBias: true },
    });
    expect(file.metadata.note).toBe("round 1");

    const fresh = mlp(99);
    const { state, metadata } = loadPruned(path, fresh);
    expect(metadata).toEqual({ note: "round 1" });
    expect(state!.names()).toEqual(["fc1.weight", "fc2.weight"]);
    expect(state!.kind("fc1.weight")).toEqual({ kind: "block", rows: 4, cols: 4 });
    expect(state!.prunesBias("fc2.weight")).toBe(true);
    for (const n of ["fc1.weight", "fc2.weight"]) {
      expect(Array.from(state!.mask(n))).toEqual(Array.from(st.mask(n)));
      expect(Array.from(state!.alive(n))).toEqual(Array.from(st.alive(n)));
    }
    for (const [n] of model.namedParameters()) expect(data(fresh, n)).toEqual(data(model, n));
    expect(() => savePruned(tmp(), model, st, { [PRUNING_METADATA_KEY]: "x" })).toThrow(
      /is reserved/,
    );
  });

  it("masks round-trip for every kind and any pruning history (property)", () => {
    const kinds: GroupKind[] = [
      { kind: "element" },
      { kind: "block", rows: 3, cols: 5 },
      { kind: "row" },
      { kind: "column" },
      { kind: "channel" },
      { kind: "kernelElement" },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.constantFrom(...kinds),
        fc.array(fc.double({ min: 0, max: 0.9, noNaN: true }), { minLength: 0, maxLength: 3 }),
        fc.integer({ min: 0, max: 1000 }),
        (k1, k2, rates, seed) => {
          const model = mlp(seed);
          const st = new PruningState(model, { "fc1.weight": k1, "fc3.weight": k2 });
          for (const r of rates) st.pruneFraction(r);
          const path = tmp();
          savePruned(path, model, st);
          const fresh = mlp(seed + 1);
          const back = loadPruned(path, fresh).state!;
          for (const n of ["fc1.weight", "fc3.weight"]) {
            expect(back.kind(n)).toEqual(st.kind(n));
            expect(Array.from(back.mask(n))).toEqual(Array.from(st.mask(n)));
          }
          for (const [n] of model.namedParameters()) expect(data(fresh, n)).toEqual(data(model, n));
        },
      ),
      { numRuns: 40 },
    );
  });

  it("after strip() the file holds plain names and loads with loadModel", () => {
    const model = mlp(2);
    const st = new PruningState(model, { "fc1.weight": { kind: "element" } });
    st.pruneToDensity(0.5);
    st.strip();
    const path = tmp();
    savePruned(path, model, st);
    const file = loadSafetensors(path);
    expect(file.tensors.has("fc1.weight")).toBe(true);
    expect([...file.tensors.keys()].some((k) => k.endsWith("_mask"))).toBe(false);
    expect(file.metadata[PRUNING_METADATA_KEY]).toBeUndefined();
    const fresh = mlp(3);
    loadModel(path, fresh);
    expect(data(fresh, "fc1.weight")).toEqual(data(model, "fc1.weight"));
    expect(loadPruned(path, mlp(4)).state).toBeNull();
  });

  it("reads a PyTorch-pruned state dict: weight = orig · mask, undescribed pairs are element groups", () => {
    const model = mlp(5);
    const records = new Map<string, TensorRecord>();
    for (const [n, t] of model.stateDict())
      if (n !== "fc1.weight") records.set(n, tensorToRecord(t));
    // PyTorch keeps the original values under weight_orig, also where the mask is 0.
    const orig = Float32Array.from({ length: 120 }, (_, k) => k + 1);
    const mask = Float32Array.from({ length: 120 }, (_, k) => (k % 3 === 0 ? 0 : 1));
    records.set("fc1.weight_orig", { dtype: "F32", shape: [10, 12], data: orig });
    records.set("fc1.weight_mask", { dtype: "F32", shape: [10, 12], data: mask });
    const path = tmp();
    saveSafetensors(path, records);
    const fresh = mlp(6);
    const { state } = loadPruned(path, fresh);
    expect(state!.kind("fc1.weight")).toEqual({ kind: "element" });
    expect(data(fresh, "fc1.weight")).toEqual(Array.from(orig, (v, k) => v * mask[k]!));
    expect(state!.density()).toBeCloseTo(80 / 120, 15);
  });

  it("refuses inconsistent files, naming the key", () => {
    const model = mlp(7);
    const st = new PruningState(model, { "fc1.weight": { kind: "block", rows: 2, cols: 2 } });
    st.pruneFraction(0.5);
    const path = tmp();
    savePruned(path, model, st);
    const file = loadSafetensors(path);
    // A mask that splits a 2x2 tile.
    const bad = Float32Array.from(file.tensors.get("fc1.weight_mask")!.data as Float32Array);
    bad[bad.indexOf(1)] = 0;
    file.tensors.set("fc1.weight_mask", { dtype: "F32", shape: [10, 12], data: bad });
    const p2 = tmp();
    saveSafetensors(p2, file.tensors, file.metadata);
    expect(() => loadPruned(p2, mlp(8))).toThrow(
      /mask of "fc1.weight" keeps 3 of the 4 elements of block 2x2 group/,
    );
    const meta = { [PRUNING_METADATA_KEY]: JSON.stringify({ "fc2.weight": { kind: "row" } }) };
    const p3 = tmp();
    saveSafetensors(p3, loadSafetensors(path).tensors, meta);
    expect(() => loadPruned(p3, mlp(8))).toThrow(
      /metadata describes "fc2.weight" but the file has no "fc2.weight_mask"/,
    );
    const p4 = tmp();
    saveSafetensors(p4, loadSafetensors(path).tensors, { [PRUNING_METADATA_KEY]: "{" });
    expect(() => loadPruned(p4, mlp(8))).toThrow(/metadata "tessera.pruning" is not JSON/);
  });
});

describe("pruning state in a training checkpoint", () => {
  const train = dataset(48, 12, 3, 31);
  const test = dataset(32, 12, 3, 32);

  it("a run killed after epoch 1 and resumed from model + optimizer + pruning records matches the uninterrupted run bit for bit", () => {
    const prune = (m: ReturnType<typeof mlp>) => {
      const st = new PruningState(m, {
        "fc1.weight": { kind: "block", rows: 2, cols: 3 },
        "fc2.weight": { kind: "row", pruneBias: true },
      });
      st.pruneFraction(0.4);
      return st;
    };
    // Uninterrupted: prune, attach, 2 epochs.
    const a = mlp(40);
    const optA = new Adam(a.parameters(), { lr: 0.01, weightDecay: 0.01 });
    const stA = prune(a).attach(optA);
    fit(a, { train, epochs: 1, batchSize: 16, optimizer: optA, seed: 5 });
    // The checkpoint a resumable loop writes after epoch 1.
    const records = new Map<string, TensorRecord>();
    for (const [n, t] of a.stateDict()) records.set(`model.${n}`, tensorToRecord(t));
    for (const [n, r] of optA.stateDict()) records.set(`optimizer.${n}`, r);
    const p = pruningToRecords(stA);
    for (const [k, r] of p.records) records.set(k, r);
    const path = tmp();
    saveSafetensors(path, records, { epoch: "1", ...p.metadata });
    fit(a, { train, epochs: 2, batchSize: 16, optimizer: optA, seed: 5, startEpoch: 2 });

    // Resumed in a "new process": fresh model and optimizer, everything from the file.
    const b = mlp(41);
    const file = loadSafetensors(path);
    const modelState = new Map<string, Tensor>();
    const optState = new Map<string, TensorRecord>();
    for (const [k, r] of file.tensors) {
      if (k.startsWith("model.")) modelState.set(k.slice(6), recordToTensor(r, k));
      if (k.startsWith("optimizer.")) optState.set(k.slice(10), r);
    }
    b.loadStateDict(modelState);
    const optB = new Adam(b.parameters(), { lr: 0.01, weightDecay: 0.01 });
    optB.loadStateDict(optState);
    const stB = pruningFromRecords(b, file.tensors, file.metadata)!;
    stB.attach(optB);
    for (const n of stA.names()) expect(Array.from(stB.mask(n))).toEqual(Array.from(stA.mask(n)));
    fit(b, { train, epochs: 2, batchSize: 16, optimizer: optB, seed: 5, startEpoch: 2 });
    for (const [n] of a.namedParameters()) expect(data(b, n)).toEqual(data(a, n));
    // Evaluating needs no optimizer at all.
    expect(evaluate(b, test)).toEqual(evaluate(a, test));
  });

  it("no pruning records: null; stray or missing records throw", () => {
    const m = mlp(9);
    expect(pruningFromRecords(m, new Map(), {})).toBeNull();
    const st = new PruningState(m, { "fc1.weight": { kind: "row" } });
    const { records, metadata } = pruningToRecords(st, "p/");
    expect([...records.keys()]).toEqual(["p/fc1.weight"]);
    expect(() => pruningFromRecords(m, records, {}, "p/")).toThrow(
      /records p\/fc1.weight have no metadata "p\/specs"/,
    );
    expect(() => pruningFromRecords(m, new Map(), metadata, "p/")).toThrow(
      /no record "p\/fc1.weight" for the mask of "fc1.weight"/,
    );
    records.set("p/fc9.weight", records.get("p/fc1.weight")!);
    expect(() => pruningFromRecords(m, records, metadata, "p/")).toThrow(
      /unexpected records p\/fc9.weight/,
    );
  });

  it("a pruned model trains on after loadPruned with a new optimizer (zeros kept)", () => {
    const model = mlp(10);
    const st = new PruningState(model, { "fc1.weight": { kind: "column" } });
    st.pruneToDensity(0.5);
    const path = tmp();
    savePruned(path, model, st);
    const fresh = mlp(11);
    const { state } = loadPruned(path, fresh);
    const opt = new SGD(fresh.parameters(), { lr: 0.1, momentum: 0.9 });
    state!.attach(opt);
    fit(fresh, { train, epochs: 2, batchSize: 16, optimizer: opt, seed: 1 });
    const w = fresh.getParameter("fc1.weight").data.data;
    const mask = state!.mask("fc1.weight");
    for (let k = 0; k < w.length; k++) if (mask[k] === 0) expect(w[k]).toBe(0);
    expect(state!.density()).toBe(0.5);
  });
});
