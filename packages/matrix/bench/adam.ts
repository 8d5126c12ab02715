// adamUpdate on one thread, float32 parameters: the double loop (asm path) against the f32x4
// kernel (wasm path, wasm-adam.ts), side by side; milliseconds per update, the fastest of
// several (fastestMs). 266,610 is LeNet-300-100's parameter count, 61,706 LeNet-5's.
//   pnpm tsx packages/matrix/bench/adam.ts
import { adamUpdate } from "../src/index.ts";
import { fastestMs, machineInfo } from "./common.ts";

console.log(machineInfo());
console.log("command: pnpm tsx packages/matrix/bench/adam.ts");
console.log("| parameters | double loop, ms | f32x4 kernel, ms | ratio |");
console.log("|---|---|---|---|");
for (const n of [61706, 266610, 1_000_000]) {
  const make = () => new Float32Array(n).map((_, i) => Math.sin(i) * 0.01);
  const [w, g, m] = [make(), make(), make()];
  const v = new Float32Array(n).fill(1e-4);
  const step = {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    stepSize: 1e-3,
    bc2sqrt: 0.5,
    l2: 0,
    shrink: 1,
  };
  const [a, b] = fastestMs(
    [
      ["double loop", () => adamUpdate(w, g, m, v, step, { kernels: "asm" })],
      ["f32x4 kernel", () => adamUpdate(w, g, m, v, step, { kernels: "wasm" })],
    ],
    400,
  );
  console.log(`| ${n} | ${a!.toFixed(3)} | ${b!.toFixed(3)} | ${(a! / b!).toFixed(2)}x |`);
}
