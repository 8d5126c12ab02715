// KepConv2d against the dense im2col Conv2d, side by side in one run: for every kept count n
// per plane, forward (no graph) and forward + backward (input, weight and bias gradients), on
// the small CNN's conv2 (32->32 at 28x28) and conv3 (32->64 at 14x14) and LeNet-5's conv2
// (20->50, 5x5, at 12x12), batch 1 and 128, on the calling thread and on a 2-thread pool.
// Times are medians of interleaved repetitions (dense and KEP alternate, so load from other
// processes hits both); ratio = dense time / KEP time (> 1: KEP faster).
// A second table measures the loop order of the forward kernel (why the inner loop runs over
// output columns, several kept elements per sweep: 8, then 4, then 1 since a618a35; 4 before).
//
//   NODE_OPTIONS=--expose-gc pnpm tsx packages/pruning/bench/kep-conv.ts [--reps 3]
//     [--reps-small 15] [--batches 1,128] [--threads 1,2] [--cases conv2,conv3,lenet5-conv2]
//     [--no-order]
// (--reps: repetitions at batch > 8; --reps-small: at batch <= 8; --expose-gc lets every timed
// call start after a collection.)
import os from "node:os";
import { performance } from "node:perf_hooks";
import { Generator, randn } from "@tessera/tensor";
import type { Tensor } from "@tessera/tensor";
import { Variable, noGrad, setMatrixPool } from "@tessera/autograd";
import { KepLayout, createPool, kepForward, kepPad } from "@tessera/matrix";
import type { MatrixPool } from "@tessera/matrix";
import { Conv2d } from "@tessera/nn";
import type { Module } from "@tessera/nn";
import { KepConv2d } from "../src/index.ts";

interface Case {
  name: string;
  c: number;
  f: number;
  k: number;
  side: number;
  padding: number;
  /** Kept counts per plane to run. */
  counts: number[];
}

const CASES: Case[] = [
  { name: "conv2", c: 32, f: 32, k: 3, side: 28, padding: 1, counts: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
  { name: "conv3", c: 32, f: 64, k: 3, side: 14, padding: 1, counts: [1, 2, 3, 4, 5, 6, 7, 8, 9] },
  { name: "lenet5-conv2", c: 20, f: 50, k: 5, side: 12, padding: 0, counts: [1, 3, 5, 9, 13, 25] },
];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : fallback;
}
const repsLarge = Number(arg("reps", "3"));
const repsSmall = Number(arg("reps-small", "15"));
const batches = arg("batches", "1,128").split(",").map(Number);
const threadList = arg("threads", "1,2").split(",").map(Number);
const caseNames = arg("cases", CASES.map((c) => c.name).join(",")).split(",");
const withOrder = !process.argv.includes("--no-order");

/** Top-n |w| positions of every plane (ties to the lower position). */
function topNMask(w: Float32Array, planes: number, k2: number, n: number): Float32Array {
  const mask = new Float32Array(w.length);
  const order = Array.from({ length: k2 }, (_, i) => i);
  for (let p = 0; p < planes; p++) {
    order.sort((a, b) => Math.abs(w[p * k2 + b]!) - Math.abs(w[p * k2 + a]!) || a - b);
    for (let i = 0; i < n; i++) mask[p * k2 + order[i]!] = 1;
  }
  return mask;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Wall-clock and CPU milliseconds (this process, all its threads) of one call. */
type Timing = [wall: number, cpu: number];
function measure(fn: () => unknown): Timing {
  // With NODE_OPTIONS=--expose-gc, collect before every timed call, so no call pays for the
  // garbage of the one before.
  (globalThis as { gc?: () => void }).gc?.();
  const c0 = process.cpuUsage();
  const t = performance.now();
  fn();
  const wall = performance.now() - t;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1000];
}

/** One forward without a graph. */
function forward(layer: Module, x: Tensor): Timing {
  return measure(() => noGrad(() => layer.forward(new Variable(x))));
}

/** Forward + backward (input, weight and bias gradients). */
function train(layer: Module, x: Tensor, seed: Tensor): Timing {
  layer.zeroGrad();
  return measure(() => layer.forward(new Variable(x, { requiresGrad: true })).backward(seed));
}

/**
 * Medians of `reps` interleaved timings of a and b (order alternating), after one warm-up
 * each unless `warm` is false: [a wall, b wall, a cpu, b cpu].
 */
function sideBySide(
  a: () => Timing,
  b: () => Timing,
  reps: number,
  warm = true,
): [number, number, number, number] {
  if (warm) {
    a();
    b();
  }
  const ta: Timing[] = [];
  const tb: Timing[] = [];
  for (let r = 0; r < reps; r++) {
    if (r % 2 === 0) {
      ta.push(a());
      tb.push(b());
    } else {
      tb.push(b());
      ta.push(a());
    }
  }
  const m = (ts: Timing[], i: 0 | 1) => median(ts.map((t) => t[i]));
  return [m(ta, 0), m(tb, 0), m(ta, 1), m(tb, 1)];
}

const fmt = (v: number, d = 2) => v.toFixed(d);

function runCase(cs: Case, batch: number, threads: number): void {
  const g = new Generator(1);
  const dense = new Conv2d(cs.c, cs.f, cs.k, { padding: cs.padding, generator: g });
  const x = randn([batch, cs.c, cs.side, cs.side], g);
  const out = cs.side + 2 * cs.padding - cs.k + 1;
  const seed = randn([batch, cs.f, out, out], g);
  const w = dense.weight.data.data as Float32Array;
  const k2 = cs.k * cs.k;
  const denseParams = cs.f * cs.c * k2;
  const denseFlops = 2 * batch * out * out * denseParams;
  // Small batches are cheap and noisier: more repetitions.
  const reps = batch <= 8 ? repsSmall : repsLarge;
  for (const n of cs.counts) {
    // The first count warms both code paths up; later layouts run the same (compiled) code.
    const warm = n === cs.counts[0];
    const mask = topNMask(w, cs.f * cs.c, k2, n);
    const kep = KepConv2d.fromDense(
      w,
      mask,
      [cs.f, cs.c, cs.k, cs.k],
      dense.bias!.data.data as Float32Array,
      {
        padding: cs.padding,
      },
    );
    const [df, kf, dfc, kfc] = sideBySide(
      () => forward(dense, x),
      () => forward(kep, x),
      reps,
      warm,
    );
    const [dt, kt, dtc, ktc] = sideBySide(
      () => train(dense, x, seed),
      () => train(kep, x, seed),
      reps,
      warm,
    );
    const layout = kep.layout;
    console.log(
      `| ${cs.name} | ${batch} | ${threads} | ${n}/${k2} | ${fmt(100 * (1 - n / k2), 0)}% | ` +
        `${fmt(denseFlops / 1e6, 1)} | ${fmt((2 * batch * out * out * layout.nnz) / 1e6, 1)} | ` +
        `${denseParams} | ${layout.nnz} | ${layout.indexBytes()} | ` +
        `${fmt(df)} | ${fmt(kf)} | **${fmt(df / kf)}** | ${fmt(dfc / kfc)} | ` +
        `${fmt(dt)} | ${fmt(kt)} | **${fmt(dt / kt)}** | ${fmt(dtc / ktc)} |`,
    );
  }
}

// ---- Loop order of the forward kernel: three ways to visit the same kept elements ----

/**
 * One sweep per kept element (the plain "n sweeps"): the accumulator row is loaded and stored
 * once per multiply-add.
 */
function oneSweepPerElement(
  xp: Float32Array,
  values: Float32Array,
  l: KepLayout,
  n: number,
  side: number,
  pad: number,
): Float32Array {
  const wp = side + 2 * pad;
  const out = side + 2 * pad - l.kh + 1;
  const P = out * out;
  const y = new Float32Array(n * l.f * P);
  const acc = new Float64Array(P);
  for (let img = 0; img < n; img++)
    for (let f = 0; f < l.f; f++) {
      acc.fill(0);
      for (let c = 0; c < l.c; c++) {
        const p = f * l.c + c;
        for (let e = l.ptr[p]!; e < l.ptr[p + 1]!; e++) {
          const q = l.pos[e]!;
          const o = ((img * l.c + c) * wp + Math.floor(q / l.kw)) * wp + (q % l.kw);
          const wv = values[e]!;
          for (let oy = 0, a = 0; oy < out; oy++) {
            const r = o + oy * wp;
            for (let ox = 0; ox < out; ox++, a++) acc[a] = acc[a]! + wv * xp[r + ox]!;
          }
        }
      }
      y.set(acc, (img * l.f + f) * P);
    }
  return y;
}

/** Output pixel outermost, the kept elements of the filter innermost (a short gather loop). */
function perPixel(
  xp: Float32Array,
  values: Float32Array,
  l: KepLayout,
  n: number,
  side: number,
  pad: number,
): Float32Array {
  const wp = side + 2 * pad;
  const out = side + 2 * pad - l.kh + 1;
  const P = out * out;
  const y = new Float32Array(n * l.f * P);
  const off = new Int32Array(l.nnz);
  for (let p = 0; p < l.f * l.c; p++)
    for (let e = l.ptr[p]!; e < l.ptr[p + 1]!; e++) {
      const q = l.pos[e]!;
      off[e] = ((p % l.c) * wp + Math.floor(q / l.kw)) * wp + (q % l.kw);
    }
  for (let img = 0; img < n; img++) {
    const base = img * l.c * wp * wp;
    for (let f = 0; f < l.f; f++) {
      const e0 = l.ptr[f * l.c]!;
      const e1 = l.ptr[(f + 1) * l.c]!;
      for (let oy = 0, a = (img * l.f + f) * P; oy < out; oy++)
        for (let ox = 0; ox < out; ox++, a++) {
          const b = base + oy * wp + ox;
          let s = 0;
          for (let e = e0; e < e1; e++) s += values[e]! * xp[b + off[e]!]!;
          y[a] = s;
        }
    }
  }
  return y;
}

function loopOrder(): void {
  const reps = repsLarge;
  const cs = CASES[0]!;
  const batch = 16;
  const g = new Generator(2);
  const w = randn([cs.f, cs.c, 3, 3], g).data as Float32Array;
  const x = randn([batch, cs.c, cs.side, cs.side], g).data as Float32Array;
  const geom = { n: batch, c: cs.c, h: cs.side, w: cs.side, kh: 3, kw: 3, padH: 1, padW: 1 };
  const xp = kepPad(x, geom);
  console.log(
    `\nForward loop order, ${cs.name} shape, batch ${batch}, 1 thread (ms, median of ${reps}; ratio = variant / kepForward):\n`,
  );
  console.log(
    "| n | kepForward (8, 4, 1 kept per sweep over columns) | one sweep per kept element | ratio | per pixel, kept innermost | ratio | one-sweep CPU ratio | per-pixel CPU ratio |",
  );
  console.log("| - | - | - | - | - | - | - | - |");
  for (const n of [1, 3, 5, 9]) {
    const l = KepLayout.fromMask(topNMask(w, cs.f * cs.c, 9, n), cs.f, cs.c, 3, 3);
    const v = l.gather(w);
    const ref = kepForward(xp, v, l, geom);
    // The variants must compute the same convolution (same sums, other order: float32 close).
    for (const y of [
      oneSweepPerElement(xp, v, l, batch, cs.side, 1),
      perPixel(xp, v, l, batch, cs.side, 1),
    ])
      for (let i = 0; i < y.length; i++)
        if (Math.abs(y[i]! - ref[i]!) > 1e-4 * Math.max(1, Math.abs(ref[i]!)))
          throw new Error(
            `loop-order variant differs from kepForward at ${i}: ${y[i]} vs ${ref[i]}`,
          );
    const time = (fn: () => unknown) => () => measure(fn);
    const [k, a, kc, ac] = sideBySide(
      time(() => kepForward(xp, v, l, geom)),
      time(() => oneSweepPerElement(xp, v, l, batch, cs.side, 1)),
      reps,
    );
    const [k2, b, kc2, bc] = sideBySide(
      time(() => kepForward(xp, v, l, geom)),
      time(() => perPixel(xp, v, l, batch, cs.side, 1)),
      reps,
    );
    const km = (k + k2) / 2;
    console.log(
      `| ${n}/9 | ${fmt(km)} | ${fmt(a)} | ${fmt(a / km)} | ${fmt(b)} | ${fmt(b / km)} | ${fmt(ac / kc)} | ${fmt(bc / kc2)} |`,
    );
  }
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(
    `node ${process.version}, ${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model ?? "?"}`,
  );
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}`,
  );
  console.log(
    `reps ${repsSmall} at batch <= 8, ${repsLarge} above (medians), batches ${batches.join(",")}, threads ${threadList.join(",")}\n`,
  );
  console.log(
    "| layer | batch | threads | kept | removed | dense MFLOP | KEP MFLOP | dense weights | KEP values | index bytes | dense fwd ms | KEP fwd ms | fwd ratio | fwd CPU ratio | dense fwd+bwd ms | KEP fwd+bwd ms | fwd+bwd ratio | fwd+bwd CPU ratio |",
  );
  console.log("| - | - | - | - | - | - | - | - | - | - | - | - | - | - | - | - | - | - |");
  for (const threads of threadList) {
    let pool: MatrixPool | undefined;
    if (threads > 1) {
      pool = createPool({ threads });
      await pool.ready();
    }
    setMatrixPool(pool);
    for (const cs of CASES.filter((c) => caseNames.includes(c.name)))
      for (const batch of batches) runCase(cs, batch, threads);
    setMatrixPool(undefined);
    await pool?.close();
  }
  if (withOrder) loopOrder();
  console.log(
    `\nload average at end: ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")}`,
  );
}

await main();
