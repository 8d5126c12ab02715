// A model with BsrLinear layers as one safetensors file: each BSR layer's scipy arrays
// (<layer>.indptr, <layer>.indices, <layer>.data, <layer>.bias) beside the model's other
// tensors, and in the metadata key "bsr_layers" the JSON map
// { "<layer>": { "shape": [out, in], "blockShape": [R, C] } } that scipy needs besides the
// arrays. The README shows the numpy/scipy lines that read it back (tested).
import { readFileSync } from "node:fs";
import { BsrMatrix, toShared } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";
import { Linear, loadModel, loadSafetensors, saveModel } from "@tessera/nn";
import { layerToReplace } from "./util.ts";
import type { Module, TensorRecord } from "@tessera/nn";
import { BsrLinear } from "./bsr.ts";

/** The metadata key holding the BSR layers' logical shapes and block shapes. */
export const BSR_METADATA_KEY = "bsr_layers";

export interface BsrLayerInfo {
  /** Logical weight shape [out, in] (need not be a multiple of the block shape). */
  shape: [number, number];
  blockShape: [number, number];
}

/** The BSR layers of `model` by module path. */
export function bsrLayers(model: Module): Map<string, BsrLayerInfo> {
  const out = new Map<string, BsrLayerInfo>();
  for (const [path, m] of model.namedModules())
    if (m instanceof BsrLinear)
      out.set(path, {
        shape: [m.outFeatures, m.inFeatures],
        blockShape: [m.blockShape[0], m.blockShape[1]],
      });
  return out;
}

/**
 * Writes `model` (atomically, safetensors) with its BSR layers' arrays and the "bsr_layers"
 * metadata; `metadata` adds further string entries (the key "bsr_layers" is reserved).
 */
export function saveBsrModel(
  path: string,
  model: Module,
  metadata: Record<string, string> = {},
): void {
  if (BSR_METADATA_KEY in metadata)
    throw new Error(
      `saveBsrModel: metadata key "${BSR_METADATA_KEY}" is reserved for the layer shapes`,
    );
  const layers = Object.fromEntries(bsrLayers(model));
  saveModel(path, model, { ...metadata, [BSR_METADATA_KEY]: JSON.stringify(layers) });
}

function parseLayers(fn: string, metadata: Record<string, string>): Map<string, BsrLayerInfo> {
  const text = metadata[BSR_METADATA_KEY];
  if (text === undefined)
    throw new Error(
      `${fn}: the file has no "${BSR_METADATA_KEY}" metadata (was it written by saveBsrModel?)`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${fn}: metadata "${BSR_METADATA_KEY}" is not JSON: ${(e as Error).message}`);
  }
  const out = new Map<string, BsrLayerInfo>();
  const isPair = (v: unknown): v is [number, number] =>
    Array.isArray(v) && v.length === 2 && v.every((d) => Number.isSafeInteger(d) && d >= 1);
  for (const [name, info] of Object.entries(parsed as Record<string, unknown>)) {
    const i = info as Partial<BsrLayerInfo> | null;
    if (i === null || typeof i !== "object" || !isPair(i.shape) || !isPair(i.blockShape))
      throw new Error(
        `${fn}: metadata for layer "${name}" must be {"shape": [out, in], "blockShape": [R, C]} of positive integers, got ${JSON.stringify(info)}`,
      );
    out.set(name, { shape: i.shape, blockShape: i.blockShape });
  }
  return out;
}

function tensorOf(
  fn: string,
  tensors: Map<string, TensorRecord>,
  key: string,
  dtypes: readonly string[],
): TensorRecord {
  const r = tensors.get(key);
  if (r === undefined) throw new Error(`${fn}: the file has no tensor "${key}"`);
  if (!dtypes.includes(r.dtype))
    throw new Error(`${fn}: "${key}" is ${r.dtype}, expected ${dtypes.join(" or ")}`);
  return r;
}

/**
 * Rebuilds, in `model` (the dense model of the same architecture, or one already holding BSR
 * layers), every BSR layer listed in the file: the Linear (or BsrLinear) at each path becomes
 * a BsrLinear with the file's pattern and values; then every tensor of the file is loaded as
 * loadModel does (strict: the rest of the model must match the file exactly). Throws naming
 * the layer and both shapes when a layer does not fit. Returns the converted paths and the
 * file's metadata.
 */
export function loadBsrModel(
  path: string,
  model: Module,
): { converted: string[]; metadata: Record<string, string> } {
  const fn = `loadBsrModel(${path})`;
  const bytes = readFileSync(path);
  const file = loadSafetensors(bytes);
  const layers = parseLayers(fn, file.metadata);
  // Build every replacement before touching the model, so a bad layer leaves it unchanged.
  const plan: [string, BsrLinear][] = [];
  for (const [name, info] of layers) {
    const m = layerToReplace(fn, model, name, "BSR", Linear, BsrLinear);
    const [rows, cols] = info.shape;
    if (m.outFeatures !== rows || m.inFeatures !== cols)
      throw new Error(
        `${fn}: layer "${name}" is [${rows},${cols}] (out, in) in the file but [${m.outFeatures},${m.inFeatures}] in the model`,
      );
    const data = tensorOf(fn, file.tensors, `${name}.data`, ["F32", "F64"]);
    const indices = tensorOf(fn, file.tensors, `${name}.indices`, ["I32"]);
    const indptr = tensorOf(fn, file.tensors, `${name}.indptr`, ["I32"]);
    const [R, C] = info.blockShape;
    if (data.shape.length !== 3 || data.shape[1] !== R || data.shape[2] !== C)
      throw new Error(
        `${fn}: "${name}.data" has shape [${data.shape.join(",")}], expected [nnzBlocks, ${R}, ${C}] for blockShape [${R},${C}]`,
      );
    let matrix: BsrMatrix<FloatArray>;
    try {
      matrix = BsrMatrix.fromArrays({
        rows,
        cols,
        blockShape: [R, C],
        indptr: toShared(indptr.data as Int32Array),
        indices: toShared(indices.data as Int32Array),
        data: toShared(data.data as FloatArray),
      }) as BsrMatrix<FloatArray>;
    } catch (e) {
      throw new Error(`${fn}: layer "${name}": ${(e as Error).message}`);
    }
    const hasBias = file.tensors.has(`${name}.bias`);
    if (hasBias !== (m.bias !== null))
      throw new Error(
        `${fn}: layer "${name}" ${hasBias ? "has" : "has no"} bias in the file but ${m.bias !== null ? "has" : "has no"} bias in the model`,
      );
    // The bias is filled by the strict load below; a zero placeholder of the file's type here.
    const bias = hasBias
      ? data.dtype === "F64"
        ? new Float64Array(rows)
        : new Float32Array(rows)
      : null;
    plan.push([name, new BsrLinear(matrix, bias)]);
  }
  const old = plan.map(([name]) => [name, model.getSubmodule(name)] as const);
  for (const [name, layer] of plan) model.setSubmodule(name, layer);
  try {
    loadModel(bytes, model);
  } catch (e) {
    for (const [name, layer] of old) model.setSubmodule(name, layer);
    throw new Error(`${fn}: ${(e as Error).message.replace(/^loadModel\(<bytes>\): /, "")}`);
  }
  return { converted: plan.map(([n]) => n), metadata: file.metadata };
}
