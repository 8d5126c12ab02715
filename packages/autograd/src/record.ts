// How an op joins the graph: it computes its output tensor, then calls record() with the
// inputs and a backward closure mapping the output gradient to one gradient per input.
import { Tensor } from "@tessera/tensor";
import type { DType } from "@tessera/tensor";
import { isGradEnabled } from "./grad-mode.ts";
import { Variable } from "./variable.ts";
import type { BackwardFn } from "./variable.ts";

/** What ops accept where a value is expected: a Variable, a constant Tensor, or a number. */
export type Input = Variable | Tensor | number;

/** True when an op on these inputs records a graph node (so it should save for backward). */
export function needsGraph(...inputs: readonly Variable[]): boolean {
  if (!isGradEnabled()) return false;
  for (const v of inputs) if (v.requiresGrad) return true;
  return false;
}

/**
 * Wraps `out` as the op's result. When recording is on and some input requires grad the
 * result remembers `op`, its inputs and `backward`; otherwise the closure is dropped here.
 * `backward` receives the gradient of the result (same shape, possibly a strided view) and
 * returns, per input, a gradient of that input's shape or null (no gradient needed).
 */
export function record(
  op: string,
  out: Tensor,
  parents: readonly Variable[],
  backward: BackwardFn,
): Variable {
  const v = new Variable(out);
  if (needsGraph(...parents)) {
    v.requiresGrad = true;
    v._node = { op, parents, backward };
  }
  return v;
}

/**
 * Converts an op argument to a Variable: numbers become 0-d constants of `dtype` (so a
 * float32 Variable times 0.5 stays float32), Tensors become constants.
 */
export function toVariable(fn: string, x: Input, dtype: DType = "float32"): Variable {
  if (x instanceof Variable) return x;
  if (x instanceof Tensor) return new Variable(x);
  if (typeof x === "number") {
    return new Variable(
      new Tensor(dtype === "float64" ? Float64Array.of(x) : Float32Array.of(x), []),
    );
  }
  throw new TypeError(
    `${fn}: expected a Variable, Tensor or number, got ${x === null ? "null" : typeof x}`,
  );
}

/** Throws a TypeError naming `fn` unless `x` is a Variable. */
export function checkVariable(fn: string, name: string, x: unknown): asserts x is Variable {
  if (!(x instanceof Variable)) {
    const got = x === null ? "null" : typeof x === "object" ? x.constructor.name : typeof x;
    throw new TypeError(`${fn}: ${name} must be a Variable, got ${got}`);
  }
}

/** Two op arguments as Variables; a number takes the dtype of the other argument. */
export function toPair(fn: string, a: Input, b: Input): [Variable, Variable] {
  if (typeof a === "number" && typeof b === "number") {
    throw new TypeError(
      `${fn}: at least one argument must be a Variable or Tensor, got two numbers`,
    );
  }
  return [toVariable(fn, a, floatDTypeOf(b)), toVariable(fn, b, floatDTypeOf(a))];
}

/** float64 when `x` is a float64 Variable or Tensor, else float32. */
function floatDTypeOf(x: unknown): DType {
  const d = x instanceof Variable ? x.data.dtype : x instanceof Tensor ? x.dtype : undefined;
  return d === "float64" ? "float64" : "float32";
}
