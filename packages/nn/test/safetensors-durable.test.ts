// saveSafetensors must be as durable as the workspace's one atomic write: fsync the file,
// rename, then fsync the directory (so the rename survives a power cut). The copy it had
// before skipped the directory sync; this test watches the fsync calls to tell.
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";

const synced: string[] = [];
const opened = new Map<number, string>();
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  return {
    ...real,
    openSync: (path: fs.PathLike, ...rest: unknown[]) => {
      const fd = (real.openSync as (...a: unknown[]) => number)(path, ...rest);
      opened.set(fd, String(path));
      return fd;
    },
    fsyncSync: (fd: number) => {
      synced.push(opened.get(fd) ?? `fd ${fd}`);
      real.fsyncSync(fd);
    },
  };
});

const { saveSafetensors, loadSafetensors } = await import("../src/safetensors.ts");

describe("saveSafetensors durability", () => {
  it("fsyncs the temporary file, then the directory after the rename, and leaves no temporary", () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "tessera-durable-"));
    const path = join(dir, "m.safetensors");
    synced.length = 0;
    saveSafetensors(path, { w: { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) } });
    expect(synced).toHaveLength(2);
    expect(synced[0]).toMatch(/\/\.m\.safetensors\.\d+\.[0-9a-z]*\.tmp$/);
    expect(synced[1]).toBe(dir);
    expect(fs.readdirSync(dir)).toEqual(["m.safetensors"]);
    expect(loadSafetensors(path).tensors.get("w")!.data).toEqual(Float32Array.of(1, 2));
  });

  it("a failed write names the path and leaves neither a temporary nor a file", () => {
    const dir = fs.mkdtempSync(join(tmpdir(), "tessera-durable-"));
    const path = join(dir, "sub");
    fs.mkdirSync(path); // a directory where the file should go: the rename fails
    expect(() =>
      saveSafetensors(path, { w: { dtype: "U8", shape: [1], data: Uint8Array.of(1) } }),
    ).toThrow(`saveSafetensors(${path}): writeFileAtomic: ${path}:`);
    expect(fs.readdirSync(dir)).toEqual(["sub"]);
  });
});
