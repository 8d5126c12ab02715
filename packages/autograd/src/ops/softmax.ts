// logSoftmax and softmax along one axis, as loops over the packed input viewed as
// [outer, n, inner] (the axis has length n and stride inner). Max-shifted so large logits
// do not overflow.
//   logSoftmax backward: gx = g - softmax · Σ g
//   softmax backward:    gx = y · (g - Σ g·y)
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { allocLike, denseFloat, freshGrad, normAxis, wrap } from "../util.ts";

interface Geometry {
  outer: number;
  n: number;
  inner: number;
}

function geometry(fn: string, shape: readonly number[], axis: number): Geometry {
  const ax = normAxis(fn, axis, shape.length);
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < ax; i++) outer *= shape[i]!;
  for (let i = ax + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, n: shape[ax]!, inner };
}

/** log(softmax(x)) along `axis` (default the last), computed as x - logsumexp(x). */
export function logSoftmax(x: Variable, axis = -1): Variable {
  checkVariable("logSoftmax", "x", x);
  const { outer, n, inner } = geometry("logSoftmax", x.data.shape, axis);
  const xd = denseFloat(x.data);
  const y = allocLike(xd, x.data.size);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j;
      let m = -Infinity;
      for (let k = 0, p = base; k < n; k++, p += inner) if (xd[p]! > m) m = xd[p]!;
      let s = 0;
      for (let k = 0, p = base; k < n; k++, p += inner) s += Math.exp(xd[p]! - m);
      const lse = m + Math.log(s);
      for (let k = 0, p = base; k < n; k++, p += inner) y[p] = xd[p]! - lse;
    }
  }
  const shape = x.data.shape;
  const out = wrap(y, shape);
  return record("logSoftmax", out, [x], (g) => {
    const gd = denseFloat(g);
    const gx = allocLike(y, y.length);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let s = 0;
        for (let k = 0, p = base; k < n; k++, p += inner) s += gd[p]!;
        for (let k = 0, p = base; k < n; k++, p += inner) gx[p] = gd[p]! - Math.exp(y[p]!) * s;
      }
    }
    return [freshGrad(gx, shape)];
  });
}

/** softmax(x) along `axis` (default the last). */
export function softmax(x: Variable, axis = -1): Variable {
  checkVariable("softmax", "x", x);
  const { outer, n, inner } = geometry("softmax", x.data.shape, axis);
  const xd = denseFloat(x.data);
  const y = allocLike(xd, x.data.size);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      const base = o * n * inner + j;
      let m = -Infinity;
      for (let k = 0, p = base; k < n; k++, p += inner) if (xd[p]! > m) m = xd[p]!;
      let s = 0;
      for (let k = 0, p = base; k < n; k++, p += inner) {
        const e = Math.exp(xd[p]! - m);
        y[p] = e;
        s += e;
      }
      for (let k = 0, p = base; k < n; k++, p += inner) y[p] = y[p]! / s;
    }
  }
  const shape = x.data.shape;
  return record("softmax", wrap(y, shape), [x], (g) => {
    const gd = denseFloat(g);
    const gx = allocLike(y, y.length);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < inner; j++) {
        const base = o * n * inner + j;
        let s = 0;
        for (let k = 0, p = base; k < n; k++, p += inner) s += gd[p]! * y[p]!;
        for (let k = 0, p = base; k < n; k++, p += inner) gx[p] = y[p]! * (gd[p]! - s);
      }
    }
    return [freshGrad(gx, shape)];
  });
}
