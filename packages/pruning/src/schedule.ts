// Gradual pruning schedules as pure functions of the optimizer step.

export interface PolynomialDecayOptions {
  /** Sparsity (1 - density) at beginStep; 0 <= initialSparsity <= finalSparsity < 1 is usual. */
  initialSparsity: number;
  finalSparsity: number;
  /** First step at which pruning happens (Zhu & Gupta's t0). */
  beginStep: number;
  /** Step at which finalSparsity is reached (t0 + n·Δt). */
  endStep: number;
  /** Exponent; 3 is Zhu & Gupta's cubic schedule (default). */
  power?: number;
  /** Prune every `frequency` steps from beginStep (Δt; default 1). */
  frequency?: number;
}

export interface SparsitySchedule {
  /** Target sparsity at `step`: initial before beginStep, final from endStep on. */
  sparsityAt(step: number): number;
  /** 1 - sparsityAt(step). */
  densityAt(step: number): number;
  /** Whether masks are updated at `step`: beginStep <= step <= endStep, every `frequency`. */
  isPruningStep(step: number): boolean;
  readonly options: Readonly<Required<PolynomialDecayOptions>>;
}

/**
 * Zhu & Gupta (2017) gradual pruning, in TF Model Optimization's PolynomialDecay form:
 *   p = clamp((t - beginStep) / (endStep - beginStep), 0, 1)
 *   s_t = s_f + (s_i - s_f) · (1 - p)^power,
 * which for power 3 and frequency Δt is s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n·Δt))³.
 */
export function polynomialDecay(options: PolynomialDecayOptions): SparsitySchedule {
  const fn = "polynomialDecay";
  const o: Required<PolynomialDecayOptions> = { power: 3, frequency: 1, ...options };
  for (const f of ["initialSparsity", "finalSparsity"] as const) {
    if (typeof o[f] !== "number" || !(o[f] >= 0 && o[f] <= 1))
      throw new RangeError(`${fn}: ${f} must be in [0, 1], got ${String(o[f])}`);
  }
  if (!Number.isSafeInteger(o.beginStep) || o.beginStep < 0)
    throw new RangeError(`${fn}: beginStep must be an integer >= 0, got ${String(o.beginStep)}`);
  if (!Number.isSafeInteger(o.endStep) || o.endStep <= o.beginStep)
    throw new RangeError(
      `${fn}: endStep must be an integer > beginStep (${o.beginStep}), got ${String(o.endStep)}`,
    );
  if (!Number.isSafeInteger(o.frequency) || o.frequency < 1)
    throw new RangeError(`${fn}: frequency must be a positive integer, got ${String(o.frequency)}`);
  if (typeof o.power !== "number" || !(o.power > 0) || !Number.isFinite(o.power))
    throw new RangeError(`${fn}: power must be a finite number > 0, got ${String(o.power)}`);
  const span = o.endStep - o.beginStep;
  const sparsityAt = (step: number): number => {
    const p = Math.min(1, Math.max(0, (step - o.beginStep) / span));
    return o.finalSparsity + (o.initialSparsity - o.finalSparsity) * Math.pow(1 - p, o.power);
  };
  return {
    sparsityAt,
    densityAt: (step) => 1 - sparsityAt(step),
    isPruningStep: (step) =>
      step >= o.beginStep && step <= o.endStep && (step - o.beginStep) % o.frequency === 0,
    options: o,
  };
}

/**
 * Density after `round` rounds of removing `rate` of what is left (the paper's iterative
 * rule without rounding to whole groups): (1 - rate)^round.
 */
export function iterativeDensity(rate: number, round: number): number {
  if (!(rate >= 0 && rate <= 1))
    throw new RangeError(`iterativeDensity: rate must be in [0, 1], got ${rate}`);
  if (!Number.isSafeInteger(round) || round < 0)
    throw new RangeError(`iterativeDensity: round must be an integer >= 0, got ${round}`);
  return Math.pow(1 - rate, round);
}
