// `pnpm train` as a user meets it, run as a child process: every user error is one line
// `train: <message>` on stderr and a non-zero exit, with no stack trace and no run directory.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "tessera-train-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function train(args: string[], env: Record<string, string> = {}) {
  const out = join(tmp, "run");
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", join(repoRoot, "experiments", "train.ts"), "--out", out, ...args],
    {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, TESSERA_DATASETS: "", DEBUG: "", ...env },
    },
  );
  return { status: r.status, stderr: r.stderr, created: existsSync(out) };
}

describe("pnpm train user errors", () => {
  it("prints one line naming the option or directory, exits 1, creates nothing", () => {
    const missing = join(tmp, "no-such-dir");
    const cases: [string[], string][] = [
      [["--epochs", "abc"], 'train: --epochs: expected a positive integer, got "abc"'],
      [["--lr", "1e400"], 'train: --lr: expected a finite number > 0, got "1e400"'],
      [
        ["--dataset", "cifar-10", "--model", "lenet300100"],
        "train: --model lenet300100 does not fit --dataset cifar-10: checkModelInput: model lenet300100 takes 1x28x28 images",
      ],
      [
        ["--data-dir", missing],
        `train: loadDataset: mnist train split not found in ${missing} (options.dir): missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] (the directory does not exist)`,
      ],
    ];
    for (const [args, line] of cases) {
      const r = train(args);
      expect(r.status, args.join(" ")).toBe(1);
      expect(
        r.stderr.split("\n").filter((l) => l !== ""),
        r.stderr,
      ).toHaveLength(1);
      expect(r.stderr.startsWith(line), r.stderr).toBe(true);
      expect(r.stderr).not.toContain("    at ");
      expect(r.created).toBe(false);
    }
  });

  it("refuses a directory another live process holds, naming it, before loading any data", () => {
    const out = join(tmp, "run");
    mkdirSync(out, { recursive: true });
    const holder = { pid: process.pid, host: hostname(), started: "now", command: "train" };
    writeFileSync(join(out, ".lock"), JSON.stringify(holder));
    try {
      const r = train([]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `train: ${out} is in use by pid ${process.pid} on ${hostname()} (since now: train); ` +
          `wait for it to finish or stop it, or use another output directory\n`,
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("shows the stack with --verbose", () => {
    const r = train(["--epochs", "0", "--verbose"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('train: --epochs: expected a positive integer, got "0"\n');
    expect(r.stderr).toContain("    at ");
  });
});
