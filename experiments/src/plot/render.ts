// Headless Vega-Lite: compile a spec to Vega, run it with no renderer and serialise the scene
// to SVG (vega's own SVG string renderer: no browser, no canvas, no native module).
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "@tessera/mnist-dataset-loader";

export type { TopLevelSpec } from "vega-lite";

/** The SVG text of a Vega-Lite spec. */
export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  // Vega tags inline data rows in place (a symbol id per row): give it a copy, so the
  // caller's spec, and the JSON saved beside the SVG, stay as built.
  const vg = compile(JSON.parse(JSON.stringify(spec)) as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Where renderChart put the chart. */
export interface RenderedChart {
  svgPath: string;
  specPath: string;
  svg: string;
}

/** `fig.svg` -> `fig.vl.json`: the spec lies beside the picture it draws. */
export const specPathFor = (svgPath: string): string => svgPath.replace(/\.svg$/i, "") + ".vl.json";

/**
 * Renders `spec` to `svgPath` and saves the spec (data included, so it can be re-rendered or
 * opened in the Vega editor) as `<name>.vl.json` beside it; both written atomically.
 */
export async function renderChart(spec: TopLevelSpec, svgPath: string): Promise<RenderedChart> {
  if (!/\.svg$/i.test(svgPath))
    throw new Error(`renderChart: svgPath "${svgPath}" must end in .svg`);
  const svg = await vegaLiteToSvg(spec);
  mkdirSync(dirname(svgPath), { recursive: true });
  const specPath = specPathFor(svgPath);
  const enc = new TextEncoder();
  writeFileAtomic(specPath, enc.encode(JSON.stringify(spec, null, 2) + "\n"));
  writeFileAtomic(svgPath, enc.encode(svg));
  return { svgPath, specPath, svg };
}
