// Charts of the sweeps: Vega-Lite specs from plain rows, rendered headless to SVG.
export {
  accuracyVsDensityChart,
  speedupVsDensityChart,
  type AccuracyRow,
  type ChartOptions,
  type SpeedupRow,
} from "./charts.ts";
export {
  renderChart,
  specPathFor,
  vegaLiteToSvg,
  type RenderedChart,
  type TopLevelSpec,
} from "./render.ts";
