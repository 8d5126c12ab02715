// Shape arithmetic shared by every op: sizes, row-major strides, NumPy broadcasting and
// axis normalisation. All errors name the calling function and the values involved.

/** `[2,3]` style text for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]!;
  return n;
}

/** Row-major (C order) strides for a packed array of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Throws a RangeError unless every dim is a non-negative safe integer. */
export function checkShape(fn: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) {
    throw new RangeError(
      `${fn}: shape must be an array of non-negative integers, got ${String(shape)}`,
    );
  }
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `${fn}: shape must contain non-negative integers, got ${fmtShape(shape as number[])}`,
      );
    }
  }
  return (shape as number[]).slice();
}

/** Broadcast result of two shapes by NumPy's rules, or a descriptive Error naming `fn`. */
export function broadcastShapes(fn: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)]!;
    const db = i < n - b.length ? 1 : b[i - (n - b.length)]!;
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else throw new Error(`${fn}: cannot broadcast shapes ${fmtShape(a)} and ${fmtShape(b)}`);
  }
  return out;
}

/**
 * Strides that read a tensor of (shape, strides) as if it had the larger `target` shape:
 * leading new axes and stretched size-1 axes get stride 0. The caller has checked that
 * `shape` broadcasts to `target`.
 */
export function broadcastStrides(
  shape: readonly number[],
  strides: readonly number[],
  target: readonly number[],
): number[] {
  const n = target.length;
  const lead = n - shape.length;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    if (i < lead) out[i] = 0;
    else {
      const d = shape[i - lead]!;
      out[i] = d === 1 && target[i] !== 1 ? 0 : strides[i - lead]!;
    }
  }
  return out;
}

/** Normalises a possibly negative axis into [0, ndim) or throws a RangeError. */
export function normalizeAxis(fn: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new RangeError(
      `${fn}: axis ${String(axis)} is out of range for a tensor of rank ${ndim}; allowed axes are ${
        ndim === 0 ? "none" : `-${ndim}..${ndim - 1}`
      }`,
    );
  }
  return axis < 0 ? axis + ndim : axis;
}

/**
 * Normalises `axes` (one axis, a list, or undefined meaning all) into a sorted list of
 * distinct axes in [0, ndim). Duplicates throw.
 */
export function normalizeAxes(
  fn: string,
  axes: number | readonly number[] | undefined,
  ndim: number,
): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : axes;
  if (!Array.isArray(list)) {
    throw new RangeError(
      `${fn}: axes must be a number or an array of numbers, got ${String(axes)}`,
    );
  }
  const seen = new Set<number>();
  for (const a of list) {
    const k = normalizeAxis(fn, a as number, ndim);
    if (seen.has(k))
      throw new RangeError(`${fn}: axis ${String(a)} is repeated in ${fmtShape(list)}`);
    seen.add(k);
  }
  return [...seen].sort((x, y) => x - y);
}

/**
 * Simplifies an iteration space shared by several operands without changing which elements
 * meet: drops size-1 axes and merges each axis into the previous one when every operand
 * steps over the pair as one (stride[i-1] === stride[i] * shape[i]). A strided loop then
 * runs its tight inner loop over the longest possible run (e.g. H*W of an NCHW tensor).
 * Shapes containing 0 are returned unchanged (nothing will be visited).
 */
export function coalesce(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
): { shape: number[]; strides: number[][] } {
  const k = strides.length;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return { shape: shape.slice(), strides: strides.map((s) => s.slice()) };
  }
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    if (d === 1) continue;
    const last = outShape.length - 1;
    let merge = last >= 0;
    for (let j = 0; merge && j < k; j++) {
      if (outStrides[j]![last] !== strides[j]![i]! * d) merge = false;
    }
    if (merge) {
      outShape[last] = outShape[last]! * d;
      for (let j = 0; j < k; j++) outStrides[j]![last] = strides[j]![i]!;
    } else {
      outShape.push(d);
      for (let j = 0; j < k; j++) outStrides[j]!.push(strides[j]![i]!);
    }
  }
  return { shape: outShape, strides: outStrides };
}
