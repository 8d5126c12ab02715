// Small helpers the package's layers and group code share.
import { sharedFloat32, sharedFloat64 } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";
import type { Variable } from "@tessera/autograd";
import type { Module } from "@tessera/nn";

/** "[300,784]": shapes in error messages. */
export function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** A copy on shared memory (parameters live there so a pool's workers read them in place). */
export function sharedCopy(a: FloatArray): FloatArray {
  const c = a instanceof Float64Array ? sharedFloat64(a.length) : sharedFloat32(a.length);
  c.set(a);
  return c;
}

export function sameInts(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a sparse layer hands back to become dense again. */
export interface DenseParts {
  /** The sparse layer's trainable values (checked against the dense layer's dtype). */
  values: Variable;
  denseWeight: FloatArray;
  bias: Variable | null;
}

/**
 * Replaces, in place, every module of `model` that `pick` accepts by the dense layer `build`
 * returns (fresh, with a weight and optional bias), copying the sparse layer's dense weight
 * and bias into it; returns the converted paths. Shared by toDense (BSR) and fromKep (KEP).
 */
export function densifyModules<S extends Module>(
  fn: string,
  model: Module,
  pick: (m: Module) => m is S,
  parts: (m: S) => DenseParts,
  build: (m: S) => Module & { weight: Variable; bias: Variable | null },
): string[] {
  const converted: string[] = [];
  for (const [path, m] of model.namedModules()) {
    if (!pick(m)) continue;
    if (path === "")
      throw new Error(
        `${fn}: the model itself is a ${m.constructor.name}; wrap it in a Sequential`,
      );
    const dense = build(m);
    const p = parts(m);
    if (p.values.data.dtype !== dense.weight.data.dtype)
      throw new TypeError(
        `${fn}: "${path}" holds ${p.values.data.dtype} values; ${dense.constructor.name} layers are ${dense.weight.data.dtype}`,
      );
    (dense.weight.data.data as FloatArray).set(p.denseWeight);
    if (dense.bias !== null && p.bias !== null)
      (dense.bias.data.data as FloatArray).set(p.bias.data.data as FloatArray);
    model.setSubmodule(path, dense);
    converted.push(path);
  }
  return converted;
}

/**
 * The module a stored sparse layer (KEP, BSR) will replace: `model`'s submodule `name`, which
 * must be a `dense` layer or already a `sparse` one. Errors name the loader (`fn`), the layer and
 * what was found.
 */
export function layerToReplace<D extends Module, S extends Module>(
  fn: string,
  model: Module,
  name: string,
  what: string,
  dense: abstract new (...args: never[]) => D,
  sparse: abstract new (...args: never[]) => S,
): D | S {
  let m: Module;
  try {
    m = model.getSubmodule(name);
  } catch (e) {
    throw new Error(
      `${fn}: the file has ${what} layer "${name}" but the model does not: ${(e as Error).message}`,
    );
  }
  if (!(m instanceof dense) && !(m instanceof sparse))
    throw new Error(
      `${fn}: "${name}" is a ${m.constructor.name} in the model; a ${what} layer replaces a ${dense.name}`,
    );
  return m;
}
