/**
 * Backends: this process's registry behind the routing table: backend id ->
 * (pool, stats). It compiles each RoutingTable into the RoutingSnapshot the
 * hot path reads, keeping pools by origin and recorders by backend id across
 * tables, so a weight change keeps its connections and its figures.
 */
import type { RoutingTable, BackendRef } from '../routing/table.js'
import { compileSnapshot, SnapshotRef, type RoutingSnapshot, type UpstreamTarget } from '../routing/snapshot.js'
import { BackendStats, ErrorSignal } from '../stats/backend-stats.js'
import { newOverrideStats, type OverrideStatsPair } from '../stats/override-stats.js'
import { RETIRED_RECORDER, type WindowRecorder, type WindowDelta } from '../stats/recorder.js'
import { SideStats } from '../stats/side-stats.js'
import type { UpstreamPools } from './upstreams.js'

export class Backends {
  readonly ref: SnapshotRef
  readonly sides: { readonly stable: SideStats; readonly canary: SideStats }
  /** Raised by a canary error; the control plane listens (see ErrorSignal). */
  readonly canaryErrors = new ErrorSignal()
  /** Where requests routed by the override header record: counted apart, never in a window (issue 7, defect 2). */
  readonly override: OverrideStatsPair = newOverrideStats()
  readonly #pools: UpstreamPools
  readonly #live = new Map<string, BackendStats>()
  #table: RoutingTable

  constructor(pools: UpstreamPools, initial: RoutingTable, bucketsSeconds?: readonly number[]) {
    this.#pools = pools
    this.sides = { stable: new SideStats('stable', bucketsSeconds), canary: new SideStats('canary', bucketsSeconds) }
    this.#table = initial
    this.ref = new SnapshotRef(this.#compile(initial))
  }

  get table(): RoutingTable {
    return this.#table
  }

  /** Compiles and publishes a new table; backends it no longer names are retired (their late results count in Prometheus only). */
  apply(table: RoutingTable): void {
    this.#table = table
    this.ref.publish(this.#compile(table))
    const keep = new Set([table.stable.id, table.canary?.id])
    for (const [id, backend] of this.#live) {
      if (keep.has(id)) continue
      this.#live.delete(id)
      backend.retire()
    }
    void this.#pools.retain(table.canary === null ? [table.stable.url] : [table.stable.url, table.canary.url])
  }

  /** The recorder of a live backend, or null (not in the current table). */
  recorderOf(id: string): WindowRecorder | null {
    return this.#live.get(id)?.window ?? null
  }

  /** Every live backend's delta since the last take, by backend id (for another process's control plane). */
  takeDeltas(): Record<string, WindowDelta> {
    const out: Record<string, WindowDelta> = {}
    for (const [id, backend] of this.#live) if (!backend.window.empty) out[id] = backend.window.takeDelta()
    this.sweep()
    return out
  }

  /** Lowers the canary error signal (the figures are being read now) and drops what retired backends recorded. */
  sweep(): void {
    this.canaryErrors.lower()
    RETIRED_RECORDER.clear()
  }

  /** Releases every recorder's memory once nothing can record any more (after the pools closed). */
  dispose(): void {
    for (const backend of this.#live.values()) backend.dispose()
    this.#live.clear()
  }

  #compile(table: RoutingTable): RoutingSnapshot {
    return compileSnapshot(
      {
        stable: this.#target(table.stable),
        canary: table.canary === null ? null : this.#target(table.canary),
        weight: table.weight,
        overrideHeader: table.overrideHeader,
        overrideFrom: table.overrideFrom,
        overrideStats: this.override,
        stickyHeader: table.stickyHeader,
        stickyCookie: table.stickyCookie,
        responseTimeoutMs: table.responseTimeoutMs,
        preserveHost: table.preserveHost,
        trustForwarded: table.trustForwarded,
      },
      table.version,
    )
  }

  #target(ref: BackendRef): UpstreamTarget {
    let stats = this.#live.get(ref.id)
    if (stats === undefined) {
      stats = new BackendStats(this.sides[ref.side], ref.side === 'canary' ? this.canaryErrors : null)
      this.#live.set(ref.id, stats)
    }
    const parsed = new URL(ref.url)
    const basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/+$/, '')
    return { side: ref.side, url: ref.url, host: parsed.host, basePath, dispatcher: this.#pools.get(ref.url), stats }
  }
}
