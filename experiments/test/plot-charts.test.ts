import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  accuracyVsDensityChart,
  renderChart,
  speedupVsDensityChart,
  type AccuracyRow,
  type SpeedupRow,
} from "../src/plot/index.ts";

const fresh = () => mkdtempSync(join(tmpdir(), "tessera-plot-"));
const count = (svg: string, what: string) => svg.split(`aria-roledescription="${what}"`).length - 1;
const densities = [0.8, 0.512, 0.2, 0.05];

function accuracyRows(): AccuracyRow[] {
  const rows: AccuracyRow[] = [];
  for (const blockSize of [1, 4, 8])
    for (const method of ["magnitude", "random"])
      for (const seed of [1, 2, 3])
        for (const density of densities)
          rows.push({ blockSize, method, seed, density, accuracy: 0.9 + 0.01 * seed * density });
  // One point with a known spread: seeds give 0.90, 0.92, 0.97.
  return rows.map((r) =>
    r.blockSize === 4 && r.method === "random" && r.density === 0.05
      ? { ...r, accuracy: [0.9, 0.92, 0.97][r.seed - 1]! }
      : r,
  );
}

describe("accuracyVsDensityChart", () => {
  it("renders one mean line and one seed band per block size and method, saving the spec", async () => {
    const dir = fresh();
    const spec = accuracyVsDensityChart(accuracyRows(), { title: "LeNet-300-100, MNIST" });
    const out = await renderChart(spec, join(dir, "acc.svg"));
    expect(out.specPath).toBe(join(dir, "acc.vl.json"));
    expect(JSON.parse(readFileSync(out.specPath, "utf8"))).toEqual(spec);
    const svg = readFileSync(out.svgPath, "utf8");
    expect(svg).toBe(out.svg);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(count(svg, "line mark")).toBe(6);
    expect(count(svg, "area mark")).toBe(6);
    expect(count(svg, "point")).toBe(6 * densities.length);
    for (const text of [
      ">LeNet-300-100, MNIST<",
      ">test accuracy<",
      ">density (fraction of weights kept, log scale)<",
      ">block size (b×b)<",
      ">magnitude<",
      ">random<",
    ])
      expect(svg).toContain(text);
    // The point for block 4, random, 5% carries the seeds' mean and spread.
    expect(svg).toMatch(
      /block size \(b×b\): 4; method: random; block: 4; density: 5\.00%; mean: 0\.9300; min: 0\.9000; max: 0\.9700; seeds: 3/,
    );
  });

  it("refuses a malformed row naming the row, the field and what it expected", () => {
    const rows = accuracyRows();
    const bad = (patch: Record<string, unknown>, at = 5) =>
      accuracyVsDensityChart(
        rows.map((r, i) => (i === at ? ({ ...r, ...patch } as AccuracyRow) : r)),
        { title: "t" },
      );
    expect(() => bad({ density: "0.1" })).toThrow(
      'accuracyVsDensityChart: rows[5].density is "0.1" (a string); expected a finite number in (0, 1]',
    );
    expect(() => bad({ density: 0 })).toThrow(/rows\[5\]\.density is 0; expected/);
    expect(() => bad({ accuracy: undefined })).toThrow(/rows\[5\]\.accuracy is missing/);
    expect(() => bad({ accuracy: NaN })).toThrow(/rows\[5\]\.accuracy is null/);
    expect(() => bad({ blockSize: 2.5 }, 0)).toThrow(
      /rows\[0\]\.blockSize is 2\.5; expected a positive integer/,
    );
    expect(() => bad({ method: "" })).toThrow(
      /rows\[5\]\.method is "" \(a string\); expected a non-empty string/,
    );
    expect(() => accuracyVsDensityChart([], { title: "t" })).toThrow(/rows is empty/);
  });
});

describe("speedupVsDensityChart", () => {
  it("draws one facet per batch and thread count, a line per block size, and a rule at 1", async () => {
    const rows: SpeedupRow[] = [];
    for (const blockSize of [1, 4])
      for (const batch of [1, 128])
        for (const threads of [1, 2])
          for (const density of densities)
            rows.push({ blockSize, density, batch, threads, speedup: (blockSize * 0.2) / density });
    const dir = fresh();
    const out = await renderChart(
      speedupVsDensityChart(rows, { title: "BSR speedup" }),
      join(dir, "speed.svg"),
    );
    expect(existsSync(join(dir, "speed.vl.json"))).toBe(true);
    expect(count(out.svg, "line mark")).toBe(2 * 4);
    expect(count(out.svg, "rule mark container")).toBe(4);
    for (const text of [">speedup over dense (log scale)<", ">batch size<", ">threads<", ">128<"])
      expect(out.svg).toContain(text);
    expect(() => speedupVsDensityChart([{ ...rows[0]!, speedup: -1 }], { title: "t" })).toThrow(
      "speedupVsDensityChart: rows[0].speedup is -1; expected a finite number > 0",
    );
    expect(() => speedupVsDensityChart([{ ...rows[0]!, threads: 0 }], { title: "t" })).toThrow(
      /rows\[0\]\.threads is 0; expected a positive integer/,
    );
  });

  it("renderChart refuses a path that is not .svg", async () => {
    await expect(
      renderChart({ data: { values: [] }, mark: "point" }, join(fresh(), "x.png")),
    ).rejects.toThrow(/renderChart: svgPath ".*x\.png" must end in \.svg/);
  });
});
