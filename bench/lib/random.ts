/** Seeded generators for the bench: every run draws the same values. */

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** mulberry32 with the seed scrambled first (murmur3's fmix32): adjacent seeds give correlated streams otherwise. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b)
  a = Math.imul(a ^ (a >>> 13), 0xc2b2ae35)
  return mulberry32((a ^ (a >>> 16)) >>> 0)
}

/** Trials up to and including the first success of Bernoulli(p) trials, p in (0, 1]. */
export function geometric(rng: () => number, p: number): number {
  if (p >= 1) return 1
  if (!(p > 0)) return Number.POSITIVE_INFINITY
  return Math.floor(Math.log(1 - rng()) / Math.log1p(-p)) + 1
}

/** Successes in n Bernoulli(p) trials, exactly: geometric jumps from one success to the next, O(n·min(p, 1-p) + 1) draws. */
export function binomial(rng: () => number, n: number, p: number): number {
  if (n <= 0 || !(p > 0)) return 0
  if (p >= 1) return n
  if (p > 0.5) return n - binomial(rng, n, 1 - p)
  let successes = 0
  let at = 0
  for (;;) {
    at += geometric(rng, p)
    if (at > n) return successes
    successes++
  }
}
