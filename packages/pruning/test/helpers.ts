// Shared test helpers for @tessera/pruning: seeded data, and simple references the tests
// compare the real code against (written the obvious way, element by element).
import { Generator } from "@tessera/tensor";
import fc from "fast-check";
import { Conv2d, Flatten, Linear, ReLU, Sequential, arrayDataset, type Dataset } from "@tessera/nn";
import type { GroupKind } from "../src/index.ts";

/** n uniform values in [-1, 1) from a seed. */
export function randomValues(n: number, seed: number): Float32Array {
  const g = new Generator(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * g.nextFloat() - 1;
  return out;
}

/**
 * Reference grouping: the list of element indices of each group, built by enumerating groups
 * (tiles, rows, columns, channels) rather than by mapping elements, so a wrong index formula
 * in groupLayout cannot be mirrored here.
 */
export function referenceGroups(kind: GroupKind, shape: readonly number[]): number[][] {
  const rows = shape[0]!;
  const cols = shape.length === 2 ? shape[1]! : shape[1]! * shape[2]! * shape[3]!;
  const plane = shape.length === 2 ? 1 : shape[2]! * shape[3]!;
  const groups: number[][] = [];
  switch (kind.kind) {
    case "element":
    case "kernelElement":
      for (let i = 0; i < rows * cols; i++) groups.push([i]);
      break;
    case "block":
      for (let r0 = 0; r0 < rows; r0 += kind.rows)
        for (let c0 = 0; c0 < cols; c0 += kind.cols) {
          const g: number[] = [];
          for (let r = r0; r < Math.min(r0 + kind.rows, rows); r++)
            for (let c = c0; c < Math.min(c0 + kind.cols, cols); c++) g.push(r * cols + c);
          groups.push(g);
        }
      break;
    case "row":
      for (let r = 0; r < rows; r++)
        groups.push(Array.from({ length: cols }, (_, c) => r * cols + c));
      break;
    case "column":
      for (let c = 0; c < cols; c++)
        groups.push(Array.from({ length: rows }, (_, r) => r * cols + c));
      break;
    case "channel":
      for (let ch = 0; ch < cols / plane; ch++) {
        const g: number[] = [];
        for (let r = 0; r < rows; r++)
          for (let q = 0; q < plane; q++) g.push(r * cols + ch * plane + q);
        groups.push(g);
      }
      break;
  }
  return groups;
}

/** Arbitrary weight shapes: 2-d (sometimes 3k+1 columns, the 784 = 3·261+1 case) or 4-d. */
export const shapeArb: fc.Arbitrary<number[]> = fc.oneof(
  fc
    .tuple(fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 17 }))
    .map(([a, b]) => [a, b]),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 9 }))
    .map(([a, k]) => [a, 3 * k + 1]),
  fc
    .tuple(
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
    )
    .map(([f, c, kh, kw]) => [f, c, kh, kw]),
);

/** Arbitrary group kinds, blocks of random R x C (sometimes larger than the weight). */
export const kindArb: fc.Arbitrary<GroupKind> = fc.oneof(
  fc.constant<GroupKind>({ kind: "element" }),
  fc
    .tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 7 }))
    .map(([rows, cols]): GroupKind => ({ kind: "block", rows, cols })),
  fc.constant<GroupKind>({ kind: "row" }),
  fc.constant<GroupKind>({ kind: "column" }),
  fc.constant<GroupKind>({ kind: "channel" }),
  fc.constant<GroupKind>({ kind: "kernelElement" }),
);

/** Scores with many ties (small integers), to exercise the tie rule. */
export function tiedScores(n: number, seed: number, levels = 4): Float64Array {
  const g = new Generator(seed);
  return Float64Array.from({ length: n }, () => g.int(0, levels));
}

/** A small seeded MLP named like LeNet-300-100 (fc1, relu1, fc2, ...). */
export function mlp(seed: number, sizes = [12, 10, 7, 3]): Sequential {
  const g = new Generator(seed);
  const layers: [string, Linear | ReLU][] = [];
  for (let i = 1; i < sizes.length; i++) {
    layers.push([`fc${i}`, new Linear(sizes[i - 1]!, sizes[i]!, { generator: g })]);
    if (i < sizes.length - 1) layers.push([`relu${i}`, new ReLU()]);
  }
  return Sequential.named(layers);
}

/** n random examples of `features` values in [-1, 1) with labels in [0, classes). */
export function dataset(n: number, features: number, classes: number, seed: number): Dataset {
  const g = new Generator(seed);
  const x = Float32Array.from({ length: n * features }, () => 2 * g.nextFloat() - 1);
  const y = Int32Array.from({ length: n }, () => g.int(0, classes));
  return arrayDataset(x, y, [features]);
}

/**
 * A seeded CNN for KEP tests: conv1 (2 -> c1, 3x3 pad 1), ReLU, conv2 (c1 -> c2), ReLU, flatten,
 * fc -> 3 classes; takes [N, 2, 4, 4].
 */
export function convNet(seed: number, c1 = 3, c2 = 4): Sequential {
  const g = new Generator(seed);
  return Sequential.named([
    ["conv1", new Conv2d(2, c1, 3, { padding: 1, generator: g })],
    ["relu1", new ReLU()],
    ["conv2", new Conv2d(c1, c2, 3, { padding: 1, generator: g })],
    ["relu2", new ReLU()],
    ["flatten", new Flatten()],
    ["fc", new Linear(c2 * 16, 3, { generator: g })],
  ]);
}
