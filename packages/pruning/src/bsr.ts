// Pruned Linear layers that run and train in Block Sparse Row form. A BsrLinear keeps only the
// stored blocks of its weight (a @tessera/matrix BsrMatrix in scipy's layout) and trains their
// values as one parameter; its state dict holds scipy's arrays under the layer's name
// (<layer>.data [nnz, R, C], <layer>.indices, <layer>.indptr, <layer>.bias), so nn's
// saveModel writes the export format as it is and nn's optimizers step it unchanged.
import { Generator, Tensor } from "@tessera/tensor";
import { Variable, bsrLinear } from "@tessera/autograd";
import { BsrMatrix, CsrMatrix, toShared } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";
import { Linear, Module } from "@tessera/nn";
import type { PrunedSource } from "./types.ts";
import { densifyModules, fmt, sameInts, sharedCopy } from "./util.ts";

/**
 * y = x·Wᵀ + b with W [outFeatures, inFeatures] held as a BsrMatrix. Parameters: `data`
 * (the stored blocks, [nnzBlocks, R, C], the very array of the matrix) and `bias`; buffers:
 * `indices` and `indptr` (int32, scipy's meaning). Unstored blocks are zero and stay zero
 * through training: they have no parameter to move.
 */
export class BsrLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly blockShape: readonly [number, number];
  readonly data: Variable;
  readonly bias: Variable | null;
  readonly indices: Tensor;
  readonly indptr: Tensor;
  private matrix: BsrMatrix<FloatArray>;

  /**
   * Wraps `matrix` (kept, not copied: its data becomes the `data` parameter) and an optional
   * bias of [matrix.rows] values (copied).
   */
  constructor(matrix: BsrMatrix<FloatArray>, bias: FloatArray | null = null) {
    super();
    const fn = "BsrLinear";
    if (!(matrix instanceof BsrMatrix))
      throw new TypeError(`${fn}: matrix must be a BsrMatrix from @tessera/matrix`);
    if (matrix.rows < 1 || matrix.cols < 1)
      throw new RangeError(
        `${fn}: the weight must be at least 1x1 [out, in], got ${matrix.rows}x${matrix.cols}`,
      );
    if (bias !== null && bias.length !== matrix.rows)
      throw new RangeError(
        `${fn}: bias has ${bias.length} values, expected outFeatures = ${matrix.rows}`,
      );
    if (bias !== null && bias.constructor !== matrix.data.constructor)
      throw new TypeError(`${fn}: bias and matrix data must share one float type`);
    this.inFeatures = matrix.cols;
    this.outFeatures = matrix.rows;
    this.blockShape = [matrix.blockShape[0], matrix.blockShape[1]];
    this.matrix = matrix;
    const [R, C] = this.blockShape;
    this.data = this.registerParameter(
      "data",
      new Variable(new Tensor(matrix.data, [matrix.nnzBlocks, R, C]), {
        requiresGrad: true,
        name: "data",
      }),
    );
    this.bias =
      bias === null
        ? null
        : this.registerParameter(
            "bias",
            new Variable(new Tensor(sharedCopy(bias), [matrix.rows]), {
              requiresGrad: true,
              name: "bias",
            }),
          );
    // The buffers are copies: loading a state dict writes into them, and forward() rebuilds
    // the matrix when they no longer equal its pattern (a BsrMatrix's pattern is immutable).
    this.indices = this.registerBuffer(
      "indices",
      new Tensor(matrix.indices.slice(), [matrix.nnzBlocks]),
    );
    this.indptr = this.registerBuffer(
      "indptr",
      new Tensor(matrix.indptr.slice(), [matrix.blockRows + 1]),
    );
  }

  /**
   * Builds the layer from a dense weight [out, in] (row-major), keeping exactly the R x C
   * blocks whose `blockMask` entry (row-major over the block grid) is nonzero.
   */
  static fromDense(
    weight: FloatArray,
    outFeatures: number,
    inFeatures: number,
    blockShape: readonly [number, number],
    blockMask: Uint8Array,
    bias: FloatArray | null = null,
  ): BsrLinear {
    return new BsrLinear(
      BsrMatrix.fromDense(weight, outFeatures, inFeatures, blockShape, {
        mask: blockMask,
      }) as BsrMatrix<FloatArray>,
      bias,
    );
  }

  /** The weight as a BsrMatrix (shares `data`); rebuilt if the index buffers were loaded anew. */
  get weight(): BsrMatrix<FloatArray> {
    const m = this.matrix;
    const indices = this.indices.data as Int32Array;
    const indptr = this.indptr.data as Int32Array;
    if (!sameInts(indices, m.indices) || !sameInts(indptr, m.indptr)) {
      this.matrix = BsrMatrix.fromArrays({
        rows: m.rows,
        cols: m.cols,
        blockShape: m.blockShape,
        indptr: toShared(indptr),
        indices: toShared(indices),
        data: m.data,
      }) as BsrMatrix<FloatArray>;
    }
    return this.matrix;
  }

  /** Stored blocks over all blocks of the grid. */
  get density(): number {
    return this.weight.density;
  }

  /** The dense weight [out, in] (zeros outside the stored blocks). */
  toDenseWeight(): FloatArray {
    return this.weight.toDense();
  }

  forward(x: Variable): Variable {
    return this.affine("forward", x, false);
  }

  /**
   * forward followed by a ReLU as one op (autograd's bsrLinear with `relu`: the ReLU in the
   * sparse product's epilogue): ReLU().forward(this.forward(x)) bit for bit. nn's Sequential
   * runs a BsrLinear followed by a ReLU this way.
   */
  forwardRelu(x: Variable): Variable {
    return this.affine("forwardRelu", x, true);
  }

  private affine(method: string, x: Variable, relu: boolean): Variable {
    const s = x.shape;
    if (s.length !== 2 || s[1] !== this.inFeatures) {
      throw new Error(`BsrLinear.${method}: expected input [N, ${this.inFeatures}], got ${fmt(s)}`);
    }
    return bsrLinear(x, this.weight, this.data, this.bias, { relu });
  }
}

/** Bytes of one weight stored three ways (float32 values, int32 indices). */
export interface StorageBytes {
  /** rows·cols values. */
  dense: number;
  /** CSR of the kept elements (CsrMatrix.byteSize: indptr + indices + values). */
  csr: number;
  /** BSR of the blocks holding any kept element (BsrMatrix.byteSize). */
  bsr: number;
  /** Kept elements (mask nonzero). */
  nnz: number;
  /** Stored blocks of the BSR form. */
  nnzBlocks: number;
}

/**
 * Storage of a masked weight whose matrix view is [shape[0], product of the rest] (a conv
 * weight [F, C, k, k] as [F, C·k·k]): dense, CSR of the kept elements, BSR in `blockShape`
 * blocks of the blocks holding any kept element. `mask` is 0/1 per element.
 */
export function storageBytes(
  mask: Float32Array,
  shape: readonly number[],
  blockShape: readonly [number, number] = [1, 1],
): StorageBytes {
  const fn = "storageBytes";
  if (shape.length < 1 || !shape.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new RangeError(`${fn}: shape must hold positive integers, got ${fmt(shape)}`);
  const rows = shape[0]!;
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  if (!(mask instanceof Float32Array) || mask.length !== rows * cols)
    throw new RangeError(
      `${fn}: mask must be a Float32Array of ${rows * cols} elements for shape ${fmt(shape)}, got ${mask instanceof Float32Array ? mask.length : typeof mask}`,
    );
  const csr = CsrMatrix.fromDense(mask, rows, cols);
  const bsr = BsrMatrix.fromDense(mask, rows, cols, blockShape);
  return {
    dense: rows * cols * 4,
    csr: csr.byteSize,
    bsr: bsr.byteSize,
    nnz: csr.nnz,
    nnzBlocks: bsr.nnzBlocks,
  };
}

/** One layer toBsr converted. */
export interface BsrConversion {
  /** Module path, e.g. "fc1" (its weight was "fc1.weight"). */
  name: string;
  blockShape: [number, number];
  nnzBlocks: number;
  /** Stored blocks over all blocks. */
  density: number;
  bytes: StorageBytes;
}

export interface ToBsrOptions {
  /** Convert only these module paths (default: every Linear whose weight the source lists). */
  only?: readonly string[];
}

/** The block shape a group kind gives a Linear weight, or null when it is not block-shaped. */
function blockShapeOf(kind: {
  kind: string;
  rows?: number;
  cols?: number;
}): [number, number] | null {
  if (kind.kind === "element") return [1, 1];
  if (kind.kind === "block") return [kind.rows!, kind.cols!];
  return null;
}

/**
 * Replaces, in place, every Linear whose weight `source` lists with an element or block kind
 * by a BsrLinear holding exactly the blocks whose mask is nonzero, with the masked weight's
 * values and the Linear's bias. A block-kind mask must be constant over each block (else a
 * pruned element inside a kept block could be trained back), so the stored blocks hold only
 * kept elements and the masked weight's values are the weight's values there: pruned
 * elements are exactly the unstored blocks, which read as 0 whatever the dense weight still
 * holds. Entries of other kinds or of non-Linear modules are left alone. Returns the
 * converted layers.
 */
export function toBsr(
  model: Module,
  source: PrunedSource,
  options: ToBsrOptions = {},
): BsrConversion[] {
  const fn = "toBsr";
  const only = options.only === undefined ? null : new Set(options.only);
  const out: BsrConversion[] = [];
  const seen = new Set<string>();
  for (const entry of source.entries()) {
    if (!entry.name.endsWith(".weight") && entry.name !== "weight") continue;
    const path = entry.name.slice(0, Math.max(0, entry.name.length - ".weight".length));
    if (only !== null && !only.has(path)) continue;
    const block = blockShapeOf(entry.kind);
    if (block === null) continue;
    let layer: Module;
    try {
      layer = model.getSubmodule(path);
    } catch {
      throw new Error(
        `${fn}: the source lists "${entry.name}" but the model has no module "${path}"`,
      );
    }
    if (!(layer instanceof Linear)) continue;
    if (path === "")
      throw new Error(`${fn}: the model itself is the Linear to convert; wrap it in a Sequential`);
    if (seen.has(path)) throw new Error(`${fn}: the source lists "${entry.name}" twice`);
    seen.add(path);
    const rows = layer.outFeatures;
    const cols = layer.inFeatures;
    const w = layer.weight.data.contiguous().data as FloatArray;
    const mask = entry.mask;
    if (!(mask instanceof Float32Array) || mask.length !== rows * cols)
      throw new RangeError(
        `${fn}: mask of "${entry.name}" has ${mask?.length} elements, expected ${rows * cols} for weight [${rows},${cols}]`,
      );
    const [R, C] = block;
    const bc = Math.ceil(cols / C);
    const blockMask = new Uint8Array(Math.ceil(rows / R) * bc);
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++)
        if (mask[i * cols + j] !== 0) blockMask[Math.floor(i / R) * bc + Math.floor(j / C)] = 1;
    for (let i = 0; i < rows; i++)
      for (let j = 0; j < cols; j++) {
        const kept = blockMask[Math.floor(i / R) * bc + Math.floor(j / C)] === 1;
        if (kept && mask[i * cols + j] === 0)
          throw new Error(
            `${fn}: mask of "${entry.name}" (${R}x${C} blocks) is not constant over block (${Math.floor(i / R)}, ${Math.floor(j / C)}): element (${i}, ${j}) is pruned but others are kept`,
          );
      }
    const bias = layer.bias === null ? null : (layer.bias.data.contiguous().data as FloatArray);
    const bsr = BsrLinear.fromDense(w, rows, cols, [R, C], blockMask, bias);
    model.setSubmodule(path, bsr);
    out.push({
      name: path,
      blockShape: [R, C],
      nnzBlocks: bsr.weight.nnzBlocks,
      density: bsr.weight.density,
      bytes: storageBytes(mask, [rows, cols], [R, C]),
    });
  }
  return out;
}

/**
 * Replaces, in place, every BsrLinear of `model` by a Linear with the same values (zeros
 * outside the stored blocks) and bias; returns the module paths it converted.
 */
export function toDense(model: Module): string[] {
  return densifyModules(
    "toDense",
    model,
    (m): m is BsrLinear => m instanceof BsrLinear,
    (m) => ({ values: m.data, denseWeight: m.toDenseWeight(), bias: m.bias }),
    // A private generator: the init values are overwritten, and drawing from nn's default
    // generator would shift every later layer's initialisation.
    (m) =>
      new Linear(m.inFeatures, m.outFeatures, {
        bias: m.bias !== null,
        generator: new Generator(0),
      }),
  );
}
