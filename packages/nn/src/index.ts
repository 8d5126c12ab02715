// @tessera/nn: what a user trains with.
export * from "./safetensors.ts";
export * from "./schedules.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
