// Shared test inputs: seeded random tensors and fast-check arbitraries for shapes,
// including 0-size and 1-size dims, and pairs of shapes that broadcast.
import fc from "fast-check";
import { Generator, Tensor, randn, uniform } from "@tessera/tensor";
import { createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Variable } from "../src/index.ts";

export function normal64(shape: readonly number[], seed: number, std = 1): Tensor {
  return randn(shape, new Generator(seed), "float64", 0, std);
}

export function uniform64(shape: readonly number[], lo: number, hi: number, seed: number): Tensor {
  return uniform(shape, lo, hi, new Generator(seed), "float64");
}

/** Values whose magnitude is at least `gap` (away from the kink of relu and friends). */
export function awayFromZero(shape: readonly number[], seed: number, gap = 0.05): Tensor {
  const t = uniform64(shape, -1, 1, seed);
  const d = t.data;
  for (let i = 0; i < d.length; i++) d[i] = Math.sign(d[i]! || 1) * (gap + Math.abs(d[i]!));
  return t;
}

/**
 * Distinct values spaced at least 0.01 apart (a shuffled ramp plus small noise), so max and
 * max-pooling have no ties within finite-difference reach.
 */
export function distinct(shape: readonly number[], seed: number): Tensor {
  const g = new Generator(seed);
  let n = 1;
  for (const s of shape) n *= s;
  const perm = g.permutation(n);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = perm[i]! * 0.05 + g.nextFloat() * 0.02 - 1;
  return new Tensor(data, shape);
}

export function param(t: Tensor, name?: string): Variable {
  return new Variable(t, { requiresGrad: true, ...(name ? { name } : {}) });
}

/** A shape of rank 0..maxRank with dims in 0..maxDim (or 1..maxDim without zeros). */
export function arbShape(maxRank = 3, maxDim = 4, allowZero = true): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: allowZero ? 0 : 1, max: maxDim }), {
    minLength: 0,
    maxLength: maxRank,
  });
}

/** Two shapes that broadcast together: b drops some leading axes of a and has 1s in some places; randomly swapped. */
export function arbBroadcastPair(): fc.Arbitrary<[number[], number[]]> {
  return fc
    .tuple(
      arbShape(3, 3),
      fc.nat(3),
      fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
      fc.boolean(),
    )
    .map(([a, drop, ones, swap]) => {
      const b = a.slice(Math.min(drop, a.length)).map((d, i) => (ones[i] ? 1 : d));
      return (swap ? [b, a] : [a, b]) as [number[], number[]];
    });
}

export const seedArb = fc.integer({ min: 0, max: 1_000_000 });

/** Plain nested-loop reference: element of a packed row-major array at multi-index. */
export function at(t: Tensor, ...idx: number[]): number {
  return t.get(...idx);
}

/**
 * Where a fused op is checked against its unfused composition: [dtype, pool] for float64 and
 * float32 on the asm.js path, float32 on the WebAssembly path (one-thread pools have no workers:
 * they carry the kernel path to every product), and float32 on a two-thread wasm pool that
 * splits every job it can. Set each pool with setMatrixPool; close() when done.
 */
export async function kernelPathRuns(): Promise<{
  runs: (readonly ["float64" | "float32", MatrixPool])[];
  two: MatrixPool;
  close: () => Promise<void>;
}> {
  const two = createPool({ threads: 2, kernels: "wasm", minParallelFlops: 0 });
  const oneAsm = createPool({ threads: 1, kernels: "asm" });
  const oneWasm = createPool({ threads: 1, kernels: "wasm" });
  await two.ready();
  return {
    runs: [
      ["float64", oneAsm],
      ["float32", oneAsm],
      ["float32", oneWasm],
      ["float32", two],
    ],
    two,
    close: () => Promise.all([two, oneAsm, oneWasm].map((p) => p.close())).then(() => undefined),
  };
}
