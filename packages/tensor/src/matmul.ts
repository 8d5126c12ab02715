// Matrix product with NumPy's matmul semantics, computed by @tessera/matrix's dense GEMM.
//
// - 2-d x 2-d: [m,k]·[k,n] -> [m,n].
// - A 1-d left operand [k] is treated as [1,k] and a 1-d right operand [k] as [k,1]; the
//   added axis is removed from the result (so 1-d·1-d gives a 0-d tensor).
// - Leading (batch) axes broadcast: [..., m, k]·[..., k, n].
//
// Each operand's last two axes are handed to the kernel without copying when they are
// packed row-major (strides [k, 1]) or packed column-major (strides [1, m], i.e. a
// transposed view, which the kernel reads through matmulTransA / matmulTransB); otherwise
// the operand is first copied with clone(). Result dtype: float64 if either operand is
// float64, else float32 (int32 operands are converted to float32).

import { matmul as gemm, matmulTransA, matmulTransB } from "@tessera/matrix";
import { allocate, promoteTypes, toFloat } from "./dtype.ts";
import { broadcastShapes, broadcastStrides, contiguousStrides, fmtShape } from "./shape.ts";
import { Tensor, wrap } from "./tensor.ts";

type FloatArr = Float32Array | Float64Array;

/** How an operand's trailing [rows, cols] block sits in memory. */
function layout(t: Tensor): "row" | "col" | "other" {
  const r = t.shape[t.ndim - 2]!;
  const c = t.shape[t.ndim - 1]!;
  const sr = t.strides[t.ndim - 2]!;
  const sc = t.strides[t.ndim - 1]!;
  if ((c === 1 || sc === 1) && (r === 1 || sr === c)) return "row";
  if ((r === 1 || sr === 1) && (c === 1 || sc === r)) return "col";
  return "other";
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) {
    throw new TypeError("matmul: both operands must be Tensors");
  }
  if (a.ndim === 0 || b.ndim === 0) {
    throw new RangeError(
      `matmul: operands must have at least 1 dimension, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}; use mul for scalars`,
    );
  }
  const dtype = toFloat(promoteTypes(a.dtype, b.dtype));
  let A = a.ndim === 1 ? a.unsqueeze(0) : a;
  let B = b.ndim === 1 ? b.unsqueeze(1) : b;
  A = A.astype(dtype);
  B = B.astype(dtype);
  const m = A.shape[A.ndim - 2]!;
  const k = A.shape[A.ndim - 1]!;
  const k2 = B.shape[B.ndim - 2]!;
  const n = B.shape[B.ndim - 1]!;
  if (k !== k2) {
    throw new Error(
      `matmul: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} are not aligned: ${k} (last axis of the first) != ${k2} (${b.ndim === 1 ? "only" : "second-to-last"} axis of the second)`,
    );
  }
  let batch: number[];
  try {
    batch = broadcastShapes("matmul", A.shape.slice(0, -2), B.shape.slice(0, -2));
  } catch {
    throw new Error(
      `matmul: cannot broadcast batch shapes ${fmtShape(A.shape.slice(0, -2))} and ${fmtShape(B.shape.slice(0, -2))} (operands ${fmtShape(a.shape)} and ${fmtShape(b.shape)})`,
    );
  }
  let la = layout(A);
  let lb = layout(B);
  if (la === "other") {
    A = A.clone();
    la = "row";
  }
  if (lb === "other" || (la === "col" && lb === "col")) {
    B = B.clone();
    lb = "row";
  }
  const nb = batch.reduce((x, y) => x * y, 1);
  const out = allocate(dtype, nb * m * n) as FloatArr;
  if (out.length > 0 && k > 0) {
    const aStr = broadcastStrides(A.shape.slice(0, -2), A.strides.slice(0, -2), batch);
    const bStr = broadcastStrides(B.shape.slice(0, -2), B.strides.slice(0, -2), batch);
    const outStr = contiguousStrides(batch);
    const ad = A.data as FloatArr;
    const bd = B.data as FloatArr;
    for (let i = 0; i < nb; i++) {
      // batch index -> element offsets of this batch's matrices
      let ao = A.offset,
        bo = B.offset,
        rem = i;
      for (let d = 0; d < batch.length; d++) {
        const q = Math.floor(rem / outStr[d]!);
        rem -= q * outStr[d]!;
        ao += q * aStr[d]!;
        bo += q * bStr[d]!;
      }
      const as = ad.subarray(ao, ao + m * k);
      const bs = bd.subarray(bo, bo + k * n);
      const os = out.subarray(i * m * n, (i + 1) * m * n);
      if (la === "row" && lb === "row") gemm(as, bs, m, k, n, os);
      else if (la === "col") matmulTransA(as, bs, m, k, n, os);
      else matmulTransB(as, bs, m, k, n, os);
    }
  }
  const shape = [...batch];
  if (a.ndim > 1) shape.push(m);
  if (b.ndim > 1) shape.push(n);
  return wrap(out, shape);
}
