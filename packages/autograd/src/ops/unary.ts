// Smooth one-input ops. Each backward uses whichever of input x or output y makes the
// derivative cheapest: exp' = y, log' = 1/x, sqrt' = 1/(2y), sigmoid' = y(1-y), tanh' = 1-y².
import type { Variable } from "../variable.ts";
import { pointwise } from "./pointwise.ts";
import type { FloatArray } from "../util.ts";
import { record, toVariable } from "../record.ts";
import type { Input } from "../record.ts";

export function exp(x: Variable): Variable {
  return pointwise(
    "exp",
    x,
    (a, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.exp(a[i]!);
    },
    (g, _a, y, gx, n) => {
      for (let i = 0; i < n; i++) gx[i] = g[i]! * y[i]!;
    },
  );
}

/** Natural logarithm (log of a negative number is NaN, of 0 is -Infinity). */
export function log(x: Variable): Variable {
  return pointwise(
    "log",
    x,
    (a, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.log(a[i]!);
    },
    (g, a, _y, gx, n) => {
      for (let i = 0; i < n; i++) gx[i] = g[i]! / a[i]!;
    },
  );
}

export function sqrt(x: Variable): Variable {
  return pointwise(
    "sqrt",
    x,
    (a, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.sqrt(a[i]!);
    },
    (g, _a, y, gx, n) => {
      for (let i = 0; i < n; i++) gx[i] = (0.5 * g[i]!) / y[i]!;
    },
  );
}

function sigmoidFwd(a: FloatArray, y: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = a[i]!;
    // two branches so exp never overflows
    if (v >= 0) y[i] = 1 / (1 + Math.exp(-v));
    else {
      const e = Math.exp(v);
      y[i] = e / (1 + e);
    }
  }
}

/** 1 / (1 + e^-x), computed without overflow for large |x|. */
export function sigmoid(x: Variable): Variable {
  return pointwise("sigmoid", x, sigmoidFwd, (g, _a, y, gx, n) => {
    for (let i = 0; i < n; i++) {
      const s = y[i]!;
      gx[i] = g[i]! * s * (1 - s);
    }
  });
}

export function tanh(x: Variable): Variable {
  return pointwise(
    "tanh",
    x,
    (a, y, n) => {
      for (let i = 0; i < n; i++) y[i] = Math.tanh(a[i]!);
    },
    (g, _a, y, gx, n) => {
      for (let i = 0; i < n; i++) {
        const t = y[i]!;
        gx[i] = g[i]! * (1 - t * t);
      }
    },
  );
}

/** -x. Accepts a Tensor or number too (giving a constant result). */
export function neg(x: Input): Variable {
  const v = toVariable("neg", x);
  return record("neg", v.data.neg(), [v], (g) => [g.neg()]);
}
