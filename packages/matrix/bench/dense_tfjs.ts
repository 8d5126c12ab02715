// TensorFlow.js side of the dense benchmark, run by dense.ts in a child process per backend:
//   tsx dense_tfjs.ts '<shapes JSON>' <timeMs> cpu|wasm   -> prints {"<label>": fastest ms, ...}
// `wasm` is XNNPACK's SIMD kernels, held to one thread (setThreadsCount(1)) to compare with ours
// on one thread; the line before the JSON says which build (SIMD, threads) TF.js loaded.
// A separate process because merely loading TF.js into a process slowed our own kernels there
// by 20-25% on this machine kind (512^3: 3.5-3.9 -> 2.8-3.1 GFLOP/s, same code; cause not
// found: TF.js changes no built-in prototype). Each library is timed in a process of its own.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm";
import { fastestMs, fillRandom } from "./common.ts";

interface Shape {
  label: string;
  op: "matmul" | "matmulTransA" | "matmulTransB";
  m: number;
  k: number;
  n: number;
}

const [shapesJson, timeArg, backend = "cpu"] = process.argv.slice(2);
if (shapesJson === undefined) throw new Error("dense_tfjs.ts: expected a JSON list of shapes");
if (backend !== "cpu" && backend !== "wasm")
  throw new Error(`dense_tfjs.ts: backend must be cpu or wasm, got ${backend}`);
const shapes = JSON.parse(shapesJson) as Shape[];
if (backend === "wasm") setThreadsCount(1);
if (!(await tf.setBackend(backend)))
  throw new Error(`dense_tfjs.ts: backend ${backend} failed to start`);
if (backend === "wasm") {
  const simd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
  const threads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
  console.log(`tfjs wasm: SIMD ${String(simd)}, multithread build ${String(threads)}`);
}
const result: Record<string, number> = {};
for (const { label, op, m, k, n } of shapes) {
  const ta = tf.tensor2d(
    fillRandom(new Float32Array(m * k), 1),
    op === "matmulTransA" ? [k, m] : [m, k],
  );
  const tb = tf.tensor2d(
    fillRandom(new Float32Array(k * n), 2),
    op === "matmulTransB" ? [n, k] : [k, n],
  );
  const [ms] = fastestMs(
    [
      [
        "tfjs",
        () => {
          const r = tf.matMul(ta, tb, op === "matmulTransA", op === "matmulTransB");
          r.dataSync();
          r.dispose();
        },
      ],
    ],
    Number(timeArg ?? 600),
  );
  ta.dispose();
  tb.dispose();
  result[label] = ms!;
}
// The JSON line last: TF.js prints a banner on stdout when it loads.
console.log(JSON.stringify(result));
