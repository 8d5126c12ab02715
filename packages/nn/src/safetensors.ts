// Safetensors checkpoints (https://github.com/huggingface/safetensors, format described in its
// README): 8-byte little-endian u64 header length N, N bytes of JSON header, then the raw
// little-endian tensor bytes. This layer works on plain {dtype, shape, data} records so it does
// not depend on tensors or modules; `Module.stateDict()` maps onto it.
import { readFileSync } from "node:fs";
import { endianness } from "node:os";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";

/** Dtypes this implementation reads and writes, with the typed array holding their bytes. */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

export type TensorData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

/** One tensor as stored: F16/BF16 are kept as raw 16-bit patterns in a Uint16Array, BOOL as 0/1 bytes. */
export interface TensorRecord {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorRecord>;
  metadata: Record<string, string>;
}

interface DtypeInfo {
  bytes: number;
  // Order of the reference implementation's Dtype enum: it writes larger ranks first, so that
  // every tensor stays aligned to its element size without padding.
  rank: number;
  make: (buf: ArrayBuffer, byteOffset: number, length: number) => TensorData;
  check: (data: TensorData) => boolean;
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  BOOL: {
    bytes: 1,
    rank: 0,
    make: (b, o, n) => new Uint8Array(b, o, n),
    check: (d) => d instanceof Uint8Array,
  },
  U8: {
    bytes: 1,
    rank: 1,
    make: (b, o, n) => new Uint8Array(b, o, n),
    check: (d) => d instanceof Uint8Array,
  },
  I8: {
    bytes: 1,
    rank: 2,
    make: (b, o, n) => new Int8Array(b, o, n),
    check: (d) => d instanceof Int8Array,
  },
  I16: {
    bytes: 2,
    rank: 3,
    make: (b, o, n) => new Int16Array(b, o, n),
    check: (d) => d instanceof Int16Array,
  },
  U16: {
    bytes: 2,
    rank: 4,
    make: (b, o, n) => new Uint16Array(b, o, n),
    check: (d) => d instanceof Uint16Array,
  },
  F16: {
    bytes: 2,
    rank: 5,
    make: (b, o, n) => new Uint16Array(b, o, n),
    check: (d) => d instanceof Uint16Array,
  },
  BF16: {
    bytes: 2,
    rank: 6,
    make: (b, o, n) => new Uint16Array(b, o, n),
    check: (d) => d instanceof Uint16Array,
  },
  I32: {
    bytes: 4,
    rank: 7,
    make: (b, o, n) => new Int32Array(b, o, n),
    check: (d) => d instanceof Int32Array,
  },
  U32: {
    bytes: 4,
    rank: 8,
    make: (b, o, n) => new Uint32Array(b, o, n),
    check: (d) => d instanceof Uint32Array,
  },
  F32: {
    bytes: 4,
    rank: 9,
    make: (b, o, n) => new Float32Array(b, o, n),
    check: (d) => d instanceof Float32Array,
  },
  F64: {
    bytes: 8,
    rank: 10,
    make: (b, o, n) => new Float64Array(b, o, n),
    check: (d) => d instanceof Float64Array,
  },
  I64: {
    bytes: 8,
    rank: 11,
    make: (b, o, n) => new BigInt64Array(b, o, n),
    check: (d) => d instanceof BigInt64Array,
  },
  U64: {
    bytes: 8,
    rank: 12,
    make: (b, o, n) => new BigUint64Array(b, o, n),
    check: (d) => d instanceof BigUint64Array,
  },
};

/** The reference implementation refuses headers above 100 MB; so do we (guards huge allocations). */
const MAX_HEADER_BYTES = 100_000_000;

function assertLittleEndianHost(fn: string): void {
  // Typed arrays use the host byte order; safetensors is little-endian. Every platform Node
  // ships for is little-endian, but failing loudly beats silently swapping bytes.
  if (endianness() !== "LE") {
    throw new Error(`${fn}: this host is big-endian; safetensors data is little-endian`);
  }
}

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPES, s);
}

function validShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Serialises records (and optional string metadata) to the bytes of a safetensors file. */
export function serializeSafetensors(
  tensors: Map<string, TensorRecord> | Record<string, TensorRecord>,
  metadata?: Record<string, string>,
): Uint8Array {
  const fn = "serializeSafetensors";
  assertLittleEndianHost(fn);
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, rec] of entries) {
    if (name === "__metadata__")
      throw new Error(`${fn}: "__metadata__" is reserved and cannot name a tensor`);
    if (!isSafetensorsDtype(rec.dtype)) {
      throw new Error(
        `${fn}: tensor "${name}" has unknown dtype ${String(rec.dtype)}; expected one of ${Object.keys(DTYPES).join(", ")}`,
      );
    }
    if (!validShape(rec.shape)) {
      throw new Error(
        `${fn}: tensor "${name}" has invalid shape ${JSON.stringify(rec.shape)}; expected non-negative integers`,
      );
    }
    const info = DTYPES[rec.dtype];
    if (!info.check(rec.data)) {
      throw new Error(
        `${fn}: tensor "${name}" with dtype ${rec.dtype} holds a ${rec.data.constructor.name}, which does not match`,
      );
    }
    if (rec.data.length !== product(rec.shape)) {
      throw new Error(
        `${fn}: tensor "${name}" has shape [${rec.shape.join(", ")}] (${product(rec.shape)} elements) but ${rec.data.length} data elements`,
      );
    }
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string")
        throw new Error(`${fn}: metadata "${k}" must be a string, got ${typeof v}`);
    }
  }
  // Same order as the reference writer: larger dtype rank first, then by name (byte order).
  entries.sort((a, b) => {
    const r = DTYPES[b[1].dtype].rank - DTYPES[a[1].dtype].rank;
    if (r !== 0) return r;
    return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
  });
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header["__metadata__"] = metadata;
  let offset = 0;
  for (const [name, rec] of entries) {
    const end = offset + rec.data.byteLength;
    header[name] = { dtype: rec.dtype, shape: rec.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  const headerLen = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const [, rec] of entries) {
    out.set(new Uint8Array(rec.data.buffer, rec.data.byteOffset, rec.data.byteLength), pos);
    pos += rec.data.byteLength;
  }
  return out;
}

/**
 * Parses safetensors bytes. `source` only names the origin in error messages. Tensor data is
 * copied into fresh aligned buffers, so the records do not keep `bytes` alive.
 */
export function parseSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsFile {
  const fn = "loadSafetensors";
  assertLittleEndianHost(fn);
  const where = `${fn}(${source})`;
  if (bytes.length < 8) {
    throw new Error(
      `${where}: truncated file: ${bytes.length} bytes, need at least 8 for the header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    throw new Error(
      `${where}: header length ${n64} exceeds the ${bytes.length - 8} bytes after the length field (truncated or not a safetensors file)`,
    );
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES)
    throw new Error(`${where}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2 || bytes[8] !== 0x7b)
    throw new Error(`${where}: header does not start with "{" (not a safetensors file)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`${where}: header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${where}: header must be a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const infos: {
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, raw] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw))
        throw new Error(`${where}: "__metadata__" must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string")
          throw new Error(`${where}: metadata "${k}" must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== "object" || raw === null)
      throw new Error(`${where}: entry "${name}" must be an object`);
    const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
    if (!isSafetensorsDtype(dtype)) {
      throw new Error(
        `${where}: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}; supported: ${Object.keys(DTYPES).join(", ")}`,
      );
    }
    if (!validShape(shape))
      throw new Error(`${where}: tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) ||
      offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      throw new Error(
        `${where}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}; expected [begin, end]`,
      );
    }
    const [begin, end] = offs as [number, number];
    if (end < begin)
      throw new Error(
        `${where}: tensor "${name}" has data_offsets [${begin}, ${end}] with end before begin`,
      );
    if (end > dataLen) {
      throw new Error(
        `${where}: tensor "${name}" data_offsets [${begin}, ${end}] run past the ${dataLen} data bytes (truncated file?)`,
      );
    }
    const expected = product(shape) * DTYPES[dtype].bytes;
    if (end - begin !== expected) {
      throw new Error(
        `${where}: tensor "${name}" of dtype ${dtype} and shape [${shape.join(", ")}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    infos.push({ name, dtype, shape, begin, end });
  }
  // The data section must be tiled exactly: no gaps, no overlaps, nothing left over.
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectBegin = 0;
  for (const t of sorted) {
    if (t.begin < expectBegin)
      throw new Error(
        `${where}: tensor "${t.name}" data_offsets [${t.begin}, ${t.end}] overlap the previous tensor (which ends at ${expectBegin})`,
      );
    if (t.begin > expectBegin)
      throw new Error(
        `${where}: gap in the data: tensor "${t.name}" begins at ${t.begin} but the previous tensor ends at ${expectBegin} (offsets must be contiguous)`,
      );
    expectBegin = t.end;
  }
  if (expectBegin !== dataLen) {
    throw new Error(
      `${where}: tensors cover ${expectBegin} data bytes but the file holds ${dataLen} after the header (trailing or missing bytes)`,
    );
  }
  const tensors = new Map<string, TensorRecord>();
  for (const t of infos) {
    const info = DTYPES[t.dtype];
    const copy = new ArrayBuffer(t.end - t.begin);
    new Uint8Array(copy).set(bytes.subarray(dataStart + t.begin, dataStart + t.end));
    tensors.set(t.name, {
      dtype: t.dtype,
      shape: t.shape,
      data: info.make(copy, 0, (t.end - t.begin) / info.bytes),
    });
  }
  return { tensors, metadata };
}

/**
 * Writes a safetensors file atomically and durably (writeFileAtomic: a temporary in the same
 * directory, fsync, rename over `path`, fsync the directory), so a crash never leaves a
 * half-written checkpoint under the real name.
 */
export function saveSafetensors(
  path: string,
  tensors: Map<string, TensorRecord> | Record<string, TensorRecord>,
  metadata?: Record<string, string>,
): void {
  if (typeof path !== "string" || path.length === 0)
    throw new Error(`saveSafetensors: path must be a non-empty string`);
  const bytes = serializeSafetensors(tensors, metadata);
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    throw new Error(`saveSafetensors(${path}): ${(e as Error).message}`);
  }
}

/** Reads a safetensors file from a path, or parses bytes already in memory. */
export function loadSafetensors(source: string | Uint8Array): SafetensorsFile {
  if (typeof source === "string") {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(source);
    } catch (e) {
      throw new Error(`loadSafetensors(${source}): cannot read file: ${(e as Error).message}`);
    }
    return parseSafetensors(bytes, source);
  }
  if (!(source instanceof Uint8Array))
    throw new Error(`loadSafetensors: expected a path or a Uint8Array`);
  return parseSafetensors(source);
}
