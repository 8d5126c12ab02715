// A tiny sweep for the kill test (sweep-runner.test.ts): five configurations whose result is
// i². Run as a script, `node --import tsx sweep-fixture.ts <dir> <hangKey>`, it runs the sweep
// in <dir> and, on reaching <hangKey>, writes a checkpoint into the scratch directory, drops a
// marker file beside <dir> and waits forever, so the test can SIGKILL it mid-configuration.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { runSweep, type RunContext } from "../src/sweep/index.ts";

export interface FixtureConfig {
  i: number;
  lr: number;
}

export const fixtureConfigs: FixtureConfig[] = [0, 1, 2, 3, 4].map((i) => ({ i, lr: 0.1 }));
export const fixtureKey = (c: FixtureConfig): string => `c${c.i}`;
export const hangMarker = (dir: string): string => `${dir}.hanging`;

/** i², and whether a checkpoint from an earlier, killed attempt was found in the scratch dir. */
export async function fixtureRun(
  c: FixtureConfig,
  ctx: RunContext,
  hangKey?: string,
): Promise<{ square: number; resumed: boolean }> {
  const checkpoint = join(ctx.scratchDir, "step1.json");
  const resumed = existsSync(checkpoint);
  ctx.progress(`step 1 of 2${resumed ? " (from checkpoint)" : ""}`);
  if (ctx.key === hangKey) {
    writeFileSync(checkpoint, JSON.stringify({ step: 1 }));
    writeFileSync(hangMarker(join(ctx.scratchDir, "..", "..")), String(process.pid));
    await new Promise(() => setInterval(() => undefined, 1000)); // until killed
  }
  return { square: c.i * c.i, resumed };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir, hangKey] = process.argv.slice(2);
  await runSweep({
    dir: dir!,
    name: "fixture",
    configs: fixtureConfigs,
    key: fixtureKey,
    run: (c, ctx) => fixtureRun(c, ctx, hangKey),
  });
}
