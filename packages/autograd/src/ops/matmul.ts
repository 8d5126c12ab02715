// Batched matrix product with NumPy semantics (1-d operands get a temporary axis, batch
// axes broadcast). Forward is @tessera/tensor's matmul, which hands transposed views to the
// transposed GEMM kernels without copying; so the backward products
//   dA = G·Bᵀ,  dB = Aᵀ·G
// are written with swapaxes views and never materialise a transpose. Batch axes that were
// broadcast are summed away with sumToShape.
import { matmul as tensorMatmul } from "@tessera/tensor";
import type { Tensor } from "@tessera/tensor";
import type { Variable } from "../variable.ts";
import { checkVariable, record } from "../record.ts";

function swapLast(t: Tensor): Tensor {
  return t.swapaxes(-1, -2);
}

/** a @ b: [..., m, k]·[..., k, n] -> [..., m, n]; 1-d operands as in NumPy. */
export function matmul(a: Variable, b: Variable): Variable {
  checkVariable("matmul", "a", a);
  checkVariable("matmul", "b", b);
  const out = tensorMatmul(a.data, b.data);
  return record("matmul", out, [a, b], (g) => {
    const A = a.data.ndim === 1 ? a.data.unsqueeze(0) : a.data;
    const B = b.data.ndim === 1 ? b.data.unsqueeze(1) : b.data;
    // put back the axes a 1-d operand removed from the result
    let G = g;
    if (b.data.ndim === 1) G = G.unsqueeze(G.ndim);
    if (a.data.ndim === 1) G = G.unsqueeze(G.ndim - 1);
    const ga = a.requiresGrad
      ? tensorMatmul(G, swapLast(B)).sumToShape(A.shape).reshape(a.data.shape)
      : null;
    const gb = b.requiresGrad
      ? tensorMatmul(swapLast(A), G).sumToShape(B.shape).reshape(b.data.shape)
      : null;
    return [ga, gb];
  });
}
