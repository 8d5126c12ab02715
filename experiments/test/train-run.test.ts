import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { arrayDataset, loadSafetensors, saveSafetensors } from "@tessera/nn";
import { bands } from "./helpers.ts";
import { createPool } from "@tessera/matrix";
import {
  checkModelInput,
  kernelProvenance,
  runTraining,
  type TrainConfig,
} from "../src/train-run.ts";

const config: TrainConfig = {
  model: "lenet300100",
  dataset: "synthetic",
  epochs: 3,
  batchSize: 16,
  optimizer: "adam",
  lr: 1e-3,
  schedule: "constant",
  momentum: 0.9,
  weightDecay: 0,
  seed: 7,
};

const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), "tessera-run-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("runTraining", () => {
  const train = bands(96, 1);
  const test = bands(48, 2);

  it("learns, and a run interrupted after each epoch resumes to identical numbers", () => {
    const whole = runTraining({ config, train, test, dir: freshDir() });
    expect(whole.finished).toBe(true);
    expect(whole.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(whole.history[2]!.testAccuracy).toBeGreaterThan(0.8);

    const dir = freshDir();
    const parts = [1, 2, 3].map(() =>
      runTraining({ config, train, test, dir, maxEpochsThisCall: 1 }),
    );
    expect(parts.map((p) => p.resumedFrom)).toEqual([0, 1, 2]);
    const strip = (h: { seconds: number }[]) => h.map((e) => ({ ...e, seconds: 0 }));
    expect(strip(parts[2]!.history)).toEqual(strip(whole.history));
    const metrics = readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n");
    expect(metrics.map((l) => (JSON.parse(l) as { epoch: number }).epoch)).toEqual([1, 2, 3]);
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as {
      finalTestAccuracy: number;
    };
    expect(summary.finalTestAccuracy).toBe(whole.history[2]!.testAccuracy);
  });

  it("a finished run re-run does no work; more epochs extend it", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    const again = runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(again.resumedFrom).toBe(1);
    expect(again.history).toHaveLength(1);
    const longer = runTraining({ config: { ...config, epochs: 2 }, train, test, dir });
    expect(longer.history.map((h) => h.epoch)).toEqual([1, 2]);
  });

  it("refuses a directory holding another config, and bad configs", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(() => runTraining({ config: { ...config, lr: 0.5 }, train, test, dir })).toThrow(
      /different config/,
    );
    expect(() =>
      runTraining({ config: { ...config, epochs: 0 }, train, test, dir: freshDir() }),
    ).toThrow(/epochs must be a positive integer, got 0/);
    expect(() =>
      runTraining({
        config: { ...config, model: "vgg" as "lenet5" },
        train,
        test,
        dir: freshDir(),
      }),
    ).toThrow(/model must be one of/);
  });

  it("a corrupt checkpoint is reported, not trained over", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    writeFileSync(join(dir, "checkpoint.safetensors"), new Uint8Array([1, 2, 3]));
    expect(() => runTraining({ config, train, test, dir })).toThrow(/checkpoint\.safetensors/);
  });

  it("refuses a checkpoint whose weight dtype is not the parameter's (I32 bytes for F32)", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    const path = join(dir, "checkpoint.safetensors");
    const file = loadSafetensors(path);
    const w = file.tensors.get("model.fc1.weight")!;
    const b = w.data;
    file.tensors.set("model.fc1.weight", {
      dtype: "I32",
      shape: w.shape,
      data: new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4),
    });
    saveSafetensors(path, file.tensors, file.metadata);
    expect(() => runTraining({ config, train, test, dir })).toThrow(
      `loadCheckpoint(${path}): dtype mismatch ("fc1.weight" is I32, the model's is F32)`,
    );
  });

  it("one process per directory: a live holder is refused by name, a dead one's lock taken over", () => {
    const dir = freshDir();
    const lock = (pid: number) =>
      writeFileSync(
        join(dir, ".lock"),
        JSON.stringify({ pid, host: hostname(), started: "then", command: "train --out x" }),
      );
    lock(process.ppid); // alive: the process that started this test run
    expect(() => runTraining({ config, train, test, dir })).toThrow(
      `runTraining: ${dir} is in use by pid ${process.ppid} on ${hostname()}`,
    );
    expect(existsSync(join(dir, "config.json"))).toBe(false);
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    lock(dead);
    const r = runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(r.finished).toBe(true);
    expect(existsSync(join(dir, ".lock"))).toBe(false); // released when done
  });

  it("removes the temporaries of killed writes when it starts, and only those", () => {
    const dir = freshDir();
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    const stale = ["checkpoint.safetensors.tmp-4242-123", ".metrics.jsonl.4242.x1y2.tmp"];
    for (const f of stale) writeFileSync(join(dir, f), new Uint8Array(64));
    writeFileSync(join(dir, "notes.txt"), "mine");
    const r = runTraining({ config: { ...config, epochs: 1 }, train, test, dir });
    expect(r.removedTemporaries.sort()).toEqual(stale.map((f) => join(dir, f)).sort());
    expect(readdirSync(dir).sort()).toEqual(
      [
        "checkpoint.safetensors",
        "config.json",
        "metrics.jsonl",
        "notes.txt",
        "summary.json",
      ].sort(),
    );
  });

  it("checks model against data and an empty training set before touching the directory", () => {
    const cifarLike = arrayDataset(new Uint8Array(2 * 3072), new Uint8Array(2), [3, 32, 32]);
    for (const model of ["lenet300100", "lenet5"] as const) {
      const dir = join(freshDir(), "run");
      expect(() =>
        runTraining({ config: { ...config, model }, train: cifarLike, test, dir }),
      ).toThrow(
        `checkModelInput: model ${model} takes 1x28x28 images ([1, 28, 28]${model === "lenet5" ? "" : " or [784]"}); the dataset's examples are [3, 32, 32]`,
      );
      expect(existsSync(dir)).toBe(false);
    }
    expect(() => checkModelInput("small-cnn", [3, 32, 32])).not.toThrow();
    expect(() => checkModelInput("small-cnn", [1, 30, 30])).toThrow(/multiple of 4/);
    const empty = arrayDataset(new Uint8Array(0), new Uint8Array(0), [784]);
    const dir = join(freshDir(), "run");
    expect(() => runTraining({ config, train: empty, test, dir })).toThrow(
      "runTraining: the training set is empty (0 examples); expected at least one",
    );
    expect(existsSync(dir)).toBe(false);
  });

  it("records where the data came from, and refuses to resume on other data", () => {
    const dir = freshDir();
    const split = (sha: string) => ({
      files: [{ path: "/d/train-images-idx3-ubyte", bytes: 10, sha256: "f".repeat(64) }],
      count: 96,
      contentSha256: sha,
    });
    const data = { dataset: "synthetic", train: split("a".repeat(64)) };
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir, data });
    const stored = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { data: unknown };
    expect(stored.data).toEqual(data);
    const other = { dataset: "synthetic", train: split("b".repeat(64)) };
    expect(() =>
      runTraining({ config: { ...config, epochs: 2 }, train, test, dir, data: other }),
    ).toThrow(
      `runTraining: ${dir} was trained on other train data (content SHA-256 ${"a".repeat(64)}, now ${"b".repeat(64)} from /d/train-images-idx3-ubyte)`,
    );
  });

  it("records the kernels the products ran on, and refuses to resume on others", () => {
    const dir = freshDir();
    const asm = createPool({ threads: 1, kernels: "asm" });
    const wasm = createPool({ threads: 1, kernels: "wasm" });
    runTraining({ config: { ...config, epochs: 1 }, train, test, dir, pool: asm });
    const stored = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as {
      kernels: unknown;
    };
    expect(stored.kernels).toEqual({ path: "asm" });
    expect(kernelProvenance(wasm)).toEqual({
      path: "wasm",
      fma: process.env.TESSERA_WASM_FMA === "1",
      winograd: process.env.TESSERA_WINOGRAD !== "0",
    });
    expect(() =>
      runTraining({ config: { ...config, epochs: 2 }, train, test, dir, pool: wasm }),
    ).toThrow(
      `runTraining: ${dir} was trained on the kernels {"path":"asm"}, and this process would run ${JSON.stringify(kernelProvenance(wasm))}`,
    );
    // a finished run loads on any kernels (nothing is computed: a sweep's dense model)
    expect(
      runTraining({ config: { ...config, epochs: 1 }, train, test, dir, pool: wasm }).resumedFrom,
    ).toBe(1);
    // the same kernels resume, and the record stays the run's
    expect(
      runTraining({ config: { ...config, epochs: 2 }, train, test, dir, pool: asm }).resumedFrom,
    ).toBe(1);
    const path = join(dir, "config.json");
    expect((JSON.parse(readFileSync(path, "utf8")) as { kernels: unknown }).kernels).toEqual({
      path: "asm",
    });
    // a run recorded without the field resumes on any kernels, and stays without it
    const { kernels: _k, ...old } = JSON.parse(readFileSync(path, "utf8")) as {
      kernels: unknown;
    };
    writeFileSync(path, JSON.stringify(old));
    const r = runTraining({ config: { ...config, epochs: 3 }, train, test, dir, pool: wasm });
    expect(r.resumedFrom).toBe(2);
    expect(JSON.parse(readFileSync(path, "utf8"))).not.toHaveProperty("kernels");
  });

  it("says when a run diverged (Adam at lr 100), in the result and summary.json", () => {
    const dir = freshDir();
    const r = runTraining({ config: { ...config, epochs: 1, lr: 100 }, train, test, dir });
    expect(r.divergedAtEpoch).toBe(1);
    const summary = JSON.parse(readFileSync(join(dir, "summary.json"), "utf8")) as {
      diverged: boolean;
    };
    expect(summary.diverged).toBe(true);
    const fine = runTraining({ config: { ...config, epochs: 1 }, train, test, dir: freshDir() });
    expect(fine.divergedAtEpoch).toBeNull();
  });
});
