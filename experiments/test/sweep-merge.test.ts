import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  MERGED_CSV,
  MERGED_JSON,
  markdownTable,
  mergeShards,
  pointPath,
  runSweep,
  toCsv,
  type ProgressStream,
} from "../src/sweep/index.ts";
import { fixtureConfigs, fixtureKey, fixtureRun } from "./sweep-fixture.ts";

const fresh = () => mkdtempSync(join(tmpdir(), "tessera-merge-"));
const quiet: ProgressStream = { write: () => true, isTTY: false };

/** Runs shards `indices` of `count` of the fixture sweep into <root>/shard-<i>. */
async function shards(root: string, count: number, indices: number[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const index of indices) {
    const dir = join(root, `shard-${index}`);
    await runSweep({
      dir,
      name: "fixture",
      configs: fixtureConfigs,
      key: fixtureKey,
      run: (c, ctx) => fixtureRun(c, ctx),
      shard: { index, count },
      progress: { stream: quiet },
    });
    dirs.push(dir);
  }
  return dirs;
}

describe("mergeShards", () => {
  it("joins shards by key into points/, points.json and points.csv", async () => {
    const root = fresh();
    const dirs = await shards(root, 3, [0, 1, 2]);
    const out = join(root, "merged");
    const r = mergeShards(out, dirs);
    expect(r.sweep).toBe("fixture");
    expect(r.points.map((p) => p.key)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    expect(r.missing).toEqual([]);
    expect(r.duplicates).toBe(0);
    const json = JSON.parse(readFileSync(join(out, MERGED_JSON), "utf8")) as { key: string }[];
    expect(json.map((p) => p.key)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    const csv = readFileSync(join(out, MERGED_CSV), "utf8").trim().split("\n");
    expect(csv[0]).toBe("key,config.i,config.lr,result.square,result.resumed,seconds,host,commit");
    expect(csv).toHaveLength(6);
    expect(csv[4]!.startsWith("c3,3,0.1,9,false,")).toBe(true);
    // The merged directory is a finished unsharded run: a whole-sweep run there runs nothing.
    let calls = 0;
    await runSweep({
      dir: out,
      name: "fixture",
      configs: fixtureConfigs,
      key: fixtureKey,
      run: (c, ctx) => (calls++, fixtureRun(c, ctx)),
      progress: { stream: quiet },
    });
    expect(calls).toBe(0);
  });

  it("names the configurations no shard has finished", async () => {
    const root = fresh();
    const dirs = await shards(root, 2, [1]);
    const r = mergeShards(join(root, "merged"), dirs);
    expect(r.points.map((p) => p.key)).toEqual(["c1", "c3"]);
    expect(r.missing).toEqual(["c0", "c2", "c4"]);
  });

  it("keeps identical duplicates once (timing and host may differ) and merges again", async () => {
    const root = fresh();
    const a = await shards(join(root, "a"), 1, [0]);
    const b = await shards(join(root, "b"), 2, [0, 1]);
    const out = join(root, "merged");
    const r = mergeShards(out, [...a, ...b]);
    expect(r.points).toHaveLength(5);
    expect(r.duplicates).toBe(5);
    // Merging again into the same directory: its earlier points agree, so nothing changes.
    expect(mergeShards(out, b).points).toHaveLength(5);
  });

  it("refuses conflicting duplicates naming the key and both files, writing nothing", async () => {
    const root = fresh();
    const [a] = await shards(join(root, "a"), 1, [0]);
    const [b] = await shards(join(root, "b"), 1, [0]);
    const p = JSON.parse(readFileSync(pointPath(b!, "c2"), "utf8"));
    p.result.square = 5;
    writeFileSync(pointPath(b!, "c2"), JSON.stringify(p));
    const out = join(root, "merged");
    expect(() => mergeShards(out, [a!, b!])).toThrow(
      `conflicting points for key "c2": ${pointPath(a!, "c2")} and ${pointPath(b!, "c2")} differ ` +
        "(point.result.square: 4 vs 5)",
    );
    expect(existsSync(join(out, MERGED_JSON))).toBe(false);
  });

  it("refuses shards computed on different kernel paths, writing nothing", async () => {
    const root = fresh();
    const [a, b] = await shards(root, 2, [0, 1]);
    const first = pointPath(a!, "c0");
    expect(mergeShards(join(root, "ok"), [a!, b!]).points).toHaveLength(5);
    for (const key of ["c1", "c3"]) {
      const p = JSON.parse(readFileSync(pointPath(b!, key), "utf8"));
      p.kernels = "wasm";
      writeFileSync(pointPath(b!, key), JSON.stringify(p));
    }
    const out = join(root, "merged");
    expect(() => mergeShards(out, [a!, b!])).toThrow(
      `mergeShards: ${pointPath(b!, "c1")} was computed on the wasm kernels but ${first} on asm`,
    );
    expect(existsSync(join(out, MERGED_JSON))).toBe(false);
  });

  it("skips a corrupt point file, reporting it, and refuses mixed sweeps", async () => {
    const root = fresh();
    const dirs = await shards(root, 1, [0]);
    writeFileSync(pointPath(dirs[0]!, "c4"), "{");
    const r = mergeShards(join(root, "m1"), dirs);
    expect(r.missing).toEqual(["c4"]);
    expect(r.skipped[0]!.path).toBe(pointPath(dirs[0]!, "c4"));
    expect(r.skipped[0]!.reason).toMatch(/not valid JSON/);

    const other = join(root, "other");
    await runSweep({
      dir: other,
      name: "other",
      configs: [{ i: 9 }],
      key: () => "z9",
      run: () => 0,
      progress: { stream: quiet },
    });
    expect(() => mergeShards(join(root, "m2"), [...dirs, other])).toThrow(
      /belongs to sweep "other" but .* to "fixture"; merge one sweep at a time/,
    );
    expect(() => mergeShards(join(root, "m3"), [join(root, "nope")])).toThrow(
      /shard directory .*nope does not exist/,
    );
  });

  it("runs as a command: pnpm tsx experiments/merge.ts <out> <shard>...", async () => {
    const root = fresh();
    const dirs = await shards(root, 2, [0]);
    const script = fileURLToPath(new URL("../merge.ts", import.meta.url));
    const out = join(root, "merged");
    const run = (...extra: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", script, out, ...dirs, ...extra], {
        encoding: "utf8",
      });
    const ok = run();
    expect(ok.status).toBe(0);
    expect(ok.stderr).toContain("merge: fixture: 3 points from 1 directory");
    expect(ok.stderr).toContain("merge: 2 configurations missing: c1, c3");
    const strict = run("--require-complete");
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/^merge: 2 configurations missing$/m);
  });
});

describe("tables", () => {
  it("quotes CSV cells that need it and leaves missing cells empty", () => {
    expect(
      toCsv([
        { a: 'say "hi", ok', b: 1 },
        { a: "x\ny", c: null },
      ]),
    ).toBe('a,b,c\n"say ""hi"", ok",1,\n"x\ny",,\n');
  });

  it("writes a markdown table, numbers right-aligned, pipes escaped", () => {
    const rows = [
      { name: "a|b", acc: 98.25 },
      { name: "c", acc: 97 },
    ];
    expect(
      markdownTable(rows, [
        { header: "model", value: (r) => r.name },
        { header: "accuracy (%)", value: (r) => r.acc.toFixed(2) },
        { header: "n", value: (r) => r.acc },
      ]),
    ).toBe(
      "| model | accuracy (%) | n |\n| --- | --- | ---: |\n| a\\|b | 98.25 | 98.25 |\n| c | 97.00 | 97 |\n",
    );
    expect(() => markdownTable(rows, [])).toThrow(/markdownTable: columns is empty/);
  });
});
