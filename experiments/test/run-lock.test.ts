import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { LOCK_FILE, acquireRunLock } from "../src/run-lock.ts";

const fresh = () => mkdtempSync(join(tmpdir(), "tessera-lock-"));

describe("acquireRunLock", () => {
  it("writes the PID, refuses a second holder naming the first, and releases", () => {
    const dir = fresh();
    const lock = acquireRunLock(dir, "train");
    const info = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")) as { pid: number };
    expect(info.pid).toBe(process.pid);
    // A live process (this one, seen as another holder) blocks the lock.
    expect(() => acquireRunLock(dir, "train")).toThrow(/already locked by this process/);
    lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    acquireRunLock(dir, "train").release();
  });

  it("refuses while another live process holds it", () => {
    const dir = fresh();
    // The parent of this test process is alive and is not us.
    writeFileSync(
      join(dir, LOCK_FILE),
      JSON.stringify({ pid: process.ppid, host: hostname(), started: "then", command: "x" }),
    );
    expect(() => acquireRunLock(dir, "block-sweep")).toThrow(
      new RegExp(`block-sweep: .* is in use by pid ${process.ppid}`),
    );
  });

  it("takes over a lock left by a dead process, and one that is unreadable", () => {
    const dir = fresh();
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
    const pid = Number(dead.stdout.toString());
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), started: "then" }));
    const lock = acquireRunLock(dir, "train");
    expect(JSON.parse(readFileSync(lock.path, "utf8")).pid).toBe(process.pid);
    lock.release();
    writeFileSync(join(dir, LOCK_FILE), "{half");
    acquireRunLock(dir, "train").release();
  });
});
