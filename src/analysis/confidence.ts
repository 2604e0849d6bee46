/** The statistics behind "is this breach real?": exact (Clopper–Pearson) one-sided bounds for a proportion, and for a difference of two. */

/**
 * One-sided bounds for k events in n trials at `confidence` (0.5..1).
 *
 * Clopper–Pearson bounds come from the binomial distribution itself (through
 * the beta distribution), so they never claim more than the data show. With a
 * canary at 5% the counts are tiny (20..100 requests, 0..3 errors), exactly
 * where the Wilson interval's normal approximation is too optimistic: it put
 * the lower bound of 2 errors in 25 at 1.13% at 99%, "proving" an error rate
 * above 1% that an exact test gives 2.6% odds of by chance; measured on the
 * decision bench, that was ~3% of healthy rollouts rolled back.
 *
 * confidence 0.5 (or below) means "as observed": both bounds are k/n.
 */
export function proportionBounds(k: number, n: number, confidence: number): { readonly lower: number; readonly upper: number } {
  if (n <= 0) return { lower: 0, upper: 1 }
  const p = k / n
  if (confidence <= 0.5) return { lower: p, upper: p }
  const alpha = 1 - confidence
  const lower = k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1)
  const upper = k === n ? 1 : betaQuantile(confidence, k + 1, n - k)
  return { lower, upper }
}

/**
 * Lower confidence bound of p1 - p2: Newcombe's hybrid method (the observed
 * difference less the combined distances to each side's own bound), here
 * built on the exact bounds above.
 */
export function differenceLowerBound(k1: number, n1: number, k2: number, n2: number, confidence: number): number {
  const p1 = k1 / n1
  const p2 = k2 / n2
  if (confidence <= 0.5) return p1 - p2
  const a = proportionBounds(k1, n1, confidence)
  const b = proportionBounds(k2, n2, confidence)
  return p1 - p2 - Math.sqrt((p1 - a.lower) ** 2 + (b.upper - p2) ** 2)
}

/** x such that I_x(a, b) = q, by bisection (60 halvings: far below any threshold's precision). */
export function betaQuantile(q: number, a: number, b: number): number {
  let lo = 0
  let hi = 1
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (regularizedBeta(mid, a, b) < q) lo = mid
    else hi = mid
  }
  return (lo + hi) / 2
}

/** The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz). */
export function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x))
  // The fraction converges fast only on one side of the mean; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) on the other.
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(x, a, b)) / a
  return 1 - (front * betaFraction(1 - x, b, a)) / b
}

function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let h = d
  // Converges in O(sqrt(max(a, b))) terms: ~550 for a 300,000-request window.
  for (let m = 1; m <= 5000; m++) {
    const m2 = 2 * m
    let term = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + term * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + term / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    h *= d * c
    term = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + term * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + term / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const step = d * c
    h *= step
    if (Math.abs(step - 1) < 1e-12) break
  }
  return h
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7: ~15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x)
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7]
  const y = x - 1
  let sum = c[0]!
  for (let i = 1; i < 9; i++) sum += c[i]! / (y + i)
  const t = y + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(sum)
}
