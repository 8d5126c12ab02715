import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { formatError, hexBytes } from "./errors.ts";
import { readSource, type ReadOptions } from "./input.ts";

/** The six IDX element types, named as in LeCun's format description. */
export type IdxType = "ubyte" | "byte" | "short" | "int" | "float" | "double";

export type IdxData =
  Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** An IDX array: row-major `data` whose length is the product of `shape`. */
export interface IdxArray<D extends IdxData = IdxData> {
  shape: number[];
  data: D;
  type: IdxType;
}

interface TypeInfo {
  type: IdxType;
  code: number;
  size: number;
  ctor: new (length: number) => IdxData;
}

// Type byte -> element layout (IDX stores every element big-endian).
const TYPES: readonly TypeInfo[] = [
  { type: "ubyte", code: 0x08, size: 1, ctor: Uint8Array },
  { type: "byte", code: 0x09, size: 1, ctor: Int8Array },
  { type: "short", code: 0x0b, size: 2, ctor: Int16Array },
  { type: "int", code: 0x0c, size: 4, ctor: Int32Array },
  { type: "float", code: 0x0d, size: 4, ctor: Float32Array },
  { type: "double", code: 0x0e, size: 8, ctor: Float64Array },
];

/** IDX type byte for each type name (0x08 ubyte ... 0x0E double). */
export const IDX_TYPE_CODES: Readonly<Record<IdxType, number>> = Object.fromEntries(
  TYPES.map((t) => [t.type, t.code]),
) as Record<IdxType, number>;

const KNOWN_CODES = TYPES.map((t) => "0x" + t.code.toString(16).padStart(2, "0")).join(", ");

/**
 * Reads an IDX file (path) or IDX bytes, raw or gzip (detected from the bytes 1f 8b).
 * Throws an Error naming the file (or "bytes"), the offset, what was expected and what was
 * found for a bad magic, unknown type byte, short header, truncated or over-long data, or
 * corrupt gzip. The header is checked against the bytes actually present before anything is
 * allocated.
 */
export function readIdx(pathOrBytes: string | Uint8Array, options: ReadOptions = {}): IdxArray {
  const { bytes, source } = readSource("readIdx", pathOrBytes, options);
  return parseIdx(bytes, source);
}

/** Parses uncompressed IDX bytes; `source` names them in error messages. */
export function parseIdx(bytes: Uint8Array, source = "bytes", fn = "readIdx"): IdxArray {
  if (bytes.length < 4) {
    throw formatError(
      fn,
      source,
      0,
      "a 4-byte IDX magic number (00 00 <type> <rank>)",
      `only ${bytes.length} bytes (${hexBytes(bytes, 0, 4)})`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw formatError(
      fn,
      source,
      0,
      "IDX magic starting with 00 00 (e.g. 00 00 08 01 = 2049 labels, 00 00 08 03 = 2051 images)",
      `${hexBytes(bytes, 0, 4)}`,
    );
  }
  const code = bytes[2] ?? 0;
  const info = TYPES.find((t) => t.code === code);
  if (info === undefined) {
    throw formatError(
      fn,
      source,
      2,
      `an IDX type byte (one of ${KNOWN_CODES})`,
      `0x${code.toString(16).padStart(2, "0")}`,
    );
  }
  const rank = bytes[3] ?? 0;
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw formatError(
      fn,
      source,
      4,
      `${rank} big-endian uint32 dimensions (${4 * rank} bytes) for rank ${rank}`,
      `${bytes.length - 4} bytes before end of data`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  // count is exact while it stays below 2^53; anything that large is far beyond the file anyway.
  const available = bytes.length - headerBytes;
  const needed = count * info.size;
  if (needed > available) {
    throw formatError(
      fn,
      source,
      headerBytes,
      `${needed} data bytes for shape [${shape.join(", ")}] of ${info.type} (${info.size} B each), file ending at ${headerBytes + needed}`,
      `${available} bytes (data is truncated or the header is wrong)`,
    );
  }
  if (needed < available) {
    throw formatError(
      fn,
      source,
      headerBytes + needed,
      `end of data after ${needed} data bytes for shape [${shape.join(", ")}] of ${info.type}`,
      `${available - needed} extra trailing bytes`,
    );
  }
  const data = new info.ctor(count);
  const start = headerBytes;
  switch (info.type) {
    case "ubyte":
      (data as Uint8Array).set(bytes.subarray(start, start + count));
      break;
    case "byte":
      (data as Int8Array).set(new Int8Array(bytes.buffer, bytes.byteOffset + start, count));
      break;
    case "short":
      for (let i = 0; i < count; i++) data[i] = view.getInt16(start + 2 * i, false);
      break;
    case "int":
      for (let i = 0; i < count; i++) data[i] = view.getInt32(start + 4 * i, false);
      break;
    case "float":
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(start + 4 * i, false);
      break;
    case "double":
      for (let i = 0; i < count; i++) data[i] = view.getFloat64(start + 8 * i, false);
      break;
  }
  return { shape, data, type: info.type };
}

export interface WriteIdxOptions {
  /** Gzip the result (level 6 unless `gzipLevel` says otherwise). Default false. */
  gzip?: boolean;
  gzipLevel?: number;
}

/**
 * Encodes an array as IDX bytes (big-endian header and data). The element type comes from
 * `array.type`, or from the typed array's class when `type` is omitted.
 */
export function writeIdx(
  array: { shape: readonly number[]; data: IdxData; type?: IdxType },
  options: WriteIdxOptions = {},
): Uint8Array {
  const fn = "writeIdx";
  const { shape, data } = array;
  const info =
    array.type !== undefined
      ? TYPES.find((t) => t.type === array.type)
      : TYPES.find((t) => data instanceof t.ctor);
  if (info === undefined) {
    throw new TypeError(
      `${fn}: unknown element type ${String(array.type ?? data?.constructor?.name)}; expected one of ${TYPES.map((t) => t.type).join(", ")}`,
    );
  }
  if (!(data instanceof info.ctor)) {
    throw new TypeError(
      `${fn}: type "${info.type}" needs data as ${info.ctor.name}, got ${data?.constructor?.name}`,
    );
  }
  if (!Array.isArray(shape) || shape.length > 255) {
    throw new RangeError(
      `${fn}: shape must be an array of at most 255 dimensions, got ${JSON.stringify(shape)}`,
    );
  }
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new RangeError(
        `${fn}: every dimension must be an integer in [0, 2^32-1], got shape [${shape.join(", ")}]`,
      );
    }
    count *= d;
  }
  if (count !== data.length) {
    throw new RangeError(
      `${fn}: shape [${shape.join(", ")}] holds ${count} elements but data has ${data.length}`,
    );
  }
  const headerBytes = 4 + 4 * shape.length;
  const out = new Uint8Array(headerBytes + count * info.size);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = shape.length;
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const s = headerBytes;
  switch (info.type) {
    case "ubyte":
      out.set(data as Uint8Array, s);
      break;
    case "byte":
      out.set(new Uint8Array(data.buffer, data.byteOffset, count), s);
      break;
    case "short":
      for (let i = 0; i < count; i++) view.setInt16(s + 2 * i, data[i] ?? 0, false);
      break;
    case "int":
      for (let i = 0; i < count; i++) view.setInt32(s + 4 * i, data[i] ?? 0, false);
      break;
    case "float":
      for (let i = 0; i < count; i++) view.setFloat32(s + 4 * i, data[i] ?? 0, false);
      break;
    case "double":
      for (let i = 0; i < count; i++) view.setFloat64(s + 8 * i, data[i] ?? 0, false);
      break;
  }
  if (options.gzip === true)
    return new Uint8Array(gzipSync(out, { level: options.gzipLevel ?? 6 }));
  return out;
}

/** `writeIdx` straight to a file (gzip when `options.gzip`). */
export function writeIdxFile(
  path: string,
  array: { shape: readonly number[]; data: IdxData; type?: IdxType },
  options: WriteIdxOptions = {},
): void {
  writeFileSync(path, writeIdx(array, options));
}
