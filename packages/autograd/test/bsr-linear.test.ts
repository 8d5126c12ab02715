// bsrLinear: gradients against finite differences (float64) over shapes, ragged block sizes and
// densities 0..1 (empty block rows, an empty matrix); values and gradients against the masked
// dense linear; bitwise equality with and without a 2-thread pool; the fused ReLU against
// relu(bsrLinear(...)); argument errors.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as T from "@tessera/tensor";
import { BsrMatrix, createPool, kernelPath } from "@tessera/matrix";
import type { FloatArray, MatrixPool } from "@tessera/matrix";
import {
  Variable,
  bsrLinear,
  gradcheck,
  linear,
  mul,
  relu,
  setMatrixPool,
  sum,
} from "../src/index.ts";
import { kernelPathRuns, normal64, seedArb } from "./helpers.ts";

/** A block mask of the [out, in] grid in R x C blocks with each block kept with probability `density`. */
function blockMask(
  outF: number,
  inF: number,
  R: number,
  C: number,
  density: number,
  seed: number,
): Uint8Array {
  const g = new T.Generator(seed);
  const m = new Uint8Array(Math.ceil(outF / R) * Math.ceil(inF / C));
  for (let i = 0; i < m.length; i++) m[i] = g.nextFloat() < density ? 1 : 0;
  return m;
}

/** The BsrMatrix of `w` [out, in] keeping the masked blocks, and the Variable over its data. */
function bsrOf<Tf extends FloatArray>(
  w: Tf,
  outF: number,
  inF: number,
  block: [number, number],
  mask: Uint8Array,
): { m: BsrMatrix<FloatArray>; data: Variable } {
  const m = BsrMatrix.fromDense(w, outF, inF, block, { mask }) as BsrMatrix<FloatArray>;
  const data = new Variable(new T.Tensor(m.data, [m.nnzBlocks, block[0], block[1]]), {
    requiresGrad: true,
  });
  return { m, data };
}

/** Same pattern as `m`, values from the (possibly copied) tensor of `d`. */
function withData(m: BsrMatrix<FloatArray>, d: Variable): BsrMatrix<FloatArray> {
  return BsrMatrix.fromArrays({
    rows: m.rows,
    cols: m.cols,
    blockShape: m.blockShape,
    indptr: m.indptr,
    indices: m.indices,
    data: d.data.data as FloatArray,
  }) as BsrMatrix<FloatArray>;
}

const caseArb = fc.record({
  lead: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
  inF: fc.integer({ min: 1, max: 11 }),
  outF: fc.integer({ min: 1, max: 9 }),
  R: fc.integer({ min: 1, max: 4 }),
  C: fc.integer({ min: 1, max: 4 }),
  density: fc.constantFrom(0, 0.1, 0.3, 0.5, 0.8, 1),
  withBias: fc.boolean(),
  seed: seedArb,
});

describe("bsrLinear", () => {
  it("gradients match finite differences in float64 (ragged blocks, densities 0..1)", () => {
    fc.assert(
      fc.property(caseArb, ({ lead, inF, outF, R, C, density, withBias, seed }) => {
        const w = normal64([outF, inF], seed + 1).data as Float64Array;
        const { m, data } = bsrOf(w, outF, inF, [R, C], blockMask(outF, inF, R, C, density, seed));
        const x = normal64([...lead, inF], seed);
        const b = normal64([outF], seed + 2);
        const r = withBias
          ? gradcheck((a, d, c) => bsrLinear(a, withData(m, d), d, c), [x, data.data, b])
          : gradcheck((a, d) => bsrLinear(a, withData(m, d), d), [x, data.data]);
        expect(r.ok).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("with relu: true equals relu(bsrLinear(...)) bit for bit (float64, float32 on both paths, 1-2 threads) and passes gradcheck", async () => {
    const { runs, close } = await kernelPathRuns();
    // Σ r·(y·w2ᵀ), so that the upstream gradient comes out of a product as in a network
    const both = (
      x: T.Tensor,
      w: T.Tensor,
      b: T.Tensor | null,
      r: T.Tensor,
      block: [number, number],
      mask: Uint8Array,
      fused: boolean,
    ) => {
      const [outF, inF] = [w.shape[0]!, w.shape[1]!];
      const { m, data } = bsrOf(w.data as FloatArray, outF, inF, block, mask);
      const xv = new Variable(x, { requiresGrad: true });
      const bv = b === null ? null : new Variable(b, { requiresGrad: true });
      const y = fused
        ? bsrLinear(xv, m, data, bv, { relu: true })
        : relu(bsrLinear(xv, m, data, bv));
      const w2 = new Variable(normal64([3, outF], 11).astype(w.dtype));
      sum(mul(linear(y, w2), new Variable(r))).backward();
      return [y.data, xv.grad!, data.grad!, ...(bv ? [bv.grad!] : [])].map((t) =>
        Array.from(t.data),
      );
    };
    try {
      fc.assert(
        fc.property(caseArb, ({ lead, inF, outF, R, C, density, withBias, seed }) => {
          const rows = lead.reduce((p, d) => p * d, 1);
          const x = normal64([rows, inF], seed);
          const w = normal64([outF, inF], seed + 1);
          const b = normal64([outF], seed + 2);
          const r = normal64([rows, 3], seed + 3);
          const mask = blockMask(outF, inF, R, C, density, seed);
          for (const [dtype, pool] of runs) {
            setMatrixPool(pool);
            const [xt, wt, bt, rt] = [x, w, b, r].map((v) => v.astype(dtype));
            const bias = withBias ? bt! : null;
            expect(both(xt!, wt!, bias, rt!, [R, C], mask, true)).toEqual(
              both(xt!, wt!, bias, rt!, [R, C], mask, false),
            );
          }
          setMatrixPool(undefined);
          const wd = w.data as Float64Array;
          const { m, data } = bsrOf(wd, outF, inF, [R, C], mask);
          const g = withBias
            ? gradcheck(
                (a, d, c) => bsrLinear(a, withData(m, d), d, c, { relu: true }),
                [x, data.data, b],
              )
            : gradcheck(
                (a, d) => bsrLinear(a, withData(m, d), d, null, { relu: true }),
                [x, data.data],
              );
          expect(g.ok).toBe(true);
        }),
        { numRuns: 30 },
      );
      // the check sees a ReLU left out of the gradient: the gate matters where y <= 0
      const x = normal64([4, 6], 5);
      const w = normal64([5, 6], 6);
      const b = normal64([5], 7);
      const r = normal64([4, 3], 8);
      const mask = new Uint8Array(6).fill(1);
      const fused = both(x, w, b, r, [2, 3], mask, true);
      const { m, data } = bsrOf(w.data as Float64Array, 5, 6, [2, 3], mask);
      const xv = new Variable(x, { requiresGrad: true });
      const y = bsrLinear(xv, m, data, new Variable(b));
      sum(mul(linear(y, new Variable(normal64([3, 5], 11))), new Variable(r))).backward();
      expect(fused[1]).not.toEqual(Array.from(xv.grad!.data));
      expect(() => bsrLinear(xv, m, data, null, { relu: "no" as unknown as boolean })).toThrow(
        "bsrLinear: options.relu must be a boolean, got string",
      );
    } finally {
      setMatrixPool(undefined);
      await close();
    }
  });

  it("equals the masked dense linear (values, dx, stored blocks of dW, db) in float32", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.integer({ min: 1, max: 20 }),
        ({ inF, outF, R, C, density, withBias, seed }, batch) => {
          const g = new T.Generator(seed);
          const mask = blockMask(outF, inF, R, C, density, seed);
          const w = T.randn([outF, inF], g);
          const { m, data } = bsrOf(w.data as Float32Array, outF, inF, [R, C], mask);
          // The dense reference holds exactly the stored blocks' values.
          const wm = new Variable(new T.Tensor(m.toDense(), [outF, inF]), { requiresGrad: true });
          const xd = T.randn([batch, inF], g);
          const bd = T.randn([outF], g);
          const xs = new Variable(xd.clone(), { requiresGrad: true });
          const xr = new Variable(xd.clone(), { requiresGrad: true });
          const bs = withBias ? new Variable(bd.clone(), { requiresGrad: true }) : null;
          const br = withBias ? new Variable(bd.clone(), { requiresGrad: true }) : null;
          const proj = T.randn([batch, outF], g);
          const ys = bsrLinear(xs, m, data, bs);
          const yr = linear(xr, wm, br);
          expect(T.allClose(ys.data, yr.data, 1e-5, 1e-5)).toBe(true);
          sum(ys.mul(new Variable(proj))).backward();
          sum(yr.mul(new Variable(proj))).backward();
          expect(T.allClose(xs.grad!, xr.grad!, 1e-5, 1e-5)).toBe(true);
          if (withBias) expect(T.allClose(bs!.grad!, br!.grad!, 1e-5, 1e-5)).toBe(true);
          // d(data) scattered back to dense is the dense dW at stored blocks, 0 elsewhere
          // (and 0 in the padding of ragged blocks: toDense drops the padding, checked below).
          const gm = withData(m, new Variable(data.grad!));
          const scattered = new T.Tensor(gm.toDense(), [outF, inF]);
          const maskedDense = T.mul(
            wm.grad!,
            new T.Tensor(blockMaskDense(mask, outF, inF, R, C), [outF, inF]),
          );
          expect(T.allClose(scattered, maskedDense, 1e-4, 1e-5)).toBe(true);
          expect(paddingOf(gm).every((v) => v === 0)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("equals the masked dense linear at LeNet sizes (past the kernels' 4x4 tiles, ragged 8x8 edges)", () => {
    for (const [outF, inF, R, C, density, batch] of [
      [300, 784, 8, 8, 0.3, 65],
      [100, 300, 3, 7, 0.6, 128],
      [10, 100, 4, 4, 1, 33],
    ] as const) {
      // Both sides accumulate in float32 on the wasm path (sums of up to 784 products of unit
      // normals: 5e-5 apart near zero, where the asm path's double sums agree to 1e-5).
      const atol = kernelPath() === "wasm" ? 2e-4 : 1e-5;
      const g = new T.Generator(outF + inF);
      const mask = blockMask(outF, inF, R, C, density, outF);
      const { m, data } = bsrOf(
        T.randn([outF, inF], g).data as Float32Array,
        outF,
        inF,
        [R, C],
        mask,
      );
      const wm = new Variable(new T.Tensor(m.toDense(), [outF, inF]), { requiresGrad: true });
      const xd = T.randn([batch, inF], g);
      const xs = new Variable(xd.clone(), { requiresGrad: true });
      const xr = new Variable(xd.clone(), { requiresGrad: true });
      const proj = new Variable(T.randn([batch, outF], g));
      const ys = bsrLinear(xs, m, data);
      const yr = linear(xr, wm);
      expect(T.allClose(ys.data, yr.data, 1e-4, atol)).toBe(true);
      sum(ys.mul(proj)).backward();
      sum(yr.mul(proj)).backward();
      expect(T.allClose(xs.grad!, xr.grad!, 1e-4, atol)).toBe(true);
      const scattered = new T.Tensor(withData(m, new Variable(data.grad!)).toDense(), [outF, inF]);
      const dense = new T.Tensor(blockMaskDense(mask, outF, inF, R, C), [outF, inF]);
      expect(T.allClose(scattered, T.mul(wm.grad!, dense), 1e-4, 1e-4)).toBe(true);
    }
  });

  it("a deliberately wrong weight gradient is caught by the gradcheck", () => {
    // The check can fail: scale ddata by 1.01 through a wrapper and gradcheck must reject it.
    const w = normal64([5, 7], 3).data as Float64Array;
    const { m, data } = bsrOf(w, 5, 7, [2, 3], new Uint8Array([1, 0, 1, 1, 0, 1, 1, 1, 0]));
    const x = normal64([4, 7], 4);
    const r = gradcheck(
      (a, d) => {
        const y = bsrLinear(a, withData(m, d), d);
        // Only the recorded backward is scaled (the finite differences run under noGrad).
        const node = y._node;
        if (node === null) return y;
        const inner = node.backward;
        node.backward = (gy) => {
          const gs = inner(gy);
          const gd = gs[1]!;
          return [gs[0]!, T.mul(gd, 1.01), ...gs.slice(2)];
        };
        return y;
      },
      [x, data.data],
      { throwOnFailure: false },
    );
    expect(r.ok).toBe(false);
    expect(r.mismatches.every((mm) => mm.input === 1)).toBe(true);
  });

  it("skips dx when x needs no gradient and gives a 1-d y for a 1-d x", () => {
    const { m, data } = bsrOf(
      new Float32Array([1, 2, 3, 4, 5, 6]),
      2,
      3,
      [1, 2],
      new Uint8Array([1, 0, 0, 1]),
    );
    const x = new Variable(T.fromArray([1, 1, 1]));
    const y = bsrLinear(x, m, data);
    // Row 0 keeps block (0,0) = [1,2]; row 1 keeps block (1,1) = [6] (ragged, padded).
    expect(Array.from(y.data.data)).toEqual([3, 6]);
    sum(y).backward();
    expect(x.grad).toBeNull();
    expect(Array.from(data.grad!.data)).toEqual([1, 1, 1, 0]);
  });

  it("explains shape, dtype and aliasing errors", () => {
    const { m, data } = bsrOf(
      new Float32Array(12).fill(1),
      3,
      4,
      [2, 2],
      new Uint8Array([1, 1, 0, 1]),
    );
    const x = new Variable(T.zeros([5, 3]));
    expect(() => bsrLinear(x, m, data)).toThrow(
      "bsrLinear: x has 3 input features (shape [5,3]) but weight of shape [3,4] expects 4",
    );
    const x4 = new Variable(T.zeros([5, 4]));
    expect(() => bsrLinear(x4, m, new Variable(T.zeros([3, 2, 2])))).toThrow(
      /bsrLinear: data must wrap weight.data itself/,
    );
    expect(() => bsrLinear(x4, m, new Variable(T.zeros([2, 2, 2])))).toThrow(
      "bsrLinear: data must have shape [nnzBlocks, R, C] = [3,2,2] to match weight (3x4 in 2x2 blocks), got [2,2,2]",
    );
    expect(() => bsrLinear(x4, m, data, new Variable(T.zeros([4])))).toThrow(
      /bsrLinear: bias must have shape \[3\]/,
    );
    expect(() => bsrLinear(new Variable(T.zeros([5, 4], "float64")), m, data)).toThrow(
      /bsrLinear: x is float64 but weight is float32/,
    );
  });
});

describe("bsrLinear on a matrix pool", () => {
  let pool: MatrixPool;
  beforeAll(async () => {
    pool = createPool({ threads: 2, minParallelFlops: 0 });
    await pool.ready();
  });
  afterAll(async () => {
    setMatrixPool(undefined);
    await pool.close();
  });

  function run(outF: number, inF: number, block: [number, number], seed: number): T.Tensor[] {
    const g = new T.Generator(seed);
    const w = T.randn([outF, inF], g);
    const mask = blockMask(outF, inF, block[0], block[1], 0.4, seed);
    const { m, data } = bsrOf(w.data as Float32Array, outF, inF, block, mask);
    const x = new Variable(T.randn([37, inF], g), { requiresGrad: true });
    const b = new Variable(T.randn([outF], g), { requiresGrad: true });
    const y = bsrLinear(x, m, data, b);
    sum(y.mul(new Variable(T.randn([37, outF], g)))).backward();
    return [y.data, x.grad!, data.grad!, b.grad!];
  }

  it("gives bitwise the same values and gradients as the calling thread alone", () => {
    for (const [outF, inF, block, seed] of [
      [300, 784, [4, 4], 1],
      [100, 300, [8, 8], 2],
      [10, 101, [3, 5], 3],
    ] as const) {
      setMatrixPool(undefined);
      const alone = run(outF, inF, [block[0], block[1]], seed);
      setMatrixPool(pool);
      const pooled = run(outF, inF, [block[0], block[1]], seed);
      setMatrixPool(undefined);
      pooled.forEach((t, i) => expect(T.equals(t, alone[i]!)).toBe(true));
    }
  });
});

/** 0/1 per element of [out, in] from a block mask. */
function blockMaskDense(
  mask: Uint8Array,
  outF: number,
  inF: number,
  R: number,
  C: number,
): Float32Array {
  const bc = Math.ceil(inF / C);
  const d = new Float32Array(outF * inF);
  for (let i = 0; i < outF; i++)
    for (let j = 0; j < inF; j++)
      d[i * inF + j] = mask[Math.floor(i / R) * bc + Math.floor(j / C)]!;
  return d;
}

/** The stored values of m that lie outside its logical shape (padding of ragged edge blocks). */
function paddingOf(m: BsrMatrix<FloatArray>): number[] {
  const [R, C] = m.blockShape;
  const out: number[] = [];
  for (let i = 0; i < m.blockRows; i++)
    for (let p = m.indptr[i]!; p < m.indptr[i + 1]!; p++) {
      const j = m.indices[p]!;
      for (let r = 0; r < R; r++)
        for (let c = 0; c < C; c++)
          if (i * R + r >= m.rows || j * C + c >= m.cols) out.push(m.data[(p * R + r) * C + c]!);
    }
  return out;
}
