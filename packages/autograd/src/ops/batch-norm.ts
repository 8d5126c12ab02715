// Batch normalisation over [N, C] or [N, C, H, W] input, per channel c.
// Training: normalise with the batch mean and biased variance, and update the running
// statistics in place (running = (1 - momentum)·running + momentum·batch, with the unbiased
// variance, as PyTorch). Evaluation: normalise with the running statistics.
//   y = γ·x̂ + β,  x̂ = (x - μ)·invstd,  invstd = 1/sqrt(σ² + eps)
// Backward in training (μ and σ² depend on x), with M values per channel and d = g·γ:
//   dx = invstd/M · (M·d - Σd - x̂·Σ(d·x̂)),  dγ = Σ g·x̂,  dβ = Σ g
// In evaluation μ and σ² are constants, so dx = g·γ·invstd.
import { Tensor } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";
import { allocLike, denseFloat, fmt, freshGrad, wrap } from "../util.ts";

export interface BatchNormOptions {
  /** Use batch statistics and update the running ones (true) or use the running ones. */
  training: boolean;
  /** Weight of the new batch in the running statistics. Default 0.1. */
  momentum?: number;
  /** Added to the variance before the square root. Default 1e-5. */
  eps?: number;
}

function checkStat(fn: string, name: string, t: unknown, c: number): Tensor {
  if (!(t instanceof Tensor))
    throw new TypeError(`${fn}: ${name} must be a Tensor of shape [${c}]`);
  if (t.ndim !== 1 || t.shape[0] !== c) {
    throw new RangeError(
      `${fn}: ${name} must have shape [${c}] (one per channel), got ${fmt(t.shape)}`,
    );
  }
  if (t.dtype === "int32")
    throw new TypeError(`${fn}: ${name} must be float32 or float64, got int32`);
  if (c > 1 && t.strides[0] === 0)
    throw new Error(`${fn}: ${name} is a broadcast view and cannot be updated in place`);
  return t;
}

/** Per-channel parameter (γ or β) as a float64 array, or `fill` when absent. */
function channelValues(v: Variable | null, c: number, fill: number): Float64Array {
  const out = new Float64Array(c).fill(fill);
  if (v) out.set(denseFloat(v.data));
  return out;
}

/**
 * Normalises x per channel (axis 1). gamma, beta: [C] Variables or null (no affine part).
 * runningMean, runningVar: [C] Tensors, read in evaluation and updated in place in training.
 */
export function batchNorm(
  x: Variable,
  gamma: Variable | null,
  beta: Variable | null,
  runningMean: Tensor,
  runningVar: Tensor,
  options: BatchNormOptions,
): Variable {
  const fn = "batchNorm";
  checkVariable(fn, "x", x);
  const xs = x.data.shape;
  if (xs.length !== 2 && xs.length !== 4) {
    throw new RangeError(`${fn}: x must be [N, C] or [N, C, H, W], got shape ${fmt(xs)}`);
  }
  const n = xs[0]!;
  const c = xs[1]!;
  const s = xs.length === 4 ? xs[2]! * xs[3]! : 1;
  const m = n * s;
  for (const [name, v] of [
    ["gamma", gamma],
    ["beta", beta],
  ] as const) {
    if (v === null || v === undefined) continue;
    checkVariable(fn, name, v);
    if (v.data.ndim !== 1 || v.data.shape[0] !== c) {
      throw new RangeError(
        `${fn}: ${name} must have shape [${c}] (x has ${c} channels), got ${fmt(v.data.shape)}`,
      );
    }
  }
  checkStat(fn, "runningMean", runningMean, c);
  checkStat(fn, "runningVar", runningVar, c);
  if (typeof options !== "object" || options === null || typeof options.training !== "boolean") {
    throw new TypeError(`${fn}: options.training must be a boolean`);
  }
  const momentum = options.momentum ?? 0.1;
  const eps = options.eps ?? 1e-5;
  if (typeof momentum !== "number" || !(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`${fn}: momentum must be in [0, 1], got ${String(momentum)}`);
  }
  if (typeof eps !== "number" || !(eps >= 0))
    throw new RangeError(`${fn}: eps must be >= 0, got ${String(eps)}`);
  const training = options.training;
  if (training && m < 2) {
    throw new RangeError(
      `${fn}: training needs more than one value per channel to estimate a variance, got input shape ${fmt(xs)}`,
    );
  }

  const X = denseFloat(x.data);
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  if (training) {
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * s;
        let acc = 0;
        for (let k = 0; k < s; k++) acc += X[base + k]!;
        mean[ch] = mean[ch]! + acc;
      }
    }
    for (let ch = 0; ch < c; ch++) mean[ch] = mean[ch]! / m;
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * s;
        const mu = mean[ch]!;
        let acc = 0;
        for (let k = 0; k < s; k++) {
          const d = X[base + k]! - mu;
          acc += d * d;
        }
        variance[ch] = variance[ch]! + acc;
      }
    }
    for (let ch = 0; ch < c; ch++) variance[ch] = variance[ch]! / m;
    const rm = runningMean;
    const rv = runningVar;
    for (let ch = 0; ch < c; ch++) {
      const im = rm.offset + ch * (rm.strides[0] ?? 0);
      const iv = rv.offset + ch * (rv.strides[0] ?? 0);
      rm.data[im] = (1 - momentum) * rm.data[im]! + momentum * mean[ch]!;
      rv.data[iv] = (1 - momentum) * rv.data[iv]! + (momentum * variance[ch]! * m) / (m - 1);
    }
  } else {
    for (let ch = 0; ch < c; ch++) {
      mean[ch] = runningMean.data[runningMean.offset + ch * (runningMean.strides[0] ?? 0)]!;
      variance[ch] = runningVar.data[runningVar.offset + ch * (runningVar.strides[0] ?? 0)]!;
    }
  }
  const invstd = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) invstd[ch] = 1 / Math.sqrt(variance[ch]! + eps);
  const gam = channelValues(gamma, c, 1);
  const bet = channelValues(beta, c, 0);
  const size = x.data.size;
  const xhat = allocLike(X, size);
  const y = allocLike(X, size);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * s;
      const mu = mean[ch]!;
      const is = invstd[ch]!;
      const ga = gam[ch]!;
      const be = bet[ch]!;
      for (let k = base; k < base + s; k++) {
        const h = (X[k]! - mu) * is;
        xhat[k] = h;
        y[k] = ga * h + be;
      }
    }
  }
  const parents = [x, gamma, beta].filter((v): v is Variable => v !== null && v !== undefined);
  return record(fn, wrap(y, xs), parents, (g) => {
    const G = denseFloat(g);
    // per-channel Σg and Σg·x̂ serve dβ, dγ and the training dx alike
    const sumG = new Float64Array(c);
    const sumGX = new Float64Array(c);
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * s;
        let a = 0;
        let b = 0;
        for (let k = base; k < base + s; k++) {
          a += G[k]!;
          b += G[k]! * xhat[k]!;
        }
        sumG[ch] = sumG[ch]! + a;
        sumGX[ch] = sumGX[ch]! + b;
      }
    }
    let gx = null;
    if (x.requiresGrad) {
      const dx = allocLike(xhat, size);
      for (let i = 0; i < n; i++) {
        for (let ch = 0; ch < c; ch++) {
          const base = (i * c + ch) * s;
          const scale = gam[ch]! * invstd[ch]!;
          if (training) {
            // with d = g·γ: Σd = γΣg and Σd·x̂ = γΣg·x̂
            const a = sumG[ch]! / m;
            const b = sumGX[ch]! / m;
            for (let k = base; k < base + s; k++) dx[k] = scale * (G[k]! - a - xhat[k]! * b);
          } else {
            for (let k = base; k < base + s; k++) dx[k] = scale * G[k]!;
          }
        }
      }
      gx = freshGrad(dx, xs);
    }
    const grads: (Tensor | null)[] = [gx];
    if (gamma) {
      const t = allocLike(xhat, c);
      t.set(sumGX);
      grads.push(gamma.requiresGrad ? freshGrad(t, [c]) : null);
    }
    if (beta) {
      const t = allocLike(xhat, c);
      t.set(sumG);
      grads.push(beta.requiresGrad ? freshGrad(t, [c]) : null);
    }
    return grads;
  });
}
