// Which kernels run the float32 products: the asm.js/JavaScript ones (the reference, and the
// default) or the WebAssembly SIMD ones. Chosen per call (`kernels` option), per pool
// (`createPool({ kernels })`), or for the whole process with TESSERA_KERNELS=asm|wasm, in that
// order of precedence. Float64 products always run the asm.js kernels. Two switches refine the
// wasm path without being paths of their own: TESSERA_WASM_FMA (the fused micro-kernel) and
// TESSERA_WINOGRAD (the 3x3 and 5x5 convolutions' Winograd route, on unless "0").

export type KernelPath = "asm" | "wasm";
const PATHS: readonly string[] = ["asm", "wasm"];

/** Throws unless `v` is a kernel path; `where` names the option or variable. */
export function checkKernelPath(where: string, v: unknown): asserts v is KernelPath {
  if (!PATHS.includes(v as string))
    throw new RangeError(`${where} must be "asm" or "wasm", got ${JSON.stringify(v)}`);
}

/** The path TESSERA_KERNELS selects in `env` ("asm" when unset or empty). */
export function kernelsFromEnv(env: Record<string, string | undefined>): KernelPath {
  const v = env.TESSERA_KERNELS;
  if (v === undefined || v === "") return "asm";
  checkKernelPath("TESSERA_KERNELS", v);
  return v;
}

let fromProcess: KernelPath | undefined;
/** The process default: TESSERA_KERNELS, read once. */
export function defaultKernels(): KernelPath {
  return (fromProcess ??= kernelsFromEnv(process.env));
}

/**
 * The path a call runs: its own `kernels` option (checked, named after `fn`), else the pool's,
 * else the process default.
 */
export function resolveKernels(
  fn: string,
  kernels: KernelPath | undefined,
  pool: { readonly kernels: KernelPath } | undefined,
): KernelPath {
  if (kernels === undefined) return pool?.kernels ?? defaultKernels();
  checkKernelPath(`${fn}: options.kernels`, kernels);
  return kernels;
}

/**
 * Whether the WebAssembly GEMM micro-kernel uses relaxed SIMD's fused multiply-add
 * (TESSERA_WASM_FMA=1 in `env`; "0", "" or unset: separate multiply and add). An option beside
 * the `wasm` path rather than a third path: only the micro-kernel's rounding changes (every
 * kernel choice, pool job and recorded `kernels` field stays "wasm"), so results computed with
 * it must say so where they are recorded (the benchmarks print "wasm+fma").
 */
export function wasmFmaFromEnv(env: Record<string, string | undefined>): boolean {
  const v = env.TESSERA_WASM_FMA;
  if (v === undefined || v === "" || v === "0") return false;
  if (v === "1") return true;
  throw new RangeError(`TESSERA_WASM_FMA must be "1" or "0", got ${JSON.stringify(v)}`);
}

let fmaFromProcess: boolean | undefined;
/**
 * The process default: TESSERA_WASM_FMA, read once. Read in every thread (workers inherit the
 * environment), so a pool's workers run the same micro-kernel as its caller.
 */
export function defaultWasmFma(): boolean {
  return (fmaFromProcess ??= wasmFmaFromEnv(process.env));
}

/**
 * Whether the wasm path's eligible 3x3 and 5x5 convolutions take the Winograd F(2x2, r x r)
 * route (wasm-winograd.ts) when a call's options do not say: TESSERA_WINOGRAD "1", "" or unset
 * yes, "0" no (the direct product, whose bits are the composed im2col + GEMM calls'). The route
 * changes the float32 roundoff of those layers' products, so a recorded run on the wasm path
 * names it (the epoch benchmarks print "no Winograd" when it is off).
 */
export function winogradFromEnv(env: Record<string, string | undefined>): boolean {
  const v = env.TESSERA_WINOGRAD;
  if (v === undefined || v === "" || v === "1") return true;
  if (v === "0") return false;
  throw new RangeError(`TESSERA_WINOGRAD must be "1" or "0", got ${JSON.stringify(v)}`);
}

let winogradFromProcess: boolean | undefined;
/** The process default: TESSERA_WINOGRAD, read once (the route is chosen on the calling thread). */
export function defaultWinograd(): boolean {
  return (winogradFromProcess ??= winogradFromEnv(process.env));
}
