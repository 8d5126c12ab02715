// relu on the WebAssembly kernel path (float32: @tessera/matrix's f32x4 kernels) gives the
// values and gradients of the JS loops (asm path), special values included: ±0, ±Infinity, NaN.
import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Variable, mul, relu, setMatrixPool, sum } from "../src/index.ts";

const asm = createPool({ threads: 1, kernels: "asm" });
const wasm = createPool({ threads: 1, kernels: "wasm" });
afterAll(async () => {
  setMatrixPool(undefined);
  await asm.close();
  await wasm.close();
});

const value = fc.oneof(fc.constantFrom(0, -0, Infinity, -Infinity, NaN, 2.5, -1.5), fc.float());

/** relu(x) and d Σ relu(x)·r / dx on `pool`'s kernel path, as arrays (NaN kept, -0 kept). */
function run(pool: MatrixPool, x: number[], r: number[]): number[][] {
  setMatrixPool(pool);
  const xv = new Variable(T.fromArray(x, "float32"), { requiresGrad: true });
  const y = relu(xv);
  sum(mul(y, new Variable(T.fromArray(r, "float32")))).backward();
  setMatrixPool(undefined);
  return [Array.from(y.data.data), Array.from(xv.grad!.data)];
}

describe("relu on the WebAssembly kernels", () => {
  it("equals the JS loops in value and gradient (special values included)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            value,
            fc.oneof(fc.constantFrom(-0, 0), fc.float({ min: -4, max: 4, noNaN: true })),
          ),
          {
            minLength: 1,
            maxLength: 37,
          },
        ),
        (pairs) => {
          const x = pairs.map((p) => p[0]);
          const r = pairs.map((p) => p[1]);
          const [wy, wg] = run(wasm, x, r);
          const [ay, ag] = run(asm, x, r);
          // toEqual tells +0 from -0 and treats NaN as equal to NaN.
          expect(wy).toEqual(ay);
          expect(wg).toEqual(ag);
        },
      ),
      { numRuns: 100 },
    );
  });
});
