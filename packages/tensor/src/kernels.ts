// Element-wise loop kernels, generated once per op at module load.
//
// Why generated code: a shared loop that calls `f(x, y)` per element sees many different
// `f`s and V8 stops inlining them (a megamorphic call per element). Writing the op's
// expression straight into its own loop (the technique of scijs's cwise compiler) gives each
// op monomorphic loops with no per-element calls or allocations. Expressions are fixed
// strings from this package, never user input.
//
// Every kernel receives two extra scalar parameters `p` and `q` (e.g. clamp bounds).
// Flat kernels carry a second copy of their loop for all-zero offsets (the usual case: fresh
// tensors): V8 removes the bounds checks of `a[i]` but not of `a[ao + i]`, which measured
// about twice as slow on 38,400 float32 elements.
// Kernels write through the output's own strides, so they also serve in-place updates.

import type { TypedArray } from "./dtype.ts";
import { coalesce } from "./shape.ts";

export type Arr = TypedArray;

export interface BinaryKernel {
  /** o[oo+i] = f(a[ao+i], b[bo+i]) for i < n: all three packed row-major, same shape. */
  same(
    o: Arr,
    oo: number,
    a: Arr,
    ao: number,
    b: Arr,
    bo: number,
    n: number,
    p: number,
    q: number,
  ): void;
  /** o[oo+i] = f(a[ao+i], s) */
  scalarRight(
    o: Arr,
    oo: number,
    a: Arr,
    ao: number,
    s: number,
    n: number,
    p: number,
    q: number,
  ): void;
  /** o[oo+i] = f(s, b[bo+i]) */
  scalarLeft(
    o: Arr,
    oo: number,
    s: number,
    b: Arr,
    bo: number,
    n: number,
    p: number,
    q: number,
  ): void;
  /** General case: every operand has its own strides over `shape` (0 for broadcast axes). */
  strided(
    o: Arr,
    oo: number,
    os: readonly number[],
    a: Arr,
    ao: number,
    as: readonly number[],
    b: Arr,
    bo: number,
    bs: readonly number[],
    shape: readonly number[],
    p: number,
    q: number,
  ): void;
}

export interface UnaryKernel {
  same(o: Arr, oo: number, a: Arr, ao: number, n: number, p: number, q: number): void;
  strided(
    o: Arr,
    oo: number,
    os: readonly number[],
    a: Arr,
    ao: number,
    as: readonly number[],
    shape: readonly number[],
    p: number,
    q: number,
  ): void;
}

// The odometer over all axes but the last, shared by the strided kernels. The innermost
// axis runs as a tight loop; `ptrs` are the per-operand running offsets.
function stridedBody(ptrs: string[], strides: string[], inner: string): string {
  const decl = ptrs.map((p) => `let ${p} = ${p}0;`).join("");
  const lastStr = strides.map((s) => `const ${s}L = ${s}[last];`).join("");
  const innerPtrs = ptrs.map((p) => `${p}i = ${p}`).join(", ");
  const innerInc = ptrs.map((p, i) => `${p}i += ${strides[i]}L`).join(", ");
  const step = ptrs.map((p, i) => `${p} += ${strides[i]}[k];`).join("");
  const back = ptrs.map((p, i) => `${p} -= ${strides[i]}[k] * shape[k];`).join("");
  return `
    const r = shape.length;
    for (let k = 0; k < r; k++) if (shape[k] === 0) return;
    if (r === 0) { const ${ptrs.map((p) => `${p}i = ${p}0`).join(", ")}; ${inner} return; }
    const last = r - 1;
    const n = shape[last];
    ${lastStr}
    ${decl}
    const idx = new Int32Array(r);
    for (;;) {
      for (let j = 0, ${innerPtrs}; j < n; j++, ${innerInc}) { ${inner} }
      let k = last - 1;
      for (; k >= 0; k--) {
        ${step}
        if (++idx[k] < shape[k]) break;
        ${back}
        idx[k] = 0;
      }
      if (k < 0) return;
    }`;
}

/** Builds a binary kernel from an expression in `x` (left), `y` (right), `p`, `q`. */
export function makeBinary(expr: string): BinaryKernel {
  const same = new Function(
    "o",
    "oo",
    "a",
    "ao",
    "b",
    "bo",
    "n",
    "p",
    "q",
    `if (oo === 0 && ao === 0 && bo === 0) {
      for (let i = 0; i < n; i++) { const x = a[i], y = b[i]; o[i] = ${expr}; }
    } else {
      for (let i = 0; i < n; i++) { const x = a[ao + i], y = b[bo + i]; o[oo + i] = ${expr}; }
    }`,
  ) as BinaryKernel["same"];
  const scalarRight = new Function(
    "o",
    "oo",
    "a",
    "ao",
    "y",
    "n",
    "p",
    "q",
    `if (oo === 0 && ao === 0) {
      for (let i = 0; i < n; i++) { const x = a[i]; o[i] = ${expr}; }
    } else {
      for (let i = 0; i < n; i++) { const x = a[ao + i]; o[oo + i] = ${expr}; }
    }`,
  ) as BinaryKernel["scalarRight"];
  const scalarLeft = new Function(
    "o",
    "oo",
    "x",
    "b",
    "bo",
    "n",
    "p",
    "q",
    `if (oo === 0 && bo === 0) {
      for (let i = 0; i < n; i++) { const y = b[i]; o[i] = ${expr}; }
    } else {
      for (let i = 0; i < n; i++) { const y = b[bo + i]; o[oo + i] = ${expr}; }
    }`,
  ) as BinaryKernel["scalarLeft"];
  const raw = new Function(
    "o",
    "po0",
    "os",
    "a",
    "pa0",
    "as",
    "b",
    "pb0",
    "bs",
    "shape",
    "p",
    "q",
    stridedBody(
      ["po", "pa", "pb"],
      ["os", "as", "bs"],
      `const x = a[pai], y = b[pbi]; o[poi] = ${expr};`,
    ),
  ) as BinaryKernel["strided"];
  const strided: BinaryKernel["strided"] = (o, oo, os, a, ao, as, b, bo, bs, shape, p, q) => {
    const c = coalesce(shape, [os, as, bs]);
    raw(o, oo, c.strides[0]!, a, ao, c.strides[1]!, b, bo, c.strides[2]!, c.shape, p, q);
  };
  return { same, scalarRight, scalarLeft, strided };
}

/** Builds a unary kernel from an expression in `x`, `p`, `q`. */
export function makeUnary(expr: string): UnaryKernel {
  const same = new Function(
    "o",
    "oo",
    "a",
    "ao",
    "n",
    "p",
    "q",
    `if (oo === 0 && ao === 0) {
      for (let i = 0; i < n; i++) { const x = a[i]; o[i] = ${expr}; }
    } else {
      for (let i = 0; i < n; i++) { const x = a[ao + i]; o[oo + i] = ${expr}; }
    }`,
  ) as UnaryKernel["same"];
  const raw = new Function(
    "o",
    "po0",
    "os",
    "a",
    "pa0",
    "as",
    "shape",
    "p",
    "q",
    stridedBody(["po", "pa"], ["os", "as"], `const x = a[pai]; o[poi] = ${expr};`),
  ) as UnaryKernel["strided"];
  const strided: UnaryKernel["strided"] = (o, oo, os, a, ao, as, shape, p, q) => {
    const c = coalesce(shape, [os, as]);
    raw(o, oo, c.strides[0]!, a, ao, c.strides[1]!, c.shape, p, q);
  };
  return { same, strided };
}

/** Ternary select: o = c != 0 ? a : b, all strided over `shape` (used by `where`). */
export const selectStrided = new Function(
  "o",
  "po0",
  "os",
  "c",
  "pc0",
  "cs",
  "a",
  "pa0",
  "as",
  "b",
  "pb0",
  "bs",
  "shape",
  stridedBody(
    ["po", "pc", "pa", "pb"],
    ["os", "cs", "as", "bs"],
    `o[poi] = c[pci] !== 0 ? a[pai] : b[pbi];`,
  ),
) as (
  o: Arr,
  o0: number,
  os: readonly number[],
  c: Arr,
  c0: number,
  cs: readonly number[],
  a: Arr,
  a0: number,
  as: readonly number[],
  b: Arr,
  b0: number,
  bs: readonly number[],
  shape: readonly number[],
) => void;

export interface Reducer {
  /** acc[...] = f(acc[...], b[...]) over `shape`; acc strides are 0 on reduced axes. */
  strided(
    o: Arr,
    o0: number,
    os: readonly number[],
    b: Arr,
    b0: number,
    bs: readonly number[],
    shape: readonly number[],
  ): void;
  /** Folds the packed run b[b0 .. b0+n) into `init` and returns the result. */
  flat(b: Arr, b0: number, n: number, init: number): number;
}

/** Builds a reduction kernel from an expression in `x` (accumulator) and `y` (element). */
export function makeReducer(expr: string): Reducer {
  const raw = new Function(
    "o",
    "po0",
    "os",
    "b",
    "pb0",
    "bs",
    "shape",
    stridedBody(["po", "pb"], ["os", "bs"], `const x = o[poi], y = b[pbi]; o[poi] = ${expr};`),
  ) as Reducer["strided"];
  const strided: Reducer["strided"] = (o, oo, os, b, bo, bs, shape) => {
    const c = coalesce(shape, [os, bs]);
    raw(o, oo, c.strides[0]!, b, bo, c.strides[1]!, c.shape);
  };
  const flat = new Function(
    "b",
    "b0",
    "n",
    "init",
    `let x = init;
    if (b0 === 0) for (let i = 0; i < n; i++) { const y = b[i]; x = ${expr}; }
    else for (let i = 0; i < n; i++) { const y = b[b0 + i]; x = ${expr}; }
    return x;`,
  ) as Reducer["flat"];
  return { strided, flat };
}
