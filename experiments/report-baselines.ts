// Writes docs/results/baselines.md from results/train/*/ (see src/baseline-report.ts).
import { mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { findWorkspaceRoot, writeFileAtomic } from "@tessera/mnist-dataset-loader";
import { createCommand, runMain } from "./src/cli.ts";
import { readRuns, renderBaselines } from "./src/baseline-report.ts";

const program = createCommand("report-baselines").description(
  "Write docs/results/baselines.md from the run directories in results/train/",
);

await runMain("report-baselines", () => {
  program.parse();
  const root = findWorkspaceRoot(process.cwd()) ?? process.cwd();
  const runs = readRuns(join(root, "results", "train"));
  const machine = `${cpus()[0]?.model ?? "unknown CPU"} x${cpus().length}, Node ${process.version}`;
  const out = join(root, "docs", "results", "baselines.md");
  mkdirSync(join(root, "docs", "results"), { recursive: true });
  writeFileAtomic(out, new TextEncoder().encode(renderBaselines(runs, machine)));
  console.log(`wrote ${out} (${runs.length} runs)`);
});
