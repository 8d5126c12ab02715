// Global switch for graph recording. Evaluation loops and optimizer steps run under
// noGrad so they neither build graphs nor keep forward tensors alive for a backward pass.

let enabled = true;

/** True when ops record the graph (the default); false inside noGrad(). */
export function isGradEnabled(): boolean {
  return enabled;
}

/**
 * Runs `fn` with graph recording off and returns its result. Variables made inside have
 * requiresGrad = false and no history. Nests; the previous state is restored even if `fn`
 * throws.
 */
export function noGrad<T>(fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(`noGrad: expected a function, got ${typeof fn}`);
  }
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Runs `fn` with graph recording on (for a section that needs grads inside noGrad). */
export function enableGrad<T>(fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(`enableGrad: expected a function, got ${typeof fn}`);
  }
  const prev = enabled;
  enabled = true;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}
