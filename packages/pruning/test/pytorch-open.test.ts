// The README's "Opening a pruned checkpoint in PyTorch" block, run verbatim by
// scripts/check-pytorch-open.ts on a checkpoint savePruned wrote: always its numpy part (keys,
// masks, zeros under the mask), and where a python with torch is found its torch lines too,
// comparing the pruned module's weights with ours. (Before the block ran its forward, torch
// handed back the stale weight prune.identity had computed, and this check failed on
// fc1.weight.) Skipped with a note where no python with numpy is found.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("../scripts/check-pytorch-open.ts", import.meta.url));
const imports = (python: string, modules: string) =>
  spawnSync(python, ["-c", `import ${modules}`], { encoding: "utf8" }).status === 0;
// Debian's python3-torch lives in the system python; pyenv's python3 may lack it.
const candidates = [process.env.TESSERA_PYTHON, "/usr/bin/python3", "python3"].filter(
  (p): p is string => p !== undefined && p !== "",
);
const withTorch = candidates.find((p) => imports(p, "numpy, torch"));
const python = withTorch ?? candidates.find((p) => imports(p, "numpy"));
if (python === undefined) console.warn("pytorch-open.test: skipping: no python3 with numpy found");

describe("opening a pruned checkpoint in PyTorch (README)", () => {
  it.skipIf(python === undefined)(
    `the README's python lines load it as a pruned module${withTorch === undefined ? " (numpy part only: no torch)" : ""}`,
    () => {
      const run = spawnSync(process.execPath, ["--import", "tsx", script, python!], {
        encoding: "utf8",
      });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(run.stdout).toContain("fc1.weight [300, 784] mask density 0.8000");
      expect(run.stdout).toContain("fc3.bias [10] mask density 0.9000");
      expect(run.stdout).toContain(
        withTorch === undefined
          ? "torch: not installed, torch lines not run"
          : "torch: loaded as a pruned module; weights equal ours",
      );
    },
  );
});
