/** A straight-line trend with its uncertainty: ordinary least squares and a one-sided Student-t bound on the slope (for memory growth). */
import jStat from 'jstat'

export interface Trend {
  /** Units of y per unit of x. */
  readonly slope: number
  /** Standard error of the slope; Infinity with fewer than 3 points or no spread in x. */
  readonly standardError: number
  readonly n: number
}

export function fitTrend(xs: readonly number[], ys: readonly number[]): Trend {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return { slope: 0, standardError: Number.POSITIVE_INFINITY, n }
  let mx = 0
  let my = 0
  for (let i = 0; i < n; i++) {
    mx += xs[i]!
    my += ys[i]!
  }
  mx /= n
  my /= n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (xs[i]! - mx) ** 2
    sxy += (xs[i]! - mx) * (ys[i]! - my)
  }
  if (sxx === 0) return { slope: 0, standardError: Number.POSITIVE_INFINITY, n }
  const slope = sxy / sxx
  if (n < 3) return { slope, standardError: Number.POSITIVE_INFINITY, n }
  let sse = 0
  for (let i = 0; i < n; i++) sse += (ys[i]! - (my + slope * (xs[i]! - mx))) ** 2
  return { slope, standardError: Math.sqrt(sse / (n - 2) / sxx), n }
}

/** One-sided bounds of the slope at `confidence`: the true slope is above `lower` (and below `upper`) with that confidence, if the residuals are independent. */
export function slopeBounds(trend: Trend, confidence: number): { readonly lower: number; readonly upper: number } {
  if (!Number.isFinite(trend.standardError)) return { lower: Number.NEGATIVE_INFINITY, upper: Number.POSITIVE_INFINITY }
  const t = jStat.studentt.inv(confidence, trend.n - 2)
  return { lower: trend.slope - t * trend.standardError, upper: trend.slope + t * trend.standardError }
}
