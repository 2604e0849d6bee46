/**
 * buildControlPlane: the rollout's control plane over this process's
 * backends, without listeners: the analysis, the controller restored from the
 * store, the event feed. buildApp puts servers around it; the decision bench
 * and the tests drive it directly on a fake clock.
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
import { RolloutController, type RolloutConfig } from './rollout/controller.js'
import { LocalLink } from './rollout/local-link.js'
import { routingTable } from './routing/table.js'
import type { StateStore } from './state/store.js'

export interface ControlPlaneDeps {
  readonly config: Config
  readonly clock: Clock
  readonly store: StateStore
  readonly pools: UpstreamPools
  readonly log: Logger
  /** Defaults to a new feed; pass one to subscribe before the restore's own events. */
  readonly events?: EventFeed
}

export interface ControlPlane {
  readonly controller: RolloutController
  readonly backends: Backends
  readonly analysis: Analysis
  readonly events: EventFeed
  status(): StatusView
  /** Both sides' window figures, with everything recorded so far drained in first. */
  figures(): ReturnType<Analysis['figures']>
  /** Releases the windows' and recorders' memory; call once nothing records any more (after the pools closed). */
  dispose(): void
}

export async function buildControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  const { config, clock, log } = deps
  const events = deps.events ?? new EventFeed((error, event) => log.error({ err: error, event: event.type }, 'an event subscriber failed'))
  // The data plane starts on all-stable; the controller publishes the real table as soon as it has restored the state.
  const backends = new Backends(deps.pools, routingTable({ stableUrl: config.upstreams.stable, canaryUrl: null, weight: 0, generation: 0 }, config.routing, 0))
  const analysis = new Analysis(config.analysis, clock.now())
  let controller: RolloutController
  try {
    controller = await RolloutController.create({ clock, store: deps.store, analysis, link: new LocalLink(backends), events, log }, rolloutConfig(config))
  } catch (error) {
    analysis.dispose()
    backends.dispose()
    throw error
  }
  const figures = (): ReturnType<Analysis['figures']> => {
    controller.collect()
    return analysis.figures(clock.now())
  }
  return {
    controller,
    backends,
    analysis,
    events,
    status: () => statusView(controller.state, controller.settings, figures()),
    figures,
    dispose() {
      controller.stopTimers()
      analysis.dispose()
      backends.dispose()
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
