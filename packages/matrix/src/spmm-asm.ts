// The block-sparse × dense kernel of spmm-kernel.ts in the asm.js subset (see micro-kernel.ts for
// why asm.js: no per-element map, length, overflow and bounds-check code around typed-array
// access). Same float64 sums in stored-block order as the plain-JS kernel, so the same bits, in
// tiles of 4, 2 or 1 output lines by SPMM_TILE_WIDTHS columns (8, then 4, then single edge
// columns), each tile function generated from one text (tileText).
//
// Everything lives in the thread's heap, laid out by spmm-kernel.ts:
//   header (Int32, at byte 0): the scalar arguments, see HEADER below;
//   ptr  (Int32):  first slot of each outer line (and one past the last);
//   idx, ids (Int32): inner block index and block number of each slot;
//   data (float64): the blocks (block b at element b*bsz);
//   x    (float64): all of X, in its caller's layout (strides sxi, sxj);
//   out  (float):  the output in its caller's layout (strides soo, soj); each chunk writes its lines;
//   bias (float):  one value per output line when the epilogue adds a bias (biasAt 0: none).
// The operands are float64 in both builds: the float32 build converted every load to double in
// the inner loop, once per use, where staging converts each value once (an X value is read by
// every stored block of its block column, a block value once per 4 columns of X). Same values,
// same sums, same bits; fc1 of a 10.7%-dense 4x4 LeNet-300-100 forward at batch 128 went from
// 1.334 to 1.214 ms on one thread (docs/benchmarks/matrix.md, "Float64 operands in the asm.js
// sparse kernels").
// The optional epilogue (epi 1: add bias, 2: ReLU, 3: both) runs over each outer block's lines
// right after they are computed, while they are in cache: it reads the stored (rounded) value
// back, adds the bias in double and stores it rounded, which is the float32 sum a separate pass
// forms, then max(v, +0) branch-free as autograd's relu (non-finite values fixed up after).
// Float32 and float64 versions are generated from one text (the output's and bias's element
// shift 2 or 3; the operands are float64 in both).

/**
 * The asm.js text of `tile<h>x<cols>`: h output lines (t..t+h-1 of the outer block) by `cols` columns of
 * X (j..j+cols-1), h·cols float64 accumulators in locals across every stored block of line o,
 * each updated in (block, inner element) order, then written once. One generator for every tile,
 * so the tile width is changed in one place (SPMM_TILE_COLS).
 */
function tileText(h: number, cols: number): string {
  const rs = [...Array(h).keys()];
  const ks = [...Array(cols).keys()];
  const acc = rs.flatMap((r) => ks.map((k) => `c${r}${k}`));
  const lines: string[] = [];
  const say = (l: string) => lines.push(`    ${l}`);
  lines.push(`  function tile${h}x${cols}(o, line, t, j) {`);
  say("o = o | 0;");
  say("line = line | 0;");
  say("t = t | 0;");
  say("j = j | 0;");
  const eVars = rs.slice(1).map((r) => `e${r}`);
  const xVars = ks.slice(1).map((k) => `x${k}`);
  const yVars = ks.slice(1).map((k) => `y${k}`);
  const ints = [
    "q",
    "q1",
    "w",
    "c",
    "wp",
    "xp",
    "i0",
    "xj",
    "wb",
    "dw",
    "dx",
    "r",
    "ro",
    ...eVars,
    ...xVars,
    ...yVars,
  ];
  say(`var ${ints.map((v) => `${v} = 0`).join(", ")};`);
  const dbl = [...acc, ...rs.map((r) => `a${r}`), ...ks.map((k) => `b${k}`)];
  say(`var ${dbl.map((v) => `${v} = 0.0`).join(", ")};`);
  for (const r of rs.slice(1)) say(`e${r} = imul(eos, ${r}) << 3;`);
  for (const k of ks.slice(1)) say(`x${k} = imul(sxj, ${k}) << 3;`);
  say("dw = eis << 3;");
  say("dx = sxi << 3;");
  say("q = I[(ptrAt + (o << 2)) >> 2] | 0;");
  say("q1 = I[(ptrAt + ((o + 1) << 2)) >> 2] | 0;");
  say("xj = (xAt + ((imul(j, sxj) | 0) << 3)) | 0;");
  say("wb = (dataAt + ((imul(t, eos) | 0) << 3)) | 0;");
  say("for (; (q | 0) < (q1 | 0); q = (q + 1) | 0) {");
  say("  i0 = imul(I[(idxAt + (q << 2)) >> 2] | 0, ib) | 0;");
  say("  w = (innerLimit - i0) | 0;");
  say("  if ((w | 0) > (ib | 0)) w = ib;");
  say("  wp = (wb + ((imul(I[(idsAt + (q << 2)) >> 2] | 0, bsz) | 0) << 3)) | 0;");
  say("  xp = (xj + ((imul(i0, sxi) | 0) << 3)) | 0;");
  say("  for (c = 0; (c | 0) < (w | 0); c = (c + 1) | 0) {");
  for (const r of rs) say(`    a${r} = +D[${r === 0 ? "wp" : `(wp + e${r})`} >> 3];`);
  for (const k of ks) say(`    b${k} = +D[${k === 0 ? "xp" : `(xp + x${k})`} >> 3];`);
  for (const r of rs) for (const k of ks) say(`    c${r}${k} = c${r}${k} + a${r} * b${k};`);
  say("    wp = (wp + dw) | 0;");
  say("    xp = (xp + dx) | 0;");
  say("  }");
  say("}");
  for (const k of ks.slice(1)) say(`y${k} = imul(soj, ${k}) << SHIFT;`);
  say("ro = soo << SHIFT;");
  say("r = (outAt + (((imul(line, soo) | 0) + (imul(j, soj) | 0)) << SHIFT)) | 0;");
  for (const r of rs) {
    if (r > 0) say("r = (r + ro) | 0;");
    for (const k of ks) say(`F[${k === 0 ? "r" : `(r + y${k})`} >> SHIFT] = c${r}${k};`);
  }
  lines.push("  }");
  return lines.join("\n");
}

/**
 * Tile widths (columns of X) of the asm.js sparse kernel, widest first: a line group's columns
 * run in tiles of the first width, what is left in tiles of the next, the last few one column at
 * a time; every tile is 4, 2 or 1 lines by each width. The one place to change them (the
 * kernels, and the pool's row chunks through SPMM_TILE_COLS, derive from it).
 * 8 then 4: 32 accumulators, most of them spilled to the stack (V8 keeps 16 doubles in xmm
 * registers), but per stored block the 4 weights of a step and the block bookkeeping serve 8
 * columns instead of 4. fc1 of LeNet-300-100 at 10.8%, batch 128, one thread (bsr-ab, medians
 * of 30 x 5 calls, 2026-12-02): width 4 alone 1.53-1.60 ms for the forward, 8 then 4 1.40-1.42,
 * 2 1.80, 3 1.65, 5 1.63, 6 1.57, 12 1.63, 16 1.40 (but pooled chunks of 16 rows).
 */
export const SPMM_TILE_WIDTHS: readonly number[] = [8, 4];
/** The widest tile: batch rows are split between threads in multiples of it. */
export const SPMM_TILE_COLS = SPMM_TILE_WIDTHS[0]!;

/** The asm.js text of rows()'s tile loops: for h = 4, 2, 1, every width in turn. */
function rowLoopsText(widths: readonly number[]): string {
  const loops = (h: number) =>
    widths
      .map(
        (w) =>
          `      for (; ((j + ${w}) | 0) <= (j1 | 0); j = (j + ${w}) | 0) tile${h}x${w}(o, line, t, j);`,
      )
      .join("\n");
  return [
    "    if ((h | 0) == 4) {",
    loops(4),
    "    } else if ((h | 0) == 2) {",
    loops(2),
    "    } else {",
    loops(1),
    "    }",
  ].join("\n");
}

/** Int32 header slots (the layout both sides agree on). */
export const HEADER = {
  ob: 0,
  ib: 1,
  eos: 2,
  eis: 3,
  bsz: 4,
  outerLimit: 5,
  innerLimit: 6,
  sxi: 7,
  sxj: 8,
  soo: 9,
  soj: 10,
  n: 11,
  ptrAt: 12,
  idxAt: 13,
  dataAt: 14,
  xAt: 15,
  outAt: 16,
  idsAt: 17,
  biasAt: 18,
  epi: 19,
} as const;
/** Bytes reserved for the header at the start of the heap. */
export const HEADER_BYTES = 128;

const TEMPLATE = `return function TesseraSpmmKernel(stdlib, foreign, heap) {
  "use asm";
  var I = new stdlib.Int32Array(heap);
  var F = new stdlib.FLOAT_ARRAY(heap);
  var D = new stdlib.Float64Array(heap);
  var imul = stdlib.Math.imul;
  var abs = stdlib.Math.abs;
  var ob = 0, ib = 0, eos = 0, eis = 0, bsz = 0, outerLimit = 0, innerLimit = 0;
  var sxi = 0, sxj = 0, soo = 0, soj = 0, n = 0;
  var ptrAt = 0, idxAt = 0, dataAt = 0, xAt = 0, outAt = 0, idsAt = 0, biasAt = 0, epiMode = 0;

  function readHeader() {
    ob = I[0] | 0;
    ib = I[1] | 0;
    eos = I[2] | 0;
    eis = I[3] | 0;
    bsz = I[4] | 0;
    outerLimit = I[5] | 0;
    innerLimit = I[6] | 0;
    sxi = I[7] | 0;
    sxj = I[8] | 0;
    soo = I[9] | 0;
    soj = I[10] | 0;
    n = I[11] | 0;
    ptrAt = I[12] | 0;
    idxAt = I[13] | 0;
    dataAt = I[14] | 0;
    xAt = I[15] | 0;
    outAt = I[16] | 0;
    idsAt = I[17] | 0;
    biasAt = I[18] | 0;
    epiMode = I[19] | 0;
  }

  /* The epilogue over lines [line0, line0 + lines) in columns [j0, j1): bias and/or ReLU. */
  function epilogue(line0, lines, j0, j1) {
    line0 = line0 | 0;
    lines = lines | 0;
    j0 = j0 | 0;
    j1 = j1 | 0;
    var l = 0, j = 0, r = 0, step = 0;
    var b = 0.0, v = 0.0, m = 0.0;
    step = soj << SHIFT;
    for (l = 0; (l | 0) < (lines | 0); l = (l + 1) | 0) {
      if (epiMode & 1) b = +F[(biasAt + (((line0 + l) | 0) << SHIFT)) >> SHIFT];
      r = (outAt + (((imul((line0 + l) | 0, soo) | 0) + (imul(j0, soj) | 0)) << SHIFT)) | 0;
      for (j = j0; (j | 0) < (j1 | 0); j = (j + 1) | 0) {
        v = +F[r >> SHIFT];
        if (epiMode & 1) {
          v = v + b;
          if (!(epiMode & 2)) {
            F[r >> SHIFT] = v;
            r = (r + step) | 0;
            continue;
          }
        }
        m = (v + +abs(v)) * 0.5;
        if (m - m != 0.0) {
          if (v > 0.0) m = v;
          else if (v == v) m = 0.0;
          else m = v;
        }
        F[r >> SHIFT] = m;
        r = (r + step) | 0;
      }
    }
  }

TILES
  /* Edge column j: h lines by one column, same summation order. */
  function column(o, line, t, h, j) {
    o = o | 0;
    line = line | 0;
    t = t | 0;
    h = h | 0;
    j = j | 0;
    var rr = 0, q = 0, q0 = 0, q1 = 0, i0 = 0, w = 0, c = 0, wp = 0, xp = 0, dw = 0, dx = 0, r = 0;
    var acc = 0.0;
    dw = eis << 3;
    dx = sxi << 3;
    q0 = I[(ptrAt + (o << 2)) >> 2] | 0;
    q1 = I[(ptrAt + ((o + 1) << 2)) >> 2] | 0;
    for (rr = 0; (rr | 0) < (h | 0); rr = (rr + 1) | 0) {
      acc = 0.0;
      for (q = q0; (q | 0) < (q1 | 0); q = (q + 1) | 0) {
        i0 = imul(I[(idxAt + (q << 2)) >> 2] | 0, ib) | 0;
        w = (innerLimit - i0) | 0;
        if ((w | 0) > (ib | 0)) w = ib;
        wp = (imul(I[(idsAt + (q << 2)) >> 2] | 0, bsz) | 0) + (imul((t + rr) | 0, eos) | 0) | 0;
        wp = (dataAt + (wp << 3)) | 0;
        xp = (xAt + (((imul(i0, sxi) | 0) + (imul(j, sxj) | 0)) << 3)) | 0;
        for (c = 0; (c | 0) < (w | 0); c = (c + 1) | 0) {
          acc = acc + +D[wp >> 3] * +D[xp >> 3];
          wp = (wp + dw) | 0;
          xp = (xp + dx) | 0;
        }
      }
      r = (outAt + (((imul((line + rr) | 0, soo) | 0) + (imul(j, soj) | 0)) << SHIFT)) | 0;
      F[r >> SHIFT] = acc;
    }
  }

  /* Columns [j0, j1) of h lines: 4 columns at a time, then single edge columns. */
  function rows(o, line, t, h, j0, j1) {
    o = o | 0;
    line = line | 0;
    t = t | 0;
    h = h | 0;
    j0 = j0 | 0;
    j1 = j1 | 0;
    var j = 0;
    j = j0;
ROW_LOOPS
    for (; (j | 0) < (j1 | 0); j = (j + 1) | 0) column(o, line, t, h, j);
  }

  /* Output lines of outer blocks [first, last) in columns [j0, j1), after the header and arrays are in place. */
  function run(first, last, j0, j1) {
    first = first | 0;
    last = last | 0;
    j0 = j0 | 0;
    j1 = j1 | 0;
    var o = 0, line0 = 0, lines = 0, t = 0;
    readHeader();
    if ((j1 | 0) > (n | 0)) j1 = n;
    for (o = first; (o | 0) < (last | 0); o = (o + 1) | 0) {
      line0 = imul(o, ob) | 0;
      lines = (outerLimit - line0) | 0;
      if ((lines | 0) > (ob | 0)) lines = ob;
      for (t = 0; ((t + 4) | 0) <= (lines | 0); t = (t + 4) | 0) rows(o, (line0 + t) | 0, t, 4, j0, j1);
      if (((t + 2) | 0) <= (lines | 0)) {
        rows(o, (line0 + t) | 0, t, 2, j0, j1);
        t = (t + 2) | 0;
      }
      if ((t | 0) < (lines | 0)) rows(o, (line0 + t) | 0, t, 1, j0, j1);
      if (epiMode) epilogue(line0, lines, j0, j1);
    }
  }

  return { run: run };
};`;

export interface SpmmKernel {
  /** Computes the output lines of outer blocks [first, last), columns [j0, j1), from the arrays in the heap. */
  run(first: number, last: number, j0: number, j1: number): void;
}

type SpmmModule = (stdlib: typeof globalThis, foreign: object, heap: ArrayBuffer) => SpmmKernel;

function compile(
  float: "Float32Array" | "Float64Array",
  shift: number,
  widths: readonly number[],
): SpmmModule {
  const tiles = [4, 2, 1].flatMap((h) => widths.map((w) => tileText(h, w)));
  const src = TEMPLATE.replace("TILES", tiles.join("\n\n"))
    .replace("ROW_LOOPS", rowLoopsText(widths))
    .replaceAll("FLOAT_ARRAY", float)
    .replaceAll("SHIFT", String(shift));
  return new Function(src)() as SpmmModule;
}

/** The float32 and float64 module functions of a kernel with these tile widths. */
export interface SpmmModules {
  f32: SpmmModule;
  f64: SpmmModule;
}

/**
 * Generates the kernel for tile widths `widths` (distinct positive integers, widest first; see
 * SPMM_TILE_WIDTHS). Any widths give the same sums in the same order, so the same bits.
 */
export function compileSpmmModules(widths: readonly number[] = SPMM_TILE_WIDTHS): SpmmModules {
  const ok =
    widths.length > 0 &&
    widths.every((w, i) => Number.isSafeInteger(w) && w >= 1 && (i === 0 || w < widths[i - 1]!));
  if (!ok)
    throw new RangeError(
      `compileSpmmModules: widths must be distinct positive integers, widest first; got [${widths.join(", ")}]`,
    );
  return { f32: compile("Float32Array", 2, widths), f64: compile("Float64Array", 3, widths) };
}

/** The kernel every product runs (exported for the validation test). */
export const spmmModules = compileSpmmModules();
