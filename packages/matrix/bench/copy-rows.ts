// The copy-out of a C block from kernel memory into C (wasm-gemm.ts, copyRows): per run of a
// row, TypedArray.set of a subarray (a memcpy, but a view allocated each time) against an
// element loop, for 64 rows of the widths a pooled product's column chunks have. copyRows takes
// the loop below COPY_LOOP_BELOW floats; this prints where the two cross on this machine.
// Run: pnpm tsx packages/matrix/bench/copy-rows.ts
import { sharedFloat32 } from "../src/index.ts";
import { fastestMs, machineInfo } from "./common.ts";

const H = sharedFloat32(1 << 20);
const c = sharedFloat32(128 * 784);
const ROWS = 64;

function viaSet(nc: number, n: number): void {
  for (let r = 0; r < ROWS; r++) c.set(H.subarray(r * nc, r * nc + nc), r * n);
}
function viaLoop(nc: number, n: number): void {
  for (let r = 0; r < ROWS; r++) {
    const h = r * nc;
    const o = r * n;
    for (let q = 0; q < nc; q++) c[o + q] = H[h + q]!;
  }
}

console.log(machineInfo());
console.log("| run length (floats) | TypedArray.set, µs | element loop, µs |\n|---|---|---|");
for (const nc of [8, 16, 24, 32, 40, 80, 300, 784]) {
  const n = Math.max(nc, 300);
  const [set, loop] = fastestMs([
    [`set ${nc}`, () => viaSet(nc, n)],
    [`loop ${nc}`, () => viaLoop(nc, n)],
  ]);
  console.log(`| ${nc} | ${(set! * 1000).toFixed(2)} | ${(loop! * 1000).toFixed(2)} |`);
}
console.log(`${ROWS} rows a block, fastest call of each (tinybench).`);
