// The sampled product of sampled-kernel.ts (blocks larger than 1x1) in the asm.js subset, for
// the reason spmm-asm.ts gives: V8 compiles it ahead of time without the per-element checks of
// typed-array access. Same sub-tiles (4x4, 2x2, then single elements) and the same float64 sums
// over k in order, so it gives the JavaScript kernel's bits.
//
// Everything lives in the thread's heap, laid out by sampled-kernel.ts:
//   header (Int32, at byte 0): the scalar arguments, see SAMPLED_HEADER;
//   indptr, indices (Int32): the pattern;
//   a, b (float): the operands in their caller's layouts (strides sai/sap, sbp/sbj);
//   out (float): the block data, R*C values per stored slot; each chunk writes its slots.
// Float32 and float64 versions come from one text (element shift 2 or 3).

/** Int32 header slots (the layout both sides agree on). */
export const SAMPLED_HEADER = {
  R: 0,
  C: 1,
  rows: 2,
  cols: 3,
  sai: 4,
  sap: 5,
  sbp: 6,
  sbj: 7,
  k: 8,
  ptrAt: 9,
  idxAt: 10,
  aAt: 11,
  bAt: 12,
  outAt: 13,
} as const;
/** Bytes reserved for the header at the start of the heap. */
export const SAMPLED_HEADER_BYTES = 64;

const TEMPLATE = `return function TesseraSampledKernel(stdlib, foreign, heap) {
  "use asm";
  var I = new stdlib.Int32Array(heap);
  var F = new stdlib.FLOAT_ARRAY(heap);
  var imul = stdlib.Math.imul;
  var R = 0, C = 0, rows = 0, cols = 0, sai = 0, sap = 0, sbp = 0, sbj = 0, k = 0;
  var ptrAt = 0, idxAt = 0, aAt = 0, bAt = 0, outAt = 0;

  function readHeader() {
    R = I[0] | 0;
    C = I[1] | 0;
    rows = I[2] | 0;
    cols = I[3] | 0;
    sai = I[4] | 0;
    sap = I[5] | 0;
    sbp = I[6] | 0;
    sbj = I[7] | 0;
    k = I[8] | 0;
    ptrAt = I[9] | 0;
    idxAt = I[10] | 0;
    aAt = I[11] | 0;
    bAt = I[12] | 0;
    outAt = I[13] | 0;
  }

  /* Byte offsets of A(i, 0) and B(0, j). */
  function aRow(i) {
    i = i | 0;
    return (aAt + ((imul(i, sai) | 0) << SHIFT)) | 0;
  }
  function bCol(j) {
    j = j | 0;
    return (bAt + ((imul(j, sbj) | 0) << SHIFT)) | 0;
  }

  /* out[o .. o+3] over 4 rows (row stride C) = A(i..i+3, :)·B(:, j..j+3); ap, bp, o are byte offsets. */
  function sub4(ap, bp, o) {
    ap = ap | 0;
    bp = bp | 0;
    o = o | 0;
    var p = 0, a1 = 0, a2 = 0, a3 = 0, b1 = 0, b2 = 0, b3 = 0, da = 0, db = 0, e = 0, row = 0;
    var c00 = 0.0, c01 = 0.0, c02 = 0.0, c03 = 0.0, c10 = 0.0, c11 = 0.0, c12 = 0.0, c13 = 0.0;
    var c20 = 0.0, c21 = 0.0, c22 = 0.0, c23 = 0.0, c30 = 0.0, c31 = 0.0, c32 = 0.0, c33 = 0.0;
    var x0 = 0.0, x1 = 0.0, x2 = 0.0, x3 = 0.0, y0 = 0.0, y1 = 0.0, y2 = 0.0, y3 = 0.0;
    a1 = sai << SHIFT;
    a2 = a1 << 1;
    a3 = (a1 + a2) | 0;
    b1 = sbj << SHIFT;
    b2 = b1 << 1;
    b3 = (b1 + b2) | 0;
    da = sap << SHIFT;
    db = sbp << SHIFT;
    for (p = 0; (p | 0) < (k | 0); p = (p + 1) | 0) {
      x0 = +F[ap >> SHIFT];
      x1 = +F[(ap + a1) >> SHIFT];
      x2 = +F[(ap + a2) >> SHIFT];
      x3 = +F[(ap + a3) >> SHIFT];
      y0 = +F[bp >> SHIFT];
      y1 = +F[(bp + b1) >> SHIFT];
      y2 = +F[(bp + b2) >> SHIFT];
      y3 = +F[(bp + b3) >> SHIFT];
      c00 = c00 + x0 * y0;
      c01 = c01 + x0 * y1;
      c02 = c02 + x0 * y2;
      c03 = c03 + x0 * y3;
      c10 = c10 + x1 * y0;
      c11 = c11 + x1 * y1;
      c12 = c12 + x1 * y2;
      c13 = c13 + x1 * y3;
      c20 = c20 + x2 * y0;
      c21 = c21 + x2 * y1;
      c22 = c22 + x2 * y2;
      c23 = c23 + x2 * y3;
      c30 = c30 + x3 * y0;
      c31 = c31 + x3 * y1;
      c32 = c32 + x3 * y2;
      c33 = c33 + x3 * y3;
      ap = (ap + da) | 0;
      bp = (bp + db) | 0;
    }
    e = 1 << SHIFT;
    row = C << SHIFT;
    F[o >> SHIFT] = c00;
    F[(o + e) >> SHIFT] = c01;
    F[(o + (e << 1)) >> SHIFT] = c02;
    F[(o + imul(e, 3)) >> SHIFT] = c03;
    o = (o + row) | 0;
    F[o >> SHIFT] = c10;
    F[(o + e) >> SHIFT] = c11;
    F[(o + (e << 1)) >> SHIFT] = c12;
    F[(o + imul(e, 3)) >> SHIFT] = c13;
    o = (o + row) | 0;
    F[o >> SHIFT] = c20;
    F[(o + e) >> SHIFT] = c21;
    F[(o + (e << 1)) >> SHIFT] = c22;
    F[(o + imul(e, 3)) >> SHIFT] = c23;
    o = (o + row) | 0;
    F[o >> SHIFT] = c30;
    F[(o + e) >> SHIFT] = c31;
    F[(o + (e << 1)) >> SHIFT] = c32;
    F[(o + imul(e, 3)) >> SHIFT] = c33;
  }

  /* The 2x2 sub-tile. */
  function sub2(ap, bp, o) {
    ap = ap | 0;
    bp = bp | 0;
    o = o | 0;
    var p = 0, a1 = 0, b1 = 0, da = 0, db = 0, e = 0, row = 0;
    var c00 = 0.0, c01 = 0.0, c10 = 0.0, c11 = 0.0, x0 = 0.0, x1 = 0.0, y0 = 0.0, y1 = 0.0;
    a1 = sai << SHIFT;
    b1 = sbj << SHIFT;
    da = sap << SHIFT;
    db = sbp << SHIFT;
    for (p = 0; (p | 0) < (k | 0); p = (p + 1) | 0) {
      x0 = +F[ap >> SHIFT];
      x1 = +F[(ap + a1) >> SHIFT];
      y0 = +F[bp >> SHIFT];
      y1 = +F[(bp + b1) >> SHIFT];
      c00 = c00 + x0 * y0;
      c01 = c01 + x0 * y1;
      c10 = c10 + x1 * y0;
      c11 = c11 + x1 * y1;
      ap = (ap + da) | 0;
      bp = (bp + db) | 0;
    }
    e = 1 << SHIFT;
    row = C << SHIFT;
    F[o >> SHIFT] = c00;
    F[(o + e) >> SHIFT] = c01;
    F[(o + row) >> SHIFT] = c10;
    F[(o + row + e) >> SHIFT] = c11;
  }

  /* One element. */
  function one(ap, bp, o) {
    ap = ap | 0;
    bp = bp | 0;
    o = o | 0;
    var p = 0, da = 0, db = 0;
    var acc = 0.0;
    da = sap << SHIFT;
    db = sbp << SHIFT;
    for (p = 0; (p | 0) < (k | 0); p = (p + 1) | 0) {
      acc = acc + +F[ap >> SHIFT] * +F[bp >> SHIFT];
      ap = (ap + da) | 0;
      bp = (bp + db) | 0;
    }
    F[o >> SHIFT] = acc;
  }

  /* Fills the out blocks of slots [p0, p1); br is the block row of slot p0. */
  function run(p0, p1, br) {
    p0 = p0 | 0;
    p1 = p1 | 0;
    br = br | 0;
    var p = 0, r0 = 0, c0 = 0, hr = 0, wc = 0, base = 0, e = 0, rc = 0, r = 0, c = 0, q = 0;
    var o = 0;
    readHeader();
    rc = imul(R, C) | 0;
    for (p = p0; (p | 0) < (p1 | 0); p = (p + 1) | 0) {
      while ((I[(ptrAt + ((br + 1) << 2)) >> 2] | 0) <= (p | 0)) br = (br + 1) | 0;
      r0 = imul(br, R) | 0;
      c0 = imul(I[(idxAt + (p << 2)) >> 2] | 0, C) | 0;
      hr = (rows - r0) | 0;
      if ((hr | 0) > (R | 0)) hr = R;
      wc = (cols - c0) | 0;
      if ((wc | 0) > (C | 0)) wc = C;
      base = (outAt + ((imul(p, rc) | 0) << SHIFT)) | 0;
      for (e = 0; (e | 0) < (rc | 0); e = (e + 1) | 0) F[(base + (e << SHIFT)) >> SHIFT] = 0.0;
      for (r = 0; ((r + 4) | 0) <= (hr | 0); r = (r + 4) | 0) {
        o = (base + ((imul(r, C) | 0) << SHIFT)) | 0;
        for (c = 0; ((c + 4) | 0) <= (wc | 0); c = (c + 4) | 0)
          sub4(aRow((r0 + r) | 0) | 0, bCol((c0 + c) | 0) | 0, (o + (c << SHIFT)) | 0);
        for (; (c | 0) < (wc | 0); c = (c + 1) | 0)
          for (q = 0; (q | 0) < 4; q = (q + 1) | 0)
            one(aRow((r0 + r + q) | 0) | 0, bCol((c0 + c) | 0) | 0, (o + (((imul(q, C) | 0) + c) << SHIFT)) | 0);
      }
      for (; ((r + 2) | 0) <= (hr | 0); r = (r + 2) | 0) {
        o = (base + ((imul(r, C) | 0) << SHIFT)) | 0;
        for (c = 0; ((c + 2) | 0) <= (wc | 0); c = (c + 2) | 0)
          sub2(aRow((r0 + r) | 0) | 0, bCol((c0 + c) | 0) | 0, (o + (c << SHIFT)) | 0);
        for (; (c | 0) < (wc | 0); c = (c + 1) | 0)
          for (q = 0; (q | 0) < 2; q = (q + 1) | 0)
            one(aRow((r0 + r + q) | 0) | 0, bCol((c0 + c) | 0) | 0, (o + (((imul(q, C) | 0) + c) << SHIFT)) | 0);
      }
      for (; (r | 0) < (hr | 0); r = (r + 1) | 0) {
        o = (base + ((imul(r, C) | 0) << SHIFT)) | 0;
        for (c = 0; (c | 0) < (wc | 0); c = (c + 1) | 0)
          one(aRow((r0 + r) | 0) | 0, bCol((c0 + c) | 0) | 0, (o + (c << SHIFT)) | 0);
      }
    }
  }

  return { run: run };
};`;

export interface SampledKernel {
  /** Fills the out blocks of slots [p0, p1) from the arrays in the heap; br is slot p0's block row. */
  run(p0: number, p1: number, br: number): void;
}

type SampledModule = (
  stdlib: typeof globalThis,
  foreign: object,
  heap: ArrayBuffer,
) => SampledKernel;

function compile(float: "Float32Array" | "Float64Array", shift: number): SampledModule {
  const src = TEMPLATE.replaceAll("FLOAT_ARRAY", float).replaceAll("SHIFT", String(shift));
  return new Function(src)() as SampledModule;
}

/** The float32 and float64 module functions (exported for the validation test). */
export const sampledModules = {
  f32: compile("Float32Array", 2),
  f64: compile("Float64Array", 3),
};
