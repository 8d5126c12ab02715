// Dense GEMM kernels. gemmRows computes output rows [r0, r1) so the pool can split rows.
import type { FloatArray, Trans } from "./types.ts";

/** Simple reference-order kernel: every C element is one k-ordered sum. */
export function gemmRows(
  trans: Trans,
  a: FloatArray,
  b: FloatArray,
  c: FloatArray,
  m: number,
  k: number,
  n: number,
  r0: number,
  r1: number,
): void {
  const sa = trans === 1 ? 1 : k; // stride between rows of logical A
  const ka = trans === 1 ? m : 1; // stride along k in logical A
  const sb = trans === 2 ? 1 : n; // stride along k in logical B
  const jb = trans === 2 ? k : 1; // stride between columns of logical B
  for (let i = r0; i < r1; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * sa + p * ka]! * b[p * sb + j * jb]!;
      c[i * n + j] = s;
    }
  }
  void m;
}
