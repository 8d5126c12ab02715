// Bridges between tensors / modules and the plain records of safetensors.ts, so a model's
// state dict round-trips through a .safetensors file that PyTorch users can open.
import { Tensor } from "@tessera/tensor";
import type { Module, LoadStateDictResult } from "./module.ts";
import { loadSafetensors, saveSafetensors, type TensorRecord } from "./safetensors.ts";

/** A packed copy of the tensor's elements as a safetensors record (F32, F64 or I32). */
export function tensorToRecord(t: Tensor): TensorRecord {
  const c = t.contiguous();
  // contiguous() may return the tensor itself; copy so the record does not alias live weights.
  const data = c === t ? c.data.slice() : c.data;
  return { dtype: recordDtype(t), shape: [...t.shape], data };
}

/** A Tensor from a record; F32, F64 and I32 map directly, other dtypes are refused. */
export function recordToTensor(r: TensorRecord, name = "tensor"): Tensor {
  switch (r.dtype) {
    case "F32":
    case "F64":
    case "I32":
      return new Tensor(r.data as Float32Array | Float64Array | Int32Array, r.shape);
    default:
      throw new Error(
        `recordToTensor: "${name}" has dtype ${r.dtype}; tensors hold only F32, F64 or I32`,
      );
  }
}

/** Writes the model's state dict to `path` atomically (safetensors format). */
export function saveModel(path: string, model: Module, metadata?: Record<string, string>): void {
  const records = new Map<string, TensorRecord>();
  for (const [name, t] of model.stateDict()) records.set(name, tensorToRecord(t));
  saveSafetensors(path, records, metadata);
}

/** The safetensors dtype a tensor of this dtype is stored as. */
export function recordDtype(t: Tensor): "F32" | "F64" | "I32" {
  return t.dtype === "float32" ? "F32" : t.dtype === "float64" ? "F64" : "I32";
}

/**
 * Tensors for `model.loadStateDict` from stored records, refusing any record whose dtype
 * differs from the model's tensor under the same key: the bytes of an I32 record read into a
 * float32 weight are integers, not weights, and converting F64 to F32 would silently round.
 * Keys the model does not have are returned in `skipped` when their dtype has no tensor form
 * (F32, F64 and I32 do), so the caller can report them. `where` prefixes errors.
 */
export function stateFromRecords(
  where: string,
  records: ReadonlyMap<string, TensorRecord>,
  model: Module,
): { state: Map<string, Tensor>; skipped: string[] } {
  const own = model.stateDict();
  const state = new Map<string, Tensor>();
  const skipped: string[] = [];
  const wrong: string[] = [];
  for (const [name, rec] of records) {
    const target = own.get(name);
    if (target === undefined) {
      // A key the model does not have is only reported, so its dtype need not be convertible.
      if (rec.dtype !== "F32" && rec.dtype !== "F64" && rec.dtype !== "I32") skipped.push(name);
      else state.set(name, recordToTensor(rec, name));
      continue;
    }
    const want = recordDtype(target);
    if (rec.dtype !== want) wrong.push(`"${name}" is ${rec.dtype}, the model's is ${want}`);
    else state.set(name, recordToTensor(rec, name));
  }
  if (wrong.length > 0) {
    throw new Error(
      `${where}: dtype mismatch (${wrong.join("; ")}); expected each stored tensor in its ` +
        `parameter's dtype (nothing is converted or reinterpreted)`,
    );
  }
  return { state, skipped };
}

/**
 * Loads a safetensors file into the model (see Module.loadStateDict for the checks; a stored
 * dtype that differs from the parameter's is refused, see stateFromRecords); returns
 * missing/unexpected keys (which throw when `strict`, the default) and the file's metadata.
 * On any error the model is left untouched.
 */
export function loadModel(
  source: string | Uint8Array,
  model: Module,
  options: { strict?: boolean } = {},
): LoadStateDictResult & { metadata: Record<string, string> } {
  const where = `loadModel(${typeof source === "string" ? source : "<bytes>"})`;
  const file = loadSafetensors(source);
  const { state, skipped } = stateFromRecords(where, file.tensors, model);
  if ((options.strict ?? true) && skipped.length > 0) {
    throw new Error(`${where}: unexpected keys: ${skipped.join(", ")}`);
  }
  try {
    const res = model.loadStateDict(state, options);
    return {
      missingKeys: res.missingKeys,
      unexpectedKeys: [...res.unexpectedKeys, ...skipped],
      metadata: file.metadata,
    };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}
