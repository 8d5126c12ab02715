// Packing the WebAssembly GEMM's whole-operand panels on one thread: pack.ts's JavaScript packer
// (what wasmPackRange ran before wasm-pack.ts) against the generated pack kernels behind a raw
// copy, side by side; milliseconds per packing of both operands, the fastest of several
// (fastestMs). The shapes are LeNet-300-100's training products (batch 128) and smallCnn()'s
// output gradients packed images first for the convolution weight gradients.
//   pnpm tsx packages/matrix/bench/pack.ts
import {
  SCRATCH_BYTES,
  WASM_KC,
  WASM_TILE,
  WasmThread,
  createKernelMemory,
  wasmPackImagesFirstA,
  wasmPackRange,
  wasmPackedBytes,
  wasmPanelCounts,
} from "../src/wasm-gemm.ts";
import { packerFor } from "../src/pack.ts";
import { strides } from "../src/gemm.ts";
import { TRANS_A, TRANS_B, TRANS_NONE } from "../src/types.ts";
import type { Trans } from "../src/types.ts";
import { fastestMs, fillRandom, machineInfo } from "./common.ts";

const { mr: MR, nr: NR } = WASM_TILE;
const t = new WasmThread(createKernelMemory(SCRATCH_BYTES + (64 << 20)), 0);

/** wasmPackRange's layout written by the JavaScript packer, k-block by k-block (the old loop). */
function jsPackRange(
  trans: Trans,
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
): void {
  const [pa, pb] = wasmPanelCounts(m, n);
  const [la] = wasmPackedBytes(m, k, n);
  const [sai, sap, sbp, sbj] = strides(trans, m, k, n);
  const H = t.f32();
  for (let pc = 0; pc < k; pc += WASM_KC) {
    const kc = Math.min(WASM_KC, k - pc);
    const aAt = (SCRATCH_BYTES >> 2) + pc * MR * pa;
    const bAt = ((SCRATCH_BYTES + la) >> 2) + pc * NR * pb;
    packerFor(a, H)(a, pc * sap, sai, sap, m, 0, pa, kc, MR, H, aAt, MR * kc);
    packerFor(b, H)(b, pc * sbp, sbj, sbp, n, 0, pb, kc, NR, H, bAt, NR * kc);
  }
}

/** wasmPackImagesFirstA's panels by the JavaScript packer, one image's run at a time (the old loop). */
function jsPackImagesFirst(a: Float32Array, m: number, k: number, P: number): void {
  const [pa] = wasmPanelCounts(m, 1);
  const H = t.f32();
  for (let pc = 0; pc < k; pc += WASM_KC) {
    const kc = Math.min(WASM_KC, k - pc);
    const at = (SCRATCH_BYTES >> 2) + pc * MR * pa;
    for (let s = pc; s < pc + kc;) {
      const img = Math.floor(s / P);
      const e = Math.min(pc + kc, (img + 1) * P);
      packerFor(a, H)(
        a,
        img * m * P + (s - img * P),
        P,
        1,
        m,
        0,
        pa,
        e - s,
        MR,
        H,
        at + (s - pc) * MR,
        MR * kc,
      );
      s = e;
    }
  }
}

console.log(machineInfo());
console.log("command: pnpm tsx packages/matrix/bench/pack.ts");
console.log(
  "| operands (m x k x n, trans) | floats | JavaScript packer, ms | kernels, ms | ratio |",
);
console.log("|---|---|---|---|---|");
const products: [string, Trans, number, number, number][] = [
  ["LeNet-300-100 fc1 forward x·Wᵀ", TRANS_B, 128, 784, 300],
  ["fc1 weight gradient dyᵀ·x", TRANS_A, 300, 128, 784],
  ["fc2 forward", TRANS_B, 128, 300, 100],
  ["fc2 input gradient dy·W", TRANS_NONE, 128, 100, 300],
  ["fc2 weight gradient", TRANS_A, 100, 128, 300],
];
for (const [name, trans, m, k, n] of products) {
  const a = fillRandom(new Float32Array(m * k), 1);
  const b = fillRandom(new Float32Array(k * n), 2);
  const [pa, pb] = wasmPanelCounts(m, n);
  const [la] = wasmPackedBytes(m, k, n);
  const [js, wasm] = fastestMs(
    [
      ["js", () => jsPackRange(trans, a, b, m, k, n)],
      [
        "wasm",
        () => wasmPackRange(t, trans, a, b, SCRATCH_BYTES, SCRATCH_BYTES + la, m, k, n, 0, pa + pb),
      ],
    ],
    300,
  );
  const tr = ["none", "A", "B"][trans];
  console.log(
    `| ${name} (${m} x ${k} x ${n}, ${tr}) | ${m * k + k * n} | ${js!.toFixed(3)} | ${wasm!.toFixed(3)} | ${(js! / wasm!).toFixed(2)}x |`,
  );
}
const gradients: [string, number, number][] = [
  ["smallCnn conv1/conv2 gy, images first (F 32, P 784)", 32, 784],
  ["smallCnn conv3/conv4 gy, images first (F 64, P 196)", 64, 196],
];
for (const [name, m, P] of gradients) {
  const k = 128 * P;
  const a = fillRandom(new Float32Array(m * k), 3);
  const [pa] = wasmPanelCounts(m, 1);
  const [js, wasm] = fastestMs(
    [
      ["js", () => jsPackImagesFirst(a, m, k, P)],
      ["wasm", () => wasmPackImagesFirstA(t, a, SCRATCH_BYTES, m, k, P, 0, pa)],
    ],
    300,
  );
  console.log(
    `| ${name} | ${m * k} | ${js!.toFixed(3)} | ${wasm!.toFixed(3)} | ${(js! / wasm!).toFixed(2)}x |`,
  );
}
