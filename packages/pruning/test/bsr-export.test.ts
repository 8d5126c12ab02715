// saveBsrModel / loadBsrModel round trips and errors, and the README's numpy/scipy lines run
// verbatim with python3 on a file we wrote, giving our layers' weights and forward pass.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import * as T from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { Linear, ReLU, Sequential, loadSafetensors, saveModel } from "@tessera/nn";
import { BsrLinear, loadBsrModel, saveBsrModel, toBsr } from "../src/index.ts";
import type { GroupKind, PrunedEntry } from "../src/index.ts";

const dir = mkdtempSync(join(tmpdir(), "tessera-bsr-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function net(seed: number, hidden = 7): Sequential {
  const g = new T.Generator(seed);
  return Sequential.named([
    ["fc1", new Linear(10, hidden, { generator: g })],
    ["relu", new ReLU()],
    ["fc2", new Linear(hidden, 3, { generator: g })],
    ["relu2", new ReLU()],
    ["head", new Linear(3, 2, { bias: false, generator: g })],
  ]);
}

/** Block-constant mask over [rows, cols]: keep block (i, j) when keep(i, j). */
function blockMask(
  rows: number,
  cols: number,
  R: number,
  C: number,
  keep: (i: number, j: number) => boolean,
): Float32Array {
  const m = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++)
      m[i * cols + j] = keep(Math.floor(i / R), Math.floor(j / C)) ? 1 : 0;
  return m;
}

/** fc1 in ragged 4x3 blocks (7 = 4 + 3, 10 = 3·3 + 1), fc2 elementwise, head with nothing kept. */
function bsrNet(seed: number): Sequential {
  const model = net(seed);
  const block: GroupKind = { kind: "block", rows: 4, cols: 3 };
  const entries: PrunedEntry[] = [
    { name: "fc1.weight", kind: block, mask: blockMask(7, 10, 4, 3, (i, j) => (i + j) % 2 === 0) },
    {
      name: "fc2.weight",
      kind: { kind: "element" },
      mask: blockMask(3, 7, 1, 1, (i, j) => j !== i),
    },
    { name: "head.weight", kind: { kind: "element" }, mask: new Float32Array(6) },
  ];
  toBsr(model, { entries: () => entries });
  return model;
}

describe("saveBsrModel / loadBsrModel", () => {
  it("rebuilds the BSR layers in a dense model of the same architecture, bit for bit", () => {
    const model = bsrNet(1);
    const path = join(dir, "roundtrip.safetensors");
    saveBsrModel(path, model, { note: "kept" });
    const file = loadSafetensors(path);
    expect(JSON.parse(file.metadata.bsr_layers!)).toEqual({
      fc1: { shape: [7, 10], blockShape: [4, 3] },
      fc2: { shape: [3, 7], blockShape: [1, 1] },
      head: { shape: [2, 3], blockShape: [1, 1] },
    });
    expect(file.tensors.get("fc1.indptr")!.dtype).toBe("I32");
    expect(file.tensors.get("fc1.data")!.shape).toEqual([4, 4, 3]);
    const fresh = net(2);
    const res = loadBsrModel(path, fresh);
    expect(res.converted).toEqual(["fc1", "fc2", "head"]);
    expect(res.metadata.note).toBe("kept");
    for (const name of res.converted) expect(fresh.getSubmodule(name)).toBeInstanceOf(BsrLinear);
    const a = model.stateDict();
    const b = fresh.stateDict();
    expect([...b.keys()]).toEqual([...a.keys()]);
    for (const [k, t] of a) expect(T.equals(b.get(k)!, t)).toBe(true);
    const x = T.randn([4, 10], new T.Generator(3));
    expect(T.equals(model.forward(new Variable(x)).data, fresh.forward(new Variable(x)).data)).toBe(
      true,
    );
    // Loading into a model that already holds BSR layers (of other patterns) works too.
    const again = bsrNet(5);
    loadBsrModel(path, again);
    expect(T.equals(again.forward(new Variable(x)).data, model.forward(new Variable(x)).data)).toBe(
      true,
    );
  });

  it("names the layer and both shapes when the model does not fit, and leaves it unchanged", () => {
    const path = join(dir, "mismatch.safetensors");
    saveBsrModel(path, bsrNet(1));
    const wide = net(2, 8);
    expect(() => loadBsrModel(path, wide)).toThrow(
      `loadBsrModel(${path}): layer "fc1" is [7,10] (out, in) in the file but [8,10] in the model`,
    );
    expect(wide.getSubmodule("fc1")).toBeInstanceOf(Linear);
    const noBias = Sequential.named([
      ["fc1", new Linear(10, 7, { bias: false })],
      ["fc2", new Linear(7, 3)],
      ["head", new Linear(3, 2, { bias: false })],
    ]);
    expect(() => loadBsrModel(path, noBias)).toThrow(
      `loadBsrModel(${path}): layer "fc1" has bias in the file but has no bias in the model`,
    );
    // A mismatch outside the BSR layers is found by the strict load; the swap is undone.
    const extra = net(2);
    const model = Sequential.named([
      ["fc1", new Linear(10, 7)],
      ["fc2", new Linear(7, 3)],
      ["head", new Linear(3, 2, { bias: false })],
      ["more", new Linear(2, 2)],
    ]);
    expect(() => loadBsrModel(path, model)).toThrow(/missing keys: more.weight, more.bias/);
    expect(model.getSubmodule("fc1")).toBeInstanceOf(Linear);
    expect(() => loadBsrModel(path, Sequential.named([["fc1", new ReLU()]]))).toThrow(
      `loadBsrModel(${path}): "fc1" is a ReLU in the model; a BSR layer replaces a Linear`,
    );
    expect(() => loadBsrModel(path, Sequential.named([["fc9", new Linear(10, 7)]]))).toThrow(
      `loadBsrModel(${path}): the file has BSR layer "fc1" but the model does not: `,
    );
    const dense = join(dir, "dense.safetensors");
    saveModel(dense, extra);
    expect(() => loadBsrModel(dense, net(3))).toThrow(
      `loadBsrModel(${dense}): the file has no "bsr_layers" metadata (was it written by saveBsrModel?)`,
    );
    expect(() => saveBsrModel(dense, extra, { bsr_layers: "{}" })).toThrow(
      'saveBsrModel: metadata key "bsr_layers" is reserved for the layer shapes',
    );
  });

  it("refuses index arrays that break scipy's format, naming the layer", () => {
    const model = bsrNet(1);
    const layer = model.getSubmodule("fc1") as BsrLinear;
    (layer.indices.data as Int32Array)[0] = 9; // block column 9 of a 4-column grid
    const path = join(dir, "corrupt.safetensors");
    saveBsrModel(path, model);
    expect(() => loadBsrModel(path, net(2))).toThrow(
      new RegExp(
        `^loadBsrModel\\(${path.replace(/[.]/g, "\\.")}\\): layer "fc1": BsrMatrix.fromArrays: `,
      ),
    );
  });
});

/** The ```python blocks of the README's "Reading a layer in Python" section, verbatim. */
function readmePython(): string[] {
  const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
  const start = readme.indexOf("### Reading a layer in Python");
  expect(start).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf("\n#", start + 4);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const python = spawnSync("python3", ["-c", "import numpy, scipy"], { encoding: "utf8" });
const havePython = python.status === 0;
if (!havePython)
  console.warn(
    `bsr-export.test: skipping the scipy check: python3 with numpy and scipy not available (${python.error?.message ?? python.stderr.trim()})`,
  );

describe("README's scipy lines", () => {
  it.skipIf(!havePython)("load our file and compute what BsrLinear computes", () => {
    const blocks = readmePython();
    expect(blocks.length).toBe(2);
    const work = mkdtempSync(join(dir, "py-"));
    const model = bsrNet(11);
    saveBsrModel(join(work, "model.safetensors"), model);
    // After the two README blocks: dump x, y and every layer's logical dense weight.
    const driver = [
      "layers = {}",
      'for name in json.loads(metadata["bsr_layers"]):',
      "    Wn, (r, c) = bsr_layer(tensors, metadata, name)",
      "    layers[name] = Wn.toarray()[:r, :c].tolist()",
      'print(json.dumps({"x": x.tolist(), "y": y.tolist(), "layers": layers}))',
    ].join("\n");
    writeFileSync(join(work, "check.py"), `${blocks[0]}\n${blocks[1]}\n${driver}\n`);
    const run = spawnSync("python3", ["check.py"], { cwd: work, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout) as {
      x: number[][];
      y: number[][];
      layers: Record<string, number[][]>;
    };
    const fc1 = model.getSubmodule("fc1") as BsrLinear;
    const x = T.fromArray(out.x);
    const ours = fc1.forward(new Variable(x)).data;
    expect(T.allClose(ours, T.fromArray(out.y), 1e-5, 1e-5)).toBe(true);
    for (const name of ["fc1", "fc2", "head"]) {
      const layer = model.getSubmodule(name) as BsrLinear;
      expect(out.layers[name]!.flat()).toEqual(Array.from(layer.toDenseWeight()));
    }
  });
});
