import { readFileSync, statSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { formatError } from "./errors.ts";

/**
 * Largest decompressed (or raw) input accepted by default: 1 GiB. The biggest official file
 * here (MNIST train images) is 47,040,016 bytes; the cap exists so a gzip bomb or a huge
 * wrong file fails with a message instead of exhausting memory.
 */
export const DEFAULT_MAX_BYTES = 2 ** 30;

export interface ReadOptions {
  /** Cap on the raw or decompressed size in bytes (default {@link DEFAULT_MAX_BYTES}). */
  maxBytes?: number;
}

/** Input bytes plus the name used in error messages: the path, or "bytes". */
export interface SourceBytes {
  bytes: Uint8Array;
  /** For messages: the file path, "bytes", with " (gunzipped)" appended after decompression. */
  source: string;
  gzipped: boolean;
}

/** True when the bytes start with the gzip magic 1f 8b (the name of a file is never trusted). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function checkMaxBytes(fn: string, maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
    throw new RangeError(
      `${fn}: options.maxBytes must be a non-negative safe integer, got ${maxBytes}`,
    );
  }
}

/** Reads a path (or takes the given bytes) and gunzips when the bytes say gzip. */
export function readSource(
  fn: string,
  pathOrBytes: string | Uint8Array,
  options: ReadOptions = {},
): SourceBytes {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  checkMaxBytes(fn, maxBytes);
  let bytes: Uint8Array;
  let source: string;
  if (typeof pathOrBytes === "string") {
    source = pathOrBytes;
    let size: number;
    try {
      const st = statSync(pathOrBytes);
      if (!st.isFile()) throw new Error("not a regular file");
      size = st.size;
    } catch (e) {
      throw new Error(`${fn}: ${source}: cannot read file: ${(e as Error).message}`);
    }
    if (size > maxBytes) {
      throw formatError(
        fn,
        source,
        0,
        `a file of at most ${maxBytes} bytes (options.maxBytes)`,
        `${size} bytes`,
      );
    }
    try {
      bytes = readFileSync(pathOrBytes);
    } catch (e) {
      throw new Error(`${fn}: ${source}: cannot read file: ${(e as Error).message}`);
    }
  } else if (pathOrBytes instanceof Uint8Array) {
    source = "bytes";
    bytes = pathOrBytes;
  } else {
    throw new TypeError(
      `${fn}: expected a file path (string) or a Uint8Array, got ${describe(pathOrBytes)}`,
    );
  }
  if (!isGzip(bytes)) return { bytes, source, gzipped: false };
  return {
    bytes: gunzip(fn, bytes, source, maxBytes),
    source: `${source} (gunzipped)`,
    gzipped: true,
  };
}

/** gunzipSync with an output cap; zlib's errors are rethrown naming the source. */
export function gunzip(
  fn: string,
  bytes: Uint8Array,
  source: string,
  maxBytes: number,
): Uint8Array {
  let out: Uint8Array;
  try {
    out = gunzipSync(bytes, { maxOutputLength: Math.max(1, maxBytes) });
  } catch (e) {
    const err = e as Error & { code?: string };
    const tooBig = err.code === "ERR_BUFFER_TOO_LARGE";
    const expected = tooBig
      ? `gzip data that decompresses to at most ${maxBytes} bytes (options.maxBytes)`
      : `a complete, valid gzip stream of ${bytes.length} bytes`;
    const found = `${err.code ? err.code + ": " : ""}${err.message}`;
    throw formatError(fn, source, 0, expected, found);
  }
  if (out.length > maxBytes) {
    const expected = `gzip data that decompresses to at most ${maxBytes} bytes (options.maxBytes)`;
    throw formatError(fn, source, 0, expected, `at least ${out.length} bytes`);
  }
  return out;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}
