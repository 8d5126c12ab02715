import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Generator, Tensor } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { describe, expect, it } from "vitest";
import { loadModel, saveModel } from "../src/checkpoint.ts";
import { lenet300100, lenet5, smallCnn } from "../src/models.ts";
import { loadSafetensors } from "../src/safetensors.ts";

function weightCount(m: ReturnType<typeof lenet5>): number {
  return m
    .namedParameters()
    .filter(([n]) => n.endsWith("weight"))
    .reduce((s, [, p]) => s + p.data.size, 0);
}

// Byte equality of two typed arrays (deep toEqual on 200k-element arrays is slow).
const sameBytes = (a: ArrayBufferView, b: ArrayBufferView) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );

const zeros = (shape: number[]) =>
  new Variable(new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape));

describe("models", () => {
  it("LeNet-300-100: 784-300-100-10, 266,200 weights", () => {
    const m = lenet300100({ generator: new Generator(0) });
    expect(m.namedParameters().map(([n, p]) => `${n}:${p.shape.join("x")}`)).toEqual([
      "fc1.weight:300x784",
      "fc1.bias:300",
      "fc2.weight:100x300",
      "fc2.bias:100",
      "fc3.weight:10x100",
      "fc3.bias:10",
    ]);
    expect(weightCount(m)).toBe(266200);
    expect(m.forward(zeros([3, 1, 28, 28])).shape).toEqual([3, 10]);
    expect(m.forward(zeros([2, 784])).shape).toEqual([2, 10]);
  });
  it("LeNet-5 (ADMM papers' variant): 430,500 weights", () => {
    const m = lenet5({ generator: new Generator(0) });
    expect(m.namedParameters().map(([n, p]) => `${n}:${p.shape.join("x")}`)).toEqual([
      "conv1.weight:20x1x5x5",
      "conv1.bias:20",
      "conv2.weight:50x20x5x5",
      "conv2.bias:50",
      "fc1.weight:500x800",
      "fc1.bias:500",
      "fc2.weight:10x500",
      "fc2.bias:10",
    ]);
    expect(weightCount(m)).toBe(430500);
    expect(m.numParameters()).toBe(430500 + 580);
    expect(m.forward(zeros([2, 1, 28, 28])).shape).toEqual([2, 10]);
    expect(
      lenet5({ convRelu: true })
        .namedModules()
        .map(([n]) => n),
    ).toContain("reluc1");
  });
  it("small 3x3 CNN for 28x28 and 32x32 RGB", () => {
    const m = smallCnn({ generator: new Generator(0) });
    expect(m.forward(zeros([1, 1, 28, 28])).shape).toEqual([1, 10]);
    expect(m.namedParameters().find(([n]) => n === "fc1.weight")![1].shape).toEqual([128, 3136]);
    // 288 + 9,216 + 18,432 + 36,864 + 401,408 + 1,280 weights; 32+32+64+64+128+10 biases
    expect(weightCount(m)).toBe(467488);
    expect(m.numParameters()).toBe(467488 + 330);
    const c = smallCnn({ inChannels: 3, imageSize: 32, generator: new Generator(0) });
    expect(c.forward(zeros([1, 3, 32, 32])).shape).toEqual([1, 10]);
    expect(() => smallCnn({ imageSize: 30 })).toThrow(/multiple of 4/);
    const slim = smallCnn({ channels: [4, 4, 8, 8], hidden: 16, generator: new Generator(0) });
    expect(slim.getParameter("conv4.weight").shape).toEqual([8, 8, 3, 3]);
    expect(slim.getParameter("fc1.weight").shape).toEqual([16, 8 * 7 * 7]);
    expect(slim.forward(zeros([2, 1, 28, 28])).shape).toEqual([2, 10]);
  });
  it("same generator seed gives the same weights", () => {
    const a = lenet300100({ generator: new Generator(9) });
    const b = lenet300100({ generator: new Generator(9) });
    const c = lenet300100({ generator: new Generator(10) });
    expect(sameBytes(a.parameters()[0]!.data.data, b.parameters()[0]!.data.data)).toBe(true);
    expect(sameBytes(a.parameters()[0]!.data.data, c.parameters()[0]!.data.data)).toBe(false);
  });
});

describe("state dict through safetensors", () => {
  it("round trips a model with buffers exactly, and rejects mismatches naming the key", async () => {
    const { BatchNorm1d, Linear, Sequential } = await import("../src/layers.ts");
    const make = (seed: number) => {
      const g = new Generator(seed);
      return Sequential.named({
        fc: new Linear(4, 3, { generator: g }),
        bn: new BatchNorm1d(3),
        out: new Linear(3, 2, { generator: g }),
      });
    };
    const a = make(1);
    (a.stateDict().get("bn.running_mean")!.data as Float32Array).set([0.5, -1, 2]);
    const dir = mkdtempSync(join(tmpdir(), "tessera-ckpt-"));
    const path = join(dir, "model.safetensors");
    saveModel(path, a, { epoch: "3" });
    const file = loadSafetensors(path);
    expect(file.tensors.get("fc.weight")!.dtype).toBe("F32");
    expect(file.tensors.get("fc.weight")!.shape).toEqual([3, 4]);
    const b = make(2);
    const res = loadModel(path, b);
    expect(res.metadata).toEqual({ epoch: "3" });
    for (const [k, t] of a.stateDict())
      expect(Array.from(b.stateDict().get(k)!.data)).toEqual(Array.from(t.data));
    const x = new Variable(new Tensor(Float32Array.from([1, 2, 3, 4]), [1, 4]));
    a.eval();
    b.eval();
    expect(Array.from(b.forward(x).data.data)).toEqual(Array.from(a.forward(x).data.data));
    const wrong = Sequential.named({
      fc: new Linear(4, 5),
      bn: new BatchNorm1d(3),
      out: new Linear(3, 2),
    });
    expect(() => loadModel(path, wrong)).toThrow(
      /model\.safetensors.*"fc.weight": checkpoint has \[3,4\], model has \[5,4\]/,
    );
  });
  it("LeNet-300-100 checkpoint keeps every weight bit-exact", () => {
    const a = lenet300100({ generator: new Generator(4) });
    const dir = mkdtempSync(join(tmpdir(), "tessera-ckpt-"));
    saveModel(join(dir, "m.safetensors"), a);
    const b = lenet300100({ generator: new Generator(5) });
    loadModel(join(dir, "m.safetensors"), b);
    a.parameters().forEach((p, i) =>
      expect(sameBytes(b.parameters()[i]!.data.data, p.data.data)).toBe(true),
    );
  });
});
