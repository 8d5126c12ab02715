// The reference models of the pruning studies. Layer names are stable ("fc1", "conv2", ...)
// because pruning configurations and checkpoints refer to them.
import type { Generator } from "@tessera/tensor";
import type { Module } from "./module.ts";
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential } from "./layers.ts";

export interface ModelOptions {
  /** Draw initial weights from this generator (default: the manualSeed generator). */
  generator?: Generator;
}

/**
 * LeNet-300-100 (LeCun et al. 1998; the MLP of Han et al. 2015 and of the block-pruning
 * paper): flatten, fc1 784->300, ReLU, fc2 300->100, ReLU, fc3 100->10. Accepts [N, 784] or
 * [N, 1, 28, 28]. 266,200 weights + 410 biases.
 */
export function lenet300100(options: ModelOptions = {}): Sequential {
  const g = options.generator;
  return Sequential.named([
    ["flatten", new Flatten()],
    ["fc1", new Linear(784, 300, { generator: g })],
    ["relu1", new ReLU()],
    ["fc2", new Linear(300, 100, { generator: g })],
    ["relu2", new ReLU()],
    ["fc3", new Linear(100, 10, { generator: g })],
  ]);
}

export interface LeNet5Options extends ModelOptions {
  /**
   * Put a ReLU after each convolution. Default false: the Caffe LeNet used by the ADMM pruning
   * papers has none there (only between fc1 and fc2); turn on for the common PyTorch variant.
   */
  convRelu?: boolean;
}

/**
 * LeNet-5 as in Caffe's MNIST example and the ADMM papers: conv1 20@5x5, maxpool 2,
 * conv2 50@5x5, maxpool 2, flatten (50*4*4 = 800), fc1 800->500, ReLU, fc2 500->10.
 * Input [N, 1, 28, 28]. Weights: 500 + 25,000 + 400,000 + 5,000 = 430,500 (plus 580 biases).
 */
export function lenet5(options: LeNet5Options = {}): Sequential {
  const g = options.generator;
  const layers: [string, Module][] = [["conv1", new Conv2d(1, 20, 5, { generator: g })]];
  if (options.convRelu === true) layers.push(["reluc1", new ReLU()]);
  layers.push(["pool1", new MaxPool2d(2)], ["conv2", new Conv2d(20, 50, 5, { generator: g })]);
  if (options.convRelu === true) layers.push(["reluc2", new ReLU()]);
  layers.push(
    ["pool2", new MaxPool2d(2)],
    ["flatten", new Flatten()],
    ["fc1", new Linear(800, 500, { generator: g })],
    ["relu1", new ReLU()],
    ["fc2", new Linear(500, 10, { generator: g })],
  );
  return Sequential.named(layers);
}

export interface SmallCnnOptions extends ModelOptions {
  /** Input channels: 1 for MNIST / Fashion-MNIST (default), 3 for CIFAR-10. */
  inChannels?: number;
  /** Input height = width: 28 (default) or 32; must be divisible by 4. */
  imageSize?: number;
  /** Width of the hidden fully connected layer (default 128). */
  hidden?: number;
  numClasses?: number;
  /**
   * Output channels of conv1..conv4 (default [32, 32, 64, 64]). The cost grows with their
   * squares: the default is ~37 MFLOP per 28x28 image forward; [16, 16, 32, 32] is ~4x less.
   */
  channels?: readonly [number, number, number, number];
}

/**
 * A small all-3x3 CNN for the kernel-element (KEP) studies, in the VGG style where every
 * convolution plane is 3x3:
 *   conv1 3x3 C->32 (pad 1), ReLU, conv2 3x3 32->32, ReLU, pool 2,
 *   conv3 3x3 32->64, ReLU, conv4 3x3 64->64, ReLU, pool 2,
 *   flatten (64 * (S/4)^2), fc1 -> hidden, ReLU, fc2 -> classes
 * (channel widths configurable with `channels`).
 * Padding 1 keeps the spatial size, so S=28 gives 64*7*7 = 3136 features into fc1.
 */
export function smallCnn(options: SmallCnnOptions = {}): Sequential {
  const g = options.generator;
  const c = options.inChannels ?? 1;
  const s = options.imageSize ?? 28;
  const hidden = options.hidden ?? 128;
  const classes = options.numClasses ?? 10;
  const [c1, c2, c3, c4] = options.channels ?? [32, 32, 64, 64];
  if (!Number.isSafeInteger(s) || s < 4 || s % 4 !== 0) {
    throw new RangeError(`smallCnn: imageSize must be a positive multiple of 4, got ${s}`);
  }
  const conv = (i: number, o: number) => new Conv2d(i, o, 3, { padding: 1, generator: g });
  return Sequential.named([
    ["conv1", conv(c, c1)],
    ["relu1", new ReLU()],
    ["conv2", conv(c1, c2)],
    ["relu2", new ReLU()],
    ["pool1", new MaxPool2d(2)],
    ["conv3", conv(c2, c3)],
    ["relu3", new ReLU()],
    ["conv4", conv(c3, c4)],
    ["relu4", new ReLU()],
    ["pool2", new MaxPool2d(2)],
    ["flatten", new Flatten()],
    ["fc1", new Linear(c4 * (s / 4) * (s / 4), hidden, { generator: g })],
    ["relu5", new ReLU()],
    ["fc2", new Linear(hidden, classes, { generator: g })],
  ]);
}
