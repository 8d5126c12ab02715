// One process per run directory. A lock file `<dir>/.lock` holds the owner's PID, host and
// start time; it is created with O_EXCL, so of two processes starting together exactly one
// wins. A second process refuses with an error naming the holder. A lock whose PID is no
// longer alive on this host (a killed run) is taken over. Used by `pnpm train` and by every
// sweep (each sweep takes one lock for its output directory).
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

export interface RunLock {
  readonly path: string;
  /** Removes the lock file (idempotent); also done at process exit. */
  release(): void;
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command?: string;
}

export const LOCK_FILE = ".lock";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readInfo(path: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, "utf8")) as LockInfo;
    return Number.isSafeInteger(info.pid) ? info : null;
  } catch {
    return null; // unreadable or half-written: treated as stale
  }
}

/**
 * Takes the lock of run directory `dir` (created if missing) for this process, or throws
 * naming the process that holds it. `what` names the caller in messages ("train", "block-sweep").
 */
export function acquireRunLock(dir: string, what: string): RunLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const mine: LockInfo = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    command: process.argv.slice(1).join(" "),
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const held = readInfo(path);
      const stale =
        held === null || (held.host === mine.host && held.pid !== process.pid && !alive(held.pid));
      if (held !== null && held.pid === process.pid && held.host === mine.host) {
        throw new Error(`${what}: ${dir} is already locked by this process (pid ${process.pid})`);
      }
      if (!stale) {
        throw new Error(
          `${what}: ${dir} is in use by pid ${held.pid} on ${held.host} (since ${held.started}` +
            `${held.command ? `: ${held.command}` : ""}); wait for it to finish or stop it, ` +
            `or use another output directory`,
        );
      }
      try {
        unlinkSync(path); // a dead owner's lock: take it over
      } catch {
        // another process removed it first; try again
      }
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(mine) + "\n");
    } finally {
      closeSync(fd);
    }
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      process.off("exit", release);
      const held = readInfo(path);
      if (held !== null && held.pid === process.pid) {
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }
    };
    process.on("exit", release);
    return { path, release };
  }
  throw new Error(`${what}: could not take the lock ${path} (it kept changing hands)`);
}
