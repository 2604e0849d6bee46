/** Chooses stable or canary for one request: override header, then sticky key, then weighted random. */
import type { IncomingHttpHeaders } from 'node:http'
import type { Random } from '../core/random.js'
import type { RoutingSnapshot, UpstreamTarget } from './snapshot.js'
import { BUCKETS, cookieValue, stickyBucket } from './sticky-bucket.js'

export function pickSide(snapshot: RoutingSnapshot, headers: IncomingHttpHeaders, random: Random): UpstreamTarget {
  const canary = snapshot.canary
  if (canary === null) return snapshot.stable
  if (snapshot.overrideHeader !== null) {
    const override = headers[snapshot.overrideHeader]
    if (override === 'always') return canary
    if (override === 'never') return snapshot.stable
  }
  const threshold = snapshot.canaryThreshold
  if (snapshot.stickyHeader !== null) {
    const key = headers[snapshot.stickyHeader]
    if (typeof key === 'string' && key !== '') return stickyBucket(key) < threshold ? canary : snapshot.stable
  }
  if (snapshot.stickyCookie !== null) {
    const key = cookieValue(headers.cookie, snapshot.stickyCookie)
    if (key !== null) return stickyBucket(key) < threshold ? canary : snapshot.stable
  }
  if (threshold <= 0) return snapshot.stable
  if (threshold >= BUCKETS) return canary
  return random() * BUCKETS < threshold ? canary : snapshot.stable
}
