// TensorFlow.js `cpu` side of the dense benchmark, run by dense.ts in a child process:
//   tsx dense_tfjs.ts '<shapes JSON>' <timeMs>   -> prints {"<label>": fastest ms, ...}
// A separate process because merely loading TF.js into a process slowed our own kernels there
// by 20-25% on this machine kind (512^3: 3.5-3.9 -> 2.8-3.1 GFLOP/s, same code; cause not
// found: TF.js changes no built-in prototype). Each library is timed in a process of its own.
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { fastestMs, fillRandom } from "./common.ts";

interface Shape {
  label: string;
  op: "matmul" | "matmulTransA" | "matmulTransB";
  m: number;
  k: number;
  n: number;
}

const [shapesJson, timeArg] = process.argv.slice(2);
if (shapesJson === undefined) throw new Error("dense_tfjs.ts: expected a JSON list of shapes");
const shapes = JSON.parse(shapesJson) as Shape[];
await tf.setBackend("cpu");
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
