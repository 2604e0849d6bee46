/** buildApp(deps): wires config, clock, stores, data plane, admin plane and rollout controller; returns handles and a graceful close(). Never listens by itself. */
import type { Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { createAdminServer, type Readiness } from './admin/server.js'
import type { Config } from './config/schema.js'
import { systemClock, type Clock } from './core/clock.js'
import { systemRandom, type Random } from './core/random.js'
import { EventFeed } from './events/feed.js'
import { createLogger } from './log.js'
import type { DataPlaneCounters } from './proxy/exchange.js'
import { createDataPlane } from './proxy/server.js'
import { UpstreamPools } from './proxy/upstreams.js'
import { RolloutController } from './rollout/controller.js'
import { createRegistry } from './stats/metrics.js'
import { SideStats } from './stats/side-stats.js'
import { AuditLog, type AuditEvent } from './state/audit-log.js'
import { FileStateStore } from './state/file-store.js'
import { MonitoredStore } from './state/monitored-store.js'
import type { StateStore } from './state/store.js'

export interface AppDeps {
  readonly config: Config
  readonly clock?: Clock
  readonly random?: Random
  readonly log?: Logger
  /** Defaults to the file store at config.state.file. */
  readonly store?: StateStore
}

export interface App {
  readonly config: Config
  readonly controller: RolloutController
  readonly dataPlane: FastifyInstance
  readonly admin: FastifyInstance
  readonly registry: Registry
  readonly log: Logger
  /** The control plane's event feed (transitions, decisions, persistence failures). */
  readonly events: EventFeed
  readiness(): Readiness
  /** The recent audit events, oldest first (GET /api/v1/events). */
  auditEvents(): readonly AuditEvent[]
  /** Starts both listeners and the rollout timers; resolves with the bound URLs. */
  listen(): Promise<{ proxyUrl: string; adminUrl: string }>
  /** Graceful stop: not ready at once, stop accepting, let in-flight requests finish (up to listen.drainTimeout), flush state. */
  close(): Promise<void>
}

export async function buildApp(deps: AppDeps): Promise<App> {
  const { config } = deps
  const clock = deps.clock ?? systemClock
  const random = deps.random ?? systemRandom
  const log = deps.log ?? createLogger(config.log.level)
  const now = clock.now()
  const buckets = config.metrics.bucketsSeconds
  const stats = { stable: new SideStats('stable', config.analysis.windowMs, now, buckets), canary: new SideStats('canary', config.analysis.windowMs, now, buckets) }
  const pools = new UpstreamPools({ connectTimeoutMs: config.routing.connectTimeoutMs })
  const store = new MonitoredStore(deps.store ?? new FileStateStore(config.state.file))
  const audit = new AuditLog(config.audit.file)
  const events = new EventFeed((error, event) => log.error({ err: error, event: event.type }, 'an event subscriber failed'))
  try {
    await audit.open()
  } catch (error) {
    stats.stable.dispose()
    stats.canary.dispose()
    throw error
  }
  const a = config.analysis
  if (a.maxErrorRate === null && a.maxErrorRateIncrease === null && a.maxP99Ms === null && a.maxP99Ratio === null) {
    log.warn('analysis: no checks configured (maxErrorRate, maxErrorRateIncrease, maxP99, maxP99Ratio): every canary with enough traffic will pass')
  }
  let controller: RolloutController
  try {
    controller = await RolloutController.create({ config, clock, store, audit, pools, stats, log, events })
  } catch (error) {
    await audit.close()
    stats.stable.dispose()
    stats.canary.dispose()
    throw error
  }
  const faults: DataPlaneCounters = { internalErrors: 0, inFlight: 0, draining: false, onIdle: null }
  let readiness: Readiness = 'starting'

  const dataPlane = createDataPlane({ ref: controller.ref, random, faults, responseTimeoutMs: config.routing.responseTimeoutMs })
  const upgraded = new Set<Socket>()
  dataPlane.server.on('upgrade', (_req, socket: Socket) => {
    // A client may send several Upgrade requests on one socket (h2c ones are replayed as plain requests).
    if (upgraded.has(socket)) return
    upgraded.add(socket)
    socket.once('close', () => upgraded.delete(socket))
  })
  const registry = createRegistry({
    sides: [stats.stable, stats.canary],
    weight: () => controller.state.weight,
    phase: () => controller.state.phase,
    step: () => controller.status().step ?? -1,
    info: () => ({ stable: controller.state.stableUrl, canary: controller.state.canaryUrl, generation: controller.state.generation }),
    lastTransitionAt: () => controller.state.updatedAt,
    findings: () => controller.state.lastDecision?.findings ?? [],
    ready: () => readiness === 'ready',
    rollbacks: () => controller.rollbacks,
    internalErrors: () => faults.internalErrors,
    persistFailures: () => controller.persistFailures,
    auditWriteFailures: () => audit.writeFailures,
    stateBackendUp: () => store.up,
    windowFigures: (side) => controller.figures()[side],
  })
  const admin = createAdminServer({ controller, registry, audit, tokens: config.admin.tokens, readiness: () => readiness, log: log.child({ plane: 'admin' }) })

  let closing: Promise<void> | null = null
  return {
    config,
    controller,
    dataPlane,
    admin,
    registry,
    log,
    events,
    readiness: () => readiness,
    auditEvents: () => audit.recent(),
    async listen() {
      // Admin first, so /readyz can say "starting" while the data plane binds.
      await admin.listen({ host: config.admin.host, port: config.admin.port })
      await dataPlane.listen({ host: config.listen.host, port: config.listen.port })
      controller.startTimers()
      readiness = 'ready'
      const proxyUrl = urlOf(dataPlane.server)
      const adminUrl = urlOf(admin.server)
      log.info({ proxy: proxyUrl, admin: adminUrl, stable: controller.state.stableUrl, canary: controller.state.canaryUrl, phase: controller.state.phase }, `canary-proxy listening on ${proxyUrl} (admin ${adminUrl})`)
      return { proxyUrl, adminUrl }
    },
    close() {
      closing ??= (async () => {
        readiness = 'draining'
        faults.draining = true
        const deadline = clock.after(config.listen.drainTimeoutMs, () => {
          log.warn(`drain timeout (${config.listen.drainTimeoutMs}ms) reached: closing the connections still open`)
          dataPlane.server.closeAllConnections()
          for (const socket of upgraded) socket.destroy()
        })
        // Once nothing is in flight, the connections left are idle or have
        // never carried a request (a client's spare): close them now rather
        // than wait for their timeouts. Upgraded (WebSocket) sockets are
        // outside the HTTP server's bookkeeping; they end with the deadline.
        const closed = dataPlane.close()
        faults.onIdle = () => dataPlane.server.closeAllConnections()
        if (faults.inFlight === 0) faults.onIdle()
        await closed
        deadline.cancel()
        for (const socket of upgraded) socket.destroy()
        controller.stopTimers()
        await controller.flush()
        await audit.close()
        await admin.close()
        // Closing the pools waits for upstream requests still running; only
        // then can no exchange record again, and the histograms be released.
        await pools.close()
        stats.stable.dispose()
        stats.canary.dispose()
        log.info('canary-proxy stopped')
      })()
      return closing
    },
  }
}

function urlOf(server: Server): string {
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}
