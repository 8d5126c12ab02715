// A small WebAssembly module builder: the kernels are emitted as binary modules at load time
// from TypeScript, so the repository holds no .wasm files and needs no toolchain.
//
// It covers what the kernels use: one imported memory (shared or not), functions with i32 /
// f32 / f64 / v128 locals, structured control flow, integer arithmetic, scalar and 128-bit SIMD
// loads and stores, and f32x4 arithmetic. Each instruction is a typed method of `Code`, so a
// kernel generator reads like the wasm text format, and an opcode is written in one place.
// Binary format: https://webassembly.github.io/spec/core/binary/ (SIMD: opcode prefix 0xfd,
// then the SIMD opcode as an unsigned LEB128).
import { setFlagsFromString } from "node:v8";

/** Value types (binary encodings). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128 of a non-negative integer below 2^32. */
export function uleb(v: number): number[] {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new RangeError(`uleb: ${v} is not an unsigned 32-bit integer`);
  const out: number[] = [];
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a 32-bit integer. */
export function sleb(v: number): number[] {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff)
    throw new RangeError(`sleb: ${v} is not a signed 32-bit integer`);
  const out: number[] = [];
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => {
  const b = utf8(s);
  return [...uleb(b.length), ...b];
};

/** A local variable (or parameter) of the function being written. */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** A label of an enclosing block or loop, for br / br_if. */
export interface Label {
  readonly depth: number;
}

/** An n-tuple of T (for destructuring a function's parameters with their count checked). */
export type Tuple<T, N extends number, R extends T[] = []> = R["length"] extends N
  ? R
  : Tuple<T, N, [...R, T]>;

/**
 * The body of one function, written instruction by instruction. Locals are declared up front
 * with `local(type)`; `block`/`loop` take a callback for the body and give it the label to
 * branch to, so every block is closed and branch depths are computed, never counted by hand.
 */
export class Code {
  private readonly bytes: number[] = [];
  private readonly declared: ValType[] = [];
  private depth = 0;
  readonly params: Local[];

  constructor(params: readonly ValType[]) {
    this.params = params.map((type, index) => ({ index, type }));
  }

  /** The parameters as an n-tuple; throws unless the function has exactly n. */
  paramTuple<N extends number>(n: N): Tuple<Local, N> {
    if (this.params.length !== n)
      throw new Error(
        `Code.paramTuple: the function has ${this.params.length} parameters, not ${n}`,
      );
    return [...this.params] as Tuple<Local, N>;
  }

  /** Declares a new local of `type` (zero-initialised by the engine). */
  local(type: ValType): Local {
    const l = { index: this.params.length + this.declared.length, type };
    this.declared.push(type);
    return l;
  }

  private op(...b: number[]): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }
  private simd(code: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(code), ...imm);
  }
  /** memarg: alignment exponent (a hint) and constant byte offset. */
  private mem(alignLog2: number, offset: number): number[] {
    return [...uleb(alignLog2), ...uleb(offset)];
  }

  get(l: Local): this {
    return this.op(0x20, ...uleb(l.index));
  }
  set(l: Local): this {
    return this.op(0x21, ...uleb(l.index));
  }
  tee(l: Local): this {
    return this.op(0x22, ...uleb(l.index));
  }

  /** `block` (a forward branch target): br to its label jumps past its end. */
  block(body: (out: Label) => void): this {
    this.op(0x02, 0x40);
    this.depth++;
    body({ depth: this.depth });
    this.depth--;
    return this.op(0x0b);
  }
  /** `loop`: br to its label jumps back to its start. */
  loop(body: (top: Label) => void): this {
    this.op(0x03, 0x40);
    this.depth++;
    body({ depth: this.depth });
    this.depth--;
    return this.op(0x0b);
  }
  /** `if (pop i32) { then } else { otherwise }`, both arms leaving the stack as they found it. */
  ifElse(then: () => void, otherwise: () => void): this {
    this.op(0x04, 0x40);
    this.depth++;
    then();
    this.op(0x05);
    otherwise();
    this.depth--;
    return this.op(0x0b);
  }
  /** Branch to `label` when the i32 on the stack is non-zero. */
  brIf(label: Label): this {
    return this.op(0x0d, ...uleb(this.depth - label.depth));
  }
  br(label: Label): this {
    return this.op(0x0c, ...uleb(this.depth - label.depth));
  }

  i32Const(v: number): this {
    return this.op(0x41, ...sleb(v));
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Sub(): this {
    return this.op(0x6b);
  }
  i32Mul(): this {
    return this.op(0x6c);
  }
  i32Shl(): this {
    return this.op(0x74);
  }
  i32ShrU(): this {
    return this.op(0x76);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32GeU(): this {
    return this.op(0x4f);
  }
  i32And(): this {
    return this.op(0x71);
  }
  i32Or(): this {
    return this.op(0x72);
  }
  i32Ne(): this {
    return this.op(0x47);
  }
  i32Eqz(): this {
    return this.op(0x45);
  }
  /** Pops c, then b, then a: a when c != 0, else b. */
  select(): this {
    return this.op(0x1b);
  }

  i32Load(offset = 0): this {
    return this.op(0x28, ...this.mem(2, offset));
  }
  f32Load(offset = 0): this {
    return this.op(0x2a, ...this.mem(2, offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, ...this.mem(2, offset));
  }
  f32Const(v: number): this {
    return this.op(0x43, ...new Uint8Array(new Float32Array([v]).buffer));
  }
  f32Add(): this {
    return this.op(0x92);
  }
  f64Const(v: number): this {
    return this.op(0x44, ...new Uint8Array(new Float64Array([v]).buffer));
  }
  f64Add(): this {
    return this.op(0xa0);
  }
  /** The f32 on the stack as an f64 (exact). */
  f64PromoteF32(): this {
    return this.op(0xbb);
  }
  f64Store(offset = 0): this {
    return this.op(0x39, ...this.mem(3, offset));
  }
  /** The f32's bits as an i32 (i32.reinterpret_f32). */
  i32ReinterpretF32(): this {
    return this.op(0xbc);
  }
  /** The i32's bits as an f32 (f32.reinterpret_i32). */
  f32ReinterpretI32(): this {
    return this.op(0xbe);
  }
  /** a > b (ordered: false when either is NaN), as i32. */
  f32Gt(): this {
    return this.op(0x5e);
  }
  i32Store(offset = 0): this {
    return this.op(0x36, ...this.mem(2, offset));
  }

  v128Load(offset = 0): this {
    return this.simd(0x00, ...this.mem(4, offset));
  }
  /** Loads one f32 (or i32) into all four lanes. */
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, ...this.mem(2, offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, ...this.mem(4, offset));
  }
  /** v128.store64_lane: pops an address and a vector, stores 64-bit lane `lane` (0 or 1). */
  v128Store64Lane(lane: 0 | 1, offset = 0): this {
    return this.simd(0x5b, ...this.mem(3, offset), lane);
  }
  /** v128.const with all bytes zero (0.0 in every f32 lane). */
  v128Zero(): this {
    return this.simd(0x0c, ...new Array<number>(16).fill(0));
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  /** v128.const with the four given i32 lanes. */
  v128ConstI32(lanes: readonly [number, number, number, number]): this {
    return this.simd(0x0c, ...new Uint8Array(Int32Array.from(lanes).buffer));
  }
  i32x4Splat(): this {
    return this.simd(0x11);
  }
  i32x4Add(): this {
    return this.simd(0xae);
  }
  /** Lane-wise a == b: all ones where equal, else zero. */
  i32x4Eq(): this {
    return this.simd(0x37);
  }
  /** 1 when every i32 lane is non-zero, else 0. */
  i32x4AllTrue(): this {
    return this.simd(0xa3);
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  f32x4Sub(): this {
    return this.simd(0xe5);
  }
  f32x4Div(): this {
    return this.simd(0xe7);
  }
  f32x4Sqrt(): this {
    return this.simd(0xe3);
  }
  /**
   * Relaxed SIMD's f32x4.relaxed_madd: pops a, b, c and pushes a·b + c, fused (one rounding) or
   * not as the engine chooses; V8 on x64 with FMA3 fuses it (vfmadd). Modules using it validate
   * only where relaxed SIMD is enabled (see enableRelaxedSimd).
   */
  f32x4RelaxedMadd(): this {
    return this.simd(0x105);
  }
  f32x4Max(): this {
    return this.simd(0xe9);
  }
  /** f64x2.promote_low_f32x4: lanes 0 and 1 of an f32x4, exactly, as two doubles. */
  f64x2PromoteLowF32x4(): this {
    return this.simd(0x5f);
  }
  f64x2Add(): this {
    return this.simd(0xf0);
  }
  /** Lane-wise a > b: all ones where true, else zero. */
  f32x4Gt(): this {
    return this.simd(0x44);
  }
  v128And(): this {
    return this.simd(0x4e);
  }
  /**
   * i8x16.shuffle by 32-bit lanes: pops a, b and pushes [lanes[0], ..., lanes[3]] picked from
   * a's lanes (0-3) and b's (4-7). On x64 V8 turns the patterns of a 4x4 transpose into single
   * unpack / move instructions.
   */
  i32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    for (const l of lanes)
      if (!Number.isInteger(l) || l < 0 || l > 7)
        throw new RangeError(
          `Code.i32x4Shuffle: lanes must be integers 0-7, got [${lanes.join(", ")}]`,
        );
    return this.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }

  /** The function body: local declarations, instructions, `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (let i = 0; i < this.declared.length;) {
      let j = i;
      while (j < this.declared.length && this.declared[j] === this.declared[i]) j++;
      groups.push([...uleb(j - i), this.declared[i]!]);
      i = j;
    }
    const body = [...vec(groups), ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

export interface MemoryImport {
  module: string;
  name: string;
  /** Initial and maximum size in 64 KiB pages. */
  initial: number;
  maximum: number;
  shared: boolean;
}

interface FunctionDef {
  name: string;
  type: number;
  code: Code;
}

/** Builds a module of exported functions over one imported memory. */
export class ModuleBuilder {
  private readonly types: number[][] = [];
  private readonly functions: FunctionDef[] = [];
  private memory: MemoryImport | undefined;

  importMemory(m: MemoryImport): this {
    this.memory = m;
    return this;
  }

  /**
   * Adds an exported function `name(params) -> results`; `write` emits its body through the
   * `Code` it is handed (parameters are `code.params`).
   */
  func(
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
    write: (code: Code) => void,
  ): this {
    const sig = [0x60, ...uleb(params.length), ...params, ...uleb(results.length), ...results];
    let type = this.types.findIndex(
      (t) => t.length === sig.length && t.every((b, i) => b === sig[i]),
    );
    if (type < 0) type = this.types.push(sig) - 1;
    const code = new Code(params);
    write(code);
    this.functions.push({ name, type, code });
    return this;
  }

  build(): Uint8Array<ArrayBuffer> {
    const section = (id: number, content: number[]): number[] =>
      content.length === 0 ? [] : [id, ...uleb(content.length), ...content];
    const m = this.memory;
    const imports =
      m === undefined
        ? []
        : vec([
            [
              ...name(m.module),
              ...name(m.name),
              0x02, // memory
              m.shared ? 0x03 : 0x01, // limits with a maximum (shared requires one)
              ...uleb(m.initial),
              ...uleb(m.maximum),
            ],
          ]);
    const bytes = [
      ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
      ...section(1, vec(this.types)),
      ...section(2, imports),
      ...section(3, vec(this.functions.map((f) => uleb(f.type)))),
      ...section(
        7,
        vec(this.functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])), // function exports
      ),
      ...section(10, vec(this.functions.map((f) => f.code.encode()))),
    ];
    return new Uint8Array(bytes);
  }
}

/** The smallest module using a v128 instruction: validates only where the engine has SIMD. */
function simdProbe(): Uint8Array<ArrayBuffer> {
  return new ModuleBuilder()
    .func("probe", [], [], (c) => {
      const v = c.local(V128);
      c.v128Zero().set(v);
    })
    .build();
}

/** True when this engine validates WebAssembly SIMD (128-bit) modules. */
export function hasWasmSimd(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(simdProbe());
}

/**
 * The smallest module using relaxed_madd: f() returns lane 0 of (1+2^-23)·(1-2^-23) + (-1), which
 * is -2^-46 when the engine fuses the multiply-add and 0 when it rounds the product first.
 */
export function relaxedProbe(): Uint8Array<ArrayBuffer> {
  const a = 1 + 2 ** -23;
  const b = 1 - 2 ** -23;
  return new ModuleBuilder()
    .func("f", [], [F32], (c) => {
      const v = c.local(V128);
      for (const x of [a, b, -1]) c.f32Const(x).f32x4Splat();
      c.f32x4RelaxedMadd().set(v);
      c.get(v).f32x4ExtractLane(0);
    })
    .build();
}

/** True when this engine validates relaxed SIMD (it is behind a flag in Node 20's V8 11.3). */
export function hasRelaxedSimd(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(relaxedProbe());
}

/**
 * Turns on relaxed SIMD where V8 has it behind --experimental-wasm-relaxed-simd (Node 20): the
 * flag is set with v8.setFlagsFromString, which node also refuses in NODE_OPTIONS. V8 flags are
 * per process, so worker threads (already running or not) see it too; modules compiled before
 * are unaffected (measured on Node 20.20.2 / V8 11.3.244.8, docs/benchmarks/epoch-profile.md).
 * Returns whether relaxed_madd fuses (true on x64 with FMA3). Throws, naming `what`, when the
 * engine still refuses relaxed SIMD.
 */
export function enableRelaxedSimd(what: string): boolean {
  if (!hasRelaxedSimd()) setFlagsFromString("--experimental-wasm-relaxed-simd");
  if (!hasRelaxedSimd())
    throw new Error(
      `${what}: this engine does not support WebAssembly relaxed SIMD (f32x4.relaxed_madd), ` +
        `even with --experimental-wasm-relaxed-simd; unset TESSERA_WASM_FMA to use the unfused kernels`,
    );
  const probe = new WebAssembly.Instance(new WebAssembly.Module(relaxedProbe()));
  return (probe.exports.f as () => number)() !== 0;
}

/**
 * Compiles generated module bytes. Throws an error naming `what` when the engine has no
 * WebAssembly SIMD (so the caller can say to use the asm.js kernels), or when the generator
 * emitted an invalid module (a bug, with the engine's own message).
 */
export function compileModule(what: string, bytes: Uint8Array<ArrayBuffer>): WebAssembly.Module {
  if (typeof WebAssembly !== "object")
    throw new Error(
      `${what}: this JavaScript engine has no WebAssembly; use the asm.js kernels (TESSERA_KERNELS=asm)`,
    );
  if (!WebAssembly.validate(bytes)) {
    if (!hasWasmSimd())
      throw new Error(
        `${what}: this engine does not support WebAssembly SIMD (v128); use the asm.js kernels (TESSERA_KERNELS=asm)`,
      );
    try {
      new WebAssembly.Module(bytes);
    } catch (e) {
      throw new Error(`${what}: the generated module is invalid: ${(e as Error).message}`);
    }
  }
  return new WebAssembly.Module(bytes);
}
