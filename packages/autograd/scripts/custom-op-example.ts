// A new op in two parts: the forward on tensors, and record() with the backward closure.
import { Tensor, mul } from "@tessera/tensor";
import { gradcheck, record } from "@tessera/autograd";
import type { Variable } from "@tessera/autograd";

/** softplus(x) = log(1 + eˣ); its derivative is sigmoid(x). */
export function softplus(x: Variable): Variable {
  const xs = x.data.contiguous();
  const y = new Float64Array(xs.size);
  for (let i = 0; i < xs.size; i++) {
    const v = xs.data[i]!;
    y[i] = Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))); // stable for large |v|
  }
  const out = new Tensor(y, xs.shape).astype(x.data.dtype);
  // backward: gradient of the output -> one gradient per input (same shapes)
  return record("softplus", out, [x], (g) => {
    const sig = new Float64Array(xs.size);
    for (let i = 0; i < xs.size; i++) sig[i] = 1 / (1 + Math.exp(-xs.data[i]!));
    return [mul(g, new Tensor(sig, xs.shape))];
  });
}

// Check it against finite differences (float64 input):
const report = gradcheck(softplus, [
  new Tensor(Float64Array.from([-30, -1, 0, 0.5, 2, 40]), [2, 3]),
]);
console.log(report.ok, report.maxAbsError < 1e-8);
