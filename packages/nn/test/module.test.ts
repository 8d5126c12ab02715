import { Generator, Tensor } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";
import { describe, expect, it } from "vitest";
import { Linear, ReLU, Sequential } from "../src/layers.ts";
import { Module } from "../src/module.ts";

const input = (n: number, features: number, seed: number): Variable => {
  const g = new Generator(seed);
  const x = new Float32Array(n * features);
  for (let i = 0; i < x.length; i++) x[i] = 2 * g.nextFloat() - 1;
  return new Variable(new Tensor(x, [n, features]));
};
const vals = (v: Variable) => Array.from(v.data.contiguous().data);

// A module that keeps its children in fields, as hand-written models do.
class TwoLayer extends Module {
  fc1: Module;
  fc2: Module;
  constructor(g: Generator) {
    super();
    this.fc1 = this.registerModule("fc1", new Linear(3, 4, { generator: g }));
    this.fc2 = this.registerModule("fc2", new Linear(4, 2, { generator: g }));
  }
  forward(x: Variable): Variable {
    return this.fc2.forward(this.fc1.forward(x));
  }
  registerAgain(): void {
    this.registerModule("fc1", new ReLU());
  }
}

describe("Module.getSubmodule / setSubmodule", () => {
  it("replaces a Sequential child in place: same name, same position, forward runs the new one", () => {
    const g = new Generator(3);
    const net = Sequential.named([
      ["fc1", new Linear(5, 4, { generator: g })],
      ["relu1", new ReLU()],
      ["fc2", new Linear(4, 2, { generator: g })],
    ]);
    const replacement = new Linear(5, 4, { generator: new Generator(99) });
    const x = input(3, 5, 1);
    const before = vals(net.forward(x));
    net.setSubmodule("fc1", replacement);
    expect(net.getSubmodule("fc1")).toBe(replacement);
    expect(net.layers[0]).toBe(replacement);
    expect(net.namedChildren().map(([n]) => n)).toEqual(["fc1", "relu1", "fc2"]);
    expect(net.namedParameters().map(([n]) => n)).toEqual([
      "fc1.weight",
      "fc1.bias",
      "fc2.weight",
      "fc2.bias",
    ]);
    expect(net.getParameter("fc1.weight")).toBe(replacement.weight);
    // What forward computes is exactly the chain with the new first layer.
    const want = vals(net.layers[2]!.forward(new ReLU().forward(replacement.forward(x))));
    const got = vals(net.forward(x));
    expect(got).toEqual(want);
    expect(got).not.toEqual(before);
  });

  it("walks dotted paths through nested Sequentials ('features.0')", () => {
    const g = new Generator(4);
    const inner = new Sequential(new Linear(3, 3, { generator: g }), new ReLU());
    const net = Sequential.named({ features: inner, head: new Linear(3, 1, { generator: g }) });
    expect(net.getSubmodule("features.1")).toBe(inner.layers[1]);
    expect(net.getSubmodule("")).toBe(net);
    const repl = new Linear(3, 3, { generator: new Generator(8) });
    net.setSubmodule("features.0", repl);
    expect(inner.layers[0]).toBe(repl);
    expect(net.getSubmodule("features.0")).toBe(repl);
    const x = input(2, 3, 2);
    const want = vals(net.layers[1]!.forward(new ReLU().forward(repl.forward(x))));
    expect(vals(net.forward(x))).toEqual(want);
  });

  it("updates the fields of a hand-written module that held the old child", () => {
    const m = new TwoLayer(new Generator(5));
    const repl = new Linear(3, 4, { generator: new Generator(6) });
    m.setSubmodule("fc1", repl);
    expect(m.fc1).toBe(repl);
    const x = input(2, 3, 3);
    expect(vals(m.forward(x))).toEqual(vals(m.fc2.forward(repl.forward(x))));
  });

  it("replaces only the named position when one module is registered twice", () => {
    const shared = new Linear(2, 2, { generator: new Generator(1) });
    const net = new Sequential(shared, shared);
    const repl = new Linear(2, 2, { generator: new Generator(2) });
    net.setSubmodule("1", repl);
    expect(net.layers[0]).toBe(shared);
    expect(net.layers[1]).toBe(repl);
  });

  it("throws naming the path and the existing children when a name is absent", () => {
    const g = new Generator(7);
    const net = Sequential.named({
      features: new Sequential(new Linear(2, 2, { generator: g })),
      head: new Linear(2, 1, { generator: g }),
    });
    const repl = new Linear(2, 1, { generator: g });
    expect(() => net.setSubmodule("fc9", repl)).toThrow(
      /Sequential.setSubmodule: no child "fc9" at "fc9"; Sequential has children "features", "head"/,
    );
    expect(() => net.setSubmodule("features.3", repl)).toThrow(
      /no child "3" at "features.3"; Sequential has children "0"/,
    );
    expect(() => net.getSubmodule("body.0")).toThrow(
      /Sequential.getSubmodule: no submodule "body.0": "body" is not a child of the root; Sequential has children "features", "head"/,
    );
    expect(() => net.getSubmodule("head.w")).toThrow(
      /"w" is not a child of "head"; Linear has no children/,
    );
    expect(() => net.setSubmodule("", repl)).toThrow(/path must name a child/);
    expect(() => net.setSubmodule("head", {} as Module)).toThrow(
      /the replacement for "head" must be a Module/,
    );
    // Nothing changed by the failed calls.
    expect(net.namedChildren().map(([n]) => n)).toEqual(["features", "head"]);
  });

  it("still refuses duplicate registration", () => {
    const m = new TwoLayer(new Generator(1));
    expect(() => m.registerAgain()).toThrow(/TwoLayer.registerModule: "fc1" is already registered/);
  });
});
