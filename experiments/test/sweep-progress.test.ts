import { describe, expect, it } from "vitest";
import { SweepProgress, formatDuration, type ProgressStream } from "../src/sweep/index.ts";

function stream(isTTY: boolean): ProgressStream & { chunks: string[] } {
  const chunks: string[] = [];
  return { write: (t: string) => chunks.push(t), isTTY, columns: 200, chunks };
}

/** A clock the test moves by hand (milliseconds). */
function manualClock() {
  let now = 0;
  return { clock: () => now, advance: (seconds: number) => (now += seconds * 1000) };
}

describe("SweepProgress", () => {
  it("on a log: one line per event, the time left from this process's mean", () => {
    const out = stream(false);
    const t = manualClock();
    const p = new SweepProgress(
      "block-sweep",
      { index: 1, count: 4 },
      { shardTotal: 5, alreadyDone: 1, sweepTotal: 20 },
      { stream: out, clock: t.clock },
    );
    p.begin();
    p.start("mnist-b4-s1");
    p.update("mnist-b4-s1", "round 1/16\n acc 0.97");
    t.advance(60);
    p.finish("mnist-b4-s1");
    p.start("mnist-b4-s2");
    t.advance(120);
    p.finish("mnist-b4-s2");
    p.start("mnist-b8-s1");
    p.end();
    const lines = out.chunks.join("").split("\n").filter(Boolean);
    expect(out.chunks.every((c) => c.endsWith("\n") && !c.includes("\r"))).toBe(true);
    expect(lines).toEqual([
      "block-sweep: shard 1/4: 5 of 20 configurations, 1 already done, 4 to run",
      "block-sweep: run mnist-b4-s1 [1/5 done in shard 1/4 (20 in the sweep); time left unknown]",
      "block-sweep: mnist-b4-s1: round 1/16 acc 0.97",
      "block-sweep: done mnist-b4-s1 in 1m00s [2/5 done in shard 1/4 (20 in the sweep); ~3m00s left]",
      "block-sweep: run mnist-b4-s2 [2/5 done in shard 1/4 (20 in the sweep); ~3m00s left]",
      // mean of 60 s and 120 s, times the 2 still to run
      "block-sweep: done mnist-b4-s2 in 2m00s [3/5 done in shard 1/4 (20 in the sweep); ~3m00s left]",
      "block-sweep: run mnist-b8-s1 [3/5 done in shard 1/4 (20 in the sweep); ~3m00s left]",
      "block-sweep: 3/5 done in shard 1/4 (20 in the sweep); 2 run here in 3m00s",
    ]);
  });

  it("on a terminal: the run's own text rewrites one live line; events stay as lines", () => {
    const out = stream(true);
    const t = manualClock();
    const p = new SweepProgress(
      "s",
      { index: 0, count: 1 },
      { shardTotal: 2, alreadyDone: 0, sweepTotal: 2 },
      { stream: out, clock: t.clock },
    );
    p.begin();
    p.start("a");
    for (let i = 1; i <= 50; i++) {
      t.advance(1);
      p.update("a", `step ${i}`);
    }
    p.finish("a");
    const text = out.chunks.join("");
    // 50 updates, yet only the permanent lines end with a newline.
    expect(text.split("\n").length - 1).toBe(3);
    expect(text).toContain("\r\x1b[Ks: a 50s: step 50 [0/2 done; time left unknown]");
    expect(text.endsWith("\r\x1b[Ks: done a in 50s [1/2 done; ~50s left]\n")).toBe(true);
  });

  it("cuts the live line to the terminal's width, and treats a width of 0 as unknown", () => {
    for (const [columns, want] of [
      [20, "\r\x1b[Ks: a running [0/1 …"],
      [0, "\r\x1b[Ks: a running [0/1 done; time left unknown]"],
    ] as const) {
      const out = { ...stream(true), columns };
      const p = new SweepProgress(
        "s",
        { index: 0, count: 1 },
        { shardTotal: 1, alreadyDone: 0, sweepTotal: 1 },
        { stream: out },
      );
      p.start("a");
      expect(out.chunks.at(-1)).toBe(want);
    }
  });

  it("formats durations", () => {
    expect(formatDuration(0.4)).toBe("0s");
    expect(formatDuration(59.6)).toBe("1m00s");
    expect(formatDuration(3725)).toBe("1h02m");
    expect(formatDuration(NaN)).toBe("unknown");
  });
});
