// Shared test helpers of the experiments package.
import { arrayDataset, type Dataset } from "@tessera/nn";
import { Generator } from "@tessera/tensor";

/**
 * A small learnable problem in LeNet-300-100's input shape (784 bytes per example): the label
 * is which of ten pixel bands is brightest.
 */
export function bands(count: number, seed: number): Dataset {
  const g = new Generator(seed);
  const x = new Uint8Array(count * 784);
  const y = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = g.int(0, 10);
    y[i] = label;
    for (let p = 0; p < 784; p++) {
      const inBand = Math.floor(p / 78.4) === label;
      x[i * 784 + p] = Math.floor(g.nextFloat() * 100) + (inBand ? 150 : 0);
    }
  }
  return arrayDataset(x, y, [784], { mean: 0.5, std: 0.5 });
}
