// Pruned checkpoints in torch.nn.utils.prune's naming, and the pruning state inside a
// training checkpoint.
//
// A pruned parameter "fc1.weight" is written as "fc1.weight_orig" (the weights) and
// "fc1.weight_mask" (its 0/1 mask, float32 like PyTorch's buffer); everything else under its
// plain name. That is exactly the state dict of a PyTorch module after
// prune.identity(module, "weight"), so PyTorch loads it with load_state_dict. The group kinds
// live in the metadata under "tessera.pruning". After state.strip() nothing is pruned and
// the file holds plain "fc1.weight".
import type { Tensor } from "@tessera/tensor";
import {
  loadSafetensors,
  recordToTensor,
  saveSafetensors,
  tensorToRecord,
  type Module,
  type TensorRecord,
} from "@tessera/nn";
import { checkGroupKind } from "./groups.ts";
import { PruningState, plainKind, type PruneSpec } from "./state.ts";

/** Metadata key holding { "<param>": { kind, pruneBias? } } as JSON. */
export const PRUNING_METADATA_KEY = "tessera.pruning";

function specsOf(state: PruningState): Record<string, PruneSpec> {
  const out: Record<string, PruneSpec> = {};
  for (const n of state.names()) {
    out[n] = state.prunesBias(n) ? { ...state.kind(n), pruneBias: true } : state.kind(n);
  }
  return out;
}

function parseSpecs(fn: string, json: string | undefined): Map<string, PruneSpec> {
  if (json === undefined) return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new Error(
      `${fn}: metadata "${PRUNING_METADATA_KEY}" is not JSON: ${(e as Error).message}`,
    );
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw))
    throw new Error(`${fn}: metadata "${PRUNING_METADATA_KEY}" must map parameter names to specs`);
  const out = new Map<string, PruneSpec>();
  for (const [name, v] of Object.entries(raw as Record<string, PruneSpec>)) {
    const kind = plainKind(checkGroupKind(`${fn}("${name}")`, v));
    out.set(name, v.pruneBias === true ? { ...kind, pruneBias: true } : kind);
  }
  return out;
}

/**
 * The records of a pruned model in torch.nn.utils.prune naming: "<p>_orig" and "<p>_mask"
 * for each pruned parameter (and pruned bias), plain names for the rest, plus the metadata
 * entry describing the group kinds. The weights are written with the masks applied.
 */
export function prunedStateDict(
  model: Module,
  state: PruningState | null,
): { tensors: Map<string, TensorRecord>; metadata: Record<string, string> } {
  const masks = new Map<string, Float32Array>();
  if (state !== null) {
    if (state.model !== model)
      throw new Error(`prunedStateDict: the pruning state was built for another model`);
    state.apply();
    for (const e of state.entries()) masks.set(e.name, e.mask);
    for (const [b, { mask }] of state.biasMasks()) masks.set(b, mask);
  }
  const tensors = new Map<string, TensorRecord>();
  for (const [name, t] of model.stateDict()) {
    const mask = masks.get(name);
    if (mask === undefined) {
      tensors.set(name, tensorToRecord(t));
      continue;
    }
    tensors.set(`${name}_orig`, tensorToRecord(t));
    tensors.set(`${name}_mask`, { dtype: "F32", shape: [...t.shape], data: mask.slice() });
  }
  const metadata: Record<string, string> = {};
  if (state !== null && state.names().length > 0)
    metadata[PRUNING_METADATA_KEY] = JSON.stringify(specsOf(state));
  return { tensors, metadata };
}

/** Writes the model and its pruning state (null: none) as safetensors, atomically. */
export function savePruned(
  path: string,
  model: Module,
  state: PruningState | null,
  metadata: Record<string, string> = {},
): void {
  const d = prunedStateDict(model, state);
  if (PRUNING_METADATA_KEY in metadata)
    throw new Error(`savePruned: metadata key "${PRUNING_METADATA_KEY}" is reserved`);
  saveSafetensors(path, d.tensors, { ...metadata, ...d.metadata });
}

/**
 * Loads a pruned checkpoint (savePruned's, or a PyTorch state dict of a module pruned with
 * torch.nn.utils.prune) into `model`: each "<p>_orig" · "<p>_mask" becomes parameter <p>, and
 * the masks become the returned PruningState (null when the file has no pruned parameter).
 * Kinds come from the metadata; "_orig"/"_mask" pairs it does not describe (a file written
 * by PyTorch) load as element groups. Checks are Module.loadStateDict's (strict).
 */
export function loadPruned(
  source: string | Uint8Array,
  model: Module,
): { state: PruningState | null; metadata: Record<string, string> } {
  const fn = `loadPruned(${typeof source === "string" ? source : "<bytes>"})`;
  const file = loadSafetensors(source);
  const specs = parseSpecs(fn, file.metadata[PRUNING_METADATA_KEY]);
  const plain = new Map<string, Tensor>();
  const masks = new Map<string, Float32Array>();
  for (const [key, rec] of file.tensors) {
    if (key.endsWith("_mask") && file.tensors.has(`${key.slice(0, -5)}_orig`)) continue;
    if (key.endsWith("_orig") && file.tensors.has(`${key.slice(0, -5)}_mask`)) {
      const name = key.slice(0, -5);
      const orig = recordToTensor(rec, key);
      const mrec = file.tensors.get(`${name}_mask`)!;
      const mask = Float32Array.from(mrec.data as ArrayLike<number>);
      if (mask.length !== orig.size)
        throw new Error(
          `${fn}: "${name}_mask" has ${mask.length} elements, "${key}" has ${orig.size}`,
        );
      // PyTorch's forward uses weight = weight_orig * weight_mask; state.setMask below zeroes
      // the masked entries, so orig is loaded as it is.
      plain.set(name, orig);
      masks.set(name, mask);
      continue;
    }
    plain.set(key, recordToTensor(rec, key));
  }
  try {
    model.loadStateDict(plain);
  } catch (e) {
    throw new Error(`${fn}: ${(e as Error).message}`);
  }
  const weightSpecs = new Map<string, PruneSpec>();
  const biasOf = new Set<string>();
  for (const [name, spec] of specs) {
    if (!masks.has(name))
      throw new Error(`${fn}: metadata describes "${name}" but the file has no "${name}_mask"`);
    weightSpecs.set(name, spec);
    if (spec.pruneBias === true) biasOf.add(`${name.slice(0, -"weight".length)}bias`);
  }
  for (const name of masks.keys())
    if (!weightSpecs.has(name) && !biasOf.has(name)) weightSpecs.set(name, { kind: "element" });
  const metadata = { ...file.metadata };
  delete metadata[PRUNING_METADATA_KEY];
  if (weightSpecs.size === 0) return { state: null, metadata };
  const state = new PruningState(model, weightSpecs);
  for (const name of weightSpecs.keys()) state.setMask(name, masks.get(name)!);
  return { state, metadata };
}

/**
 * The pruning state as records and metadata to put into a training checkpoint: the mask of
 * each pruned parameter under "<prefix><name>" (F32), the specs under metadata
 * "<prefix>specs". Save them beside "model." and "optimizer." records so a resumed run gets
 * its masks back (pruningFromRecords).
 */
export function pruningToRecords(
  state: PruningState,
  prefix = "pruning.",
): { records: Map<string, TensorRecord>; metadata: Record<string, string> } {
  const records = new Map<string, TensorRecord>();
  for (const e of state.entries()) {
    const shape = [...state.layout(e.name).shape];
    records.set(`${prefix}${e.name}`, { dtype: "F32", shape, data: e.mask.slice() });
  }
  return { records, metadata: { [`${prefix}specs`]: JSON.stringify(specsOf(state)) } };
}

/**
 * Rebuilds the PruningState of `model` from a training checkpoint's records and metadata
 * (pruningToRecords' output, among other keys: only "<prefix>..." ones are read). Applies
 * the masks to the weights. Returns null when the checkpoint holds no pruning state.
 */
export function pruningFromRecords(
  model: Module,
  records: Map<string, TensorRecord>,
  metadata: Record<string, string>,
  prefix = "pruning.",
): PruningState | null {
  const fn = "pruningFromRecords";
  const json = metadata[`${prefix}specs`];
  if (json === undefined) {
    const stray = [...records.keys()].filter((k) => k.startsWith(prefix));
    if (stray.length > 0)
      throw new Error(`${fn}: records ${stray.join(", ")} have no metadata "${prefix}specs"`);
    return null;
  }
  const specs = parseSpecs(fn, json);
  if (specs.size === 0) return null;
  const state = new PruningState(model, specs);
  for (const name of specs.keys()) {
    const r = records.get(`${prefix}${name}`);
    if (r === undefined)
      throw new Error(`${fn}: no record "${prefix}${name}" for the mask of "${name}"`);
    state.setMask(name, r.data as ArrayLike<number>);
  }
  const extra = [...records.keys()].filter(
    (k) => k.startsWith(prefix) && !specs.has(k.slice(prefix.length)),
  );
  if (extra.length > 0) throw new Error(`${fn}: unexpected records ${extra.join(", ")}`);
  return state;
}
