/** What the rollout controller is given and gives back: its dependencies, the link to the data planes, the config it runs by. */
import type { Logger } from 'pino'
import type { Analysis } from '../analysis/analysis.js'
import type { Clock } from '../core/clock.js'
import type { EventFeed } from '../events/feed.js'
import type { RoutingTable, TableRouting } from '../routing/table.js'
import type { StateStore } from '../state/store.js'
import type { RolloutSettings, RolloutState, UpstreamsConfig } from './phase.js'

/** How the control plane reaches the data planes (this process's, or workers' over IPC). */
export interface DataPlaneLink {
  /** Every data plane routes by this table from now on. */
  publish(table: RoutingTable): void
  /** Feeds the analysis with what the data planes recorded for the table's backends since the last call. */
  collect(analysis: Analysis, table: RoutingTable): void
  /** `listener` is called (as a message, coalesced) after a canary error. */
  onCanaryError(listener: () => void): void
}

export interface RolloutConfig {
  readonly settings: RolloutSettings
  readonly upstreams: UpstreamsConfig
  readonly routing: TableRouting
  readonly intervalMs: number
}

export interface ControllerDeps {
  readonly clock: Clock
  readonly store: StateStore
  readonly analysis: Analysis
  readonly link: DataPlaneLink
  readonly events: EventFeed
  readonly log: Logger
}

export type ActResult = { readonly ok: true; readonly state: RolloutState } | { readonly ok: false; readonly conflict: string }
