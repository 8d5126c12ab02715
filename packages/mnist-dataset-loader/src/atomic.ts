// The one durable atomic write of the workspace: datasets, safetensors checkpoints, run
// metadata and sweep points all go through writeFileAtomic (nn's safetensors imports it from
// here: this package depends on nothing, so every layer may use it). Two copies had drifted
// before: only one of them synced the directory after the rename.
import {
  closeSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

// Directory fsync is refused on some platforms and file systems (Windows: EPERM/EISDIR; some
// network file systems: EINVAL); there the rename is as durable as the platform allows. Any
// other failure (EIO) is real and is thrown.
const DIR_SYNC_UNSUPPORTED = new Set(["EINVAL", "EISDIR", "EPERM", "EBADF", "ENOTSUP"]);

/**
 * Writes `bytes` to `path` so that `path` only ever holds a complete file, also across a
 * crash: write a temporary `.<name>.<pid>.<random>.tmp` in the same directory, fsync it,
 * rename it over `path` (atomic on POSIX within a file system), then fsync the directory so
 * the rename itself is on disk. On failure the temporary is removed, `path` is untouched, and
 * the Error names `path`.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  const dir = dirname(path);
  const tmp = join(
    dir,
    `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx");
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone (rename happened or open failed)
    }
    throw new Error(`writeFileAtomic: ${path}: ${(e as Error).message}`);
  }
  syncDirectory(dir, path);
}

function syncDirectory(dir: string, path: string): void {
  let dfd: number;
  try {
    dfd = openSync(dir, "r");
  } catch (e) {
    if (DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? "")) return;
    throw new Error(`writeFileAtomic: ${path}: syncing ${dir}: ${(e as Error).message}`);
  }
  try {
    fsyncSync(dfd);
  } catch (e) {
    if (!DIR_SYNC_UNSUPPORTED.has((e as NodeJS.ErrnoException).code ?? ""))
      throw new Error(`writeFileAtomic: ${path}: syncing ${dir}: ${(e as Error).message}`);
  } finally {
    closeSync(dfd);
  }
}

// writeFileAtomic's temporaries, and those of the copy nn's safetensors had before
// (`<name>.tmp-<pid>-<n>`), which run directories written by older versions still hold.
const TEMP_NAMES = [/^\..+\.\d+\.[0-9a-z]*\.tmp$/, /^.+\.tmp-\d+-\d+$/];

/** True for the name of a temporary file that an atomic write (current or older) leaves when killed. */
export function isAtomicTemporary(name: string): boolean {
  return TEMP_NAMES.some((re) => re.test(name));
}

/**
 * Removes the temporaries that killed atomic writes left directly in `dir` (not in its
 * subdirectories) and returns their paths. Call it only while holding the directory's lock
 * (e.g. experiments' acquireRunLock): a live writer's temporary would be pulled from under it.
 */
export function removeAtomicTemporaries(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed; // no directory, nothing left behind
  }
  for (const name of names) {
    if (!isAtomicTemporary(name)) continue;
    const p = join(dir, name);
    try {
      if (!statSync(p).isFile()) continue;
      rmSync(p, { force: true });
      removed.push(p);
    } catch {
      // removed by someone else meanwhile
    }
  }
  return removed;
}
