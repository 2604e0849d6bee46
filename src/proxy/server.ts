/** The data-plane server: fastify for listen and close; every request goes straight to one listener that hands it to an Exchange. */
import { createServer, maxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { monotonicMicros, type Clock } from '../core/clock.js'
import { messageOf, type ErrorCode } from '../core/errors.js'
import type { Random } from '../core/random.js'
import { pickSide } from '../routing/pick-side.js'
import type { SnapshotRef } from '../routing/snapshot.js'
import { Exchange, type DataPlaneCounters } from './exchange.js'
import { sendLocalReply } from './local-reply.js'
import { proxyUpgrade, rawLocalReply, replayWithoutUpgrade, upgradeable, writeLocalReply } from './upgrade.js'

export interface DataPlaneOptions {
  readonly ref: SnapshotRef
  readonly random: Random
  readonly faults: DataPlaneCounters
  readonly responseTimeoutMs: number
  readonly onUpgradeError?: (error: Error) => void
  /** Client side of the data plane (listen.*). */
  readonly maxConnections: number
  readonly headersTimeoutMs: number
  readonly requestTimeoutMs: number
  readonly lingerTimeoutMs: number
  readonly clientCounters: ClientCounters
  readonly clock: Clock
  readonly log: Logger
}

/** Client-side counters the metrics read at scrape time. */
export interface ClientCounters {
  /** Connections closed at accept because listen.maxConnections were open. */
  connectionsDropped: number
}

/**
 * Request header fields accepted (Node's own default count). Node drops the
 * fields beyond its maxHeadersCount without a word, Content-Length among
 * them, and the upstream got a request whose body had vanished while the
 * client got a 200 (issue 7, defect 9). The server keeps one more field than
 * this, so a request that has more can be told apart and refused with 431,
 * as Envoy refuses one over its max_headers_count. The 16 KiB header size
 * limit bounds the block anyway.
 */
export const MAX_HEADER_FIELDS = 2000
const TOO_MANY_FIELDS = messageOf('CPX_ERR_HEADERS_TOO_LARGE', { detail: `more than ${MAX_HEADER_FIELDS} fields` })
const UNSUPPORTED_CODING = messageOf('CPX_ERR_UNSUPPORTED_TRANSFER_CODING')
const EXPECTATION_FAILED = messageOf('CPX_ERR_EXPECTATION_FAILED')
/** At most one log line per this long about dropped connections, however many are dropped. */
const DROP_LOG_INTERVAL_MS = 10_000

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

/**
 * Only `chunked` is forwarded as a transfer coding: the body reaches undici
 * decoded and is sent on re-chunked, so a coding before chunked (`gzip,
 * chunked`) would be silently dropped and the upstream would read gzip bytes
 * as the body (issue 7, defect 10). undici cannot send a Transfer-Encoding
 * header of ours, so such a request is refused with 501, as RFC 9112 §6.1
 * says and NGINX does for any Transfer-Encoding other than chunked. A list
 * that does not end in chunked has no valid framing at all: llhttp refuses
 * it with a 400 right after this handler returns, so it is left to llhttp.
 */
function unsupportedCoding(req: IncomingMessage): boolean {
  const coding = req.headers['transfer-encoding']
  if (coding === undefined) return false
  const comma = coding.lastIndexOf(',')
  return comma !== -1 && coding.slice(comma + 1).trim().toLowerCase() === 'chunked'
}

/** A refusal that ends the connection too: the body that may follow is not read. */
function refuse(res: ServerResponse, code: ErrorCode, message: string): void {
  res.shouldKeepAlive = false
  sendLocalReply(res, code, message)
}

/** The hot path: the data-plane server's one request listener. */
export function createRequestHandler(options: DataPlaneOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { ref, random, faults } = options
  return function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
    const startUs = monotonicMicros()
    if (req.rawHeaders.length > 2 * MAX_HEADER_FIELDS) {
      refuse(res, 'CPX_ERR_HEADERS_TOO_LARGE', TOO_MANY_FIELDS)
      return
    }
    if (unsupportedCoding(req)) {
      refuse(res, 'CPX_ERR_UNSUPPORTED_TRANSFER_CODING', UNSUPPORTED_CODING)
      return
    }
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
    const target = pickSide(snapshot, req.headers, random, req.socket)
    const exchange = new Exchange(req, res, target, snapshot, faults, startUs)
    const url = req.url ?? '/'
    exchange.start(snapshot, target.basePath === '' ? url : target.basePath + url, snapshot.preserveHost ? null : target.host)
  }
}

/**
 * Replies to what Node's parser refused (fastify's clientErrorHandler slot):
 * fastify's mapping (408 for ERR_HTTP_REQUEST_TIMEOUT, 431 for
 * HPE_HEADER_OVERFLOW, 400 for the rest), but as every reply the proxy
 * generates, with x-canary-proxy-error and a short text body (issue 7,
 * defect 17). As Node's own handler, nothing is written once a response on
 * this socket has begun (it would corrupt that response), and the socket is
 * destroyed: the parser cannot go on after an error.
 */
export function replyToClientError(error: Error & { code?: string; reason?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  let code: ErrorCode
  let message: string
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    code = 'CPX_ERR_REQUEST_TIMEOUT'
    message = messageOf(code)
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    code = 'CPX_ERR_HEADERS_TOO_LARGE'
    message = messageOf(code, { detail: `more than ${maxHeaderSize} bytes` })
  } else {
    code = 'CPX_ERR_BAD_REQUEST'
    message = messageOf(code, { cause: `${error.reason ?? error.message}${error.code === undefined ? '' : ` (${error.code})`}` })
  }
  // Node's socketOnError reads the same field for the same reason.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage
  if (socket.writable && inFlight?.headersSent !== true) socket.write(rawLocalReply(code, message))
  socket.destroy()
}

export function createDataPlane(options: DataPlaneOptions): FastifyInstance {
  const handle = createRequestHandler(options)
  const app = fastify({
    logger: false,
    forceCloseConnections: 'idle',
    clientErrorHandler: replyToClientError as (error: Error, socket: Socket) => void,
    // Every request goes to the proxy handler as it arrived. fastify's router
    // would answer some itself before any handler runs (a bad %-encoding:
    // 400, an unusual Content-Type: 415, a request during close: 503), none
    // of them proxied, marked or counted. fastify still owns listen and close.
    serverFactory: () => {
      // Node checks headersTimeout and requestTimeout only every
      // connectionsCheckingInterval (30 s by default), so a 20 s headers
      // timeout really fired at up to 50 s; a quarter of it keeps the
      // overshoot at 25% for a walk over the open connections every 5 s.
      const server = createServer({ connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(options.headersTimeoutMs / 4))) }, handle)
      // Longer than a fronting load balancer's usual 60s idle timeout, so the
      // LB, not us, closes idle connections (no race on reuse).
      server.keepAliveTimeout = 65_000
      // Whole request (headers and body) from the client; headers alone.
      server.requestTimeout = options.requestTimeoutMs
      server.headersTimeout = options.headersTimeoutMs
      // A client socket idles while the upstream thinks: never cut it before
      // the upstream had its responseTimeout to answer with a 504.
      server.setTimeout(options.responseTimeoutMs + 10_000)
      server.maxHeadersCount = MAX_HEADER_FIELDS + 1
      // Each client connection can take descriptors an upstream connection,
      // the admin port or the state file then cannot have (src/proxy/connection-limit.ts).
      server.maxConnections = options.maxConnections
      return server
    },
  })
  const server = app.server
  let lastDropLog = Number.NEGATIVE_INFINITY
  let droppedAtLastLog = 0
  server.on('drop', () => {
    const counters = options.clientCounters
    counters.connectionsDropped++
    const now = options.clock.now()
    if (now - lastDropLog < DROP_LOG_INTERVAL_MS) return
    options.log.warn(
      { maxConnections: options.maxConnections, dropped: counters.connectionsDropped - droppedAtLastLog },
      `listen.maxConnections (${options.maxConnections}) client connections are open: new ones are closed at accept (canary_proxy_connections_dropped_total)`,
    )
    lastDropLog = now
    droppedAtLastLog = counters.connectionsDropped
  })
  // An Expect other than 100-continue: Node answers a bare 417 unless told otherwise.
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => refuse(res, 'CPX_ERR_EXPECTATION_FAILED', EXPECTATION_FAILED))
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.rawHeaders.length > 2 * MAX_HEADER_FIELDS) {
      socket.on('error', () => socket.destroy())
      writeLocalReply(socket, 'CPX_ERR_HEADERS_TOO_LARGE', TOO_MANY_FIELDS, options)
      return
    }
    if (!upgradeable(req)) {
      replayWithoutUpgrade(server, req, socket, head)
      return
    }
    req.url = originForm(req)
    if ((req as MarkedRequest)[BAD_TARGET] === true || !hostIsValid(req)) {
      socket.on('error', () => socket.destroy())
      if ((req as MarkedRequest)[BAD_TARGET] === true) writeLocalReply(socket, 'CPX_ERR_BAD_REQUEST_TARGET', messageOf('CPX_ERR_BAD_REQUEST_TARGET'), options)
      else writeLocalReply(socket, 'CPX_ERR_BAD_HOST', BAD_HOST_MESSAGE, options)
      return
    }
    proxyUpgrade(req, socket, head, options)
  })
  // CONNECT (authority-form) would make this a forward proxy; without a
  // listener Node just drops the socket, so the client learns nothing.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy())
    writeLocalReply(socket, 'CPX_ERR_BAD_REQUEST_TARGET', messageOf('CPX_ERR_BAD_REQUEST_TARGET'), options)
  })
  return app
}
