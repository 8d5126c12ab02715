// Masked dense `linear` against `bsrLinear` on LeNet-300-100's three layers (784->300->100->10)
// at batch 128: forward + backward (dx for fc2 and fc3, d(weight), d(bias); the input layer
// needs no dx, as in training), float32. Block sizes 4 and 8, block densities 0.8 ... 0.05
// (exactly round(density · blocks) blocks kept, chosen by a seeded permutation), 1 and 2
// threads. Dense and BSR runs alternate rep by rep, so both see the same machine load; the
// table gives medians and the ratio dense / BSR (> 1: BSR faster) per layer and for the net,
// and the net's ratio of the fastest reps (the least disturbed ones on a loaded machine).
// Run: pnpm tsx packages/pruning/bench/bsr-linear.ts [reps=15]
import { Generator, Tensor, randn } from "@tessera/tensor";
import { BsrMatrix, createPool } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Variable, bsrLinear, linear, setMatrixPool } from "@tessera/autograd";

const reps = Number(process.argv[2] ?? 15);
const batch = 128;
const sizes = [784, 300, 100, 10];
const densities = [0.8, 0.5, 0.2, 0.1, 0.05];
const blocks = [4, 8];
const threadCounts = [1, 2];

interface Layer {
  dense: { w: Variable; b: Variable };
  bsr: { m: BsrMatrix<Float32Array>; data: Variable; b: Variable };
  x: Variable;
  dy: Tensor;
}

function buildLayer(i: number, block: number, density: number, g: Generator): Layer {
  const inF = sizes[i]!;
  const outF = sizes[i + 1]!;
  const w = randn([outF, inF], g, "float32", 0, 0.05);
  const br = Math.ceil(outF / block);
  const bc = Math.ceil(inF / block);
  const keep = Math.round(density * br * bc);
  const mask = new Uint8Array(br * bc);
  const perm = g.permutation(br * bc);
  for (let k = 0; k < keep; k++) mask[perm[k]!] = 1;
  const m = BsrMatrix.fromDense(w.data as Float32Array, outF, inF, [block, block], { mask });
  // The masked dense weight: the BSR matrix's values, zeros elsewhere.
  const wd = new Variable(new Tensor(m.toDense(), [outF, inF]), { requiresGrad: true });
  const data = new Variable(new Tensor(m.data, [m.nnzBlocks, block, block]), {
    requiresGrad: true,
  });
  const bias = randn([outF], g, "float32", 0, 0.05);
  return {
    dense: { w: wd, b: new Variable(bias.clone(), { requiresGrad: true }) },
    bsr: { m, data, b: new Variable(bias.clone(), { requiresGrad: true }) },
    // The input layer's x needs no gradient (no dx), the others' do.
    x: new Variable(randn([batch, inF], g), { requiresGrad: i > 0 }),
    dy: randn([batch, outF], g),
  };
}

function runDense(l: Layer): void {
  const y = linear(l.x, l.dense.w, l.dense.b);
  y.backward(l.dy);
  l.x.zeroGrad();
  l.dense.w.zeroGrad();
  l.dense.b.zeroGrad();
}

function runBsr(l: Layer): void {
  const y = bsrLinear(l.x, l.bsr.m, l.bsr.data, l.bsr.b);
  y.backward(l.dy);
  l.x.zeroGrad();
  l.bsr.data.zeroGrad();
  l.bsr.b.zeroGrad();
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
}

function time(f: () => void): number {
  const t0 = process.hrtime.bigint();
  f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

let pool: MatrixPool | undefined;
console.log(
  `bsrLinear vs masked dense linear, LeNet-300-100 layers, batch ${batch}, float32, forward+backward, median of ${reps} alternating reps (ms)`,
);
console.log("");
console.log(
  "| threads | block | density | fc1 dense | fc1 BSR | fc1 ratio | fc2 ratio | fc3 ratio | net dense | net BSR | net ratio | net ratio of minima |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const threads of threadCounts) {
  if (threads > 1) {
    pool = createPool({ threads });
    await pool.ready();
  }
  setMatrixPool(pool);
  for (const block of blocks) {
    for (const density of densities) {
      const g = new Generator(1000 * block + Math.round(100 * density));
      const layers = [0, 1, 2].map((i) => buildLayer(i, block, density, g));
      // Warm-up: JIT, the pool's scratch, the transposed block index.
      for (let w = 0; w < 3; w++)
        for (const l of layers) {
          runDense(l);
          runBsr(l);
        }
      const td = layers.map(() => [] as number[]);
      const tb = layers.map(() => [] as number[]);
      const nd: number[] = [];
      const nb: number[] = [];
      for (let r = 0; r < reps; r++) {
        let sd = 0;
        let sb = 0;
        layers.forEach((l, i) => {
          const a = time(() => runDense(l));
          const b = time(() => runBsr(l));
          td[i]!.push(a);
          tb[i]!.push(b);
          sd += a;
          sb += b;
        });
        nd.push(sd);
        nb.push(sb);
      }
      const ratio = (i: number) => (median(td[i]!) / median(tb[i]!)).toFixed(2);
      console.log(
        `| ${threads} | ${block} | ${density} | ${median(td[0]!).toFixed(2)} | ${median(tb[0]!).toFixed(2)} | ${ratio(0)} | ${ratio(1)} | ${ratio(2)} | ${median(nd).toFixed(2)} | ${median(nb).toFixed(2)} | ${(median(nd) / median(nb)).toFixed(2)} | ${(Math.min(...nd) / Math.min(...nb)).toFixed(2)} |`,
      );
    }
  }
}
setMatrixPool(undefined);
await pool?.close();
