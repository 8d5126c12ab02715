// The experiments' dataset adapter: both splits normalised to [-1, 1] as [C, H, W] examples, and
// a clear error (no fetch into a user's own directory) when the files are missing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DatasetNotFoundError } from "@tessera/mnist-dataset-loader";
import { loadSplits, loadSplitsAsync } from "../src/data.ts";

const empty = mkdtempSync(join(tmpdir(), "tessera-data-"));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

describe("loadSplits / loadSplitsAsync", () => {
  it("gives MNIST as 60,000 / 10,000 normalised [1, 28, 28] examples, the same both ways", async () => {
    const sync = loadSplits("mnist");
    const viaAsync = await loadSplitsAsync("mnist", { fetch: false });
    expect(sync.inputShape).toEqual([1, 28, 28]);
    expect([sync.train.count, sync.test.count]).toEqual([60000, 10000]);
    const batch = (d: typeof sync.test) => {
      const b = d.getBatch(Int32Array.of(0, 9999)); // copied: the next getBatch may overwrite it
      return { labels: Array.from(b.y), pixels: Array.from(b.x.data as Float32Array) };
    };
    const a = batch(sync.test);
    const b = batch(viaAsync.test);
    expect(a.labels).toEqual(b.labels);
    expect(a.pixels).toEqual(b.pixels);
    const pixels = a.pixels;
    expect(pixels).toHaveLength(2 * 784);
    expect(Math.min(...pixels)).toBe(-1);
    expect(Math.max(...pixels)).toBe(1);
  });

  it("names the directory it looked in when the files are missing", async () => {
    const nowhere = { dir: empty, cwd: empty, env: {}, installed: false, fetch: false };
    await expect(loadSplitsAsync("fashion-mnist", nowhere)).rejects.toThrow(DatasetNotFoundError);
    await expect(loadSplitsAsync("fashion-mnist", nowhere)).rejects.toThrow(
      `${empty} (options.dir): missing train-images-idx3-ubyte[.gz]`,
    );
  });
});
