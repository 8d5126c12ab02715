// The peer every JS user would reach for: the same LeNet-300-100, loss, optimizer and batch
// trained by TensorFlow.js's pure-JS `cpu` backend. Used only by benchmarks, never by tests
// of our own numbers.
import { createRequire } from "node:module";
import type * as TF from "@tensorflow/tfjs-core";

// Loaded through require so that core, the cpu backend and the gradient registrations are one
// CommonJS instance: tfjs-core registers no gradients by itself (the tfjs umbrella package
// imports register_all_gradients), and that file cannot be imported as ESM under Node.
const require = createRequire(import.meta.url);
const tf = require("@tensorflow/tfjs-core") as typeof TF;
require("@tensorflow/tfjs-core/dist/register_all_gradients");
require("@tensorflow/tfjs-backend-cpu");

export interface TfjsTrainer {
  /** One Adam step on a batch; returns nothing so no sync is forced beyond the update. */
  step(images: Float32Array, labels: Uint8Array, batch: number): void;
  /** Forces all pending work to finish (reads one weight back). */
  sync(): void;
  dispose(): void;
}

/** Builds LeNet-300-100 (784-300-100-10, ReLU) with Glorot-uniform weights and Adam(lr). */
export async function createTfjsLenet300100(lr: number, seed: number): Promise<TfjsTrainer> {
  await tf.setBackend("cpu");
  await tf.ready();
  const sizes = [784, 300, 100, 10];
  const weights: TF.Variable[] = [];
  const biases: TF.Variable[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const fanIn = sizes[i]!;
    const fanOut = sizes[i + 1]!;
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    weights.push(
      tf.variable(tf.randomUniform([fanIn, fanOut], -limit, limit, "float32", seed + i)),
    );
    biases.push(tf.variable(tf.zeros([fanOut])));
  }
  const optimizer = tf.train.adam(lr);
  const forward = (x: TF.Tensor2D): TF.Tensor2D => {
    let h: TF.Tensor2D = x;
    for (let i = 0; i < weights.length; i++) {
      h = tf.add(tf.matMul(h, weights[i] as TF.Tensor2D), biases[i]!);
      if (i + 1 < weights.length) h = tf.relu(h);
    }
    return h;
  };
  return {
    step(images, labels, batch) {
      tf.tidy(() => {
        const x = tf.tensor2d(images, [batch, 784]);
        const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels), "int32"), 10);
        optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, forward(x)) as TF.Scalar);
      });
    },
    sync() {
      weights[0]!.dataSync();
    },
    dispose() {
      optimizer.dispose();
      for (const v of [...weights, ...biases]) v.dispose();
    },
  };
}
