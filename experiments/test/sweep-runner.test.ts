import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  pointPath,
  readManifest,
  readPoint,
  runSweep,
  type ProgressStream,
  type RunContext,
} from "../src/sweep/index.ts";
import { LOCK_FILE } from "../src/run-lock.ts";
import {
  fixtureConfigs,
  fixtureKey,
  fixtureRun,
  hangMarker,
  type FixtureConfig,
} from "./sweep-fixture.ts";

const fresh = () => mkdtempSync(join(tmpdir(), "tessera-sweep-"));

/** A progress stream that keeps what was written (a log, not a terminal). */
function capture(): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return { write: (t: string) => chunks.push(t), isTTY: false, text: () => chunks.join("") };
}

/** Runs the fixture sweep in-process, recording which keys the run function was called for. */
async function sweep(dir: string, configs: FixtureConfig[] = fixtureConfigs, failOn?: string) {
  const calls: string[] = [];
  const log = capture();
  const outcome = await runSweep({
    dir,
    name: "fixture",
    configs,
    key: fixtureKey,
    run: (c, ctx: RunContext) => {
      calls.push(ctx.key);
      if (ctx.key === failOn) throw new Error("planted failure");
      return fixtureRun(c, ctx);
    },
    progress: { stream: log },
  });
  return { outcome, calls, log: log.text() };
}

/** Starts the fixture sweep in a child process and waits until it hangs inside `hangKey`. */
async function startHanging(dir: string, hangKey: string) {
  const fixture = fileURLToPath(new URL("./sweep-fixture.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", fixture, dir, hangKey], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
  }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stderr })));
  for (let t = 0; !existsSync(hangMarker(dir)); t++) {
    if (t > 600) throw new Error(`fixture never reached ${hangKey}; stderr: ${stderr}`);
    if (child.exitCode !== null) throw new Error(`fixture exited early; stderr: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { process: child, exited };
}

describe("runSweep", () => {
  it("writes one complete point per configuration with config, result, timing and host", async () => {
    const dir = fresh();
    const { outcome, calls } = await sweep(dir);
    expect(calls).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    expect(outcome.ran).toEqual(calls);
    expect(outcome.points.map((p) => p.result.square)).toEqual([0, 1, 4, 9, 16]);
    const read = readPoint(pointPath(dir, "c3"), "c3");
    if (!read.ok) throw new Error("c3 unreadable");
    expect(read.point).toMatchObject({
      sweep: "fixture",
      key: "c3",
      config: { i: 3, lr: 0.1 },
      result: { square: 9, resumed: false },
      shard: { index: 0, count: 1 },
    });
    expect(read.point.timing.seconds).toBeGreaterThanOrEqual(0);
    expect(typeof read.point.host).toBe("string");
    // The scratch directories of finished configurations are gone, and so is the lock.
    expect(readdirSync(join(dir, "scratch"))).toEqual([]);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it("a re-run skips finished configurations and runs the unfinished ones", async () => {
    const dir = fresh();
    await expect(sweep(dir, fixtureConfigs, "c2")).rejects.toThrow(
      /runSweep\(fixture\): configuration c2 failed: planted failure/,
    );
    expect(existsSync(pointPath(dir, "c1"))).toBe(true);
    expect(existsSync(pointPath(dir, "c2"))).toBe(false);
    const again = await sweep(dir);
    expect(again.calls).toEqual(["c2", "c3", "c4"]);
    expect(again.outcome.skipped).toEqual(["c0", "c1"]);
    expect(again.outcome.points.map((p) => p.key)).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    const third = await sweep(dir);
    expect(third.calls).toEqual([]);
  });

  it("records the kernel path and refuses to add points on the other path", async () => {
    const dir = fresh();
    const five = fixtureConfigs.slice(0, 2);
    const run = (kernels: "asm" | "wasm", configs: FixtureConfig[]) =>
      runSweep({
        dir,
        name: "fixture",
        configs,
        key: fixtureKey,
        run: fixtureRun,
        kernels,
        progress: { stream: capture() },
      });
    const first = await run("asm", five);
    expect(first.points.map((p) => p.kernels)).toEqual(["asm", "asm"]);
    // Nothing left to run: re-reading the finished points on another path is harmless.
    expect((await run("wasm", five)).ran).toEqual([]);
    await expect(run("wasm", fixtureConfigs)).rejects.toThrow(
      /c0\.json was computed on the asm kernels but this run uses wasm \(TESSERA_KERNELS\)/,
    );
    // A point written before the path was recorded counts as asm.js.
    const path = pointPath(dir, "c0");
    const old = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    delete old.kernels;
    writeFileSync(path, JSON.stringify(old));
    expect((await run("asm", fixtureConfigs)).ran).toEqual(["c2", "c3", "c4"]);
  });

  it("refuses a changed config under the same key before running anything", async () => {
    const dir = fresh();
    await sweep(dir);
    const changed = [
      ...fixtureConfigs.map((c) => (c.i === 3 ? { ...c, lr: 0.2 } : c)),
      { i: 9, lr: 0.1 },
    ];
    let calls: string[] = [];
    await expect(
      runSweep({
        dir,
        name: "fixture",
        configs: changed,
        key: fixtureKey,
        run: (c, ctx) => {
          calls = [...calls, ctx.key];
          return fixtureRun(c, ctx);
        },
        progress: { stream: capture() },
      }),
    ).rejects.toThrow(
      /different config under key "c3" \(stored vs current config\.lr: 0\.1 vs 0\.2\)/,
    );
    expect(calls).toEqual([]);
    // The refused run left the manifest alone (it still lists the five keys it was run with).
    expect(readManifest(dir)?.keys).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    // Key order inside a config does not matter: the same data is the same config.
    const reordered = fixtureConfigs.map((c) => ({ lr: c.lr, i: c.i }));
    expect((await sweep(dir, reordered)).calls).toEqual([]);
  });

  it("reports a corrupt or half-written point file, moves it aside and runs it again", async () => {
    const dir = fresh();
    await sweep(dir);
    writeFileSync(pointPath(dir, "c1"), '{"format":1,"sweep":"fixture","key":"c1","con');
    writeFileSync(pointPath(dir, "c4"), JSON.stringify({ format: 1, sweep: "fixture", key: "c9" }));
    const again = await sweep(dir);
    expect(again.calls).toEqual(["c1", "c4"]);
    expect(again.outcome.corrupt).toEqual(["c1", "c4"]);
    expect(again.log).toMatch(/c1\.json is corrupt \(not valid JSON/);
    expect(again.log).toMatch(/c4\.json is corrupt \(holds key "c9", expected "c4"\)/);
    expect(existsSync(pointPath(dir, "c1") + ".corrupt")).toBe(true);
    expect(readPoint(pointPath(dir, "c1"), "c1").ok).toBe(true);
  });

  it("refuses unsafe or duplicate keys, non-JSON configs and non-JSON results", async () => {
    const dir = fresh();
    const base = {
      dir,
      name: "fixture",
      run: () => 1,
      progress: { stream: capture() },
    };
    await expect(
      runSweep({ ...base, configs: [{ i: 0 }], key: () => "../escape" }),
    ).rejects.toThrow(/key\(configs\[0\]\): key "\.\.\/escape" is not file-name safe/);
    await expect(
      runSweep({ ...base, configs: [{ i: 0 }, { i: 1 }], key: () => "same" }),
    ).rejects.toThrow(
      /configs\[0\] and configs\[1\] have the same key "same" but differ \(config\.i: 0 vs 1\)/,
    );
    await expect(
      runSweep({ ...base, configs: [{ i: 0 }, { i: 1 }], key: (c) => (c.i ? "B4" : "b4") }),
    ).rejects.toThrow(/keys "b4" and "B4" differ only in case/);
    await expect(runSweep({ ...base, configs: [{ lr: NaN }], key: () => "k" })).rejects.toThrow(
      /configs\[0\]\.lr is NaN/,
    );
    await expect(
      runSweep({ ...base, configs: [{ i: 0 }], key: () => "k", run: () => ({ loss: Infinity }) }),
    ).rejects.toThrow(/configuration k failed: .*result\.loss is Infinity/);
    await expect(
      runSweep({ ...base, configs: [{ w: new Float32Array(2) }], key: () => "k" }),
    ).rejects.toThrow(/configs\[0\]\.w is a Float32Array/);
  });

  it("refuses a directory that holds another sweep", async () => {
    const dir = fresh();
    await sweep(dir);
    await expect(
      runSweep({ dir, name: "other", configs: [], key: () => "k", run: () => 0 }),
    ).rejects.toThrow(/holds sweep "fixture"/);
  });

  it("shards run disjoint parts that together are the whole sweep", async () => {
    const root = fresh();
    const seen: string[] = [];
    const logs: string[] = [];
    // A directory of another sweep beside the shards must not be counted as a shard.
    await runSweep({
      dir: join(root, "other"),
      name: "other",
      configs: fixtureConfigs,
      key: fixtureKey,
      run: () => 0,
      shard: { index: 2, count: 3 },
      progress: { stream: capture() },
    });
    for (let index = 0; index < 3; index++) {
      const log = capture();
      const out = await runSweep({
        dir: join(root, `shard-${index}`),
        name: "fixture",
        configs: fixtureConfigs,
        key: fixtureKey,
        run: (c, ctx) => fixtureRun(c, ctx),
        shard: { index, count: 3 },
        progress: { stream: log },
      });
      logs.push(log.text());
      seen.push(...out.ran);
      expect(out.points.every((p) => p.shard.index === index && p.shard.count === 3)).toBe(true);
    }
    expect(seen.sort()).toEqual(["c0", "c1", "c2", "c3", "c4"]);
    // A shard directory is not resumed as another shard (e.g. a lone Slurm task, shard 0/1).
    await expect(sweep(join(root, "shard-1"))).rejects.toThrow(
      /shard-1 was run as shard 1\/3 \(sweep\.json\) but this run is shard 0\/1; pass --shard 1\/3/,
    );
    // The progress line counts the sibling shards' points: none seen, one of two, both.
    expect(logs[0]).toMatch(/fixture: 2\/2 done in shard 0\/3 \(5 in the sweep\); 2 run here/);
    expect(logs[1]).toMatch(/done c1 in \d+s \[1\/2 done in shard 1\/3; sweep ≥3\/5 done;/);
    expect(logs[1]).toMatch(/fixture: 2\/2 done in shard 1\/3; sweep ≥4\/5 done;/);
    expect(logs[2]).toContain("run c2 [0/1 done in shard 2/3; sweep 4/5 done;");
    expect(logs[2]).toMatch(/fixture: 1\/1 done in shard 2\/3; sweep 5\/5 done;/);
  });

  it(
    "a SIGKILLed sweep loses only the configuration in flight; the re-run resumes it from its " +
      "scratch checkpoint, removes stale temporaries and takes over the lock",
    async () => {
      const dir = fresh();
      const child = await startHanging(dir, "c2");
      // While the child holds the directory, a second sweep is refused.
      await expect(sweep(dir)).rejects.toThrow(/in use by pid \d+/);
      child.process.kill("SIGKILL");
      expect((await child.exited).signal).toBe("SIGKILL");

      expect(readPoint(pointPath(dir, "c0"), "c0").ok).toBe(true);
      expect(readPoint(pointPath(dir, "c1"), "c1").ok).toBe(true);
      expect(existsSync(pointPath(dir, "c2"))).toBe(false);
      expect(existsSync(join(dir, LOCK_FILE))).toBe(true); // left behind by the dead process
      // What a write killed between open and rename leaves (writeFileAtomic's naming).
      const stale = join(dir, "points", ".c3.json.99999.k1ll3d.tmp");
      writeFileSync(stale, '{"half');
      const staleScratch = join(dir, "scratch", "c2", ".step1.json.99999.abc.tmp");
      writeFileSync(staleScratch, "{");

      const again = await sweep(dir);
      expect(again.calls).toEqual(["c2", "c3", "c4"]);
      expect(again.outcome.points.find((p) => p.key === "c2")?.result).toEqual({
        square: 4,
        resumed: true,
      });
      expect(existsSync(stale)).toBe(false);
      expect(again.log).toContain(`removed ${staleScratch}`); // (c2's scratch is gone anyway)
      expect(again.log).toContain(`removed ${stale}`);
      expect(JSON.parse(readFileSync(pointPath(dir, "c4"), "utf8")).result.square).toBe(16);
    },
  );
});
