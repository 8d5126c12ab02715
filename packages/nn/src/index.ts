// @tessera/nn: what a user trains with.
export type { FloatArray } from "./types.ts";
export * from "./safetensors.ts";
export * from "./schedules.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
export * from "./init.ts";
export * from "./optim.ts";
export * from "./module.ts";
export * from "./layers.ts";
export * from "./models.ts";
export * from "./checkpoint.ts";
export * from "./data.ts";
export * from "./train.ts";
