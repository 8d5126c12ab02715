import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Command } from "commander";
import {
  SHARD_COUNT_ENV,
  addSweepOptions,
  assignShards,
  parseShard,
  resolveShard,
  resolveSweepCli,
  shardKeys,
} from "../src/sweep/index.ts";

const keyArb = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}$/);
const keysArb = fc.uniqueArray(keyArb, { maxLength: 60 });

describe("shard assignment", () => {
  it("puts every key in exactly one shard, sizes within one, for any n", () => {
    fc.assert(
      fc.property(keysArb, fc.integer({ min: 1, max: 70 }), (keys, n) => {
        const parts = assignShards(keys, n);
        expect(parts).toHaveLength(n);
        const all = parts.flat();
        expect(all).toHaveLength(keys.length);
        expect(new Set(all)).toEqual(new Set(keys));
        const sizes = parts.map((p) => p.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        for (let i = 0; i < n; i++)
          expect(shardKeys(keys, { index: i, count: n })).toEqual(parts[i]);
      }),
    );
  });

  it("depends only on the set of keys, not on their order or on the machine's locale", () => {
    fc.assert(
      fc.property(keysArb, fc.integer({ min: 1, max: 9 }), fc.nat(), (keys, n, seed) => {
        const shuffled = [...keys].sort(
          (a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7),
        );
        expect(assignShards(shuffled, n)).toEqual(assignShards(keys, n));
      }),
    );
    // Code-unit order: upper case before lower case, "b10" before "b2", whatever the locale.
    expect(assignShards(["b2", "a", "B", "b10"], 4)).toEqual([["B"], ["a"], ["b10"], ["b2"]]);
  });

  it("refuses impossible shards", () => {
    expect(() => shardKeys(["a"], { index: 2, count: 2 })).toThrow(/index 2 is out of range/);
    expect(() => assignShards(["a"], 0)).toThrow(/0\/0 is not a shard|out of range/);
  });
});

describe("parseShard / resolveShard", () => {
  it("parses i/n with 0-based i and refuses the rest naming the input", () => {
    expect(parseShard("2/8")).toEqual({ index: 2, count: 8 });
    expect(parseShard(" 0 / 1 ")).toEqual({ index: 0, count: 1 });
    expect(() => parseShard("8/8")).toThrow(
      /--shard 8\/8: index 8 is out of range; expected 0 <= i < 8/,
    );
    expect(() => parseShard("1/0")).toThrow(/--shard count="0" is not a positive integer/);
    expect(() => parseShard("2")).toThrow(/"2" is not of the form i\/n/);
    expect(() => parseShard("-1/4")).toThrow(/not of the form/);
  });

  it("defaults to the whole sweep", () => {
    expect(resolveShard({}, {})).toEqual({ index: 0, count: 1, source: "none" });
  });

  it("reads a Slurm array, honouring SLURM_ARRAY_TASK_MIN", () => {
    const env = {
      SLURM_ARRAY_TASK_ID: "5",
      SLURM_ARRAY_TASK_COUNT: "8",
      SLURM_ARRAY_TASK_MIN: "0",
    };
    expect(resolveShard({}, env)).toEqual({ index: 5, count: 8, source: "slurm" });
    const oneBased = {
      SLURM_ARRAY_TASK_ID: "8",
      SLURM_ARRAY_TASK_COUNT: "8",
      SLURM_ARRAY_TASK_MIN: "1",
      SLURM_ARRAY_TASK_MAX: "8",
    };
    expect(resolveShard({}, oneBased)).toEqual({ index: 7, count: 8, source: "slurm" });
    expect(resolveShard({ shards: 8 }, oneBased).index).toBe(7);
  });

  it("refuses inconsistent Slurm values in one line naming the variable", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { SLURM_ARRAY_TASK_ID: "3" },
        /SLURM_ARRAY_TASK_ID=3 is set but SLURM_ARRAY_TASK_COUNT is not/,
      ],
      [{ SLURM_ARRAY_TASK_ID: "x", SLURM_ARRAY_TASK_COUNT: "4" }, /SLURM_ARRAY_TASK_ID="x"/],
      [{ SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "0" }, /SLURM_ARRAY_TASK_COUNT="0"/],
      [
        { SLURM_ARRAY_TASK_ID: "9", SLURM_ARRAY_TASK_COUNT: "4", SLURM_ARRAY_TASK_MIN: "0" },
        /SLURM_ARRAY_TASK_ID=9 is outside/,
      ],
      [
        // --array=0-6:2 gives ids 0,2,4,6: count 4 but min..max spans 7
        {
          SLURM_ARRAY_TASK_ID: "2",
          SLURM_ARRAY_TASK_COUNT: "4",
          SLURM_ARRAY_TASK_MIN: "0",
          SLURM_ARRAY_TASK_MAX: "6",
        },
        /SLURM_ARRAY_TASK_COUNT=4 but SLURM_ARRAY_TASK_MIN\.\.MAX=0\.\.6 spans 7 ids/,
      ],
      [
        { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4", JOB_COMPLETION_INDEX: "1" },
        /both SLURM_ARRAY_TASK_ID=1 and JOB_COMPLETION_INDEX=1 are set/,
      ],
    ];
    for (const [env, re] of cases) {
      let message = "";
      try {
        resolveShard({}, env);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(re);
      expect(message).not.toContain("\n");
    }
    expect(() =>
      resolveShard({ shards: 3 }, { SLURM_ARRAY_TASK_ID: "1", SLURM_ARRAY_TASK_COUNT: "4" }),
    ).toThrow(/--shards 3 disagrees with SLURM_ARRAY_TASK_COUNT=4/);
  });

  it("reads a Kubernetes Indexed Job with the count from --shards or the environment", () => {
    expect(resolveShard({ shards: 6 }, { JOB_COMPLETION_INDEX: "4" })).toEqual({
      index: 4,
      count: 6,
      source: "kubernetes",
    });
    expect(resolveShard({}, { JOB_COMPLETION_INDEX: "0", [SHARD_COUNT_ENV]: "3" })).toEqual({
      index: 0,
      count: 3,
      source: "kubernetes",
    });
    expect(() => resolveShard({}, { JOB_COMPLETION_INDEX: "2" })).toThrow(
      /JOB_COMPLETION_INDEX=2 is set but the shard count is unknown: pass --shards N or set TESSERA_SHARD_COUNT/,
    );
    expect(() => resolveShard({ shards: 2 }, { JOB_COMPLETION_INDEX: "2" })).toThrow(
      /JOB_COMPLETION_INDEX=2 is out of range for 2 shards \(--shards=2\)/,
    );
    expect(() =>
      resolveShard({ shards: 2 }, { JOB_COMPLETION_INDEX: "1", [SHARD_COUNT_ENV]: "3" }),
    ).toThrow(/--shards 2 disagrees with TESSERA_SHARD_COUNT=3/);
    expect(() => resolveShard({}, { [SHARD_COUNT_ENV]: "3" })).toThrow(
      /TESSERA_SHARD_COUNT=3 is set but no index is/,
    );
    expect(() => resolveShard({ shards: 3 }, {})).toThrow(/--shards 3 needs an index/);
  });

  it("lets an explicit --shard win over the environment, but not contradict --shards", () => {
    const env = {
      SLURM_ARRAY_TASK_ID: "1",
      SLURM_ARRAY_TASK_COUNT: "4",
      JOB_COMPLETION_INDEX: "3",
    };
    expect(resolveShard({ shard: "0/2" }, env)).toEqual({ index: 0, count: 2, source: "cli" });
    expect(() => resolveShard({ shard: "0/2", shards: 3 }, {})).toThrow(
      /--shard 0\/2 disagrees with --shards 3/,
    );
  });
});

describe("addSweepOptions / resolveSweepCli", () => {
  const parse = (argv: string[], env: Record<string, string> = {}) => {
    const program = addSweepOptions(new Command("s").exitOverride());
    program.parse(argv, { from: "user" });
    return resolveSweepCli(program.opts(), "results/s", env);
  };

  it("parses --out, --shard and --shards the same way for every sweep", () => {
    expect(parse([])).toEqual({ out: "results/s", shard: { index: 0, count: 1, source: "none" } });
    expect(parse(["--shard", "1/3"])).toEqual({
      out: "results/s/shard-1",
      shard: { index: 1, count: 3, source: "cli" },
    });
    expect(parse(["--out", "x", "--shards", "4"], { JOB_COMPLETION_INDEX: "2" })).toEqual({
      out: "x",
      shard: { index: 2, count: 4, source: "kubernetes" },
    });
    expect(() => parse(["--shards", "0"])).toThrow(
      /--shards: expected a positive integer, got "0"/,
    );
  });
});
