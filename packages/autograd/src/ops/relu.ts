// relu and leakyRelu: the MLP hot path, so both directions are single loops over packed
// arrays. The backward reads the saved output (y > 0 exactly where x > 0), so the input
// array need not stay alive on its own.
// On the WebAssembly kernel path (float32) both loops run @tessera/matrix's f32x4 kernels
// instead (the same values: max(x, +0), and g + 0 where y > 0, else +0), split over the
// matrix pool when one is set.
import { kernelPath, wasmRelu, wasmReluBackward } from "@tessera/matrix";
import type { Variable } from "../variable.ts";
import { pointwise } from "./pointwise.ts";
import type { FloatArray } from "../util.ts";
import { allocOutputLike, reluGateChannelSums } from "../util.ts";
import { gemmOptions } from "../matrix-pool.ts";

const onWasm = (a: FloatArray): a is Float32Array =>
  a instanceof Float32Array && kernelPath(gemmOptions()) === "wasm";

// Both loops are branch-free on ordinary values: with signs of activations close to random,
// a `v > 0 ? v : 0` branch mispredicts about half the time, which measured ~3x slower on
// a [128,300] float32 batch (0.80 ms vs 0.24 ms per call on this project's 2-core machine).
// The rare non-finite cases (±Infinity, NaN, float64 overflow of v + |v|) are fixed up by a
// branch that is almost never taken.
/** y = max(x, 0) over n elements (y may be x): the loop of `relu`, shared with conv2d's fused ReLU. */
export function reluFwd(x: FloatArray, y: FloatArray, n: number): void {
  if (onWasm(x)) {
    wasmRelu(x, y as Float32Array, n, gemmOptions());
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    let r = (v + Math.abs(v)) * 0.5; // max(v, 0), and +0 for -0
    if (r - r !== 0) r = v > 0 ? v : v === v ? 0 : v;
    y[i] = r;
  }
}
/** gx = g where y > 0, else +0 (y the ReLU's output): `relu`'s backward, shared with conv2d's. */
export function reluBwd(
  g: FloatArray,
  _x: FloatArray,
  y: FloatArray,
  gx: FloatArray,
  n: number,
): void {
  if (onWasm(g) && y instanceof Float32Array) {
    wasmReluBackward(g, y, gx as Float32Array, n, gemmOptions());
    return;
  }
  for (let i = 0; i < n; i++) {
    const m = +(y[i]! > 0);
    let r = g[i]! * m + 0; // + 0 turns -0 into 0
    if (r !== r) r = m === 1 ? r : 0; // Infinity·0 would be NaN: a closed gate passes 0
    gx[i] = r;
  }
}

/**
 * The backward of a ReLU fused into a layer (conv2d, linear, bsrLinear with `relu`): the
 * gradient G of its output y [n, c, p] gated by y > 0 into a fresh array of `like`'s type, and,
 * when `biasGrad`, on the wasm path the layer's bias gradient summed in the same pass (the bits
 * of channelSums over the gated array; null otherwise, for the caller to sum).
 */
export function fusedReluBackward(
  G: FloatArray,
  y: FloatArray,
  like: FloatArray,
  n: number,
  c: number,
  p: number,
  biasGrad: boolean,
): { gated: FloatArray; biasSums: FloatArray | null } {
  const gated = allocOutputLike(like, n * c * p);
  if (
    biasGrad &&
    G instanceof Float32Array &&
    y instanceof Float32Array &&
    kernelPath(gemmOptions()) === "wasm"
  )
    return {
      gated,
      biasSums: reluGateChannelSums(G, y, gated as Float32Array, n, c, p, like),
    };
  reluBwd(G, G, y, gated, n * c * p);
  return { gated, biasSums: null };
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
