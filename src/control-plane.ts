/**
 * buildControlPlane: the rollout's control plane over this process's
 * backends, without listeners: the analysis, the controller restored from the
 * store, the event feed. buildApp puts servers around it; the decision bench
 * and the tests drive it directly on a fake clock. buildControlCore is the
 * same over any DataPlaneLink (the workers of a cluster primary). With
 * `shared` (state.redis), the replica commits through the SharedAuthority and
 * shares its window slots through a ReplicaLink.
 */
import type { Logger } from 'pino'
import { statusView } from './admin/status-view.js'
import { Analysis } from './analysis/analysis.js'
import type { StatusView } from './api/wire.js'
import type { Config } from './config/schema.js'
import type { Clock } from './core/clock.js'
import { EventFeed } from './events/feed.js'
import { Backends } from './proxy/backends.js'
import type { UpstreamPools } from './proxy/upstreams.js'
import type { Authority } from './rollout/authority.js'
import { RolloutController, type DataPlaneLink, type RolloutConfig } from './rollout/controller.js'
import { LocalLink } from './rollout/local-link.js'
import { ReplicaLink, type SharedWindows } from './rollout/replica-link.js'
import { SharedAuthority } from './rollout/shared-authority.js'
import { routingTable } from './routing/table.js'
import type { Lease, StateStore } from './state/store.js'

/** What replicas share (createRedisBackend gives it): the state store, the lease, the window slots. */
export interface SharedState {
  readonly replica: string
  readonly store: StateStore
  readonly lease: Lease
  readonly windows: SharedWindows
  /** canary_proxy_state_backend_up. */
  up(): boolean
  ready(timeoutMs: number): Promise<void>
}

export interface ControlPlaneDeps {
  readonly config: Config
  readonly clock: Clock
  /** The state store of a process alone (ignored with `shared`). */
  readonly store: StateStore
  readonly pools: UpstreamPools
  readonly log: Logger
  /** Defaults to a new feed; pass one to subscribe before the restore's own events. */
  readonly events?: EventFeed
  /** Replicas sharing one rollout (state.redis). */
  readonly shared?: SharedState
}

export interface ControlCore {
  readonly controller: RolloutController
  readonly analysis: Analysis
  readonly events: EventFeed
  /** This replica's link to the other replicas' windows (null for a process alone). */
  readonly replicas: ReplicaLink | null
  status(): StatusView
  /** Both sides' window figures, with everything recorded so far drained in first. */
  figures(): ReturnType<Analysis['figures']>
  /** Releases the windows' memory; call once nothing feeds them any more. */
  dispose(): void
}

export interface ControlPlane extends ControlCore {
  readonly backends: Backends
}

export async function buildControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  // The data plane starts on all-stable; the controller publishes the real table as soon as it has restored the state.
  const backends = new Backends(deps.pools, routingTable({ stableUrl: deps.config.upstreams.stable, canaryUrl: null, weight: 0, generation: 0 }, deps.config.routing, 0))
  let core: ControlCore
  try {
    core = await buildControlCore({ ...deps, link: new LocalLink(backends) })
  } catch (error) {
    backends.dispose()
    throw error
  }
  return {
    ...core,
    backends,
    dispose() {
      core.dispose()
      backends.dispose()
    },
  }
}

export async function buildControlCore(deps: Omit<ControlPlaneDeps, 'pools'> & { readonly link: DataPlaneLink }): Promise<ControlCore> {
  const { config, clock, log, shared } = deps
  const events = deps.events ?? new EventFeed((error, event) => log.error({ err: error, event: event.type }, 'an event subscriber failed'))
  const analysis = new Analysis(config.analysis, clock.now())
  const replicas = shared === undefined ? null : new ReplicaLink(deps.link, shared.windows, { clock, sink: analysis, log })
  const authority: Authority | undefined =
    shared === undefined
      ? undefined
      : new SharedAuthority({ store: shared.store, lease: shared.lease, replica: shared.replica, clock, events, log, up: shared.up, ready: shared.ready })
  let controller: RolloutController
  try {
    controller = await RolloutController.create(
      { clock, store: shared?.store ?? deps.store, analysis, link: replicas ?? deps.link, events, log, ...(authority === undefined ? {} : { authority }) },
      rolloutConfig(config),
    )
  } catch (error) {
    replicas?.dispose()
    analysis.dispose()
    throw error
  }
  const figures = (): ReturnType<Analysis['figures']> => {
    controller.collect()
    return analysis.figures(clock.now())
  }
  return {
    controller,
    analysis,
    events,
    replicas,
    status: () => statusView(controller.state, controller.settings, figures(), { ...controller.authority.view(), ...(replicas === null ? {} : { replicas: replicas.replicasSeen }) }),
    figures,
    dispose() {
      controller.stopTimers()
      replicas?.dispose()
      analysis.dispose()
    },
  }
}

export function rolloutConfig(config: Config): RolloutConfig {
  const r = config.rollout
  return {
    settings: { steps: r.steps, stepDurationMs: r.stepDurationMs, bakeMs: r.bakeMs },
    upstreams: { stable: config.upstreams.stable, canary: config.upstreams.canary, autoStart: r.autoStart },
    routing: config.routing,
    intervalMs: config.analysis.intervalMs,
  }
}
