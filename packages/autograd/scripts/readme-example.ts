// Fit y = 3·x₀ - 2·x₁ + 0.5 by gradient descent on the mean squared error.
import { Generator, add, matmul, fromArray, randn, zeros } from "@tessera/tensor";
import { Variable, linear, mean, mul, noGrad, sub } from "@tessera/autograd";

const gen = new Generator(0);
const x = new Variable(randn([64, 2], gen)); // inputs: no gradient needed
const target = new Variable(add(matmul(x.data, fromArray([[3], [-2]])), 0.5));

const w = new Variable(zeros([1, 2]), { requiresGrad: true, name: "w" });
const b = new Variable(zeros([1]), { requiresGrad: true, name: "b" });

let loss = Infinity;
for (let step = 0; step < 100; step++) {
  const err = sub(linear(x, w, b), target); // [64, 1]
  const l = mean(mul(err, err)); // scalar
  l.backward(); // fills w.grad and b.grad, then frees the graph
  noGrad(() => {
    for (const p of [w, b]) {
      p.data.axpyInPlace(-0.1, p.grad!); // p -= 0.1·grad, in place
      p.zeroGrad();
    }
  });
  loss = l.item();
}

console.log("w =", w.data.toArray(), "b =", b.data.toArray(), "loss =", loss);
export { w, b, loss };
