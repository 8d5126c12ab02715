// Optional worker pool for the dense products of linear and conv2d. Products stay
// synchronous either way (the calling thread computes one share and waits for the rest), so
// ops need no change of shape: they pass gemmOptions() to every @tessera/matrix call.
import { MatrixPool } from "@tessera/matrix";
import type { DenseOptions } from "@tessera/matrix";

let current: MatrixPool | undefined;
let options: DenseOptions | undefined;

/**
 * Runs the GEMMs of linear and conv2d on `pool` from now on (undefined: the calling thread
 * only, the default). The pool stays owned by the caller: close it after setting undefined.
 */
export function setMatrixPool(pool: MatrixPool | undefined): void {
  if (pool !== undefined && !(pool instanceof MatrixPool)) {
    throw new TypeError(
      "setMatrixPool: expected a MatrixPool from @tessera/matrix's createPool(), or undefined",
    );
  }
  current = pool;
  options = pool === undefined ? undefined : { pool };
}

/** The pool set by setMatrixPool, if any. */
export function getMatrixPool(): MatrixPool | undefined {
  return current;
}

/** Options to pass to @tessera/matrix products. */
export function gemmOptions(): DenseOptions | undefined {
  return options;
}
