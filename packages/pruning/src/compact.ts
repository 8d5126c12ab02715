// Removing dead paths after structured pruning: a dense but smaller model with the same
// outputs. Between two consecutive weight layers A -> B of a Sequential, unit j of A (a row of
// a Linear, a filter of a Conv2d) feeds input group j of B (a column of a Linear; the kh·kw
// columns of channel j of a Conv2d; through a Flatten, the H·W feature block of channel j of
// a Linear). Unit j is dead and both go when
//   - B's input group j is all zero: A's output j is never read, so A's row j and bias j go;
//   - or A's row j is all zero: A's output j is the constant act(bias_j) wherever it is read,
//     so B's group j is folded into B's bias (B.bias += sum of the group's weights times that
//     constant) and removed. A zero constant needs no fold; a nonzero one needs B to have a
//     bias and, for a convolution, no padding (a padded border would read zeros, not the
//     constant), otherwise the unit is kept.
// The modules allowed between A and B map a constant map to a constant (ReLU: max(0, c);
// max / average pooling, Flatten, Dropout in eval: c); anything else is refused by name.
// Pairs are handled front to back, so a fold into B's bias is seen by B's own dead units.
import { Generator } from "@tessera/tensor";
import {
  AvgPool2d,
  Conv2d,
  Dropout,
  Flatten,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
  type Module,
} from "@tessera/nn";

export interface CompactLayer {
  /** The layer's name in the Sequential ("conv2", "fc1"). */
  name: string;
  /** Weight shape before and after ([out, in] or [F, C, k, k]). */
  before: number[];
  after: number[];
  /** Indices of the original units (rows / filters) kept, ascending. */
  keptOutputs: number[];
}

export interface CompactResult {
  /** A new Sequential with the same layer names; the input model is not modified. */
  model: Sequential;
  layers: CompactLayer[];
  /** Weights (not biases) of the weight layers before and after. */
  weightsBefore: number;
  weightsAfter: number;
}

type WeightLayer = Linear | Conv2d;

function isWeightLayer(m: Module): m is WeightLayer {
  return m instanceof Linear || m instanceof Conv2d;
}

function outUnits(l: WeightLayer): number {
  return l instanceof Linear ? l.outFeatures : l.outChannels;
}

function rowLength(l: WeightLayer): number {
  return l instanceof Linear ? l.inFeatures : l.inChannels * l.kernelSize * l.kernelSize;
}

/**
 * The dense-but-smaller equivalent of `model` (a Sequential of named layers: Linear / Conv2d
 * with ReLU, MaxPool2d, AvgPool2d, Flatten, Dropout between them), with every dead unit and
 * its paths removed, and the shapes before and after per weight layer. In eval mode the
 * result gives the same outputs as `model` up to float32 rounding of the folded biases.
 */
export function compactModel(model: Sequential): CompactResult {
  const fn = "compactModel";
  if (!(model instanceof Sequential))
    throw new Error(`${fn}: expected a Sequential of named layers, got ${String(model)}`);
  const children = model.namedChildren();
  const idx: number[] = [];
  children.forEach(([name, m], i) => {
    if (isWeightLayer(m)) idx.push(i);
    else if (!(
      m instanceof ReLU ||
      m instanceof MaxPool2d ||
      m instanceof AvgPool2d ||
      m instanceof Flatten ||
      m instanceof Dropout
    ))
      throw new Error(
        `${fn}: layer "${name}" is a ${m.constructor.name}; only Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Flatten and Dropout are understood (a constant must stay a constant between weight layers)`,
      );
  });
  if (idx.length === 0) throw new Error(`${fn}: the model has no Linear or Conv2d layer`);

  // Working copies (float64 for the folded biases, rounded once at the end).
  const w = idx.map((i) => Float64Array.from((children[i]![1] as WeightLayer).weight.data.data));
  const b = idx.map((i) => {
    const l = children[i]![1] as WeightLayer;
    return l.bias === null ? null : Float64Array.from(l.bias.data.data);
  });
  const layers = idx.map((i) => children[i]![1] as WeightLayer);
  // keepOut[k][j]: unit j of layer k stays. The last layer's outputs are the model's.
  const keepOut = layers.map((l) => new Uint8Array(outUnits(l)).fill(1));

  for (let k = 0; k + 1 < layers.length; k++) {
    const a = layers[k]!;
    const nb = layers[k + 1]!;
    const units = outUnits(a);
    const between = children.slice(idx[k]! + 1, idx[k + 1]!).map(([, m]) => m);
    // Columns of B per unit of A: contiguous blocks of `per` columns in B's matrix view.
    const bIn = nb instanceof Linear ? nb.inFeatures : nb.inChannels;
    if (bIn % units !== 0)
      throw new Error(
        `${fn}: "${children[idx[k + 1]!]![0]}" reads ${bIn} inputs, not a multiple of the ${units} outputs of "${children[idx[k]!]![0]}"`,
      );
    const per = (nb instanceof Linear ? 1 : nb.kernelSize * nb.kernelSize) * (bIn / units);
    const aLen = rowLength(a);
    const bLen = rowLength(nb);
    const bRows = outUnits(nb);
    const wa = w[k]!;
    const wb = w[k + 1]!;
    for (let j = 0; j < units; j++) {
      let rowZero = true;
      for (let i = j * aLen; i < (j + 1) * aLen && rowZero; i++) rowZero = wa[i] === 0;
      let groupZero = true;
      for (let f = 0; f < bRows && groupZero; f++)
        for (let c = j * per; c < (j + 1) * per; c++)
          if (wb[f * bLen + c] !== 0) {
            groupZero = false;
            break;
          }
      if (groupZero) {
        keepOut[k]![j] = 0;
        continue;
      }
      if (!rowZero) continue;
      // Row j of A is zero: its output is a constant; push it through the modules between.
      let cst = b[k] === null ? 0 : b[k]![j]!;
      for (const m of between) if (m instanceof ReLU) cst = Math.max(0, cst);
      if (cst !== 0) {
        if (b[k + 1] === null || (nb instanceof Conv2d && nb.padding !== 0)) continue;
        for (let f = 0; f < bRows; f++) {
          let s = 0;
          for (let c = j * per; c < (j + 1) * per; c++) s += wb[f * bLen + c]!;
          b[k + 1]![f]! += cst * s;
        }
      }
      keepOut[k]![j] = 0;
    }
  }

  // Rebuild each weight layer from its kept rows and kept input groups.
  const init = new Generator(0); // values are overwritten; no shared default generator used
  const report: CompactLayer[] = [];
  const replaced = new Map<number, Module>();
  let weightsBefore = 0;
  let weightsAfter = 0;
  layers.forEach((l, k) => {
    const rows: number[] = [];
    keepOut[k]!.forEach((v, j) => {
      if (v === 1) rows.push(j);
    });
    // Kept input units: the previous layer's kept outputs (all inputs for the first layer).
    const inUnits = l instanceof Linear ? l.inFeatures : l.inChannels;
    const prevUnits = k === 0 ? inUnits : outUnits(layers[k - 1]!);
    const keptPrev = k === 0 ? new Uint8Array(prevUnits).fill(1) : keepOut[k - 1]!;
    const perUnit = inUnits / prevUnits; // features per previous unit (flatten) or 1
    const inKept: number[] = [];
    for (let u = 0; u < prevUnits; u++)
      if (keptPrev[u] === 1) for (let q = 0; q < perUnit; q++) inKept.push(u * perUnit + q);
    const plane = l instanceof Conv2d ? l.kernelSize * l.kernelSize : 1;
    const len = rowLength(l);
    const hasBias = b[k] !== null;
    if (rows.length === 0 || inKept.length === 0) {
      throw new Error(
        `${fn}: every path through "${children[idx[k]!]![0]}" is dead (${rows.length} outputs, ${inKept.length} inputs left); the model computes a constant`,
      );
    }
    const nl =
      l instanceof Linear
        ? new Linear(inKept.length, rows.length, {
            bias: hasBias,
            generator: init,
          })
        : new Conv2d(inKept.length, rows.length, l.kernelSize, {
            stride: l.stride,
            padding: l.padding,
            bias: hasBias,
            generator: init,
          });
    const nw = nl.weight.data.data as Float32Array;
    const newLen = inKept.length * plane;
    rows.forEach((r, ri) => {
      inKept.forEach((c, ci) => {
        for (let q = 0; q < plane; q++)
          nw[ri * newLen + ci * plane + q] = w[k]![r * len + c * plane + q]!;
      });
    });
    if (hasBias) {
      const nb = nl.bias!.data.data as Float32Array;
      rows.forEach((r, ri) => (nb[ri] = b[k]![r]!));
    }
    replaced.set(idx[k]!, nl);
    weightsBefore += l.weight.data.data.length;
    weightsAfter += nw.length;
    report.push({
      name: children[idx[k]!]![0],
      before: [...l.weight.shape],
      after: [...nl.weight.shape],
      keptOutputs: rows,
    });
  });
  const out = Sequential.named(children.map(([name, m], i) => [name, replaced.get(i) ?? m]));
  out.train(model.training);
  return { model: out, layers: report, weightsBefore, weightsAfter };
}
