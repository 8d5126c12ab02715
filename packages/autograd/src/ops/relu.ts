// relu and leakyRelu: the MLP hot path, so both directions are single loops over packed
// arrays. The backward reads the saved output (y > 0 exactly where x > 0), so the input
// array need not stay alive on its own.
import type { Variable } from "../variable.ts";
import { pointwise } from "./pointwise.ts";
import type { FloatArray } from "../util.ts";

function reluFwd(x: FloatArray, y: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    y[i] = v > 0 ? v : 0;
  }
}
function reluBwd(g: FloatArray, _x: FloatArray, y: FloatArray, gx: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) gx[i] = y[i]! > 0 ? g[i]! : 0;
}

/** max(x, 0). The gradient at exactly 0 is taken as 0 (as PyTorch). */
export function relu(x: Variable): Variable {
  return pointwise("relu", x, reluFwd, reluBwd);
}

function leakyFwd(x: FloatArray, y: FloatArray, n: number, slope: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    y[i] = v > 0 ? v : slope * v;
  }
}
function leakyBwd(
  g: FloatArray,
  x: FloatArray,
  _y: FloatArray,
  gx: FloatArray,
  n: number,
  slope: number,
): void {
  for (let i = 0; i < n; i++) gx[i] = x[i]! > 0 ? g[i]! : slope * g[i]!;
}

/** x for x > 0, slope·x otherwise (slope defaults to 0.01). */
export function leakyRelu(x: Variable, slope = 0.01): Variable {
  if (typeof slope !== "number" || !Number.isFinite(slope)) {
    throw new RangeError(`leakyRelu: slope must be a finite number, got ${String(slope)}`);
  }
  return pointwise("leakyRelu", x, leakyFwd, leakyBwd, slope);
}
