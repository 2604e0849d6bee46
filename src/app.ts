/** buildApp(deps): wires config, clock, stores, data plane, admin plane and rollout controller; returns handles and a graceful close(). Never listens by itself. */
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { AggregatorRegistry, type Registry } from 'prom-client'
import { buildControlPlane, rolloutConfig, type ControlPlane, type SharedState } from './control-plane.js'
import { createAdminServer, type Readiness, type RolloutControl } from './admin/server.js'
import type { EventView, StatusView } from './api/wire.js'
import type { Config } from './config/schema.js'
import { systemClock, type Clock } from './core/clock.js'
import { CanaryProxyError } from './core/errors.js'
import { systemRandom, type Random } from './core/random.js'
import { EventFeed, type ControlEvent } from './events/feed.js'
import { createLogger } from './log.js'
import type { UncaughtOrigin } from './cli/process-guard.js'
import type { Backends } from './proxy/backends.js'
import type { ExternalChecks } from './probes/external-checks.js'
import type { RolloutController } from './rollout/controller.js'
import type { ReplicaSlot } from './rollout/replica-link.js'
import { createControlPlaneRegistry, createRegistry, textFormatNaN } from './stats/metrics.js'
import { buildDataPlane, dataPlaneCounters, upstreamPools, urlOf } from './data-plane.js'
import type { SideName } from './routing/snapshot.js'
import { WorkerPool } from './workers/primary.js'
import type { WorkerSettings } from './workers/protocol.js'
import { AuditLog } from './state/audit-log.js'
import { FileStateStore } from './state/file-store.js'
import { MonitoredStore } from './state/monitored-store.js'
import { createRedisBackend, type RedisBackend } from './state/redis-backend.js'
import { SharedEventRelay } from './state/shared-events.js'
import type { StateStore } from './state/store.js'

export interface AppDeps {
  readonly config: Config
  readonly clock?: Clock
  readonly random?: Random
  readonly log?: Logger
  /** Defaults to the file store at config.state.file (or, with state.redis, the shared Redis state). */
  readonly store?: StateStore
  /** With state.redis: this replica's id (lease holder, delta and audit author); default host:pid. Replicas in one process (tests) need distinct ones. */
  readonly replica?: string
  /**
   * listen.workers above 1: this process is the primary (control plane,
   * admin API, /metrics) and forks that many workers, which proxy. `exec`
   * and `args` are what a worker runs (`serve` gives its own command line;
   * a worker finds itself a worker and calls runWorker); `configText` is the
   * config file's text, which every worker parses the same.
   */
  readonly workers?: { readonly exec: string; readonly args?: readonly string[]; readonly configText: string }
}

export interface App {
  readonly config: Config
  readonly controller: RolloutController
  readonly backends: Backends
  /** This process's proxy listener; null in a primary of listen.workers (its workers proxy). */
  readonly dataPlane: FastifyInstance | null
  /** The workers of listen.workers (null: this process proxies itself). */
  readonly workers: WorkerPool | null
  readonly admin: FastifyInstance
  readonly registry: Registry
  readonly log: Logger
  /** The control plane's event feed (transitions, decisions, persistence failures, reloads). */
  readonly events: EventFeed
  /** The config's probes and webhooks as built now (rebuilt on SIGHUP): their counters, the notifier's queue. */
  readonly external: ExternalChecks
  readiness(): Readiness
  /** GET /api/v1/status. */
  status(): StatusView
  /** The recent audit events, oldest first (GET /api/v1/events). */
  auditEvents(): readonly EventView[]
  /** Applies a reloaded config (SIGHUP); returns the keys that only a restart can change, which were left as they are. */
  reload(next: Config): Promise<readonly string[]>
  /**
   * An error nothing caught (the process guard `serve` installs, never
   * buildApp: in tests such an error must still fail the test): logged with
   * its stack, counted in canary_proxy_uncaught_errors_total.
   */
  noteUncaught(error: unknown, origin: UncaughtOrigin): void
  /** Starts both listeners and the rollout timers; resolves with the bound URLs. */
  listen(): Promise<{ proxyUrl: string; adminUrl: string }>
  /** Graceful stop: not ready at once, stop accepting, let in-flight requests finish (up to listen.drainTimeout), flush state. */
  close(): Promise<void>
}

export async function buildApp(deps: AppDeps): Promise<App> {
  let config = deps.config
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  const log = deps.log ?? createLogger(config.log.level)
  const faults = dataPlaneCounters(config, clock)
  const pools = upstreamPools(config, faults, log)
  let uncaughtErrors = 0
  // state.redis: one rollout shared by every replica; else this process's own state file.
  const redis = deps.store === undefined && config.state.redis !== null ? sharedBackend(config, log, deps.replica) : null
  const store = new MonitoredStore(deps.store ?? new FileStateStore(config.state.file))
  const audit = new AuditLog(config.audit.file)
  await audit.open()
  warnWithoutChecks(config, log)
  const events = new EventFeed((error, event) => log.error({ err: error, event: event.type }, 'an event subscriber failed'))
  events.subscribe((event) => recordTransition(event, audit, log))
  // Among replicas, this replica's stream shows every replica's events (the shared trail), not only its own.
  const relay = redis === null ? null : new SharedEventRelay({ audit: redis.audit, replica: redis.replica, events, log })
  if (relay !== null && redis !== null) {
    redis.store.watch(() => void relay.changed())
    events.subscribe((event) => {
      if (event.type === 'transition') relay.noteOwn({ ...event.record, at: new Date(event.record.at).toISOString() })
    })
  }
  const pool =
    deps.workers !== undefined && config.listen.workers > 1
      ? new WorkerPool({
          count: config.listen.workers,
          configText: deps.workers.configText,
          exec: deps.workers.exec,
          ...(deps.workers.args === undefined ? {} : { args: deps.workers.args }),
          settings: workerSettings(config, config.analysis.intervalMs),
          clock,
          log,
        })
      : null
  let plane: ControlPlane
  try {
    plane = await buildControlPlane({
      config,
      clock,
      store,
      pools,
      log,
      events,
      ...(redis === null ? {} : { shared: sharedState(redis) }),
      ...(pool === null ? {} : { dataPlanes: pool }),
    })
  } catch (error) {
    await audit.close()
    await redis?.close()
    throw error
  }
  const { controller, backends, status } = plane
  pool?.configure(workerSettings(config, plane.analysis.slotMs))
  let state: Readiness = 'starting'
  // Among workers, ready needs one of them accepting (all of them dead and not replaced yet: 503, like starting).
  const readiness = (): Readiness => (state === 'ready' && pool !== null && pool.listening === 0 ? 'starting' : state)

  const local = pool === null ? buildDataPlane({ config, backends, faults, clock, random, log }) : null
  const controlMetrics = {
    weight: () => controller.state.weight,
    phase: () => controller.state.phase,
    step: () => {
      const s = controller.state
      return 'stepIndex' in s && s.stepIndex !== null && s.stepIndex >= 0 ? s.stepIndex : -1
    },
    info: () => ({ stable: controller.state.stableUrl, canary: controller.state.canaryUrl, generation: controller.state.generation }),
    lastTransitionAt: () => controller.state.updatedAt,
    findings: () => controller.state.lastDecision?.findings ?? [],
    ready: () => readiness() === 'ready',
    rollbacks: () => controller.rollbacks,
    internalErrors: () => faults.internalErrors,
    uncaughtErrors: () => uncaughtErrors,
    persistFailures: () => controller.authority.failures,
    auditWriteFailures: () => audit.writeFailures,
    stateBackendUp: () => (redis === null ? store.up : controller.authority.view().up),
    webhookCalls: () => plane.external.counters.values(),
    windowFigures: (side: SideName) => plane.figures()[side],
  }
  const registry =
    local === null
      ? createControlPlaneRegistry({ ...controlMetrics, sideNames: ['stable', 'canary'], workers: () => ({ listening: pool?.listening ?? 0, restarts: pool?.restarts ?? 0 }) })
      : createRegistry({
          ...controlMetrics,
          sides: [backends.sides.stable, backends.sides.canary],
          override: [backends.override.stable, backends.override.canary],
          connectionsDropped: () => local.clientCounters.connectionsDropped,
          bodyTimeouts: () => faults.bodyTimeouts,
        })
  // Among workers, a scrape sums their registries with the primary's (prom-client's AggregatorRegistry).
  const exposition: Exposition = pool === null ? registry : workersExposition(registry, pool)
  const control: RolloutControl = {
    status,
    // Among replicas the audit trail is the shared stream; this process's file holds what it wrote itself.
    events: redis === null ? () => audit.recent() : () => sharedEvents(redis),
    localEvents: relay === null ? () => audit.recent() : () => relay.recent(),
    async act(event, actor) {
      const result = await controller.act(event, actor)
      return result.ok ? { ok: true, status: status() } : result
    },
  }
  const admin = await createAdminServer({
    control,
    registry: exposition,
    tokens: config.admin.tokens,
    readiness,
    log: log.child({ plane: 'admin' }),
    stream: { subscribe: (listener) => events.subscribe(listener), intervalMs: config.analysis.intervalMs, clock },
  })

  let closing: Promise<void> | null = null
  return {
    get config() {
      return config
    },
    controller,
    backends,
    dataPlane: local?.server ?? null,
    workers: pool,
    admin,
    registry,
    log,
    events,
    get external() {
      return plane.external
    },
    readiness,
    status,
    auditEvents: () => audit.recent(),
    noteUncaught(error, origin) {
      uncaughtErrors++
      log.error({ err: error, origin }, `${origin}: an error escaped every handler; the proxy keeps serving (canary_proxy_uncaught_errors_total). This is a bug: please report it`)
    },
    async reload(next) {
      const fixed = restartOnlyKeys(config, next)
      config = { ...next, listen: config.listen, admin: config.admin, state: config.state, audit: config.audit, metrics: config.metrics }
      log.level = next.log.level
      await plane.reconfigure(config)
      pool?.configure(workerSettings(config, plane.analysis.slotMs))
      await controller.reload(rolloutConfig(config))
      events.emit({ type: 'configReload', at: clock.now(), ok: true, problems: fixed.map((key) => `${key}: changed; takes effect on restart`) })
      return fixed
    },
    async listen() {
      // Admin first, so /readyz can say "starting" while the data plane binds.
      await admin.listen({ host: config.admin.host, port: config.admin.port })
      let proxyUrl: string
      if (local !== null) proxyUrl = await local.listen()
      else {
        // Every worker gets the table the controller restored before it accepts a connection.
        await pool?.start()
        proxyUrl = pool?.url ?? ''
      }
      plane.start()
      void relay?.changed()
      state = 'ready'
      const adminUrl = urlOf(admin.server)
      const workers = pool === null ? {} : { workers: pool.count, pids: pool.pids }
      log.info(
        { proxy: proxyUrl, admin: adminUrl, stable: controller.state.stableUrl, canary: controller.state.canaryUrl, phase: controller.state.phase, ...workers },
        `canary-proxy listening on ${proxyUrl} (admin ${adminUrl})${pool === null ? '' : ` with ${pool.count} workers`}`,
      )
      return { proxyUrl, adminUrl }
    },
    close() {
      closing ??= (async () => {
        state = 'draining'
        if (local !== null) await local.drain()
        // Each worker drains within listen.drainTimeout; one that hangs past it (and a margin) is killed.
        else await pool?.drain(config.listen.drainTimeoutMs + 5_000)
        controller.stopTimers()
        // The last transitions' notifications get a moment to go out; the probes stop first.
        await plane.stop(2_000)
        await controller.flush()
        relay?.close()
        await redis?.close()
        await audit.close()
        await admin.close()
        // Closing the pools waits for upstream requests still running; only
        // then can no exchange record again, and the histograms be released.
        await pools.close()
        plane.dispose()
        log.info('canary-proxy stopped')
      })()
      return closing
    },
  }
}

/** The Redis parts of state.redis; it never waits for Redis (a replica starts and routes without it). */
function sharedBackend(config: Config, log: Logger, replica: string | undefined): RedisBackend<ReplicaSlot> {
  return createRedisBackend<ReplicaSlot>(config, {
    ...(replica === undefined ? {} : { replica }),
    onError: (error) => log.warn({ err: error }, `state.redis: ${error.message}`),
    onUpChange: (up) => (up ? log.info('state.redis: connected') : log.warn('state.redis: unreachable; routing on the last state known')),
  })
}

function sharedState(redis: RedisBackend<ReplicaSlot>): SharedState {
  return { replica: redis.replica, store: redis.store, lease: redis.lease, windows: redis.windows, up: () => redis.backendUp() === 1, ready: (ms) => redis.ready(ms) }
}

async function sharedEvents(redis: RedisBackend<ReplicaSlot>): Promise<readonly EventView[]> {
  try {
    return await redis.audit.recent()
  } catch (error) {
    throw new CanaryProxyError('CPX_ERR_ADMIN_UNAVAILABLE', { detail: `the shared audit trail (${redis.audit.name}) cannot be read: ${(error as Error).message}` })
  }
}

/** Keys a running process cannot change: its listeners, where its state and audit live. */
function restartOnlyKeys(current: Config, next: Config): string[] {
  const keys: string[] = []
  const differ = (a: unknown, b: unknown): boolean => JSON.stringify(a, mapReplacer) !== JSON.stringify(b, mapReplacer)
  if (differ(current.listen, next.listen)) keys.push('listen')
  if (differ(current.admin, next.admin)) keys.push('admin')
  if (differ(current.state, next.state)) keys.push('state')
  if (differ(current.audit, next.audit)) keys.push('audit')
  if (differ(current.metrics, next.metrics)) keys.push('metrics.buckets')
  if (current.routing.connectTimeoutMs !== next.routing.connectTimeoutMs) keys.push('routing.connectTimeout')
  return keys
}

function mapReplacer(_key: string, value: unknown): unknown {
  return value instanceof Map ? [...value] : value
}

/** Every audit record: one line in the audit file, one in the log. */
function recordTransition(event: ControlEvent, audit: AuditLog, log: Logger): void {
  if (event.type !== 'transition') return
  const r = event.record
  const level = r.action === 'rollback' || r.action === 'recover' || r.action === 'config' ? 'warn' : 'info'
  log[level]({ actor: r.actor, action: r.action, from: r.from, to: r.to }, `rollout ${r.action}: ${r.from.phase} ${r.from.weight}% -> ${r.to.phase} ${r.to.weight}%: ${r.reason ?? ''}`)
  audit.append(r).catch((error: unknown) => log.error({ err: error }, `cannot append to the audit log ${audit.file}`))
}

function warnWithoutChecks(config: Config, log: Logger): void {
  const a = config.analysis
  if (a.maxErrorRate === null && a.maxErrorRateIncrease === null && a.maxP99Ms === null && a.maxP99Ratio === null) {
    log.warn('analysis: no checks configured (maxErrorRate, maxErrorRateIncrease, maxP99, maxP99Ratio): every canary with enough traffic will pass')
  }
}

/** What the admin API's /metrics serves: a registry, or the workers' sum with the primary's. */
type Exposition = Pick<Registry, 'contentType' | 'metrics'>

function workersExposition(primary: Registry, pool: WorkerPool): Exposition {
  return {
    contentType: primary.contentType,
    async metrics() {
      const [own, workers] = await Promise.all([primary.getMetricsAsJSON(), pool.metrics()])
      // prom-client omits the start time from an aggregate; the host's is the primary's (listed first, taken first).
      const primaryFirst = own.map((m) => (m.name === 'process_start_time_seconds' ? { ...m, aggregator: 'first' as const } : m))
      return textFormatNaN(await AggregatorRegistry.aggregate([primaryFirst, ...workers]).metrics())
    },
  }
}

/** A worker sends its deltas twice per slot or analysis interval, whichever is shorter (so a collect never waits a whole slot). */
function workerSettings(config: Config, slotMs: number): WorkerSettings {
  return { logLevel: config.log.level, pushMs: Math.max(10, Math.floor(Math.min(slotMs, config.analysis.intervalMs) / 2)) }
}
