// Dense GEMM GFLOP/s side by side in one run: ours on both kernel paths (asm.js and WebAssembly
// SIMD) on 1 and 2 threads, TensorFlow.js `cpu` and `wasm` (XNNPACK, one thread), numpy 1 and 2
// threads, and PyTorch 1 and 2 threads where its python imports torch (TESSERA_PYTHON, default
// /usr/bin/python3, where Debian's python3-torch installs; its columns say n/a otherwise).
// Run: pnpm tsx packages/matrix/bench/dense.ts
import { execFileSync } from "node:child_process";
import { createPool, matmul, matmulTransA, matmulTransB, sharedFloat32 } from "../src/index.ts";
import { fastestMs, fillRandom, fmt, runPython, tableHeader } from "./common.ts";

type Op = "matmul" | "matmulTransA" | "matmulTransB";
interface Shape {
  label: string;
  op: Op;
  m: number;
  k: number;
  n: number;
}
// LeNet-300-100 at batch 128, batch-major Linear y = x·Wᵀ, W [out, in]:
// forward x·Wᵀ (matmulTransB), input gradient dY·W (matmul), weight gradient dYᵀ·X (matmulTransA).
const shapes: Shape[] = [{ label: "512^3 A·B", op: "matmul", m: 512, k: 512, n: 512 }];
for (const [inF, outF] of [
  [784, 300],
  [300, 100],
  [100, 10],
]) {
  shapes.push({
    label: `fc${inF}-${outF} fwd x·Wᵀ`,
    op: "matmulTransB",
    m: 128,
    k: inF!,
    n: outF!,
  });
  shapes.push({ label: `fc${inF}-${outF} dX = dY·W`, op: "matmul", m: 128, k: outF!, n: inF! });
  shapes.push({
    label: `fc${inF}-${outF} dW = dYᵀ·X`,
    op: "matmulTransA",
    m: outF!,
    k: 128,
    n: inF!,
  });
}

const fns = { matmul, matmulTransA, matmulTransB };

/**
 * Timing budget per task. Ten shapes x three tasks keep this script near a minute; the longer
 * budget (the BSR script uses 150 ms for its ~500 cells) gives V8 time to finish optimising each
 * kernel before the fastest call is taken.
 */
const TIME_MS = 600;

/**
 * TF.js fastest ms per shape label on `backend`, timed in a child process (see dense_tfjs.ts
 * for why); `note` receives the child's line saying which wasm build ran.
 */
function timeTfjs(backend: "cpu" | "wasm", note: string[]): Record<string, number> {
  const script = new URL("dense_tfjs.ts", import.meta.url).pathname;
  // process.execArgv carries tsx's loader flags, so the child runs TypeScript the same way.
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, script, JSON.stringify(shapes), String(TIME_MS), backend],
    { encoding: "utf8", maxBuffer: 1 << 24 },
  );
  const outLines = out.trim().split("\n");
  note.push(...outLines.filter((l) => l.startsWith("tfjs wasm:")));
  return JSON.parse(outLines.at(-1)!) as Record<string, number>;
}

async function main(): Promise<void> {
  const lines = [...(await tableHeader())];
  const pool = createPool({ threads: 2 });
  await pool.ready();
  const py1 = runPython("dense_numpy.py", [JSON.stringify(shapes)], 1) as
    Record<string, number> | undefined;
  const py2 = runPython("dense_numpy.py", [JSON.stringify(shapes)], 2) as
    Record<string, number> | undefined;
  const torchPython = process.env.TESSERA_PYTHON || "/usr/bin/python3";
  const torch = [1, 2].map(
    (t) =>
      runPython("dense_torch.py", [JSON.stringify(shapes), String(t)], t, torchPython) as
        Record<string, number> | undefined,
  );
  lines.push(
    "\n| product | m×k×n | asm 1T | asm 2T | wasm 1T | wasm 2T | wasm 2T/1T | wasm/asm 1T | TF.js cpu | TF.js wasm 1T | wasm 1T / TF.js wasm | numpy 1T | numpy 2T | PyTorch 1T | PyTorch 2T | wasm best / PyTorch best |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  const notes: string[] = [];
  const tfCpu = timeTfjs("cpu", notes);
  const tfWasm = timeTfjs("wasm", notes);
  for (const s of shapes) {
    const { m, k, n, op } = s;
    const a = fillRandom(sharedFloat32(m * k), 1);
    const b = fillRandom(sharedFloat32(k * n), 2);
    const c = sharedFloat32(m * n);
    const f = fns[op];
    const asm = { kernels: "asm" } as const;
    const wasm = { kernels: "wasm" } as const;
    // Steady state, not JIT warm-up: a few untimed calls of every path before tinybench starts.
    for (let r = 0; r < 3; r++) {
      f(a, b, m, k, n, c, asm);
      f(a, b, m, k, n, c, { pool, ...asm });
      f(a, b, m, k, n, c, wasm);
      f(a, b, m, k, n, c, { pool, ...wasm });
    }
    const [a1, a2, w1, w2] = fastestMs(
      [
        ["asm 1T", () => f(a, b, m, k, n, c, asm)],
        ["asm 2T", () => f(a, b, m, k, n, c, { pool, ...asm })],
        ["wasm 1T", () => f(a, b, m, k, n, c, wasm)],
        ["wasm 2T", () => f(a, b, m, k, n, c, { pool, ...wasm })],
      ],
      TIME_MS,
    );
    const gf = (ms: number | undefined) => (2 * m * k * n) / ms! / 1e6;
    const tw = tfWasm[s.label];
    lines.push(
      `| ${s.label} | ${m}×${k}×${n} | ${fmt(gf(a1))} | ${fmt(gf(a2))} | ${fmt(gf(w1))} | ${fmt(gf(w2))} | ${fmt(w1! / w2!)} | ${fmt(a1! / w1!)} | ${fmt(gf(tfCpu[s.label]))} | ${fmt(gf(tw))} | ${fmt(tw! / w1!)} | ${fmt(py1?.[s.label])} | ${fmt(py2?.[s.label])} | ${fmt(torch[0]?.[s.label])} | ${fmt(torch[1]?.[s.label])} | ${fmt(Math.max(gf(w1), gf(w2)) / Math.max(torch[0]?.[s.label] ?? NaN, torch[1]?.[s.label] ?? NaN))} |`,
    );
  }
  lines.push(...notes.map((l) => `\n${l}`));
  lines.push("\nGFLOP/s = 2·m·k·n / fastest call in the tinybench run. float32 throughout.");
  // Printed at the end so TensorFlow.js's start-up banner does not land inside the table.
  console.log(lines.join("\n"));
  await pool.close();
}

await main();
