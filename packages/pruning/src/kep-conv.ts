// Kernel-element-pruned convolutions (KEP, issue 13): a KepConv2d
// keeps, inside every k x k plane of its weight, only the positions of a layout and trains their
// values as one parameter; its convolution visits only those (@tessera/autograd's kepConv2d).
// toKep / fromKep convert a pruned model's Conv2d layers and back, as toBsr / toDense do for
// Linear layers.
import { Generator, Tensor } from "@tessera/tensor";
import { Variable, kepConv2d } from "@tessera/autograd";
import { KepLayout } from "@tessera/matrix";
import type { FloatArray } from "@tessera/matrix";
import { Conv2d, Module } from "@tessera/nn";
import type { PrunedSource } from "./types.ts";
import { densifyModules, fmt, sameInts, sharedCopy } from "./util.ts";

export interface KepConv2dLayerOptions {
  /** Step between windows. Default 1. */
  stride?: number;
  /** Zero padding on each side. Default 0. */
  padding?: number;
}

/**
 * A convolution whose weight [F, C, k, k] keeps only `layout`'s positions. Parameters: `values`
 * ([nnz], the kept weights in layout order) and `bias` ([F], optional); buffers: `ptr`
 * ([F·C + 1]) and `pos` ([nnz], position u·k + v), int32, the layout (KepLayout's meaning), so a
 * state dict carries the pattern. Pruned positions have no parameter: they stay zero through
 * training.
 */
export class KepConv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;
  readonly values: Variable;
  readonly bias: Variable | null;
  readonly ptr: Tensor;
  readonly pos: Tensor;
  private current: KepLayout;

  /**
   * Wraps `layout` (square kernels) and its kept `values` (copied to shared memory), with an
   * optional bias of [layout.f] values (copied).
   */
  constructor(
    layout: KepLayout,
    values: FloatArray,
    bias: FloatArray | null = null,
    options: KepConv2dLayerOptions = {},
  ) {
    super();
    const fn = "KepConv2d";
    if (!(layout instanceof KepLayout))
      throw new TypeError(`${fn}: layout must be a KepLayout from @tessera/matrix`);
    if (layout.kh !== layout.kw)
      throw new RangeError(`${fn}: kernels must be square, got ${layout.kh}x${layout.kw}`);
    if (layout.f < 1 || layout.c < 1)
      throw new RangeError(
        `${fn}: the weight needs at least one filter and one input channel, got [${layout.f},${layout.c},${layout.kh},${layout.kw}]`,
      );
    if (!(values instanceof Float32Array) && !(values instanceof Float64Array))
      throw new TypeError(`${fn}: values must be a Float32Array or Float64Array`);
    if (values.length !== layout.nnz)
      throw new RangeError(
        `${fn}: values has ${values.length} entries, expected the layout's ${layout.nnz} kept elements`,
      );
    if (bias !== null && bias.length !== layout.f)
      throw new RangeError(
        `${fn}: bias has ${bias.length} values, expected outChannels = ${layout.f}`,
      );
    if (bias !== null && bias.constructor !== values.constructor)
      throw new TypeError(`${fn}: bias and values must share one float type`);
    const stride = options.stride ?? 1;
    const padding = options.padding ?? 0;
    if (!Number.isSafeInteger(stride) || stride < 1)
      throw new RangeError(`${fn}: stride must be an integer >= 1, got ${stride}`);
    if (!Number.isSafeInteger(padding) || padding < 0)
      throw new RangeError(`${fn}: padding must be an integer >= 0, got ${padding}`);
    this.inChannels = layout.c;
    this.outChannels = layout.f;
    this.kernelSize = layout.kh;
    this.stride = stride;
    this.padding = padding;
    this.current = layout;
    this.values = this.registerParameter(
      "values",
      new Variable(new Tensor(sharedCopy(values), [layout.nnz]), {
        requiresGrad: true,
        name: "values",
      }),
    );
    this.bias =
      bias === null
        ? null
        : this.registerParameter(
            "bias",
            new Variable(new Tensor(sharedCopy(bias), [layout.f]), {
              requiresGrad: true,
              name: "bias",
            }),
          );
    // Copies: loading a state dict writes into them, and forward() rebuilds the layout when
    // they no longer equal it.
    this.ptr = this.registerBuffer("ptr", new Tensor(layout.ptr.slice(), [layout.ptr.length]));
    this.pos = this.registerBuffer("pos", new Tensor(layout.pos.slice(), [layout.nnz]));
  }

  /**
   * Builds the layer from a dense weight [F, C, k, k] (row-major) and a 0/1 mask of the same
   * size: the kept values are the weight's at the mask's nonzero positions.
   */
  static fromDense(
    weight: FloatArray,
    mask: ArrayLike<number>,
    shape: readonly [number, number, number, number],
    bias: FloatArray | null = null,
    options: KepConv2dLayerOptions = {},
  ): KepConv2d {
    const [f, c, kh, kw] = shape;
    const layout = KepLayout.fromMask(mask, f, c, kh, kw);
    return new KepConv2d(layout, layout.gather(weight), bias, options);
  }

  /** The kept positions; rebuilt if the ptr / pos buffers were loaded anew. */
  get layout(): KepLayout {
    const l = this.current;
    const ptr = this.ptr.data as Int32Array;
    const pos = this.pos.data as Int32Array;
    if (!sameInts(ptr, l.ptr) || !sameInts(pos, l.pos))
      this.current = new KepLayout(l.f, l.c, l.kh, l.kw, ptr.slice(), pos.slice());
    return this.current;
  }

  /** The dense weight [F, C, k, k] (zeros at pruned positions). */
  toDenseWeight(): FloatArray {
    return this.layout.scatter(this.values.data.contiguous().data as FloatArray);
  }

  forward(x: Variable): Variable {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== this.inChannels) {
      throw new Error(
        `KepConv2d.forward: expected input [N, ${this.inChannels}, H, W], got ${fmt(s)}`,
      );
    }
    return kepConv2d(x, this.values, this.layout, this.bias, {
      stride: this.stride,
      padding: this.padding,
    });
  }
}

/** One layer toKep converted. */
export interface KepConversion {
  /** Module path, e.g. "conv2" (its weight was "conv2.weight"). */
  name: string;
  /** [F, C, k, k]. */
  shape: [number, number, number, number];
  /** Kept elements. */
  nnz: number;
  /** Elements kept in every plane, or null when planes keep different counts. */
  perPlane: number | null;
  /** Bytes of the dense float32 weight, of the kept float32 values, and of the saved index. */
  bytes: { dense: number; values: number; index: number };
}

export interface ToKepOptions {
  /** Convert only these module paths (default: every Conv2d the source lists). */
  only?: readonly string[];
  /**
   * Also convert Conv2d weights the source lists with a group kind other than kernelElement
   * (any 0/1 conv mask has a layout). Default false: only kernelElement entries.
   */
  anyKind?: boolean;
}

/**
 * Replaces, in place, every Conv2d whose weight `source` lists with kind kernelElement (any
 * kind with `anyKind`; every mask of a Map) by a KepConv2d keeping the mask's nonzero positions
 * with the weight's values there, and the Conv2d's bias. Returns the converted layers.
 */
export function toKep(
  model: Module,
  source: PrunedSource | ReadonlyMap<string, Float32Array>,
  options: ToKepOptions = {},
): KepConversion[] {
  const fn = "toKep";
  const only = options.only === undefined ? null : new Set(options.only);
  const entries: { name: string; mask: Float32Array }[] = [];
  if (source instanceof Map) {
    for (const [name, mask] of source as ReadonlyMap<string, Float32Array>)
      entries.push({ name, mask });
  } else {
    for (const e of (source as PrunedSource).entries())
      if (e.kind.kind === "kernelElement" || options.anyKind === true) entries.push(e);
  }
  const out: KepConversion[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!entry.name.endsWith(".weight")) continue;
    const path = entry.name.slice(0, entry.name.length - ".weight".length);
    if (only !== null && !only.has(path)) continue;
    let layer: Module;
    try {
      layer = model.getSubmodule(path);
    } catch {
      throw new Error(
        `${fn}: the source lists "${entry.name}" but the model has no module "${path}"`,
      );
    }
    if (!(layer instanceof Conv2d)) continue;
    if (seen.has(path)) throw new Error(`${fn}: the source lists "${entry.name}" twice`);
    seen.add(path);
    const k = layer.kernelSize;
    const shape: [number, number, number, number] = [layer.outChannels, layer.inChannels, k, k];
    const size = shape[0] * shape[1] * k * k;
    const mask = entry.mask;
    if (!(mask instanceof Float32Array) || mask.length !== size)
      throw new RangeError(
        `${fn}: mask of "${entry.name}" has ${mask?.length} elements, expected ${size} for weight ${fmt(shape)}`,
      );
    const w = layer.weight.data.contiguous().data as FloatArray;
    const bias = layer.bias === null ? null : (layer.bias.data.contiguous().data as FloatArray);
    const kep = KepConv2d.fromDense(w, mask, shape, bias, {
      stride: layer.stride,
      padding: layer.padding,
    });
    model.setSubmodule(path, kep);
    const layout = kep.layout;
    out.push({
      name: path,
      shape,
      nnz: layout.nnz,
      perPlane: layout.uniformCount,
      bytes: { dense: 4 * size, values: 4 * layout.nnz, index: layout.indexBytes() },
    });
  }
  return out;
}

/**
 * Replaces, in place, every KepConv2d of `model` by a Conv2d with the same values (zeros at
 * pruned positions), stride, padding and bias; returns the module paths it converted.
 */
export function fromKep(model: Module): string[] {
  return densifyModules(
    "fromKep",
    model,
    (m): m is KepConv2d => m instanceof KepConv2d,
    (m) => ({ values: m.values, denseWeight: m.toDenseWeight(), bias: m.bias }),
    // A private generator: the init values are overwritten, and drawing from nn's default
    // generator would shift every later layer's initialisation.
    (m) =>
      new Conv2d(m.inChannels, m.outChannels, m.kernelSize, {
        stride: m.stride,
        padding: m.padding,
        bias: m.bias !== null,
        generator: new Generator(0),
      }),
  );
}
