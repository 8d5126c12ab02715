// KEP models on disk: a model whose pruned convolutions are KepConv2d layers as one
// safetensors file holding only the kept values and a compact index per layer, in one of two
// forms:
//   positions: "<layer>.positions" (U8) the kept positions bit-packed, ceil(log2(k²)) bits each
//              (4 for 3x3; KepLayout.packPositions), plus "<layer>.counts" (U8 [F·C]) only when
//              planes keep different numbers (e.g. after plane removal);
//   patterns:  "<layer>.patterns" (U8 [L, n]) the library, and "<layer>.pattern_ids" (U8) one
//              id per plane bit-packed, ceil(log2(L)) bits each (ceil(log2(L + 1)) when some
//              plane is empty: id L means "keeps nothing").
// Beside them "<layer>.values" and "<layer>.bias" (the layer's parameters), every other tensor
// of the model under its state-dict name, and in the metadata key "tessera.kep" the JSON map
// { "<layer>": { shape, stride, padding, format, ... } }. Written atomically (saveSafetensors).
import { KepLayout, positionBits } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";
import { Tensor } from "@tessera/tensor";
import {
  Conv2d,
  loadSafetensors,
  recordToTensor,
  saveSafetensors,
  tensorToRecord,
  type Module,
  type TensorRecord,
} from "@tessera/nn";
import { KepConv2d } from "./kep-conv.ts";
import { layerToReplace } from "./util.ts";
import type { PatternLibrary } from "./kep.ts";

/** The metadata key holding every KEP layer's geometry and index format. */
export const KEP_METADATA_KEY = "tessera.kep";

/** One KEP layer as the metadata describes it. */
export interface KepLayerInfo {
  /** [F, C, k, k]. */
  shape: [number, number, number, number];
  stride: number;
  padding: number;
  format: "positions" | "patterns";
  /** Elements kept by every plane, or null when the counts vary (positions format). */
  perPlane: number | null;
  /** patterns format: library size L, bits per id, and the id of an empty plane (or null). */
  librarySize?: number;
  idBits?: number;
  emptyId?: number | null;
}

/** Bytes of one KEP layer stored: float32 (or float64) values and the index. */
export interface KepStorageRow {
  name: string;
  format: "positions" | "patterns";
  nnz: number;
  /** The dense weight in float32. */
  denseBytes: number;
  valueBytes: number;
  /** positions: packed positions (+ counts); patterns: packed ids + the library (L·n bytes). */
  indexBytes: number;
}

function packBits(values: ArrayLike<number>, bits: number): Uint8Array {
  const out = new Uint8Array(Math.ceil((values.length * bits) / 8));
  for (let e = 0; e < values.length; e++) {
    const v = values[e]!;
    for (let b = 0; b < bits; b++) {
      const bit = e * bits + b;
      if ((v >> b) & 1) out[bit >> 3] = out[bit >> 3]! | (1 << (bit & 7));
    }
  }
  return out;
}

function unpackBits(bytes: Uint8Array, count: number, bits: number): Int32Array {
  const out = new Int32Array(count);
  for (let e = 0; e < count; e++) {
    let v = 0;
    for (let b = 0; b < bits; b++) {
      const bit = e * bits + b;
      v |= ((bytes[bit >> 3]! >> (bit & 7)) & 1) << b;
    }
    out[e] = v;
  }
  return out;
}

const bitsFor = (symbols: number): number => Math.max(1, Math.ceil(Math.log2(symbols)));

/**
 * The pattern id of every plane of `layout` in `library` (the library's size when the plane is
 * empty); throws naming the plane when a plane's positions are not a library pattern.
 */
function patternIdsOf(fn: string, name: string, layout: KepLayout, library: PatternLibrary) {
  if (library.kh !== layout.kh || library.kw !== layout.kw)
    throw new Error(
      `${fn}: the library of "${name}" is for ${library.kh}x${library.kw} planes, the layer has ${layout.kh}x${layout.kw}`,
    );
  const byKey = new Map(library.patterns.map((p, i) => [Array.from(p).join(","), i]));
  const planes = layout.f * layout.c;
  const ids = new Int32Array(planes);
  let empty = false;
  for (let p = 0; p < planes; p++) {
    const kept = layout.pos.subarray(layout.ptr[p]!, layout.ptr[p + 1]!);
    if (kept.length === 0) {
      ids[p] = library.patterns.length;
      empty = true;
      continue;
    }
    const id = byKey.get(Array.from(kept).join(","));
    if (id === undefined)
      throw new Error(
        `${fn}: plane ${p} of "${name}" keeps positions ${Array.from(kept).join(",")}, which is not a pattern of its library (${library.patterns.length} patterns of ${library.n})`,
      );
    ids[p] = id;
  }
  return { ids, empty };
}

function kepLayers(model: Module): [string, KepConv2d][] {
  return model.namedModules().filter((e): e is [string, KepConv2d] => e[1] instanceof KepConv2d);
}

/**
 * The records and metadata entry of `model`'s KEP layers (`libraries`: layer path -> pattern
 * library, for the layers to store in patterns form), and the bytes of each.
 */
function kepRecords(
  fn: string,
  model: Module,
  libraries: ReadonlyMap<string, PatternLibrary>,
): {
  records: Map<string, TensorRecord>;
  info: Record<string, KepLayerInfo>;
  rows: KepStorageRow[];
} {
  const layers = kepLayers(model);
  for (const name of libraries.keys())
    if (!layers.some(([n]) => n === name))
      throw new Error(
        `${fn}: a library is given for "${name}", which is not a KepConv2d of the model`,
      );
  const records = new Map<string, TensorRecord>();
  const info: Record<string, KepLayerInfo> = {};
  const rows: KepStorageRow[] = [];
  for (const [name, layer] of layers) {
    const layout = layer.layout;
    const shape: KepLayerInfo["shape"] = [layout.f, layout.c, layout.kh, layout.kw];
    const base = { shape, stride: layer.stride, padding: layer.padding };
    const library = libraries.get(name);
    let indexBytes: number;
    if (library === undefined) {
      const perPlane = layout.uniformCount;
      const positions = layout.packPositions();
      records.set(`${name}.positions`, { dtype: "U8", shape: [positions.length], data: positions });
      indexBytes = positions.length;
      if (perPlane === null) {
        const counts = Uint8Array.from(layout.counts());
        records.set(`${name}.counts`, { dtype: "U8", shape: [counts.length], data: counts });
        indexBytes += counts.length;
      }
      info[name] = { ...base, format: "positions", perPlane };
    } else {
      const { ids, empty } = patternIdsOf(fn, name, layout, library);
      const L = library.patterns.length;
      const idBits = bitsFor(L + (empty ? 1 : 0));
      const packed = packBits(ids, idBits);
      const lib = new Uint8Array(L * library.n);
      library.patterns.forEach((p, i) => lib.set(p, i * library.n));
      records.set(`${name}.patterns`, { dtype: "U8", shape: [L, library.n], data: lib });
      records.set(`${name}.pattern_ids`, { dtype: "U8", shape: [packed.length], data: packed });
      indexBytes = packed.length + lib.length;
      info[name] = {
        ...base,
        format: "patterns",
        perPlane: empty ? null : library.n,
        librarySize: L,
        idBits,
        emptyId: empty ? L : null,
      };
    }
    const values = layer.values.data.contiguous().data as FloatArray;
    rows.push({
      name,
      format: info[name]!.format,
      nnz: layout.nnz,
      denseBytes: 4 * layout.f * layout.c * layout.kh * layout.kw,
      valueBytes: values.BYTES_PER_ELEMENT * layout.nnz,
      indexBytes,
    });
  }
  return { records, info, rows };
}

/** Bytes of every KEP layer of `model` as saveKepModel would store it (same arguments). */
export function kepStorageBytes(
  model: Module,
  libraries: ReadonlyMap<string, PatternLibrary> = new Map(),
): KepStorageRow[] {
  return kepRecords("kepStorageBytes", model, libraries).rows;
}

/**
 * Writes `model` with its KepConv2d layers in compact form (see the file header): the layers
 * named in `libraries` store one pattern id per plane plus the library, the others their
 * packed positions. Every other tensor of the model is written under its state-dict name.
 * Returns the bytes per KEP layer.
 */
export function saveKepModel(
  path: string,
  model: Module,
  options: {
    libraries?: ReadonlyMap<string, PatternLibrary>;
    metadata?: Record<string, string>;
  } = {},
): KepStorageRow[] {
  const fn = "saveKepModel";
  const metadata = options.metadata ?? {};
  if (KEP_METADATA_KEY in metadata)
    throw new Error(`${fn}: metadata key "${KEP_METADATA_KEY}" is reserved for the KEP layers`);
  const { records, info, rows } = kepRecords(fn, model, options.libraries ?? new Map());
  const kepNames = new Set(Object.keys(info));
  for (const [key, t] of model.stateDict()) {
    const dot = key.lastIndexOf(".");
    const owner = key.slice(0, dot);
    const leaf = key.slice(dot + 1);
    // The layout buffers are replaced by the compact index.
    if (kepNames.has(owner) && (leaf === "ptr" || leaf === "pos")) continue;
    records.set(key, tensorToRecord(t));
  }
  saveSafetensors(path, records, { ...metadata, [KEP_METADATA_KEY]: JSON.stringify(info) });
  return rows;
}

function parseInfo(fn: string, metadata: Record<string, string>): Map<string, KepLayerInfo> {
  const text = metadata[KEP_METADATA_KEY];
  if (text === undefined)
    throw new Error(
      `${fn}: the file has no "${KEP_METADATA_KEY}" metadata (was it written by saveKepModel?)`,
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${fn}: metadata "${KEP_METADATA_KEY}" is not JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new Error(`${fn}: metadata "${KEP_METADATA_KEY}" must map layer names to layer infos`);
  const out = new Map<string, KepLayerInfo>();
  const posInt = (v: unknown, min: number) => Number.isSafeInteger(v) && (v as number) >= min;
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    const i = raw as Partial<KepLayerInfo> | null;
    const ok =
      i !== null &&
      typeof i === "object" &&
      Array.isArray(i.shape) &&
      i.shape.length === 4 &&
      i.shape.every((d) => posInt(d, 1)) &&
      i.shape[2] === i.shape[3] &&
      posInt(i.stride, 1) &&
      posInt(i.padding, 0) &&
      (i.format === "positions" || i.format === "patterns") &&
      (i.perPlane === null || posInt(i.perPlane, 0)) &&
      (i.format === "positions" ||
        (posInt(i.librarySize, 1) &&
          posInt(i.idBits, 1) &&
          (i.emptyId === null || i.emptyId === i.librarySize)));
    if (!ok)
      throw new Error(
        `${fn}: metadata for layer "${name}" is not a KEP layer description ({shape: [F, C, k, k], stride, padding, format: "positions" | "patterns", perPlane, ...}), got ${JSON.stringify(raw)}`,
      );
    out.set(name, i as KepLayerInfo);
  }
  return out;
}

function tensorOf(
  fn: string,
  tensors: Map<string, TensorRecord>,
  key: string,
  dtype: string,
  length: number,
  what: string,
): TensorRecord {
  const r = tensors.get(key);
  if (r === undefined) throw new Error(`${fn}: the file has no tensor "${key}"`);
  if (r.dtype !== dtype) throw new Error(`${fn}: "${key}" is ${r.dtype}, expected ${dtype}`);
  if (r.data.length !== length)
    throw new Error(`${fn}: "${key}" has ${r.data.length} entries, expected ${length} (${what})`);
  return r;
}

/** The layout of one layer from the file's index tensors. */
function layoutFromFile(
  fn: string,
  name: string,
  info: KepLayerInfo,
  tensors: Map<string, TensorRecord>,
): KepLayout {
  const [f, c, kh, kw] = info.shape;
  const planes = f * c;
  try {
    if (info.format === "positions") {
      let counts: number | Int32Array;
      if (info.perPlane === null) {
        const r = tensorOf(
          fn,
          tensors,
          `${name}.counts`,
          "U8",
          planes,
          `one count per plane, F·C = ${planes}`,
        );
        counts = Int32Array.from(r.data as Uint8Array);
      } else counts = info.perPlane;
      const nnz = typeof counts === "number" ? counts * planes : counts.reduce((a, b) => a + b, 0);
      const bits = positionBits(kh, kw);
      const need = Math.ceil((nnz * bits) / 8);
      const r = tensorOf(
        fn,
        tensors,
        `${name}.positions`,
        "U8",
        need,
        `${nnz} positions of ${bits} bits`,
      );
      return KepLayout.fromPacked(f, c, kh, kw, counts, r.data as Uint8Array);
    }
    const L = info.librarySize!;
    const libRec = tensors.get(`${name}.patterns`);
    if (libRec === undefined) throw new Error(`${fn}: the file has no tensor "${name}.patterns"`);
    if (libRec.dtype !== "U8" || libRec.shape.length !== 2 || libRec.shape[0] !== L)
      throw new Error(
        `${fn}: "${name}.patterns" is ${libRec.dtype} [${libRec.shape.join(",")}], expected U8 [${L}, n] (the library)`,
      );
    const n = libRec.shape[1]!;
    const lib = libRec.data as Uint8Array;
    const idBits = info.idBits!;
    const idsRec = tensorOf(
      fn,
      tensors,
      `${name}.pattern_ids`,
      "U8",
      Math.ceil((planes * idBits) / 8),
      `${planes} plane ids of ${idBits} bits`,
    );
    const ids = unpackBits(idsRec.data as Uint8Array, planes, idBits);
    const ptr = new Int32Array(planes + 1);
    const pos: number[] = [];
    for (let p = 0; p < planes; p++) {
      const id = ids[p]!;
      if (id !== info.emptyId) {
        if (id >= L)
          throw new Error(
            `${fn}: "${name}.pattern_ids": plane ${p} has id ${id}, the library holds ${L} patterns${info.emptyId === null ? "" : ` (id ${info.emptyId}: empty plane)`}`,
          );
        for (let j = 0; j < n; j++) pos.push(lib[id * n + j]!);
      }
      ptr[p + 1] = pos.length;
    }
    return new KepLayout(f, c, kh, kw, ptr, Int32Array.from(pos));
  } catch (e) {
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(fn) ? msg : `${fn}: layer "${name}": ${msg}`);
  }
}

/**
 * Loads a saveKepModel file into `model` (the dense architecture, or one already holding
 * KepConv2d layers at the same paths): every layer the metadata lists becomes a KepConv2d with
 * the file's layout, values and bias; every other tensor is loaded strictly (the model must
 * match the file exactly). A file whose index does not fit (a missing tensor, a wrong dtype or
 * size, a pattern id outside the library, positions out of range) or a layer whose shape
 * differs from the model's throws naming the function, the tensor or layer, and what was
 * expected; the model is then left unchanged. Returns the converted paths and the metadata.
 */
export function loadKepModel(
  source: string | Uint8Array,
  model: Module,
): { converted: string[]; metadata: Record<string, string> } {
  const fn = `loadKepModel(${typeof source === "string" ? source : "<bytes>"})`;
  const file = loadSafetensors(source);
  const layers = parseInfo(fn, file.metadata);
  const plan: [string, KepConv2d][] = [];
  const indexKeys = new Set<string>();
  for (const [name, info] of layers) {
    const m = layerToReplace(fn, model, name, "KEP", Conv2d, KepConv2d);
    const have = [m.outChannels, m.inChannels, m.kernelSize, m.kernelSize];
    if (
      have.some((d, i) => d !== info.shape[i]) ||
      m.stride !== info.stride ||
      m.padding !== info.padding
    )
      throw new Error(
        `${fn}: layer "${name}" is [${info.shape.join(",")}] stride ${info.stride} padding ${info.padding} in the file, [${have.join(",")}] stride ${m.stride} padding ${m.padding} in the model`,
      );
    const layout = layoutFromFile(fn, name, info, file.tensors);
    const vRec = file.tensors.get(`${name}.values`);
    if (vRec === undefined) throw new Error(`${fn}: the file has no tensor "${name}.values"`);
    if (vRec.dtype !== "F32" && vRec.dtype !== "F64")
      throw new Error(`${fn}: "${name}.values" is ${vRec.dtype}, expected F32 or F64`);
    if (vRec.data.length !== layout.nnz)
      throw new Error(
        `${fn}: "${name}.values" has ${vRec.data.length} values, expected ${layout.nnz} (the kept elements of its index)`,
      );
    const hasBias = file.tensors.has(`${name}.bias`);
    if (hasBias !== (m.bias !== null))
      throw new Error(
        `${fn}: layer "${name}" ${hasBias ? "has" : "has no"} bias in the file but ${m.bias !== null ? "has" : "has no"} bias in the model`,
      );
    const values = vRec.data as FloatArray;
    // Placeholders of the file's type; the strict load below fills values and bias.
    const bias = hasBias
      ? vRec.dtype === "F64"
        ? new Float64Array(info.shape[0])
        : new Float32Array(info.shape[0])
      : null;
    plan.push([
      name,
      new KepConv2d(layout, values, bias, { stride: info.stride, padding: info.padding }),
    ]);
    for (const k of ["positions", "counts", "patterns", "pattern_ids"])
      indexKeys.add(`${name}.${k}`);
  }
  const state = new Map<string, Tensor>();
  for (const [key, rec] of file.tensors) {
    if (indexKeys.has(key)) continue;
    if (rec.dtype !== "F32" && rec.dtype !== "F64" && rec.dtype !== "I32")
      throw new Error(`${fn}: "${key}" is ${rec.dtype}; only the KEP index tensors may be U8`);
    state.set(key, recordToTensor(rec, key));
  }
  for (const [name, layer] of plan) {
    state.set(`${name}.ptr`, new Tensor(layer.layout.ptr.slice(), [layer.layout.ptr.length]));
    state.set(`${name}.pos`, new Tensor(layer.layout.pos.slice(), [layer.layout.nnz]));
  }
  const old = plan.map(([name]) => [name, model.getSubmodule(name)] as const);
  for (const [name, layer] of plan) model.setSubmodule(name, layer);
  try {
    model.loadStateDict(state);
  } catch (e) {
    for (const [name, layer] of old) model.setSubmodule(name, layer);
    throw new Error(`${fn}: ${(e as Error).message}`);
  }
  return { converted: plan.map(([n]) => n), metadata: file.metadata };
}
