/** The data-plane server: fastify for listen, close and client errors; every request goes straight to one listener that hands it to an Exchange. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import fastify, { type FastifyInstance } from 'fastify'
import { monotonicMicros } from '../core/clock.js'
import { messageOf } from '../core/errors.js'
import type { Random } from '../core/random.js'
import { pickSide } from '../routing/pick-side.js'
import type { SnapshotRef } from '../routing/snapshot.js'
import { Exchange, type DataPlaneCounters } from './exchange.js'
import { sendLocalReply } from './local-reply.js'
import { proxyUpgrade, replayWithoutUpgrade, upgradeable, writeLocalReply } from './upgrade.js'

export interface DataPlaneOptions {
  readonly ref: SnapshotRef
  readonly random: Random
  readonly faults: DataPlaneCounters
  readonly responseTimeoutMs: number
  readonly onUpgradeError?: (error: Error) => void
}

const BAD_TARGET = Symbol('canary-proxy.badTarget')
type MarkedRequest = IncomingMessage & { [BAD_TARGET]?: true }

/**
 * The request target never chooses the destination (SPEC: "an absolute-form
 * target is sent to the configured upstream with its path and query only").
 * Node hands absolute-form through as req.url; this runs before routing.
 */
export function originForm(req: MarkedRequest): string {
  const url = req.url ?? '/'
  if (url.charCodeAt(0) === 0x2f) {
    // A fragment is not part of a request target (RFC 9112 §3.2); never forward one.
    const hash = url.indexOf('#')
    return hash === -1 ? url : url.slice(0, hash)
  }
  if (/^https?:\/\//i.test(url)) {
    try {
      const parsed = new URL(url)
      // RFC 9112 §3.2.2: with an absolute-form target the server uses its
      // authority as the Host (it still never chooses the upstream).
      req.headers.host = parsed.host
      return `${parsed.pathname}${parsed.search}`
    } catch {
      // fall through: not a URL after all
    }
  }
  req[BAD_TARGET] = true
  return '/'
}

/** RFC 3986 authority without userinfo: reg-name, IPv4 or [IPv6], optional port. */
const HOST_VALUE = /^(?:\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::\d*)?$/
const BAD_HOST_MESSAGE = messageOf('CPX_ERR_BAD_HOST')

/**
 * RFC 9112 §3.2: a server MUST answer 400 to a request with more than one
 * Host line or an invalid Host value. llhttp accepts both (Node keeps the
 * first of two), and with preserveHost the value would reach the upstream.
 * No Host at all is left to Node: it refuses that for HTTP/1.1 and HTTP/1.0
 * may omit it. A scan of rawHeaders with char compares: no allocation.
 */
export function hostIsValid(req: IncomingMessage): boolean {
  const raw = req.rawHeaders
  let count = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (
      name.length === 4 &&
      (name.charCodeAt(0) | 0x20) === 0x68 &&
      (name.charCodeAt(1) | 0x20) === 0x6f &&
      (name.charCodeAt(2) | 0x20) === 0x73 &&
      (name.charCodeAt(3) | 0x20) === 0x74
    ) {
      count++
    }
  }
  if (count === 0) return true
  const host = req.headers.host
  return count === 1 && host !== undefined && HOST_VALUE.test(host)
}

/** The hot path: the data-plane server's one request listener. */
export function createRequestHandler(options: DataPlaneOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { ref, random, faults } = options
  return function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
    const startUs = monotonicMicros()
    req.url = originForm(req)
    if ((req as MarkedRequest)[BAD_TARGET] === true) {
      sendLocalReply(res, 'CPX_ERR_BAD_REQUEST_TARGET', messageOf('CPX_ERR_BAD_REQUEST_TARGET'))
      return
    }
    if (!hostIsValid(req)) {
      sendLocalReply(res, 'CPX_ERR_BAD_HOST', BAD_HOST_MESSAGE)
      return
    }
    const snapshot = ref.current
    const target = pickSide(snapshot, req.headers, random)
    const exchange = new Exchange(req, res, target, snapshot, faults, startUs)
    const url = req.url ?? '/'
    exchange.start(snapshot, target.basePath === '' ? url : target.basePath + url, snapshot.preserveHost ? null : target.host)
  }
}

export function createDataPlane(options: DataPlaneOptions): FastifyInstance {
  const handle = createRequestHandler(options)
  const app = fastify({
    logger: false,
    forceCloseConnections: 'idle',
    // Every request goes to the proxy handler as it arrived. fastify's router
    // would answer some itself before any handler runs (a bad %-encoding:
    // 400, an unusual Content-Type: 415, a request during close: 503), none
    // of them proxied, marked or counted. fastify still owns listen, close
    // and client-error replies (400/408/431).
    serverFactory: () => {
      const server = createServer(handle)
      // Longer than a fronting load balancer's usual 60s idle timeout, so the
      // LB, not us, closes idle connections (no race on reuse).
      server.keepAliveTimeout = 65_000
      // Whole request (headers and body) from the client; headers alone.
      server.requestTimeout = 300_000
      server.headersTimeout = 20_000
      // A client socket idles while the upstream thinks: never cut it before
      // the upstream had its responseTimeout to answer with a 504.
      server.setTimeout(options.responseTimeoutMs + 10_000)
      return server
    },
  })
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!upgradeable(req)) {
      replayWithoutUpgrade(app.server, req, socket, head)
      return
    }
    req.url = originForm(req)
    if ((req as MarkedRequest)[BAD_TARGET] === true || !hostIsValid(req)) {
      socket.on('error', () => socket.destroy())
      if ((req as MarkedRequest)[BAD_TARGET] === true) writeLocalReply(socket, 'CPX_ERR_BAD_REQUEST_TARGET', messageOf('CPX_ERR_BAD_REQUEST_TARGET'))
      else writeLocalReply(socket, 'CPX_ERR_BAD_HOST', BAD_HOST_MESSAGE)
      return
    }
    proxyUpgrade(req, socket, head, options)
  })
  // CONNECT (authority-form) would make this a forward proxy; without a
  // listener Node just drops the socket, so the client learns nothing.
  app.server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy())
    writeLocalReply(socket, 'CPX_ERR_BAD_REQUEST_TARGET', messageOf('CPX_ERR_BAD_REQUEST_TARGET'))
  })
  return app
}
