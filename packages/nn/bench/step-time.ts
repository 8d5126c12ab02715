// Milliseconds per training step (forward, backward, Adam) of each reference model at batch
// 128 on random 28x28 inputs, to estimate epoch times without a full epoch. With threads > 1
// each model is also timed with a @tessera/matrix pool of that many threads, alternating
// with the single-thread runs so both see the same machine load.
// Run: node --import tsx packages/nn/bench/step-time.ts [steps=10] [threads=1] [models=lenet300100,lenet5,smallCnn]
import { createPool, type MatrixPool } from "@tessera/matrix";
import { Generator } from "@tessera/tensor";
import { Adam, arrayDataset, fit, lenet300100, lenet5, smallCnn } from "../src/index.ts";

const steps = Number(process.argv[2] ?? 10);
const threads = Number(process.argv[3] ?? 1);
const names = (process.argv[4] ?? "lenet300100,lenet5,smallCnn").split(",");
const makers = { lenet300100, lenet5, smallCnn } as const;
const pool = threads > 1 ? createPool({ threads }) : undefined;
await pool?.ready();

const g = new Generator(1);
const n = 128 * steps;
const x = new Uint8Array(n * 784).map(() => g.int(0, 256));
const y = new Uint8Array(n).map(() => g.int(0, 10));
const train = arrayDataset(x, y, [1, 28, 28], { mean: 0.5, std: 0.5 });
const warm = arrayDataset(x.subarray(0, 128 * 784), y.subarray(0, 128), [1, 28, 28]);

function msPerStep(name: keyof typeof makers, p: MatrixPool | undefined): number {
  const model = makers[name]({ generator: new Generator(2) });
  const optimizer = new Adam(model.parameters(), { lr: 1e-3 });
  fit(model, { train: warm, epochs: 1, batchSize: 128, optimizer, seed: 1, pool: p });
  const t0 = performance.now();
  fit(model, { train, epochs: 1, batchSize: 128, optimizer, seed: 1, pool: p });
  return (performance.now() - t0) / steps;
}

for (const name of names) {
  if (!(name in makers)) throw new Error(`step-time: unknown model ${name}`);
  const key = name as keyof typeof makers;
  const runs = pool === undefined ? 1 : 2;
  const one: number[] = [];
  const many: number[] = [];
  for (let r = 0; r < runs; r++) {
    one.push(msPerStep(key, undefined));
    if (pool !== undefined) many.push(msPerStep(key, pool));
  }
  const best = (a: number[]) => Math.min(...a);
  let line = `${name}: ${best(one).toFixed(0)} ms/step (1 thread) -> ${((best(one) * 469) / 1000).toFixed(0)} s per 60k epoch`;
  if (pool !== undefined) {
    line += `; ${best(many).toFixed(0)} ms/step (${threads} threads) -> ${((best(many) * 469) / 1000).toFixed(0)} s; ratio ${(best(one) / best(many)).toFixed(2)}x`;
  }
  console.log(line);
}
await pool?.close();
