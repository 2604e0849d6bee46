/**
 * The IPC messages between the primary and its workers (listen.workers):
 * plain JSON over node:cluster's channel, every type prefixed `cpx:` so
 * prom-client's or Node's own cluster messages never match.
 *
 *     worker  -> hello                      (booted, wants its config)
 *     primary -> init {config, table, …}    (the primary's config text, the table to route by)
 *     worker  -> listening                  (accepting on the shared socket)
 *     primary -> table                      (every table the controller publishes)
 *     worker  -> deltas                     (every pushMs, and at once after a canary error)
 *     primary -> metrics {id}  / worker -> metrics {id, metrics}   (a scrape of /metrics)
 *     worker  -> metrics {id: 0, metrics}   (every second unasked: what a worker killed outright leaves behind)
 *     primary -> drain                      (SIGTERM: finish in flight, send the last deltas, exit 0)
 */
import type { Registry } from 'prom-client'
import type { LogLevel } from '../config/schema.js'
import type { RoutingTable } from '../routing/table.js'
import type { WindowDelta } from '../stats/recorder.js'

/** prom-client's getMetricsAsJSON() entries, as AggregatorRegistry.aggregate takes them. */
export type MetricsJSON = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

export interface WorkerSettings {
  readonly logLevel: LogLevel
  /** How often the worker sends its window deltas (a fraction of the slot and the analysis interval). */
  readonly pushMs: number
}

export type ToWorker =
  | { readonly t: 'cpx:init'; readonly configText: string; readonly table: RoutingTable; readonly settings: WorkerSettings }
  | { readonly t: 'cpx:table'; readonly table: RoutingTable }
  | { readonly t: 'cpx:settings'; readonly settings: WorkerSettings }
  | { readonly t: 'cpx:metrics'; readonly id: number }
  | { readonly t: 'cpx:drain' }

/** Requests a side's backends answered (or failed) since the worker started, for the status and the probes. */
export interface Served {
  readonly stable: number
  readonly canary: number
}

export type FromWorker =
  | { readonly t: 'cpx:hello' }
  | { readonly t: 'cpx:listening'; readonly url: string }
  | {
      readonly t: 'cpx:deltas'
      /** The routing table version the worker routed by when it took them. */
      readonly version: number
      /** Backend id -> what it recorded since the last message. */
      readonly deltas: Readonly<Record<string, WindowDelta>>
      readonly served: Served
      /** Sent at once because of a canary error: the primary asks for an early look. */
      readonly canaryError: boolean
    }
  | { readonly t: 'cpx:metrics'; readonly id: number; readonly metrics: MetricsJSON }
  /** The worker cannot start; a listen error keeps its code, address and port (serve reports it as CPX_ERR_LISTEN). */
  | { readonly t: 'cpx:fatal'; readonly message: string; readonly code?: string; readonly address?: string; readonly port?: number }

export function isFromWorker(message: unknown): message is FromWorker {
  return typeof message === 'object' && message !== null && typeof (message as { t?: unknown }).t === 'string' && (message as { t: string }).t.startsWith('cpx:')
}

export function isToWorker(message: unknown): message is ToWorker {
  return isFromWorker(message)
}
