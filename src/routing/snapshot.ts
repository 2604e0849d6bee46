/** RoutingSnapshot: everything one request needs to choose and reach a side, compiled once and never mutated. */
import type { BlockList } from 'node:net'
import type { Dispatcher } from 'undici'
import type { OutcomeRecorder } from '../stats/backend-stats.js'
import { compileSourceRules } from './source-rule.js'

export type SideName = 'stable' | 'canary'

/** One upstream as the data plane sees it; its pool (by origin) and stats (by backend id) outlive snapshots. */
export interface UpstreamTarget {
  readonly side: SideName
  readonly url: string
  /** `host[:port]` of the upstream URL, sent as Host when preserveHost is off. */
  readonly host: string
  /** Path prefix of the upstream URL without a trailing slash ('' for none). */
  readonly basePath: string
  readonly dispatcher: Dispatcher
  /**
   * The backend's recorder. A request keeps the target it started with, so a
   * result that arrives after the routing table moved on (a new canary, a
   * promotion) is recorded on the backend it was sent to, which by then counts
   * in Prometheus only (BackendStats.retire).
   */
  readonly stats: OutcomeRecorder
}

export interface RoutingSnapshot {
  readonly version: number
  readonly stable: UpstreamTarget
  /** Null when no canary is known: everything goes to stable, `always` included. */
  readonly canary: UpstreamTarget | null
  /** Canary weight in percent (0..100, steps of 0.01). */
  readonly weight: number
  /** weight * 100 as an integer: a request goes to canary when its bucket (0..9999) is below it. */
  readonly canaryThreshold: number
  /** Lower-case header names, or null when the feature is off (one null check per request). */
  readonly overrideHeader: string | null
  /** Client addresses whose override header is obeyed (routing.overrideFrom); from anyone else it is ignored. */
  readonly overrideFrom: BlockList
  /** The sides again, recording into the override counters: what an obeyed override header routes to. */
  readonly overrideStable: UpstreamTarget
  readonly overrideCanary: UpstreamTarget | null
  readonly stickyHeader: string | null
  readonly stickyCookie: string | null
  readonly responseTimeoutMs: number
  readonly preserveHost: boolean
  readonly trustForwarded: boolean
}

export interface SnapshotInput {
  readonly stable: UpstreamTarget
  readonly canary: UpstreamTarget | null
  readonly weight: number
  readonly overrideHeader: string | null
  /** CIDRs (or bare addresses) as validated by the config loader. */
  readonly overrideFrom: readonly string[]
  /** Per-process override counters, one per side (src/stats/override-stats.ts). */
  readonly overrideStats: { readonly stable: OutcomeRecorder; readonly canary: OutcomeRecorder }
  readonly stickyHeader: string | null
  readonly stickyCookie: string | null
  readonly responseTimeoutMs: number
  readonly preserveHost: boolean
  readonly trustForwarded: boolean
}

/** Pure: the same input gives an equal snapshot; frozen so a published one can never change under a request. */
export function compileSnapshot(input: SnapshotInput, version: number): RoutingSnapshot {
  const weight = input.canary === null ? 0 : input.weight
  return Object.freeze({
    version,
    stable: input.stable,
    canary: input.canary,
    weight,
    canaryThreshold: Math.round(weight * 100),
    overrideHeader: input.overrideHeader,
    overrideFrom: compileSourceRules(input.overrideFrom),
    overrideStable: Object.freeze({ ...input.stable, stats: input.overrideStats.stable }),
    overrideCanary: input.canary === null ? null : Object.freeze({ ...input.canary, stats: input.overrideStats.canary }),
    stickyHeader: input.stickyHeader,
    stickyCookie: input.stickyCookie,
    responseTimeoutMs: input.responseTimeoutMs,
    preserveHost: input.preserveHost,
    trustForwarded: input.trustForwarded,
  })
}

/**
 * The single mutable reference. A request reads `current` once and keeps what
 * it got to the end; the control plane swaps in a whole new snapshot. One
 * assignment on one event loop: no request ever sees half an update.
 */
export class SnapshotRef {
  #current: RoutingSnapshot

  constructor(initial: RoutingSnapshot) {
    this.#current = initial
  }

  get current(): RoutingSnapshot {
    return this.#current
  }

  publish(next: RoutingSnapshot): void {
    this.#current = next
  }
}
