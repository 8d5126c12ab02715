// Broadcasting binary arithmetic. Forward uses @tessera/tensor's element-wise kernels; each
// backward computes the full-shape gradient and sums it back to the input's own shape
// (sumToShape), which is what undoes broadcasting.
import type { Tensor } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { record, toPair } from "../record.ts";
import type { Input } from "../record.ts";

/** g reduced to v's shape, or null when v needs no gradient. */
function reduceTo(g: Tensor, v: Variable): Tensor | null {
  return v.requiresGrad ? g.sumToShape(v.data.shape) : null;
}

/** a + b with NumPy broadcasting; either side may be a number or a constant Tensor. */
export function add(a: Input, b: Input): Variable {
  const [x, y] = toPair("add", a, b);
  return record("add", x.data.add(y.data), [x, y], (g) => [reduceTo(g, x), reduceTo(g, y)]);
}

export function sub(a: Input, b: Input): Variable {
  const [x, y] = toPair("sub", a, b);
  return record("sub", x.data.sub(y.data), [x, y], (g) => [
    reduceTo(g, x),
    y.requiresGrad ? g.sumToShape(y.data.shape).neg() : null,
  ]);
}

export function mul(a: Input, b: Input): Variable {
  const [x, y] = toPair("mul", a, b);
  return record("mul", x.data.mul(y.data), [x, y], (g) => [
    x.requiresGrad ? reduceTo(g.mul(y.data), x) : null,
    y.requiresGrad ? reduceTo(g.mul(x.data), y) : null,
  ]);
}

export function div(a: Input, b: Input): Variable {
  const [x, y] = toPair("div", a, b);
  const out = x.data.div(y.data);
  return record("div", out, [x, y], (g) => [
    x.requiresGrad ? reduceTo(g.div(y.data), x) : null,
    // d(x/y)/dy = -x/y² = -out/y
    y.requiresGrad ? reduceTo(g.mul(out).div(y.data).neg(), y) : null,
  ]);
}

/**
 * a ** b. d/da = b·a^(b-1); d/db = a^b·ln(a), which needs a > 0 (NaN otherwise), so pass
 * the exponent as a number or a constant when the base can be negative.
 */
export function pow(a: Input, b: Input): Variable {
  const [x, y] = toPair("pow", a, b);
  const out = x.data.pow(y.data);
  return record("pow", out, [x, y], (g) => [
    x.requiresGrad ? reduceTo(g.mul(y.data).mul(x.data.pow(y.data.sub(1))), x) : null,
    y.requiresGrad ? reduceTo(g.mul(out).mul(x.data.log()), y) : null,
  ]);
}
