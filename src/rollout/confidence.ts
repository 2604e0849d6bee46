/** The statistics behind "is this breach real?": one-sided normal quantiles and Wilson score bounds for a proportion. */

/**
 * z such that P(Z <= z) = confidence, by bisection on the normal CDF. Called
 * once per config, not per verdict. confidence 0.5 gives z = 0, which turns
 * every bound below into the observed proportion itself.
 */
export function zForConfidence(confidence: number): number {
  if (confidence <= 0.5) return 0
  let lo = 0
  let hi = 10
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2
    if (normalCdf(mid) < confidence) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2
  const t = 1 / (1 + 0.3275911 * x)
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
  const erf = 1 - poly * Math.exp(-x * x)
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2
}

/**
 * Wilson score interval of k successes in n trials: unlike the normal
 * approximation it stays inside [0, 1] and behaves with k = 0 or few trials,
 * which is exactly the regime of a canary at 5% with 20 requests.
 */
export function wilsonBounds(k: number, n: number, z: number): { readonly lower: number; readonly upper: number } {
  if (n <= 0) return { lower: 0, upper: 1 }
  const p = k / n
  if (z === 0) return { lower: p, upper: p }
  const z2 = z * z
  const denominator = 1 + z2 / n
  const center = (p + z2 / (2 * n)) / denominator
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denominator
  return { lower: Math.max(0, center - half), upper: Math.min(1, center + half) }
}

/**
 * Lower confidence bound of p1 - p2 (Newcombe's hybrid score method, built
 * from the two Wilson intervals).
 */
export function differenceLowerBound(k1: number, n1: number, k2: number, n2: number, z: number): number {
  const p1 = k1 / n1
  const p2 = k2 / n2
  if (z === 0) return p1 - p2
  const a = wilsonBounds(k1, n1, z)
  const b = wilsonBounds(k2, n2, z)
  return p1 - p2 - Math.sqrt((p1 - a.lower) ** 2 + (b.upper - p2) ** 2)
}
