// maxPool2d and avgPool2d against direct window loops; gradients on inputs without ties.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import {
  Variable,
  avgPool2d,
  gradcheck,
  maxPool2d,
  mul,
  setMatrixPool,
  sum,
} from "../src/index.ts";
import { distinct, param, seedArb } from "./helpers.ts";

function naivePool(
  x: T.Tensor,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  kind: "max" | "avg",
): T.Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const oh = Math.floor((h - kh) / sh) + 1;
  const ow = Math.floor((w - kw) / sw) + 1;
  const y = T.zeros([n, c, oh, ow], "float64");
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          const vals: number[] = [];
          for (let u = 0; u < kh; u++)
            for (let v = 0; v < kw; v++) vals.push(x.get(i, ch, oy * sh + u, ox * sw + v));
          y.set(
            i,
            ch,
            oy,
            ox,
            kind === "max" ? Math.max(...vals) : vals.reduce((a, b) => a + b, 0) / vals.length,
          );
        }
  return y;
}

const arbPool = fc.record({
  n: fc.integer({ min: 0, max: 2 }),
  c: fc.integer({ min: 1, max: 2 }),
  kh: fc.integer({ min: 1, max: 3 }),
  kw: fc.integer({ min: 1, max: 3 }),
  sh: fc.integer({ min: 1, max: 3 }),
  sw: fc.integer({ min: 1, max: 3 }),
  eh: fc.integer({ min: 0, max: 3 }),
  ew: fc.integer({ min: 0, max: 3 }),
  seed: seedArb,
});

describe("pooling", () => {
  for (const [kind, op] of [
    ["max", maxPool2d],
    ["avg", avgPool2d],
  ] as const) {
    it(`${kind}Pool2d equals a direct window loop; gradients match finite differences`, () => {
      fc.assert(
        fc.property(arbPool, ({ n, c, kh, kw, sh, sw, eh, ew, seed }) => {
          const x = distinct([n, c, kh + eh, kw + ew], seed);
          const opts = {
            kernel: [kh, kw] as [number, number],
            stride: [sh, sw] as [number, number],
          };
          const y = op(new Variable(x), opts);
          expect(T.allClose(y.data, naivePool(x, kh, kw, sh, sw, kind), 1e-12, 1e-12)).toBe(true);
          expect(gradcheck((v) => op(v, opts), [x]).ok).toBe(true);
        }),
        { numRuns: 30 },
      );
    });
  }

  it("stride defaults to the kernel; overlapping max windows add gradients", () => {
    const x = param(
      T.fromArray(
        [
          [
            [
              [1, 2, 0],
              [0, 5, 0],
              [0, 0, 1],
            ],
          ],
        ],
        "float64",
      ),
    );
    const y = maxPool2d(x, { kernel: 2, stride: 1 });
    expect(y.data.toArray()).toEqual([
      [
        [
          [5, 5],
          [5, 5],
        ],
      ],
    ]);
    sum(y).backward();
    expect(x.grad!.get(0, 0, 1, 1)).toBe(4);
    expect(maxPool2d(new Variable(T.zeros([1, 1, 4, 4])), { kernel: 2 }).shape).toEqual([
      1, 1, 2, 2,
    ]);
  });

  it("explains bad shapes and options", () => {
    expect(() => maxPool2d(new Variable(T.zeros([1, 4, 4])), { kernel: 2 })).toThrow(
      /maxPool2d: x must be 4-d/,
    );
    expect(() => avgPool2d(new Variable(T.zeros([1, 1, 2, 2])), { kernel: 3 })).toThrow(
      /avgPool2d: kernel 3x3 does not fit/,
    );
    expect(() => maxPool2d(new Variable(T.zeros([1, 1, 2, 2])), { kernel: 0 })).toThrow(
      /maxPool2d: kernel must be an integer >= 1/,
    );
  });
});

describe("maxPool2d on the WebAssembly kernels (float32)", () => {
  let asm: MatrixPool;
  let wasm: MatrixPool;
  beforeAll(() => {
    asm = createPool({ threads: 1, kernels: "asm" });
    wasm = createPool({ threads: 1, kernels: "wasm" });
  });
  afterAll(async () => {
    setMatrixPool(undefined);
    await asm.close();
    await wasm.close();
  });

  /** y and dΣ(y·r)/dx on `pool`'s kernel path. */
  function run(
    pool: MatrixPool,
    x: T.Tensor,
    r: T.Tensor,
    k: [number, number],
    s: [number, number],
  ) {
    setMatrixPool(pool);
    const xv = new Variable(x, { requiresGrad: true });
    const y = maxPool2d(xv, { kernel: k, stride: s });
    sum(mul(y, new Variable(r))).backward();
    setMatrixPool(undefined);
    return [Array.from(y.data.data), Array.from(xv.grad!.data)];
  }

  it("gives the JS loop's outputs and gradients bitwise (ties included)", () => {
    fc.assert(
      fc.property(arbPool, ({ n, c, kh, kw, sh, sw, eh, ew, seed }) => {
        const g = new T.Generator(seed);
        // Values on a coarse grid: many ties, so the first-maximum rule is exercised.
        const shape = [n, c, kh + eh, kw + ew];
        const size = shape.reduce((a, b) => a * b, 1);
        const x = new T.Tensor(
          Float32Array.from({ length: size }, () => Math.round(4 * g.nextFloat())),
          shape,
        );
        const oh = Math.floor(eh / sh) + 1;
        const ow = Math.floor(ew / sw) + 1;
        const r = T.randn([n, c, oh, ow], g, "float32");
        expect(run(wasm, x, r, [kh, kw], [sh, sw])).toEqual(run(asm, x, r, [kh, kw], [sh, sw]));
      }),
      { numRuns: 40 },
    );
  });
});
