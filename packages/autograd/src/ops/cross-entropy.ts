// Fused softmax + cross-entropy from logits and integer labels. Fusing gives the short,
// stable backward dz = (softmax(z) - q)·scale instead of chaining logSoftmax, a gather and
// a mean, and it never forms log-probabilities for the whole batch.
//
// With label smoothing ε the target distribution of a row with label y is
//   q_c = ε/C + (1-ε)·[c = y]
// and the row loss is  Σ_c q_c·(lse - z_c) = lse - (1-ε)·z_y - (ε/C)·Σ_c z_c.
import { Tensor } from "@tessera/tensor";
import { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { allocLike, denseFloat, fmt, freshGrad, wrap } from "../util.ts";

export type Labels = Int32Array | Uint8Array | readonly number[] | Variable | Tensor;

export interface CrossEntropyOptions {
  /** ε in [0, 1): mixes the one-hot target with the uniform distribution. Default 0. */
  labelSmoothing?: number;
  /** "mean" over rows (default), "sum", or "none" (a [N] vector of row losses). */
  reduction?: "mean" | "sum" | "none";
}

/**
 * Labels copied into an Int32Array of length n (the caller's buffer may be reused by a data
 * loader before backward runs), each checked to be an integer in [0, classes).
 */
function readLabels(labels: Labels, n: number, classes: number): Int32Array {
  const fn = "softmaxCrossEntropy";
  let list: ArrayLike<number>;
  if (labels instanceof Variable || labels instanceof Tensor) {
    const t = labels instanceof Variable ? labels.data : labels;
    if (t.ndim !== 1) {
      throw new RangeError(`${fn}: labels must be 1-d of length ${n}, got shape ${fmt(t.shape)}`);
    }
    list = t.isContiguous() ? t.data.subarray(t.offset, t.offset + t.size) : t.clone().data;
  } else if (
    labels instanceof Int32Array ||
    labels instanceof Uint8Array ||
    Array.isArray(labels)
  ) {
    list = labels as ArrayLike<number>;
  } else {
    throw new TypeError(
      `${fn}: labels must be an Int32Array, Uint8Array, number[], Tensor or Variable`,
    );
  }
  if (list.length !== n) {
    throw new RangeError(
      `${fn}: got ${list.length} labels for ${n} rows of logits; expected one label per row`,
    );
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const y = list[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new RangeError(
        `${fn}: label ${String(y)} at index ${i} is out of range for ${classes} classes; expected an integer in 0..${classes - 1}`,
      );
    }
    out[i] = y;
  }
  return out;
}

/**
 * Cross-entropy of softmax(logits) against integer labels. logits: [N, C]; labels: N
 * integers in 0..C-1. The mean over an empty batch is NaN.
 */
export function softmaxCrossEntropy(
  logits: Variable,
  labels: Labels,
  options: CrossEntropyOptions = {},
): Variable {
  const fn = "softmaxCrossEntropy";
  checkVariable(fn, "logits", logits);
  const shape = logits.data.shape;
  if (shape.length !== 2) {
    throw new RangeError(`${fn}: logits must be 2-d [N, C], got shape ${fmt(shape)}`);
  }
  const n = shape[0]!;
  const c = shape[1]!;
  if (c < 1) throw new RangeError(`${fn}: logits need at least one class, got shape ${fmt(shape)}`);
  const eps = options.labelSmoothing ?? 0;
  if (typeof eps !== "number" || !(eps >= 0 && eps < 1)) {
    throw new RangeError(`${fn}: labelSmoothing must be a number in [0, 1), got ${String(eps)}`);
  }
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none") {
    throw new RangeError(
      `${fn}: reduction must be "mean", "sum" or "none", got ${String(reduction)}`,
    );
  }
  const y = readLabels(labels, n, c);
  const z = denseFloat(logits.data);
  const prob = allocLike(z, n * c);
  const rowLoss = allocLike(z, n);
  const uniform = eps / c;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const row = i * c;
    let m = -Infinity;
    let zsum = 0;
    for (let k = 0; k < c; k++) {
      const v = z[row + k]!;
      if (v > m) m = v;
      zsum += v;
    }
    let s = 0;
    for (let k = 0; k < c; k++) {
      const e = Math.exp(z[row + k]! - m);
      prob[row + k] = e;
      s += e;
    }
    const inv = 1 / s;
    for (let k = 0; k < c; k++) prob[row + k] = prob[row + k]! * inv;
    const lse = m + Math.log(s);
    const l = lse - (1 - eps) * z[row + y[i]!]! - uniform * zsum;
    rowLoss[i] = l;
    total += l;
  }
  let out: Tensor;
  if (reduction === "none") out = wrap(rowLoss, [n]);
  else {
    const v = allocLike(z, 1);
    v[0] = reduction === "mean" ? total / n : total;
    out = wrap(v, []);
  }
  return record(fn, out, [logits], (g) => {
    const gd = denseFloat(g);
    const gz = allocLike(z, n * c);
    const perRow = reduction === "none";
    const base = reduction === "mean" ? gd[0]! / n : perRow ? 0 : gd[0]!;
    for (let i = 0; i < n; i++) {
      const scale = perRow ? gd[i]! : base;
      const row = i * c;
      for (let k = 0; k < c; k++) gz[row + k] = scale * (prob[row + k]! - uniform);
      gz[row + y[i]!] = gz[row + y[i]!]! - scale * (1 - eps);
    }
    return [freshGrad(gz, shape)];
  });
}
