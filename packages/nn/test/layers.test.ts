import { Generator, Tensor, full, randn } from "@tessera/tensor";
import { BufferArena, Variable, mul, setMatrixPool, sum } from "@tessera/autograd";
import { createPool } from "@tessera/matrix";
import { describe, expect, it } from "vitest";
import {
  AvgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  Dropout,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
} from "../src/layers.ts";
import { lenet300100, smallCnn } from "../src/models.ts";
import { Module } from "../src/module.ts";

const T = (values: number[], shape: number[]) => new Tensor(Float32Array.from(values), shape);
const V = (values: number[], shape: number[]) => new Variable(T(values, shape));
const vals = (v: Variable) => Array.from(v.data.contiguous().data);
const close = (got: number[], want: number[], digits = 5) => {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, digits));
};

function setData(p: Variable, values: number[]): void {
  (p.data.data as Float32Array).set(values);
}

describe("Linear", () => {
  it("computes x W^T + b (hand computed) and backpropagates", () => {
    const fc = new Linear(3, 2, { generator: new Generator(1) });
    setData(fc.weight, [1, 2, 3, -1, 0, 1]);
    setData(fc.bias!, [0.5, -0.5]);
    const x = V([1, 1, 1, 2, 0, -1], [2, 3]);
    const y = fc.forward(x);
    expect(y.shape).toEqual([2, 2]);
    // row 0: [1+2+3+0.5, -1+0+1-0.5] ; row 1: [2+0-3+0.5, -2+0-1-0.5]
    close(vals(y), [6.5, -0.5, -0.5, -3.5]);
    sum(y).backward();
    close(Array.from(fc.weight.grad!.data), [3, 1, 0, 3, 1, 0]);
    close(Array.from(fc.bias!.grad!.data), [2, 2]);
  });
  it("without bias, and shape errors name the expected input", () => {
    const fc = new Linear(2, 1, { bias: false, generator: new Generator(1) });
    expect(fc.bias).toBeNull();
    expect(fc.namedParameters().map(([n]) => n)).toEqual(["weight"]);
    expect(() => fc.forward(V([1, 2, 3], [1, 3]))).toThrow(
      /Linear.forward: expected input \[N, 2\], got \[1,3\]/,
    );
    expect(() => new Linear(0, 2)).toThrow(/inFeatures must be a positive integer/);
  });
});

describe("Conv2d and pooling", () => {
  it("conv 2x2 on a 3x3 input (hand computed), stride and padding shapes", () => {
    const conv = new Conv2d(1, 1, 2, { generator: new Generator(1) });
    setData(conv.weight, [1, 0, 0, -1]);
    setData(conv.bias!, [10]);
    const x = V([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const y = conv.forward(x);
    expect(y.shape).toEqual([1, 1, 2, 2]);
    // out[i,j] = x[i,j] - x[i+1,j+1] + 10 = -4 + 10
    close(vals(y), [6, 6, 6, 6]);
    const c2 = new Conv2d(2, 4, 3, { stride: 2, padding: 1, generator: new Generator(2) });
    expect(
      c2.forward(new Variable(new Tensor(new Float32Array(2 * 2 * 5 * 5), [2, 2, 5, 5]))).shape,
    ).toEqual([2, 4, 3, 3]);
    expect(() => c2.forward(V([1], [1, 1, 1, 1]))).toThrow(
      /Conv2d.forward: expected input \[N, 2, H, W\], got \[1,1,1,1\]/,
    );
  });
  it("max and average pooling 2x2 on 4x4", () => {
    const x = V(
      Array.from({ length: 16 }, (_, i) => i),
      [1, 1, 4, 4],
    );
    close(vals(new MaxPool2d(2).forward(x)), [5, 7, 13, 15]);
    close(vals(new AvgPool2d(2).forward(x)), [2.5, 4.5, 10.5, 12.5]);
    expect(new MaxPool2d(3, 1).forward(x).shape).toEqual([1, 1, 2, 2]);
  });
});

describe("ReLU, Flatten, Dropout", () => {
  it("relu and flatten", () => {
    close(vals(new ReLU().forward(V([-1, 0, 2], [1, 3]))), [0, 0, 2]);
    const f = new Flatten().forward(V([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 1, 2]));
    expect(f.shape).toEqual([2, 4]);
    close(vals(f), [1, 2, 3, 4, 5, 6, 7, 8]);
  });
  it("dropout zeroes or scales by 1/(1-p) while training, identity in eval, seeded", () => {
    const x = V(
      Array.from({ length: 1000 }, () => 1),
      [10, 100],
    );
    const d = new Dropout(0.25, { generator: new Generator(3) });
    const y = vals(d.forward(x));
    const zeros = y.filter((v) => v === 0).length;
    expect(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6)).toBe(true);
    expect(zeros).toBeGreaterThan(180);
    expect(zeros).toBeLessThan(320);
    expect(vals(new Dropout(0.25, { generator: new Generator(3) }).forward(x))).toEqual(y);
    d.eval();
    expect(d.forward(x)).toBe(x);
    expect(() => new Dropout(1)).toThrow(/p must be in \[0, 1\)/);
  });
});

describe("BatchNorm", () => {
  it("1d: normalises per feature with batch statistics and updates running stats", () => {
    const bn = new BatchNorm1d(2, { momentum: 0.1 });
    const x = V([1, 10, 3, 20, 5, 30], [3, 2]);
    const y = vals(bn.forward(x));
    // feature 0: mean 3, biased var 8/3 ; feature 1: mean 20, var 200/3
    const s0 = Math.sqrt(8 / 3 + 1e-5);
    const s1 = Math.sqrt(200 / 3 + 1e-5);
    close(y, [-2 / s0, -10 / s1, 0, 0, 2 / s0, 10 / s1]);
    // running stats (PyTorch convention): 0.9 * old + 0.1 * batch, unbiased variance
    close(Array.from(bn.runningMean.data), [0.3, 2]);
    close(Array.from(bn.runningVar.data), [0.9 + 0.1 * 4, 0.9 + 0.1 * 100]);
    bn.eval();
    const z = vals(bn.forward(V([0.3, 2], [1, 2])));
    close(z, [0, 0]);
  });
  it("2d: statistics per channel over batch and space", () => {
    const bn = new BatchNorm2d(1);
    setData(bn.weight, [2]);
    setData(bn.bias, [1]);
    const y = vals(bn.forward(V([0, 2, 4, 6], [1, 1, 2, 2])));
    const s = Math.sqrt(5 + 1e-5);
    close(y, [1 - 6 / s, 1 - 2 / s, 1 + 2 / s, 1 + 6 / s]);
    expect(bn.stateDict().has("running_var")).toBe(true);
    expect(() => bn.forward(V([1, 2], [1, 2]))).toThrow(
      /BatchNorm2d.forward: expected input \[N, 1, H, W\]/,
    );
  });
});

describe("Sequential and Module", () => {
  it("names parameters recursively, toggles training mode, counts parameters", () => {
    const g = new Generator(5);
    const inner = new Sequential(new Linear(4, 3, { generator: g }), new ReLU());
    const net = Sequential.named({
      body: inner,
      drop: new Dropout(0.5, { generator: g }),
      head: new Linear(3, 2, { generator: g }),
    });
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      "body.0.weight",
      "body.0.bias",
      "head.weight",
      "head.bias",
    ]);
    expect(net.numParameters()).toBe(4 * 3 + 3 + 3 * 2 + 2);
    expect(net.getParameter("head.bias").shape).toEqual([2]);
    expect(() => net.getParameter("head.gamma")).toThrow(
      /no parameter "head.gamma"; have body.0.weight/,
    );
    net.eval();
    expect(net.namedModules().every(([, m]) => !m.training)).toBe(true);
    net.train();
    expect(inner.layers[0]!.training).toBe(true);
    expect(net.forward(V(new Array(8).fill(1), [2, 4])).shape).toEqual([2, 2]);
  });
  it("loadStateDict copies into live storage, checks shapes and keys", () => {
    const a = new Sequential(new Linear(2, 2, { generator: new Generator(1) }), new BatchNorm1d(2));
    const b = new Sequential(new Linear(2, 2, { generator: new Generator(2) }), new BatchNorm1d(2));
    const w = b.parameters()[0]!;
    const before = w.data;
    b.loadStateDict(a.stateDict());
    expect(w.data).toBe(before);
    expect(Array.from(w.data.data)).toEqual(Array.from(a.parameters()[0]!.data.data));
    const sd = a.stateDict();
    sd.set("0.weight", T([1, 2, 3], [3]));
    expect(() => b.loadStateDict(sd)).toThrow(
      /shape mismatch for "0.weight": checkpoint has \[3\], model has \[2,2\]/,
    );
    const ints = a.stateDict();
    ints.set("0.weight", new Tensor(new Int32Array(4), [2, 2]));
    expect(() => b.loadStateDict(ints)).toThrow(
      /dtype mismatch for "0.weight": checkpoint has int32, model has float32/,
    );
    expect(Array.from(w.data.data)).toEqual(Array.from(a.parameters()[0]!.data.data));
    const partial = a.stateDict();
    partial.delete("1.running_mean");
    partial.set("extra", T([1], [1]));
    expect(() => b.loadStateDict(partial)).toThrow(
      /missing keys: 1.running_mean; unexpected keys: extra/,
    );
    expect(b.loadStateDict(partial, { strict: false })).toEqual({
      missingKeys: ["1.running_mean"],
      unexpectedKeys: ["extra"],
    });
  });
});

describe("Sequential's fused Conv2d + ReLU and Linear + ReLU", () => {
  /** The output and every parameter's gradient of Σ y·r, layer by layer or through forward. */
  function run(net: Sequential, x: Tensor, fused: boolean): number[][] {
    for (const p of net.parameters()) p.grad = null;
    let y = new Variable(x);
    if (fused) y = net.forward(y);
    else for (const m of net.layers) y = m.forward(y);
    const r = randn(y.shape, new Generator(9), y.dtype);
    sum(mul(y, new Variable(r))).backward();
    return [Array.from(y.data.data), ...net.parameters().map((p) => Array.from(p.grad!.data))];
  }

  it("gives the numbers of running the layers one by one, bit for bit (both kernel paths, 1-2 threads)", async () => {
    // conv3 and conv4 (8 input channels, 6x6 and 6x6 outputs) take the wasm path's Winograd route
    const net = smallCnn({
      imageSize: 12,
      channels: [4, 8, 8, 8],
      hidden: 16,
      generator: new Generator(3),
    });
    const x = randn([3, 1, 12, 12], new Generator(4));
    const pools = [
      createPool({ threads: 1, kernels: "asm" }),
      createPool({ threads: 1, kernels: "wasm" }),
      createPool({ threads: 2, kernels: "wasm", minParallelFlops: 0 }),
    ];
    try {
      for (const pool of pools) {
        await pool.ready();
        setMatrixPool(pool);
        expect(run(net, x, true)).toEqual(run(net, x, false));
      }
    } finally {
      setMatrixPool(undefined);
      for (const pool of pools) await pool.close();
    }
  });

  it("fuses LeNet-300-100's Linear + ReLU pairs to the numbers of the layers one by one (both kernel paths, 1-2 threads, in an arena)", async () => {
    const net = lenet300100({ generator: new Generator(5) });
    const x = randn([6, 784], new Generator(6));
    const pools = [
      createPool({ threads: 1, kernels: "asm" }),
      createPool({ threads: 1, kernels: "wasm" }),
      createPool({ threads: 2, kernels: "wasm", minParallelFlops: 0 }),
    ];
    const spy: string[] = [];
    for (const m of net.layers)
      if (m instanceof Linear) {
        const orig = m.forwardRelu.bind(m);
        m.forwardRelu = (v: Variable) => {
          spy.push("forwardRelu");
          return orig(v);
        };
      }
    try {
      for (const pool of pools) {
        await pool.ready();
        setMatrixPool(pool);
        const fused = new BufferArena().step(() => run(net, x, true));
        expect(fused).toEqual(run(net, x, false));
      }
    } finally {
      setMatrixPool(undefined);
      for (const pool of pools) await pool.close();
    }
    // fc1 + relu1 and fc2 + relu2, on each of the three pools; fc3 has no ReLU after it
    expect(spy).toHaveLength(6);
    const fc1 = net.layers.find((m) => m instanceof Linear) as Linear;
    expect(() => fc1.forwardRelu(new Variable(randn([2, 5], new Generator(1))))).toThrow(
      /Linear.forwardRelu: expected input \[N, 784\], got \[2,5\]/,
    );
  });

  it("fuses a layer whose own class defines forwardRelu, and runs a Linear subclass's own forward", () => {
    const g = new Generator(2);
    const calls: string[] = [];
    class Doubling extends Module {
      forward(x: Variable): Variable {
        calls.push("forward");
        return mul(x, new Variable(full([], 2)));
      }
      forwardRelu(x: Variable): Variable {
        calls.push("forwardRelu");
        return this.forward(x).relu();
      }
    }
    class LoggedLinear extends Linear {
      override forward(x: Variable): Variable {
        calls.push("linear forward");
        return super.forward(x);
      }
    }
    const x = new Variable(randn([2, 3], g));
    new Sequential(new Doubling(), new ReLU()).forward(x);
    expect(calls).toEqual(["forwardRelu", "forward"]);
    calls.length = 0;
    new Sequential(new LoggedLinear(3, 2, { generator: g }), new ReLU()).forward(x);
    expect(calls).toEqual(["linear forward"]);
  });

  it("runs a Conv2d subclass's own forward (only the exact classes are fused)", () => {
    const calls: string[] = [];
    class Logged extends Conv2d {
      override forward(x: Variable): Variable {
        calls.push("forward");
        return super.forward(x);
      }
    }
    const g = new Generator(1);
    const net = new Sequential(new Logged(1, 2, 3, { padding: 1, generator: g }), new ReLU());
    const y = net.forward(new Variable(randn([1, 1, 4, 4], g)));
    expect(calls).toEqual(["forward"]);
    expect(Math.min(...y.data.data)).toBe(0);
    // and the fused path is taken for the class itself: forwardRelu, not forward
    const plain = new Sequential(new Conv2d(1, 2, 3, { padding: 1, generator: g }), new ReLU());
    const spy: string[] = [];
    const conv = plain.layers[0] as Conv2d;
    const orig = conv.forwardRelu.bind(conv);
    conv.forwardRelu = (v: Variable) => {
      spy.push("forwardRelu");
      return orig(v);
    };
    plain.forward(new Variable(randn([1, 1, 4, 4], g)));
    expect(spy).toEqual(["forwardRelu"]);
    expect(() => conv.forwardRelu(new Variable(randn([1, 3, 4, 4], g)))).toThrow(
      /Conv2d.forwardRelu: expected input \[N, 1, H, W\], got \[1,3,4,4\]/,
    );
  });
});
