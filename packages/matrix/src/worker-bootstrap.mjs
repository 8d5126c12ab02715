// Worker entry point. Node 20 does not pass tsx's loader to worker threads, so register it
// here, then import the real TypeScript entry named in workerData.
import { workerData } from "node:worker_threads";

if (workerData.entry.endsWith(".ts")) {
  const { register } = await import("tsx/esm/api");
  register();
}
await import(workerData.entry);
