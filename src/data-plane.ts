/**
 * buildDataPlane: one process's proxy listener over its Backends (the single
 * process's, or a worker's under listen.workers): the fastify server, its
 * fault and client counters, and the graceful drain. Never listens by itself.
 */
import type { Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from './config/schema.js'
import type { Clock } from './core/clock.js'
import type { Random } from './core/random.js'
import type { Backends } from './proxy/backends.js'
import { defaultMaxConnections, openFileLimit } from './proxy/connection-limit.js'
import type { DataPlaneCounters } from './proxy/exchange.js'
import { createDataPlane, type ClientCounters } from './proxy/server.js'
import { UpstreamPools } from './proxy/upstreams.js'

export interface DataPlaneHost {
  readonly server: FastifyInstance
  readonly faults: DataPlaneCounters
  readonly clientCounters: ClientCounters
  /** Binds listen.host:listen.port (under node:cluster, the primary's shared socket); resolves with the URL. */
  listen(): Promise<string>
  /**
   * Graceful stop: responses carry `Connection: close`, the listener stops
   * accepting, in-flight requests get up to listen.drainTimeout, idle
   * connections close as soon as nothing is in flight, upgraded sockets end.
   */
  drain(): Promise<void>
}

/** The fault counters the pools and exchanges write; built before the pools, whose errors they count. */
export function dataPlaneCounters(config: Config, clock: Clock): DataPlaneCounters {
  return { internalErrors: 0, inFlight: 0, bodyTimeouts: 0, draining: false, onIdle: null, bodyTimeoutMs: config.listen.bodyTimeoutMs, clock }
}

/** Upstream pools whose own errors (those no request took) count as internal errors: a proxy bug, never a side's. */
export function upstreamPools(config: Config, faults: DataPlaneCounters, log: Logger): UpstreamPools {
  return new UpstreamPools({
    connectTimeoutMs: config.routing.connectTimeoutMs,
    onError: (error) => {
      faults.internalErrors++
      log.error({ err: error }, 'an upstream client reported an error no request took (a proxy bug)')
    },
  })
}

export interface DataPlaneDeps {
  readonly config: Config
  readonly backends: Backends
  readonly faults: DataPlaneCounters
  readonly clock: Clock
  readonly random: Random
  readonly log: Logger
}

export function buildDataPlane(deps: DataPlaneDeps): DataPlaneHost {
  const { config, backends, faults, clock, log } = deps
  const clientCounters: ClientCounters = { connectionsDropped: 0 }
  const fdLimit = openFileLimit()
  const maxConnections = config.listen.maxConnections ?? defaultMaxConnections(fdLimit)
  if (config.listen.maxConnections === null) log.debug({ maxConnections, openFileLimit: fdLimit }, 'listen.maxConnections derived from the open-file limit')
  const server = createDataPlane({
    ref: backends.ref,
    random: deps.random,
    faults,
    responseTimeoutMs: config.routing.responseTimeoutMs,
    maxConnections,
    headersTimeoutMs: config.listen.headersTimeoutMs,
    requestTimeoutMs: config.listen.requestTimeoutMs,
    lingerTimeoutMs: config.listen.lingerTimeoutMs,
    clientCounters,
    clock,
    log: log.child({ plane: 'data' }),
  })
  const upgraded = new Set<Socket>()
  server.server.on('upgrade', (_req, socket: Socket) => {
    // A client may send several Upgrade requests on one socket (h2c ones are replayed as plain requests).
    if (upgraded.has(socket)) return
    upgraded.add(socket)
    socket.once('close', () => upgraded.delete(socket))
  })
  let draining: Promise<void> | null = null
  return {
    server,
    faults,
    clientCounters,
    async listen() {
      await server.listen({ host: config.listen.host, port: config.listen.port })
      return urlOf(server.server)
    },
    drain() {
      draining ??= (async () => {
        faults.draining = true
        const drainMs = config.listen.drainTimeoutMs
        const deadline = clock.after(drainMs, () => {
          log.warn(`drain timeout (${drainMs}ms) reached: closing the connections still open`)
          server.server.closeAllConnections()
          for (const socket of upgraded) socket.destroy()
        })
        // Once nothing is in flight, the connections left are idle or have
        // never carried a request (a client's spare): close them now rather
        // than wait for their timeouts. Upgraded (WebSocket) sockets are
        // outside the HTTP server's bookkeeping; they end with the deadline.
        const closed = server.close()
        faults.onIdle = () => server.server.closeAllConnections()
        if (faults.inFlight === 0) faults.onIdle()
        await closed
        deadline.cancel()
        for (const socket of upgraded) socket.destroy()
      })()
      return draining
    },
  }
}

export function urlOf(server: Server): string {
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `http://${host}:${address.port}`
}
