// Seeded pseudo-random generator: xoshiro128** (Blackman & Vigna, 2018) with its 128-bit
// state filled from a splitmix32-style hash of a key.
//
// Why this design:
// - Only 32-bit integer operations (Math.imul, shifts, xor, `>>> 0`) touch the state, so the
//   stream is bit-identical on every JavaScript engine and platform.
// - Floats are built from integer bits by exact double arithmetic (no rounding choices).
// - normal() uses the Marsaglia polar method with a logarithm computed from +, -, *, / and
//   sqrt only (IEEE-754 requires all of these to be correctly rounded), because ECMAScript
//   lets Math.log/Math.cos differ between engines.
// - Independent streams come from keys, not from the parent's draws: a generator has a key
//   (the seed words plus the path of spawn indices that produced it). fork() hands out the
//   child for the next spawn index; the child's key is the parent's key extended with that
//   index, hashed into a fresh xoshiro state. Forking never consumes the parent's numbers,
//   so adding a dropout stream does not shift the initialisation stream, and children of
//   children are keyed apart from everything else (the same idea as NumPy's SeedSequence).

const TWO32 = 4294967296;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** murmur3's 32-bit finaliser: a bijective avalanche mix of one word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes a key (list of 32-bit words) into four state words. Each output word absorbs every
 * key word through fmix32 with a splitmix32-style golden-ratio increment, and a distinct
 * lane constant, so keys differing in any word give unrelated states.
 */
function stateFromKey(key: readonly number[]): Uint32Array {
  const s = new Uint32Array(4);
  for (let lane = 0; lane < 4; lane++) {
    let h = fmix32(Math.imul(lane + 1, 0x9e3779b9) ^ key.length);
    for (let i = 0; i < key.length; i++) {
      h = fmix32((h + 0x9e3779b9 + Math.imul(key[i]! ^ 0x7f4a7c15, 0x6c8e9cf5)) | 0);
    }
    s[lane] = h;
  }
  if ((s[0]! | s[1]! | s[2]! | s[3]!) === 0) s[0] = 1; // xoshiro's one forbidden state
  return s;
}

// Natural logarithm from IEEE-754 basic operations only (see the header comment).
const LN2 = 0.6931471805599453;
const SQRT2 = 1.4142135623730951;
const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian?

/** ln(x), accurate to about 1 ulp; deterministic everywhere (0 -> -Infinity, x < 0 -> NaN). */
export function portableLog(x: number): number {
  if (!(x > 0) || x === Infinity) return x === 0 ? -Infinity : x === Infinity ? Infinity : NaN;
  f64[0] = x;
  let e = ((u32[HI]! >>> 20) & 0x7ff) - 1023;
  if (e === -1023) {
    // subnormal: scale into the normal range first
    f64[0] = x * 18014398509481984; // 2^54
    e = ((u32[HI]! >>> 20) & 0x7ff) - 1023 - 54;
  }
  // force the exponent field to 0 so f64[0] = mantissa m in [1, 2)
  u32[HI] = (u32[HI]! & 0x800fffff) | 0x3ff00000;
  let m = f64[0]!;
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  // ln(m) = 2 atanh(z), z = (m-1)/(m+1), |z| < 0.1716: 11 odd terms reach double precision
  const z = (m - 1) / (m + 1);
  const z2 = z * z;
  let t = 1 / 23;
  for (let k = 21; k >= 1; k -= 2) t = 1 / k + z2 * t;
  return e * LN2 + 2 * z * t;
}

/** The full, restorable state of a Generator (for checkpoints). */
export interface GeneratorState {
  key: number[];
  spawned: number;
  s: [number, number, number, number];
  spare: number | null;
}

export class Generator {
  private readonly key: number[];
  private spawned = 0;
  private readonly s: Uint32Array;
  private spare: number | null = null;

  /**
   * @param seed a non-negative safe integer; both 32-bit halves are used.
   */
  constructor(seed: number) {
    if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
      throw new RangeError(
        `Generator: seed must be a non-negative safe integer (0..2^53-1), got ${String(seed)}`,
      );
    }
    this.key = [seed >>> 0, Math.floor(seed / TWO32) >>> 0];
    this.s = stateFromKey(this.key);
  }

  private static fromKey(key: number[]): Generator {
    const g = Object.create(Generator.prototype) as Generator;
    const w = g as unknown as {
      key: number[];
      spawned: number;
      s: Uint32Array;
      spare: number | null;
    };
    w.key = key;
    w.spawned = 0;
    w.s = stateFromKey(key);
    w.spare = null;
    return g;
  }

  /** Next 32 random bits as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const s = this.s;
    const s0 = s[0]!,
      s1 = s[1]!,
      s2 = s[2]!,
      s3 = s[3]!;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    s[1] = s1 ^ n2;
    s[0] = s0 ^ n3;
    s[2] = n2 ^ t;
    s[3] = rotl(n3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (two draws). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform float32-exact value in [0, 1) with 24 random bits (one draw); never rounds to 1. */
  nextFloat32(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Standard normal N(mean, std^2) by the Marsaglia polar method (pairs are cached). */
  normal(mean = 0, std = 1): number {
    let z: number;
    if (this.spare !== null) {
      z = this.spare;
      this.spare = null;
    } else {
      let u: number, v: number, q: number;
      do {
        u = 2 * this.nextFloat() - 1;
        v = 2 * this.nextFloat() - 1;
        q = u * u + v * v;
      } while (q >= 1 || q === 0);
      const f = Math.sqrt((-2 * portableLog(q)) / q);
      this.spare = v * f;
      z = u * f;
    }
    return mean + std * z;
  }

  /** Uniform integer in [lo, hi), unbiased (rejection sampling); hi - lo must be in 1..2^32. */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || hi - lo < 1 || hi - lo > TWO32) {
      throw new RangeError(
        `Generator.int: need integers with 1 <= hi - lo <= 2^32, got lo=${String(lo)}, hi=${String(hi)}`,
      );
    }
    const range = hi - lo;
    const limit = TWO32 - (TWO32 % range); // accept u < limit: a whole number of ranges
    for (;;) {
      const u = this.nextUint32();
      if (u < limit) return lo + (u % range);
    }
  }

  /** Shuffles `array` in place (Fisher-Yates, drawing from the end) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > 0x7fffffff) {
      throw new RangeError(
        `Generator.permutation: n must be an integer in 0..2^31-1, got ${String(n)}`,
      );
    }
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /**
   * A child generator with its own stream, keyed by this generator's key and the next spawn
   * index. Does not consume numbers from this generator.
   */
  fork(): Generator {
    const child = Generator.fromKey([...this.key, this.spawned]);
    this.spawned++;
    return child;
  }

  /** `n` children, equal to calling fork() n times. */
  split(n: number): Generator[] {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`Generator.split: n must be a non-negative integer, got ${String(n)}`);
    }
    const out: Generator[] = [];
    for (let i = 0; i < n; i++) out.push(this.fork());
    return out;
  }

  /** An independent copy that will produce exactly the same numbers as this one. */
  clone(): Generator {
    return Generator.fromState(this.getState());
  }

  getState(): GeneratorState {
    const s = this.s;
    return {
      key: [...this.key],
      spawned: this.spawned,
      s: [s[0]!, s[1]!, s[2]!, s[3]!],
      spare: this.spare,
    };
  }

  static fromState(state: GeneratorState): Generator {
    const ok =
      state !== null &&
      typeof state === "object" &&
      Array.isArray(state.key) &&
      state.key.every((w) => Number.isInteger(w) && w >= 0 && w < TWO32) &&
      Number.isSafeInteger(state.spawned) &&
      state.spawned >= 0 &&
      Array.isArray(state.s) &&
      state.s.length === 4 &&
      state.s.every((w) => Number.isInteger(w) && w >= 0 && w < TWO32) &&
      state.s.some((w) => w !== 0) &&
      (state.spare === null || typeof state.spare === "number");
    if (!ok) {
      throw new RangeError(
        "Generator.fromState: expected {key: uint32[], spawned: int >= 0, s: 4 uint32 not all 0, spare: number|null}",
      );
    }
    const g = Generator.fromKey([...state.key]);
    const w = g as unknown as { spawned: number; s: Uint32Array; spare: number | null };
    w.spawned = state.spawned;
    w.s.set(state.s);
    w.spare = state.spare;
    return g;
  }
}

/** Shorthand for `new Generator(seed)`. */
export function createGenerator(seed: number): Generator {
  return new Generator(seed);
}
