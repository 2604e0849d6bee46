/** Sticky-key values that the proxy's own bucket function routes to a chosen side, for tests that must steer traffic through the gate. */
import { stickyBucket } from '../../src/routing/sticky-bucket.js'

/**
 * A value of the sticky header (or cookie) that lands on `side` at `weight`,
 * and at every weight below it for canary (above it for stable): a user's
 * bucket only moves stable -> canary as the weight grows. The override header
 * would route as surely, but its requests are counted apart and never reach
 * the gate (issue 7, defect 2), so tests of the gate steer with these.
 */
export function stickyKey(side: 'stable' | 'canary', weight: number, prefix = 'user'): string {
  const threshold = Math.round(weight * 100)
  for (let i = 0; i < 1_000_000; i++) {
    const key = `${prefix}-${i}`
    const bucket = stickyBucket(key)
    if (side === 'canary' ? bucket < threshold : bucket >= threshold) return key
  }
  throw new Error(`no sticky key for ${side} at ${weight}%`)
}
