// Conversions to plain JS values: nested arrays and a REPL-friendly string.

import type { Tensor } from "./tensor.ts";

export type NestedArray = number | NestedArray[];

/** Nested arrays of the tensor's values (a number for rank 0). */
export function toNested(t: Tensor): NestedArray {
  const { data, shape, strides } = t;
  const walk = (axis: number, p: number): NestedArray => {
    if (axis === shape.length) return data[p]!;
    const out: NestedArray[] = [];
    const d = shape[axis]!;
    const s = strides[axis]!;
    for (let i = 0; i < d; i++) out.push(walk(axis + 1, p + i * s));
    return out;
  };
  return walk(0, t.offset);
}

const MAX_SHOWN = 1000; // above this many elements, show the first and last 3 per axis
const EDGE = 3;

function fmtNumber(v: number, isInt: boolean): string {
  if (isInt || Number.isInteger(v)) return String(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
}

/** `tensor([[1, 2], [3, 4]], shape=[2,2], dtype=float32)`, eliding the middle of big tensors. */
export function formatTensor(t: Tensor): string {
  const { data, shape, strides } = t;
  const isInt = t.dtype === "int32";
  const elide = t.size > MAX_SHOWN;
  const walk = (axis: number, p: number, indent: string): string => {
    if (axis === shape.length) return fmtNumber(data[p]!, isInt);
    const d = shape[axis]!;
    const s = strides[axis]!;
    const parts: string[] = [];
    const inner = indent + " ";
    for (let i = 0; i < d; i++) {
      if (elide && d > 2 * EDGE && i === EDGE) {
        parts.push("...");
        i = d - EDGE - 1;
        continue;
      }
      parts.push(walk(axis + 1, p + i * s, inner));
    }
    const sep = axis === shape.length - 1 ? ", " : ",\n" + inner;
    return "[" + parts.join(sep) + "]";
  };
  return `tensor(${walk(0, t.offset, "       ")}, shape=[${shape.join(",")}], dtype=${t.dtype})`;
}
