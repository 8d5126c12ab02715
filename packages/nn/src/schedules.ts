// Learning-rate schedules as pure functions of the optimizer step (0-based: `s(k)` is the rate
// used by the k-th update). Being pure, a schedule can be evaluated for any step when resuming
// from a checkpoint, and plotted or tested without an optimizer.

export type Schedule = (step: number) => number;

function checkLr(fn: string, name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0)
    throw new RangeError(`${fn}: ${name} must be a finite number >= 0, got ${v}`);
}

function checkCount(fn: string, name: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min)
    throw new RangeError(`${fn}: ${name} must be an integer >= ${min}, got ${v}`);
}

function checkStep(fn: string, step: number): void {
  if (!Number.isSafeInteger(step) || step < 0)
    throw new RangeError(`${fn}: step must be an integer >= 0, got ${step}`);
}

/** The same rate at every step. */
export function constantLr(lr: number): Schedule {
  checkLr("constantLr", "lr", lr);
  return (step) => {
    checkStep("constantLr schedule", step);
    return lr;
  };
}

/** Step decay: lr * gamma^floor(step / stepSize) (PyTorch's StepLR, counted in optimizer steps). */
export function stepDecayLr(options: { lr: number; stepSize: number; gamma: number }): Schedule {
  const { lr, stepSize, gamma } = options;
  checkLr("stepDecayLr", "lr", lr);
  checkCount("stepDecayLr", "stepSize", stepSize, 1);
  if (!Number.isFinite(gamma) || gamma <= 0)
    throw new RangeError(`stepDecayLr: gamma must be a finite number > 0, got ${gamma}`);
  return (step) => {
    checkStep("stepDecayLr schedule", step);
    return lr * Math.pow(gamma, Math.floor(step / stepSize));
  };
}

/**
 * Cosine annealing from `lr` at step 0 to `minLr` at step `totalSteps`, held at `minLr` after:
 * minLr + (lr - minLr) * (1 + cos(pi * step / totalSteps)) / 2.
 */
export function cosineLr(options: { lr: number; totalSteps: number; minLr?: number }): Schedule {
  const { lr, totalSteps, minLr = 0 } = options;
  checkLr("cosineLr", "lr", lr);
  checkLr("cosineLr", "minLr", minLr);
  checkCount("cosineLr", "totalSteps", totalSteps, 1);
  if (minLr > lr) throw new RangeError(`cosineLr: minLr (${minLr}) must not exceed lr (${lr})`);
  return (step) => {
    checkStep("cosineLr schedule", step);
    if (step >= totalSteps) return minLr;
    return minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * step) / totalSteps))) / 2;
  };
}

/**
 * Linear warm-up in front of any schedule. For step < warmupSteps the rate rises linearly to
 * the inner schedule's first rate: inner(0) * (step + 1) / warmupSteps (so step 0 is not a
 * wasted zero-rate update). From step warmupSteps on, the inner schedule runs from its own
 * start: inner(step - warmupSteps), as PyTorch's SequentialLR would chain them.
 */
export function linearWarmup(inner: Schedule, warmupSteps: number): Schedule {
  if (typeof inner !== "function")
    throw new Error(`linearWarmup: inner must be a schedule function (step) => lr`);
  checkCount("linearWarmup", "warmupSteps", warmupSteps, 0);
  return (step) => {
    checkStep("linearWarmup schedule", step);
    if (step < warmupSteps) return (inner(0) * (step + 1)) / warmupSteps;
    return inner(step - warmupSteps);
  };
}

/** A fixed number becomes a constant schedule; a function is returned as is. */
export function toSchedule(lr: number | Schedule): Schedule {
  if (typeof lr === "function") return lr;
  return constantLr(lr);
}
