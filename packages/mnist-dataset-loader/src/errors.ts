// One message shape for every malformed-input error, so callers (and tests) can rely on it:
// "<fn>: <file or "bytes">: at offset <n>: expected <...>, found <...>".
export function formatError(
  fn: string,
  source: string,
  offset: number,
  expected: string,
  found: string,
): Error {
  return new Error(`${fn}: ${source}: at offset ${offset}: expected ${expected}, found ${found}`);
}

/** Hex dump of up to `max` bytes starting at `offset`, for "found ..." parts of messages. */
export function hexBytes(bytes: Uint8Array, offset: number, max: number): string {
  const end = Math.min(bytes.length, offset + max);
  const parts: string[] = [];
  for (let i = offset; i < end; i++) parts.push((bytes[i] ?? 0).toString(16).padStart(2, "0"));
  return parts.length === 0 ? "no bytes" : parts.join(" ");
}
