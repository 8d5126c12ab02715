// Finite-difference gradient check. The analytic side is one backward pass of
// L = Σ out ⊙ w for a fixed random w (a random projection catches errors that a seed of ones
// can hide, e.g. swapped entries within a row). The numeric side perturbs every input element
// by ±eps and takes the central difference of L: error O(eps²), so float64 is required.
import { Generator, Tensor } from "@tessera/tensor";
import { noGrad } from "./grad-mode.ts";
import { Variable } from "./variable.ts";
import { dense, fmt } from "./util.ts";

export interface GradcheckOptions {
  /** Finite-difference step. Default 1e-6. */
  eps?: number;
  /** Absolute tolerance. Default 1e-5. */
  atol?: number;
  /** Relative tolerance (of the numeric value). Default 1e-4. */
  rtol?: number;
  /** Seed of the random projection w. Default 0. */
  seed?: number;
  /** Throw an Error describing the worst mismatches (default true) or just report them. */
  throwOnFailure?: boolean;
}

export interface GradcheckMismatch {
  /** Which input (position in `inputs`). */
  input: number;
  /** Flat row-major element index within that input. */
  index: number;
  analytic: number;
  numeric: number;
}

export interface GradcheckResult {
  ok: boolean;
  /** Number of input elements compared. */
  checked: number;
  /** Largest |analytic - numeric| seen. */
  maxAbsError: number;
  /** Every element outside atol + rtol·|numeric|. */
  mismatches: GradcheckMismatch[];
}

/** Σ out ⊙ w in double precision. */
function project(out: Variable, w: Float64Array): number {
  const d = dense(out.data);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += d[i]! * w[i]!;
  return s;
}

/**
 * Compares the gradients backward() computes for `fn` with central finite differences.
 * `inputs` are Tensors (float ones are checked) or Variables (checked when requiresGrad);
 * checked inputs must be float64. `fn` must be deterministic (create any dropout generator
 * inside it) and return a Variable. Inputs are copied; the originals are never modified.
 */
export function gradcheck(
  fn: (...inputs: Variable[]) => Variable,
  inputs: readonly (Variable | Tensor)[],
  options: GradcheckOptions = {},
): GradcheckResult {
  if (typeof fn !== "function") throw new TypeError("gradcheck: fn must be a function");
  if (!Array.isArray(inputs))
    throw new TypeError("gradcheck: inputs must be an array of Variables or Tensors");
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-4;
  for (const [k, v] of [
    ["eps", eps],
    ["atol", atol],
    ["rtol", rtol],
  ] as const) {
    if (typeof v !== "number" || !(v >= 0) || (k === "eps" && v === 0)) {
      throw new RangeError(
        `gradcheck: ${k} must be a ${k === "eps" ? "positive" : "non-negative"} number, got ${String(v)}`,
      );
    }
  }
  const vars = inputs.map((x, i) => {
    if (!(x instanceof Variable) && !(x instanceof Tensor)) {
      throw new TypeError(`gradcheck: input ${i} must be a Variable or Tensor`);
    }
    const t = x instanceof Variable ? x.data : x;
    const rg = x instanceof Variable ? x.requiresGrad : t.dtype !== "int32";
    if (rg && t.dtype !== "float64") {
      throw new TypeError(
        `gradcheck: input ${i} is ${t.dtype}; finite differences need float64 (convert with astype("float64"))`,
      );
    }
    return new Variable(t.clone(), { requiresGrad: rg });
  });

  const out = fn(...vars);
  if (!(out instanceof Variable)) throw new TypeError("gradcheck: fn must return a Variable");
  const gen = new Generator(options.seed ?? 0);
  const w = new Float64Array(out.data.size);
  for (let i = 0; i < w.length; i++) w[i] = 2 * gen.nextFloat() - 1;
  const f0 = project(out, w);
  if (out.requiresGrad) out.backward(new Tensor(w, out.data.shape));

  const mismatches: GradcheckMismatch[] = [];
  let checked = 0;
  let maxAbsError = 0;
  noGrad(() => {
    const again = project(fn(...vars), w);
    if (!(again === f0 || (Number.isNaN(again) && Number.isNaN(f0)))) {
      throw new Error(
        `gradcheck: fn is not deterministic (two evaluations at the same point gave ${f0} and ${again}); create generators inside fn`,
      );
    }
    vars.forEach((v, i) => {
      if (!v.requiresGrad) return;
      const data = v.data.data; // a packed clone: element j is data[j]
      const grad = v.grad === null ? null : dense(v.grad);
      for (let j = 0; j < v.data.size; j++) {
        const orig = data[j]!;
        data[j] = orig + eps;
        const fp = project(fn(...vars), w);
        data[j] = orig - eps;
        const fm = project(fn(...vars), w);
        data[j] = orig;
        const numeric = (fp - fm) / (2 * eps);
        const analytic = grad === null ? 0 : grad[j]!;
        const err = Math.abs(analytic - numeric);
        checked++;
        if (err > maxAbsError || Number.isNaN(err)) maxAbsError = Number.isNaN(err) ? NaN : err;
        if (!(err <= atol + rtol * Math.abs(numeric)))
          mismatches.push({ input: i, index: j, analytic, numeric });
      }
    });
  });
  const result = { ok: mismatches.length === 0, checked, maxAbsError, mismatches };
  if (!result.ok && options.throwOnFailure !== false) {
    const worst = mismatches
      .slice()
      .sort((a, b) => Math.abs(b.analytic - b.numeric) - Math.abs(a.analytic - a.numeric))
      .slice(0, 5)
      .map(
        (m) =>
          `input ${m.input} ${fmt(vars[m.input]!.data.shape)} element ${m.index}: analytic ${m.analytic}, numeric ${m.numeric}`,
      );
    throw new Error(
      `gradcheck: ${mismatches.length} of ${checked} gradient entries differ beyond atol=${atol}, rtol=${rtol}:\n  ${worst.join("\n  ")}`,
    );
  }
  return result;
}
