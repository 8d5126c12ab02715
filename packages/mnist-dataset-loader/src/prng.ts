// Tiny seeded generators, so the loader needs none of our other packages. Everything is 32-bit
// integer arithmetic (Math.imul, >>> 0), hence bit-identical on every platform and engine.

/**
 * splitmix32 finaliser (the 32-bit variant of Steele, Lea & Flood's SplitMix mixing, constants
 * from Chris Wellons' "hash prospector"): a bijective hash of a uint32. Used to turn (seed,
 * epoch) into a well-spread generator state so nearby seeds give unrelated streams.
 */
export function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * mulberry32 (Tommy Ettinger, public domain): a 32-bit state generator with period 2^32,
 * plenty for shuffling datasets of up to millions of items. Returns a function producing
 * uint32 values.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Uniform integer in [0, n) from a uint32 source, by rejection (no modulo bias). n in 1..2^32. */
export function randomBelow(next: () => number, n: number): number {
  // Largest multiple of n that fits in 2^32; draws at or above it are rejected.
  const limit = 2 ** 32 - (2 ** 32 % n);
  for (;;) {
    const x = next();
    if (x < limit) return x % n;
  }
}

/** The generator used for epoch `epoch` of seed `seed`: mulberry32 seeded by a hash of both. */
export function epochGenerator(seed: number, epoch: number): () => number {
  return mulberry32(mix32(mix32(seed >>> 0) ^ Math.imul(epoch >>> 0, 0x9e3779b9)) ^ (epoch >>> 0));
}
