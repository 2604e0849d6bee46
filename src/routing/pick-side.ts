/** Chooses stable or canary for one request: override header (from a trusted source), then sticky key, then weighted random. */
import type { IncomingHttpHeaders } from 'node:http'
import type { Random } from '../core/random.js'
import type { RoutingSnapshot, UpstreamTarget } from './snapshot.js'
import { sourceAddress, sourceAllowed } from './source-rule.js'
import { BUCKETS, cookieValue, stickyBucket } from './sticky-bucket.js'

/** The part of a client socket the override rule reads (net.Socket has it). */
export interface Peer {
  readonly remoteAddress?: string | undefined
}

/**
 * An obeyed override returns the side's override target, whose outcomes are
 * counted apart and never enter the gate's windows. The source is checked
 * only when the header is there, so a normal request pays one property read;
 * without `peer` (or from outside routing.overrideFrom) the header is ignored
 * and the request is routed as if it had none.
 */
export function pickSide(snapshot: RoutingSnapshot, headers: IncomingHttpHeaders, random: Random, peer: Peer | null = null): UpstreamTarget {
  const canary = snapshot.canary
  if (canary === null) return snapshot.stable
  if (snapshot.overrideHeader !== null) {
    const override = headers[snapshot.overrideHeader]
    if ((override === 'always' || override === 'never') && overrideObeyed(snapshot, headers, peer)) {
      // compileSnapshot sets overrideCanary exactly when canary is set.
      return override === 'always' ? snapshot.overrideCanary! : snapshot.overrideStable
    }
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

function overrideObeyed(snapshot: RoutingSnapshot, headers: IncomingHttpHeaders, peer: Peer | null): boolean {
  if (peer === null) return false
  return sourceAllowed(snapshot.overrideFrom, sourceAddress(headers, peer.remoteAddress, snapshot.trustForwarded))
}
