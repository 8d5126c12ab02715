// The experiments' dataset adapter: both splits normalised to [-1, 1] as [C, H, W] examples, and
// a clear error (no fetch into a user's own directory) when the files are missing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DatasetNotFoundError, loadDataset } from "@tessera/mnist-dataset-loader";
import { loadSplitsAsync } from "../src/data.ts";

const empty = mkdtempSync(join(tmpdir(), "tessera-data-"));
afterAll(() => rmSync(empty, { recursive: true, force: true }));

describe("loadSplitsAsync", () => {
  it("gives MNIST as 60,000 / 10,000 [1, 28, 28] examples, pixels mapped to [-1, 1]", async () => {
    const splits = await loadSplitsAsync("mnist", { fetch: false });
    expect(splits.inputShape).toEqual([1, 28, 28]);
    expect([splits.train.count, splits.test.count]).toEqual([60000, 10000]);
    const raw = loadDataset("mnist", { split: "test" });
    const b = splits.test.getBatch(Int32Array.of(0, 9999));
    expect(Array.from(b.y)).toEqual([raw.labels[0], raw.labels[9999]]);
    const pixels = Array.from(b.x.data as Float32Array);
    expect(pixels).toHaveLength(2 * 784);
    const rawPixels = [...raw.images.subarray(0, 784), ...raw.images.subarray(9999 * 784)];
    pixels.forEach((p, i) => expect(p).toBeCloseTo((rawPixels[i]! / 255 - 0.5) / 0.5, 6));
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
