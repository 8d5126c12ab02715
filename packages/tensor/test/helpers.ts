// Test helpers: random shapes and strided views with known contents, plus naive references
// that work on plain nested arrays and index lists (nothing from the code under test
// except toArray, which the view tests check against scijs ndarray).
import fc from "fast-check";
import { Tensor } from "../src/index.ts";
import type { DType, NestedArray } from "../src/index.ts";

export const NUM_RUNS = 60;

/** A shape of rank 0..maxRank with dims 0..maxDim. */
export function arbShape(maxRank = 4, maxDim = 7, minRank = 0): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 0, max: maxDim }), { minLength: minRank, maxLength: maxRank });
}

/** Deterministic small values (multiples of 1/8 in [-4, 4]) so float sums are exact. */
export function lcgValues(seed: number, n: number): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(((s >>> 16) % 65) / 8 - 4);
  }
  return out;
}

export function prod(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Every multi-index of `shape` in row-major order. */
export function allIndices(shape: readonly number[]): number[][] {
  const out: number[][] = [];
  const n = prod(shape);
  for (let f = 0; f < n; f++) {
    const idx = new Array<number>(shape.length);
    let r = f;
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = r % shape[d]!;
      r = Math.floor(r / shape[d]!);
    }
    out.push(idx);
  }
  return out;
}

export function nestedGet(x: NestedArray, idx: readonly number[]): number {
  let v: NestedArray = x;
  for (const i of idx) v = (v as NestedArray[])[i]!;
  return v as number;
}

export interface ViewCase {
  view: Tensor;
  /** base tensor the view was cut from, with the recipe, so a test can redo it. */
  base: Tensor;
  perm: number[];
  starts: number[];
  steps: number[];
}

/**
 * A tensor of `shape` that is (usually) a non-contiguous view: a slice with steps in
 * {-2,-1,1,2} and offsets from a larger packed base, then a random axis permutation.
 */
export function arbView(
  shapeArb: fc.Arbitrary<number[]>,
  dtype: DType = "float64",
): fc.Arbitrary<ViewCase> {
  return shapeArb.chain((shape) => {
    const r = shape.length;
    return fc
      .record({
        perm: fc.shuffledSubarray(
          Array.from({ length: r }, (_, i) => i),
          { minLength: r, maxLength: r },
        ),
        steps: fc.array(fc.constantFrom(-2, -1, 1, 1, 2), { minLength: r, maxLength: r }),
        pads: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: r, maxLength: r }),
        seed: fc.integer({ min: 1, max: 1e9 }),
      })
      .map(({ perm, steps, pads, seed }) => {
        // pre-permutation axis perm[i] becomes result axis i, so it must have size shape[i]
        const pre = new Array<number>(r);
        for (let i = 0; i < r; i++) pre[perm[i]!] = shape[i]!;
        const preSteps = new Array<number>(r);
        for (let i = 0; i < r; i++) preSteps[perm[i]!] = steps[i]!;
        const baseShape = pre.map((d, j) => Math.max(d * Math.abs(preSteps[j]!), 1) + pads[j]!);
        const n = prod(baseShape);
        const vals = lcgValues(seed, n);
        const data =
          dtype === "float64"
            ? new Float64Array(vals)
            : dtype === "float32"
              ? new Float32Array(vals)
              : new Int32Array(vals.map((v) => Math.round(v * 2)));
        const base = new Tensor(data, baseShape);
        const starts: number[] = [];
        const specs = pre.map((d, j) => {
          const st = preSteps[j]!;
          const span = d === 0 ? 0 : (d - 1) * Math.abs(st) + 1;
          const room = baseShape[j]! - span;
          const lo = room > 0 ? seed % (room + 1) : 0;
          if (st > 0) {
            starts.push(lo);
            return { start: lo, stop: lo + span, step: st };
          }
          const start = lo + span - 1;
          starts.push(start);
          return d === 0
            ? { start: 0, stop: 0, step: 1 }
            : { start, stop: start - span >= 0 ? start - span : null, step: st };
        });
        const view = base.slice(...specs).permute(perm);
        return { view, base, perm, starts, steps: preSteps };
      });
  });
}

/** NumPy broadcasting reference on shapes. */
export function refBroadcast(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Index into an operand of shape `s` for a result index `idx` under broadcasting. */
export function srcIndex(s: readonly number[], idx: readonly number[]): number[] {
  const lead = idx.length - s.length;
  return s.map((d, i) => (d === 1 ? 0 : idx[lead + i]!));
}
