// Which kernels run the float32 products: the asm.js/JavaScript ones (the reference, and the
// default) or the WebAssembly SIMD ones. Chosen per call (`kernels` option), per pool
// (`createPool({ kernels })`), or for the whole process with TESSERA_KERNELS=asm|wasm, in that
// order of precedence. Float64 products always run the asm.js kernels.

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
