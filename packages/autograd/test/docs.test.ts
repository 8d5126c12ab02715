// The README's code blocks are the scripts verbatim, and the scripts do what the README says.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { Tensor } from "@tessera/tensor";
import { gradcheck } from "../src/index.ts";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const readme = readFileSync(here("../README.md"), "utf8");

describe("README", () => {
  it("shows scripts/readme-example.ts verbatim, and that script fits the regression", async () => {
    const example = readFileSync(here("../scripts/readme-example.ts"), "utf8");
    expect(readme).toContain("```ts\n" + example + "```");
    const { w, b, loss } = await import("../scripts/readme-example.ts");
    expect(w.data.get(0, 0)).toBeCloseTo(3, 4);
    expect(w.data.get(0, 1)).toBeCloseTo(-2, 4);
    expect(b.data.get(0)).toBeCloseTo(0.5, 4);
    expect(loss).toBeLessThan(1e-8);
    // the output quoted in the README is what the script prints
    const printed = `w = [ [ ${w.data.get(0, 0)}, ${w.data.get(0, 1)} ] ] b = [ ${b.data.get(0)} ] loss = ${loss}`;
    expect(readme).toContain("```\n" + printed + "\n```");
  });

  it("shows scripts/custom-op-example.ts verbatim, and its op passes gradcheck", async () => {
    const example = readFileSync(here("../scripts/custom-op-example.ts"), "utf8");
    expect(readme).toContain("```ts\n" + example + "```");
    const { softplus } = await import("../scripts/custom-op-example.ts");
    const x = new Tensor(Float64Array.from([-3, -0.5, 0.1, 2]), [4]);
    expect(gradcheck(softplus, [x]).ok).toBe(true);
    expect(softplus(new (await import("../src/index.ts")).Variable(x)).data.get(0)).toBeCloseTo(
      Math.log1p(Math.exp(-3)),
      14,
    );
  });

  it("lists every exported op in the op table", async () => {
    const api = await import("../src/index.ts");
    const ops = [
      "add",
      "sub",
      "mul",
      "div",
      "pow",
      "neg",
      "exp",
      "log",
      "sqrt",
      "sigmoid",
      "tanh",
      "relu",
      "leakyRelu",
      "matmul",
      "sum",
      "mean",
      "max",
      "min",
      "reshape",
      "flatten",
      "transpose",
      "permute",
      "broadcastTo",
      "unsqueeze",
      "squeeze",
      "slice",
      "concat",
      "stack",
      "logSoftmax",
      "softmax",
      "softmaxCrossEntropy",
      "linear",
      "conv2d",
      "maxPool2d",
      "avgPool2d",
      "dropout",
      "batchNorm",
    ];
    for (const op of ops) {
      expect(typeof (api as Record<string, unknown>)[op]).toBe("function");
      expect(readme).toContain(`\`${op}`);
    }
  });
});
