// Packing the WebAssembly GEMM's panels with a generated kernel, from a raw copy in kernel memory.
//
// pack.ts's JavaScript packer writes a panel element by element (a load and a store per float,
// each bounds-checked): ~1.5 ns a float, 13% of a one-thread LeNet-300-100 epoch on the wasm path
// and 30% of its pooled products' time (docs/benchmarks/epoch-profile.md, section 11). Here the
// source lines a call packs are first copied into the thread's scratch region as they lie
// (TypedArray.set, a memcpy per line, or per k step when the lines are adjacent in memory), and
// a kernel built from the tile widths rearranges them with whole vectors:
// - lines contiguous in k (a row-major A, a transposed B): four lines by four k steps at a time
//   are transposed in registers (shuffles) and stored as four k steps of the panel;
// - lines adjacent in memory (a transposed A, a row-major B): each k step of a panel is `width`
//   consecutive floats of the raw copy, moved as width/4 vectors.
// The panels are the JavaScript packer's, float for float (a copy is exact; tested), so the
// products' bits do not change.
import { I32, ModuleBuilder, V128, compileModule } from "./wasm-builder.ts";
import type { Code } from "./wasm-builder.ts";
import { MAX_PAGES, SCRATCH_BYTES, WASM_TILE } from "./wasm-gemm.ts";
import type { WasmThread } from "./wasm-gemm.ts";
import { packerFor } from "./pack.ts";

/**
 * The panel widths with a kernel: the register tile's rows and columns, those that are multiples
 * of 4 (a function, not a constant: wasm-gemm.ts imports this module, so WASM_TILE is read when
 * called, not while the modules load).
 */
export function wasmPackWidths(): number[] {
  return [...new Set([WASM_TILE.mr, WASM_TILE.nr])].filter((w) => w % 4 === 0);
}

/**
 * lines<w>(raw, lineBytes, panels, kc, dst, panelBytes): panel q (q < panels) of w lines from
 * the raw lines at raw + (q·w + l)·lineBytes (k contiguous, kc floats each) into
 * dst + q·panelBytes, element (p, l) at p·w + l. Whole groups of four k steps go through a 4x4
 * register transpose per four lines; the last kc mod 4 steps are copied float by float.
 */
function emitLines(c: Code, w: number): void {
  const [raw, lineBytes, panels, kc, dst, panelBytes] = c.paramTuple(6);
  const q = c.local(I32);
  const p = c.local(I32);
  const s = c.local(I32); // raw + q·w·lineBytes + 4p: line 0 of the panel at step p
  const d = c.local(I32); // dst + q·panelBytes + 4·p·w
  const kc4 = c.local(I32);
  const r = Array.from({ length: 4 }, () => c.local(V128));
  const t = Array.from({ length: 4 }, () => c.local(V128));
  // s and d for panel q at step p (both loops below)
  const addresses = () => {
    c.get(raw).get(q).i32Const(w).i32Mul().get(lineBytes).i32Mul().i32Add();
    c.get(p).i32Const(2).i32Shl().i32Add().set(s);
    c.get(dst).get(q).get(panelBytes).i32Mul().i32Add();
    c.get(p)
      .i32Const(4 * w)
      .i32Mul()
      .i32Add()
      .set(d);
  };
  const lineAt = (l: number) => {
    // s + l·lineBytes
    c.get(s);
    if (l > 0) c.get(lineBytes).i32Const(l).i32Mul().i32Add();
  };
  c.block((done) => {
    c.get(panels).i32Eqz().brIf(done);
    c.get(kc).i32Const(-4).i32And().set(kc4);
    c.loop((panelLoop) => {
      c.i32Const(0).set(p);
      c.block((quadsDone) => {
        c.get(kc4).i32Eqz().brIf(quadsDone);
        c.loop((quads) => {
          addresses();
          for (let g = 0; g < w / 4; g++) {
            for (let l = 0; l < 4; l++) {
              lineAt(4 * g + l);
              c.v128Load().set(r[l]!);
            }
            c.get(r[0]!).get(r[1]!).i32x4Shuffle([0, 4, 1, 5]).set(t[0]!);
            c.get(r[2]!).get(r[3]!).i32x4Shuffle([0, 4, 1, 5]).set(t[1]!);
            c.get(r[0]!).get(r[1]!).i32x4Shuffle([2, 6, 3, 7]).set(t[2]!);
            c.get(r[2]!).get(r[3]!).i32x4Shuffle([2, 6, 3, 7]).set(t[3]!);
            // k step i of the four, lines 4g..4g+3: at d + 4·(i·w + 4g)
            for (let i = 0; i < 4; i++) {
              const [x, y] = i < 2 ? [t[0]!, t[1]!] : [t[2]!, t[3]!];
              c.get(d)
                .get(x)
                .get(y)
                .i32x4Shuffle(i % 2 === 0 ? [0, 1, 4, 5] : [2, 3, 6, 7])
                .v128Store(4 * (i * w + 4 * g));
            }
          }
          c.get(p).i32Const(4).i32Add().tee(p).get(kc4).i32LtU().brIf(quads);
        });
      });
      c.block((tailDone) => {
        c.get(p).get(kc).i32GeU().brIf(tailDone);
        c.loop((tail) => {
          addresses();
          for (let l = 0; l < w; l++) {
            c.get(d);
            lineAt(l);
            c.f32Load().f32Store(4 * l);
          }
          c.get(p).i32Const(1).i32Add().tee(p).get(kc).i32LtU().brIf(tail);
        });
      });
      c.get(q).i32Const(1).i32Add().tee(q).get(panels).i32LtU().brIf(panelLoop);
    });
  });
}

/**
 * steps<w>(raw, stepBytes, panels, kc, dst, panelBytes): panel q (q < panels) from raw k steps
 * (step p at raw + p·stepBytes, the panels' lines side by side: line q·w + l at float q·w + l)
 * into dst + q·panelBytes, element (p, l) at p·w + l: w/4 vectors per step.
 */
function emitSteps(c: Code, w: number): void {
  const [raw, stepBytes, panels, kc, dst, panelBytes] = c.paramTuple(6);
  const q = c.local(I32);
  const s = c.local(I32);
  const d = c.local(I32);
  const end = c.local(I32);
  c.block((done) => {
    c.get(panels).i32Eqz().get(kc).i32Eqz().i32Or().brIf(done);
    c.loop((panelLoop) => {
      c.get(raw)
        .get(q)
        .i32Const(4 * w)
        .i32Mul()
        .i32Add()
        .set(s);
      c.get(dst).get(q).get(panelBytes).i32Mul().i32Add().tee(d);
      c.get(kc)
        .i32Const(4 * w)
        .i32Mul()
        .i32Add()
        .set(end);
      c.loop((stepLoop) => {
        for (let g = 0; g < w / 4; g++)
          c.get(d)
            .get(s)
            .v128Load(16 * g)
            .v128Store(16 * g);
        c.get(s).get(stepBytes).i32Add().set(s);
        c.get(d)
          .i32Const(4 * w)
          .i32Add()
          .tee(d)
          .get(end)
          .i32LtU()
          .brIf(stepLoop);
      });
      c.get(q).i32Const(1).i32Add().tee(q).get(panels).i32LtU().brIf(panelLoop);
    });
  });
}

/** The module's bytes: lines<w> and steps<w> for each width of wasmPackWidths(). */
export function packKernelBytes(): Uint8Array<ArrayBuffer> {
  const b = new ModuleBuilder().importMemory({
    module: "env",
    name: "memory",
    initial: 0,
    maximum: MAX_PAGES,
    shared: true,
  });
  const params = [I32, I32, I32, I32, I32, I32] as const;
  for (const w of wasmPackWidths()) {
    b.func(`lines${w}`, params, [], (c) => emitLines(c, w));
    b.func(`steps${w}`, params, [], (c) => emitSteps(c, w));
  }
  return b.build();
}

type PackFn = (
  raw: number,
  stride: number,
  panels: number,
  kc: number,
  dst: number,
  panelBytes: number,
) => void;
let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WasmThread, Map<string, PackFn>>();
function kernelsOf(t: WasmThread): Map<string, PackFn> {
  let k = instances.get(t);
  if (k === undefined) {
    compiled ??= compileModule("matrix wasm pack kernel", packKernelBytes());
    const e = new WebAssembly.Instance(compiled, { env: { memory: t.memory } }).exports;
    k = new Map(Object.entries(e).filter(([, f]) => typeof f === "function") as [string, PackFn][]);
    instances.set(t, k);
  }
  return k;
}

/**
 * Packs panels [q0, q1) of `count` lines (line l, step p at src[off + l·lineStride + p·kStride];
 * zero past `count`) for k steps [0, k) cut into k-blocks of kb: the k-block at pc (kc long)
 * puts panel q at element blockAt(pc, kc) + (q - q0)·panelStride(kc) of t's memory. The source
 * is copied raw into t's scratch region as few times as it fits: all k steps of as many panels
 * as fit per trip (one TypedArray.set when the trip's lines are back to back in src), else
 * k-block by k-block. Returns false, doing nothing, when the width has no kernel or neither
 * stride is 1.
 */
function packTrips(
  t: WasmThread,
  src: Float32Array,
  off: number,
  lineStride: number,
  kStride: number,
  count: number,
  q0: number,
  q1: number,
  k: number,
  kb: number,
  width: number,
  blockAt: (pc: number, kc: number) => number,
  panelStride: (kc: number) => number,
): boolean {
  const K = kernelsOf(t);
  const contiguous = kStride === 1;
  const kernel = K.get(`${contiguous ? "lines" : "steps"}${width}`);
  if (kernel === undefined || (!contiguous && lineStride !== 1)) return false;
  if (q1 <= q0 || k <= 0) return true;
  const H = t.f32();
  const rawFloats = SCRATCH_BYTES >> 2; // the thread's whole scratch region, free while packing
  const rawAt = t.scratchAt;
  const raw = rawAt >> 2;
  const wholeK = width * k <= rawFloats;
  if (width * Math.min(k, kb) > rawFloats)
    throw new RangeError(`wasmPack: a panel of ${width} x ${kb} floats exceeds the scratch region`);
  for (let p0 = 0; p0 < k;) {
    const p1 = wholeK ? k : Math.min(k, p0 + kb);
    const kl = p1 - p0;
    const perTrip = Math.floor(rawFloats / (width * kl));
    for (let a = q0; a < q1; a += perTrip) {
      const b = Math.min(q1, a + perTrip);
      const first = a * width;
      const have = Math.max(0, Math.min(count, b * width) - first);
      const span = (b - a) * width; // lines of the trip's panels, past-the-end ones included
      if (contiguous) {
        // line l of the trip at raw + l·kl
        const s0 = off + first * lineStride + p0;
        if (lineStride === kl) H.set(src.subarray(s0, s0 + have * kl), raw);
        else
          for (let l = 0; l < have; l++)
            H.set(src.subarray(s0 + l * lineStride, s0 + l * lineStride + kl), raw + l * kl);
        if (have < span) H.fill(0, raw + have * kl, raw + span * kl);
      } else {
        // step p of the trip at raw + (p - p0)·span
        const s0 = off + first + p0 * kStride;
        if (kStride === span && have === span) H.set(src.subarray(s0, s0 + kl * span), raw);
        else
          for (let p = 0; p < kl; p++) {
            H.set(src.subarray(s0 + p * kStride, s0 + p * kStride + have), raw + p * span);
            if (have < span) H.fill(0, raw + p * span + have, raw + (p + 1) * span);
          }
      }
      for (let pc = p0; pc < p1; pc += kb) {
        const kc = Math.min(kb, k - pc);
        const from = contiguous ? rawAt + 4 * (pc - p0) : rawAt + 4 * (pc - p0) * span;
        const ps = panelStride(kc);
        const dst = 4 * (blockAt(pc, kc) + (a - q0) * ps);
        kernel(from, contiguous ? 4 * kl : 4 * span, b - a, kc, dst, 4 * ps);
      }
    }
    p0 = p1;
  }
  return true;
}

/**
 * pack.ts's Packer with a float32 destination in t's memory (dst = t.f32()): panels q0..q1-1 of
 * `count` lines over k in [0, kc), panel q at dOff + (q - q0)·panelStride, lines past `count`
 * zero. Takes the kernel where the width has one and either stride is 1, through the raw copy
 * in t's scratch region (which must be free: the panels are written elsewhere); the JavaScript
 * packer otherwise. Same floats either way.
 */
export function wasmPack(
  t: WasmThread,
  src: Float32Array,
  off: number,
  lineStride: number,
  kStride: number,
  count: number,
  q0: number,
  q1: number,
  kc: number,
  width: number,
  dOff: number,
  panelStride: number,
): void {
  const done = packTrips(
    t,
    src,
    off,
    lineStride,
    kStride,
    count,
    q0,
    q1,
    kc,
    kc,
    width,
    () => dOff,
    () => panelStride,
  );
  if (!done) {
    const H = t.f32();
    packerFor(src, H)(
      src,
      off,
      lineStride,
      kStride,
      count,
      q0,
      q1,
      kc,
      width,
      H,
      dOff,
      panelStride,
    );
  }
}

/**
 * Panels [q0, q1) of `count` lines for all of k in the k-block layout of wasmPackRange: the
 * k-block at pc (kc = min(kb, k - pc) long) holds panel q at element
 * base + pc·width·panels + q·width·kc. Lines and k steps as in wasmPack.
 */
export function wasmPackBlocks(
  t: WasmThread,
  src: Float32Array,
  lineStride: number,
  kStride: number,
  count: number,
  q0: number,
  q1: number,
  k: number,
  kb: number,
  width: number,
  base: number,
  panels: number,
): void {
  const blockAt = (pc: number, kc: number) => base + pc * width * panels + q0 * width * kc;
  const stride = (kc: number) => width * kc;
  if (packTrips(t, src, 0, lineStride, kStride, count, q0, q1, k, kb, width, blockAt, stride))
    return;
  for (let pc = 0; pc < k; pc += kb) {
    const kc = Math.min(kb, k - pc);
    wasmPack(
      t,
      src,
      pc * kStride,
      lineStride,
      kStride,
      count,
      q0,
      q1,
      kc,
      width,
      blockAt(pc, kc),
      width * kc,
    );
  }
}

/**
 * The panels of wasmPackBlocks for lines held images first: line r, step i·P + p at
 * src[(i·m + r)·P + p] (src is [k/P, m, P]: a convolution's output gradient in NCHW read as
 * [m = F, k = N·P]). Each image's rows of the trip's panels are back to back in src: one
 * TypedArray.set per image, then the kernel packs the image's runs of each k-block (a k-block
 * may span two images). Returns false, doing nothing, when one panel's image block does not fit
 * in the scratch region or the width has no kernel.
 */
export function wasmPackImagesFirst(
  t: WasmThread,
  src: Float32Array,
  m: number,
  k: number,
  P: number,
  q0: number,
  q1: number,
  kb: number,
  width: number,
  base: number,
  panels: number,
): boolean {
  const lines = kernelsOf(t).get(`lines${width}`);
  const rawFloats = SCRATCH_BYTES >> 2;
  const perTrip = Math.floor(rawFloats / (width * P));
  if (lines === undefined || perTrip === 0) return false;
  if (q1 <= q0 || k <= 0) return true;
  const H = t.f32();
  const rawAt = t.scratchAt;
  const raw = rawAt >> 2;
  for (let a = q0; a < q1; a += perTrip) {
    const b = Math.min(q1, a + perTrip);
    const first = a * width;
    const have = Math.max(0, Math.min(m, b * width) - first);
    const span = (b - a) * width;
    if (have < span) H.fill(0, raw + have * P, raw + span * P);
    for (let img = 0; img * P < k; img++) {
      const s0 = (img * m + first) * P;
      H.set(src.subarray(s0, s0 + have * P), raw);
      for (let s = img * P; s < Math.min(k, (img + 1) * P);) {
        const pc = Math.floor(s / kb) * kb;
        const kc = Math.min(kb, k - pc);
        const e = Math.min(pc + kc, (img + 1) * P);
        const dst = base + pc * width * panels + a * width * kc + (s - pc) * width;
        lines(rawAt + 4 * (s - img * P), 4 * P, b - a, e - s, 4 * dst, 4 * width * kc);
        s = e;
      }
    }
  }
  return true;
}
