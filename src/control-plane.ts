/**
 * buildControlPlane: the rollout's control plane over this process's
 * backends, without listeners: the analysis, the controller restored from the
 * store, the event feed. buildApp puts servers around it; the decision bench
 * and the tests drive it directly on a fake clock. With `shared`
 * (state.redis), the replica commits through the SharedAuthority and shares
 * its window slots with the other replicas through a ReplicaLink.
 */
import type { Logger } from 'pino'
import { statusView } from './admin/status-view.js'
import { Analysis, defaultChecks } from './analysis/analysis.js'
import type { ProbeRollout } from './analysis/probe.js'
import type { StatusView } from './api/wire.js'
import type { Config } from './config/schema.js'
import type { Clock } from './core/clock.js'
import { EventFeed } from './events/feed.js'
import { buildExternalChecks, type ExternalChecks } from './probes/external-checks.js'
import { WebhookCounters } from './webhooks/counters.js'
import { ProbeRunner } from './probes/runner.js'
import { Backends } from './proxy/backends.js'
import type { UpstreamPools } from './proxy/upstreams.js'
import type { Authority } from './rollout/authority.js'
import { RolloutController, type RolloutConfig } from './rollout/controller.js'
import { LocalLink } from './rollout/local-link.js'
import type { DataPlaneLink } from './rollout/ports.js'
import type { SideName } from './routing/snapshot.js'
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
  /** The data planes are elsewhere (listen.workers: the WorkerPool): the controller routes and collects through this, not this process's Backends. */
  readonly dataPlanes?: DataPlaneLink & { served(side: SideName): number }
}

export interface ControlPlane {
  readonly controller: RolloutController
  readonly backends: Backends
  readonly analysis: Analysis
  readonly events: EventFeed
  /** This replica's link to the other replicas' windows (null for a process alone). */
  readonly replicas: ReplicaLink | null
  status(): StatusView
  /** Both sides' window figures, with everything recorded so far drained in first. */
  figures(): ReturnType<Analysis['figures']>
  /** The probes and webhooks of the config: resource scrapes, Prometheus queries, gate and notification webhooks. */
  readonly external: ExternalChecks
  /** Starts the controller's timers and the probes. */
  start(): void
  /** A reloaded config's checks, probes and webhooks (the old ones are stopped and flushed first). */
  reconfigure(config: Config): Promise<void>
  /** Stops the probes and flushes the notifications (up to flushMs); the controller's own stop is separate. */
  stop(flushMs: number): Promise<void>
  /** Releases the windows' and recorders' memory; call once nothing records any more (after the pools closed). */
  dispose(): void
}

export async function buildControlPlane(deps: ControlPlaneDeps): Promise<ControlPlane> {
  const { config, clock, log, shared } = deps
  const events = deps.events ?? new EventFeed((error, event) => log.error({ err: error, event: event.type }, 'an event subscriber failed'))
  // The data plane starts on all-stable; the controller publishes the real table as soon as it has restored the state.
  const backends = new Backends(deps.pools, routingTable({ stableUrl: config.upstreams.stable, canaryUrl: null, weight: 0, generation: 0 }, config.routing, 0), config.metrics.bucketsSeconds)
  const served = (side: SideName): number => deps.dataPlanes?.served(side) ?? backends.sides[side].outcomes
  let controller: RolloutController | null = null
  const probeRollout = (): ProbeRollout => {
    const s = controller?.state
    if (s === undefined) return { phase: 'idle', weight: 0, step: null, stableUrl: config.upstreams.stable, canaryUrl: null, generation: 0 }
    return { phase: s.phase, weight: s.weight, step: 'stepIndex' in s ? s.stepIndex : null, stableUrl: s.stableUrl, canaryUrl: s.canaryUrl, generation: s.generation }
  }
  const webhookCounters = new WebhookCounters()
  const build = (c: Config): { external: ExternalChecks; runner: ProbeRunner; detach: () => void } => {
    const external = buildExternalChecks(c, { clock, log, counters: webhookCounters, urls: () => ({ stable: controller?.state.stableUrl ?? c.upstreams.stable, canary: controller?.state.canaryUrl ?? null }) })
    const runner = new ProbeRunner({ clock, probes: external.probes, rollout: probeRollout, servedRequests: served, log })
    const off = [runner.attach(events), external.notifier.attach(events)]
    return { external, runner, detach: () => off.forEach((f) => f()) }
  }
  let probes = build(config)
  const analysis = new Analysis(config.analysis, clock.now(), { checks: [...defaultChecks(config.analysis, config.rollout), ...probes.external.checks], probes: probes.runner })
  const local = deps.dataPlanes ?? new LocalLink(backends)
  const replicas = shared === undefined ? null : new ReplicaLink(local, shared.windows, { clock, sink: analysis, log })
  const authority: Authority | undefined =
    shared === undefined
      ? undefined
      : new SharedAuthority({ store: shared.store, lease: shared.lease, replica: shared.replica, clock, events, log, up: shared.up, ready: shared.ready })
  try {
    controller = await RolloutController.create(
      { clock, store: shared?.store ?? deps.store, analysis, link: replicas ?? local, events, log, ...(authority === undefined ? {} : { authority }) },
      rolloutConfig(config),
    )
  } catch (error) {
    replicas?.dispose()
    probes.detach()
    await probes.external.close()
    analysis.dispose()
    backends.dispose()
    throw error
  }
  const ctl = controller
  let started = false
  const figures = (): ReturnType<Analysis['figures']> => {
    ctl.collect()
    return analysis.figures(clock.now())
  }
  return {
    controller: ctl,
    backends,
    analysis,
    events,
    replicas,
    get external() {
      return probes.external
    },
    start() {
      started = true
      ctl.startTimers()
      probes.runner.start()
    },
    async reconfigure(next) {
      const old = probes
      old.detach()
      await old.runner.stop()
      await old.external.close(2_000)
      probes = build(next)
      analysis.configure(next.analysis, clock.now(), [...defaultChecks(next.analysis, next.rollout), ...probes.external.checks])
      analysis.setProbes(probes.runner)
      if (started) probes.runner.start()
    },
    async stop(flushMs) {
      probes.detach()
      await probes.runner.stop()
      await probes.external.close(flushMs)
    },
    status: () =>
      statusView(ctl.state, ctl.settings, figures(), { stable: served('stable'), canary: served('canary') }, {
        ...ctl.authority.view(),
        ...(replicas === null ? {} : { replicas: replicas.replicasSeen }),
      }),
    figures,
    dispose() {
      ctl.stopTimers()
      replicas?.dispose()
      analysis.dispose()
      backends.dispose()
    },
  }
}

export function rolloutConfig(config: Config): RolloutConfig {
  const r = config.rollout
  return {
    settings: {
      steps: r.steps,
      stepDurationMs: r.stepDurationMs,
      bakeMs: r.bakeMs,
      stepDurationsMs: r.stepDurationsMs,
      pauseSteps: r.pauseSteps,
      progressDeadlineMs: r.progressDeadlineMs,
      onDeadline: r.onDeadline,
      bakeStableShare: r.bakeStableShare,
      preRolloutChecks: config.webhooks.filter((w) => w.type === 'pre-rollout').map((w) => `webhook.${w.name}`),
    },
    upstreams: { stable: config.upstreams.stable, canary: config.upstreams.canary, autoStart: r.autoStart },
    routing: config.routing,
    intervalMs: config.analysis.intervalMs,
  }
}
