// The block-sparse × dense kernel of spmm-kernel.ts in the asm.js subset (see micro-kernel.ts for
// why asm.js: no per-element map, length, overflow and bounds-check code around typed-array
// access). Same tiles (4, 2 or 1 output lines by 4 columns, then single edge columns), same
// float64 sums in stored-block order, so results equal the plain-JS kernel's bit for bit.
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

  function tile4(o, line, t, j) {
    o = o | 0;
    line = line | 0;
    t = t | 0;
    j = j | 0;
    var q = 0, q1 = 0, w = 0, c = 0, wp = 0, xp = 0, e1 = 0, e2 = 0, e3 = 0, i0 = 0, xj = 0, wb = 0;
    var x1 = 0, x2 = 0, x3 = 0, dw = 0, dx = 0, r = 0;
    var c00 = 0.0, c01 = 0.0, c02 = 0.0, c03 = 0.0, c10 = 0.0, c11 = 0.0, c12 = 0.0, c13 = 0.0;
    var c20 = 0.0, c21 = 0.0, c22 = 0.0, c23 = 0.0, c30 = 0.0, c31 = 0.0, c32 = 0.0, c33 = 0.0;
    var a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    e1 = eos << 3;
    e2 = e1 << 1;
    e3 = (e1 + e2) | 0;
    x1 = sxj << 3;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    dw = eis << 3;
    dx = sxi << 3;
    q = I[(ptrAt + (o << 2)) >> 2] | 0;
    q1 = I[(ptrAt + ((o + 1) << 2)) >> 2] | 0;
    xj = (xAt + ((imul(j, sxj) | 0) << 3)) | 0;
    wb = (dataAt + ((imul(t, eos) | 0) << 3)) | 0;
    for (; (q | 0) < (q1 | 0); q = (q + 1) | 0) {
      i0 = imul(I[(idxAt + (q << 2)) >> 2] | 0, ib) | 0;
      w = (innerLimit - i0) | 0;
      if ((w | 0) > (ib | 0)) w = ib;
      wp = (wb + ((imul(I[(idsAt + (q << 2)) >> 2] | 0, bsz) | 0) << 3)) | 0;
      xp = (xj + ((imul(i0, sxi) | 0) << 3)) | 0;
      for (c = 0; (c | 0) < (w | 0); c = (c + 1) | 0) {
        a0 = +D[wp >> 3];
        a1 = +D[(wp + e1) >> 3];
        a2 = +D[(wp + e2) >> 3];
        a3 = +D[(wp + e3) >> 3];
        b0 = +D[xp >> 3];
        b1 = +D[(xp + x1) >> 3];
        b2 = +D[(xp + x2) >> 3];
        b3 = +D[(xp + x3) >> 3];
        c00 = c00 + a0 * b0;
        c01 = c01 + a0 * b1;
        c02 = c02 + a0 * b2;
        c03 = c03 + a0 * b3;
        c10 = c10 + a1 * b0;
        c11 = c11 + a1 * b1;
        c12 = c12 + a1 * b2;
        c13 = c13 + a1 * b3;
        c20 = c20 + a2 * b0;
        c21 = c21 + a2 * b1;
        c22 = c22 + a2 * b2;
        c23 = c23 + a2 * b3;
        c30 = c30 + a3 * b0;
        c31 = c31 + a3 * b1;
        c32 = c32 + a3 * b2;
        c33 = c33 + a3 * b3;
        wp = (wp + dw) | 0;
        xp = (xp + dx) | 0;
      }
    }
    x1 = soj << SHIFT;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    dx = soo << SHIFT;
    r = (outAt + (((imul(line, soo) | 0) + (imul(j, soj) | 0)) << SHIFT)) | 0;
    F[r >> SHIFT] = c00;
    F[(r + x1) >> SHIFT] = c01;
    F[(r + x2) >> SHIFT] = c02;
    F[(r + x3) >> SHIFT] = c03;
    r = (r + dx) | 0;
    F[r >> SHIFT] = c10;
    F[(r + x1) >> SHIFT] = c11;
    F[(r + x2) >> SHIFT] = c12;
    F[(r + x3) >> SHIFT] = c13;
    r = (r + dx) | 0;
    F[r >> SHIFT] = c20;
    F[(r + x1) >> SHIFT] = c21;
    F[(r + x2) >> SHIFT] = c22;
    F[(r + x3) >> SHIFT] = c23;
    r = (r + dx) | 0;
    F[r >> SHIFT] = c30;
    F[(r + x1) >> SHIFT] = c31;
    F[(r + x2) >> SHIFT] = c32;
    F[(r + x3) >> SHIFT] = c33;
  }

  function tile2(o, line, t, j) {
    o = o | 0;
    line = line | 0;
    t = t | 0;
    j = j | 0;
    var q = 0, q1 = 0, w = 0, c = 0, wp = 0, xp = 0, e1 = 0, i0 = 0, xj = 0, wb = 0;
    var x1 = 0, x2 = 0, x3 = 0, dw = 0, dx = 0, r = 0;
    var c00 = 0.0, c01 = 0.0, c02 = 0.0, c03 = 0.0, c10 = 0.0, c11 = 0.0, c12 = 0.0, c13 = 0.0;
    var a0 = 0.0, a1 = 0.0, b0 = 0.0, b1 = 0.0, b2 = 0.0, b3 = 0.0;
    e1 = eos << 3;
    x1 = sxj << 3;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    dw = eis << 3;
    dx = sxi << 3;
    q = I[(ptrAt + (o << 2)) >> 2] | 0;
    q1 = I[(ptrAt + ((o + 1) << 2)) >> 2] | 0;
    xj = (xAt + ((imul(j, sxj) | 0) << 3)) | 0;
    wb = (dataAt + ((imul(t, eos) | 0) << 3)) | 0;
    for (; (q | 0) < (q1 | 0); q = (q + 1) | 0) {
      i0 = imul(I[(idxAt + (q << 2)) >> 2] | 0, ib) | 0;
      w = (innerLimit - i0) | 0;
      if ((w | 0) > (ib | 0)) w = ib;
      wp = (wb + ((imul(I[(idsAt + (q << 2)) >> 2] | 0, bsz) | 0) << 3)) | 0;
      xp = (xj + ((imul(i0, sxi) | 0) << 3)) | 0;
      for (c = 0; (c | 0) < (w | 0); c = (c + 1) | 0) {
        a0 = +D[wp >> 3];
        a1 = +D[(wp + e1) >> 3];
        b0 = +D[xp >> 3];
        b1 = +D[(xp + x1) >> 3];
        b2 = +D[(xp + x2) >> 3];
        b3 = +D[(xp + x3) >> 3];
        c00 = c00 + a0 * b0;
        c01 = c01 + a0 * b1;
        c02 = c02 + a0 * b2;
        c03 = c03 + a0 * b3;
        c10 = c10 + a1 * b0;
        c11 = c11 + a1 * b1;
        c12 = c12 + a1 * b2;
        c13 = c13 + a1 * b3;
        wp = (wp + dw) | 0;
        xp = (xp + dx) | 0;
      }
    }
    x1 = soj << SHIFT;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    r = (outAt + (((imul(line, soo) | 0) + (imul(j, soj) | 0)) << SHIFT)) | 0;
    F[r >> SHIFT] = c00;
    F[(r + x1) >> SHIFT] = c01;
    F[(r + x2) >> SHIFT] = c02;
    F[(r + x3) >> SHIFT] = c03;
    r = (r + (soo << SHIFT)) | 0;
    F[r >> SHIFT] = c10;
    F[(r + x1) >> SHIFT] = c11;
    F[(r + x2) >> SHIFT] = c12;
    F[(r + x3) >> SHIFT] = c13;
  }

  function tile1(o, line, t, j) {
    o = o | 0;
    line = line | 0;
    t = t | 0;
    j = j | 0;
    var q = 0, q1 = 0, w = 0, c = 0, wp = 0, xp = 0, i0 = 0, xj = 0, wb = 0;
    var x1 = 0, x2 = 0, x3 = 0, dw = 0, dx = 0, r = 0;
    var c00 = 0.0, c01 = 0.0, c02 = 0.0, c03 = 0.0, a0 = 0.0;
    x1 = sxj << 3;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    dw = eis << 3;
    dx = sxi << 3;
    q = I[(ptrAt + (o << 2)) >> 2] | 0;
    q1 = I[(ptrAt + ((o + 1) << 2)) >> 2] | 0;
    xj = (xAt + ((imul(j, sxj) | 0) << 3)) | 0;
    wb = (dataAt + ((imul(t, eos) | 0) << 3)) | 0;
    for (; (q | 0) < (q1 | 0); q = (q + 1) | 0) {
      i0 = imul(I[(idxAt + (q << 2)) >> 2] | 0, ib) | 0;
      w = (innerLimit - i0) | 0;
      if ((w | 0) > (ib | 0)) w = ib;
      wp = (wb + ((imul(I[(idsAt + (q << 2)) >> 2] | 0, bsz) | 0) << 3)) | 0;
      xp = (xj + ((imul(i0, sxi) | 0) << 3)) | 0;
      for (c = 0; (c | 0) < (w | 0); c = (c + 1) | 0) {
        a0 = +D[wp >> 3];
        c00 = c00 + a0 * +D[xp >> 3];
        c01 = c01 + a0 * +D[(xp + x1) >> 3];
        c02 = c02 + a0 * +D[(xp + x2) >> 3];
        c03 = c03 + a0 * +D[(xp + x3) >> 3];
        wp = (wp + dw) | 0;
        xp = (xp + dx) | 0;
      }
    }
    x1 = soj << SHIFT;
    x2 = x1 << 1;
    x3 = (x1 + x2) | 0;
    r = (outAt + (((imul(line, soo) | 0) + (imul(j, soj) | 0)) << SHIFT)) | 0;
    F[r >> SHIFT] = c00;
    F[(r + x1) >> SHIFT] = c01;
    F[(r + x2) >> SHIFT] = c02;
    F[(r + x3) >> SHIFT] = c03;
  }

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
    if ((h | 0) == 4) {
      for (; ((j + 4) | 0) <= (j1 | 0); j = (j + 4) | 0) tile4(o, line, t, j);
    } else if ((h | 0) == 2) {
      for (; ((j + 4) | 0) <= (j1 | 0); j = (j + 4) | 0) tile2(o, line, t, j);
    } else {
      for (; ((j + 4) | 0) <= (j1 | 0); j = (j + 4) | 0) tile1(o, line, t, j);
    }
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

function compile(float: "Float32Array" | "Float64Array", shift: number): SpmmModule {
  const src = TEMPLATE.replaceAll("FLOAT_ARRAY", float).replaceAll("SHIFT", String(shift));
  return new Function(src)() as SpmmModule;
}

/** The float32 and float64 module functions (exported for the validation test). */
export const spmmModules = {
  f32: compile("Float32Array", 2),
  f64: compile("Float64Array", 3),
};
