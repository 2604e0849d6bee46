/**
 * RoutingTable: what the control plane decides about routing, as plain data
 * (it crosses to worker processes and between replicas): which backend each
 * side sends to, the canary weight, and the header rules. Each process's data
 * plane compiles it with its own backends (pools, stats) into the frozen
 * RoutingSnapshot a request reads.
 */
import type { SideName } from './snapshot.js'

/** One upstream of one side for one rollout generation; a new id means new, empty figures. */
export interface BackendRef {
  readonly id: string
  readonly side: SideName
  readonly url: string
}

export interface RoutingTable {
  /** Increases with every table the control plane publishes. */
  readonly version: number
  readonly stable: BackendRef
  /** Null when no canary is known: everything goes to stable, `always` included. */
  readonly canary: BackendRef | null
  /** Canary weight in percent (0..100, steps of 0.01); 0 when canary is null. */
  readonly weight: number
  readonly overrideHeader: string | null
  /** routing.overrideFrom: CIDRs (or addresses) whose override header is obeyed. */
  readonly overrideFrom: readonly string[]
  readonly stickyHeader: string | null
  readonly stickyCookie: string | null
  readonly responseTimeoutMs: number
  readonly preserveHost: boolean
  readonly trustForwarded: boolean
}

export interface TableRouting {
  readonly overrideHeader: string | null
  /** routing.overrideFrom: CIDRs (or addresses) whose override header is obeyed. */
  readonly overrideFrom: readonly string[]
  readonly stickyHeader: string | null
  readonly stickyCookie: string | null
  readonly responseTimeoutMs: number
  readonly preserveHost: boolean
  readonly trustForwarded: boolean
}

export interface TableState {
  readonly stableUrl: string
  readonly canaryUrl: string | null
  readonly weight: number
  readonly generation: number
}

/**
 * The table for a rollout state. Backend ids name the side, the URL and the
 * generation: a new rollout (or a promotion, or a changed stable) sends to a
 * new backend whose figures start empty, and results of requests still in
 * flight to the old one never reach the new one's window.
 */
export function routingTable(state: TableState, routing: TableRouting, version: number): RoutingTable {
  const canary = state.canaryUrl === null ? null : backendRef('canary', state.canaryUrl, state.generation)
  return {
    version,
    stable: backendRef('stable', state.stableUrl, state.generation),
    canary,
    weight: canary === null ? 0 : state.weight,
    overrideHeader: routing.overrideHeader,
    overrideFrom: routing.overrideFrom,
    stickyHeader: routing.stickyHeader,
    stickyCookie: routing.stickyCookie,
    responseTimeoutMs: routing.responseTimeoutMs,
    preserveHost: routing.preserveHost,
    trustForwarded: routing.trustForwarded,
  }
}

export function backendRef(side: SideName, url: string, generation: number): BackendRef {
  return { id: `${side}#${generation} ${url}`, side, url }
}
