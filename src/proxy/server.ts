/** The data-plane server: a fastify instance whose one catch-all route hands each request to an Exchange. */
import { METHODS, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import fastify, { type FastifyInstance } from 'fastify'
import { monotonicMicros } from '../core/clock.js'
import type { Random } from '../core/random.js'
import { pickSide } from '../routing/pick-side.js'
import type { SnapshotRef } from '../routing/snapshot.js'
import { Exchange, type InternalFaults } from './exchange.js'
import { sendLocalReply } from './local-reply.js'
import { proxyUpgrade } from './upgrade.js'

export interface DataPlaneOptions {
  readonly ref: SnapshotRef
  readonly random: Random
  readonly faults: InternalFaults
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
  if (url.charCodeAt(0) === 0x2f) return url
  if (/^https?:\/\//i.test(url)) {
    try {
      const parsed = new URL(url)
      return `${parsed.pathname}${parsed.search}`
    } catch {
      // fall through: not a URL after all
    }
  }
  req[BAD_TARGET] = true
  return '/'
}

/** The hot path, mounted on fastify's catch-all route (and usable on a bare node:http server). */
export function createRequestHandler(options: DataPlaneOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { ref, random, faults } = options
  return function proxyRequest(req: IncomingMessage, res: ServerResponse): void {
    const startUs = monotonicMicros()
    if ((req as MarkedRequest)[BAD_TARGET] === true) {
      sendLocalReply(res, 'CPX_ERR_BAD_REQUEST_TARGET', 'request target must be origin-form (/path) or absolute-form (http://host/path)')
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
  const app = fastify({
    // Per-request child loggers cost an allocation each; the data plane logs
    // through the app logger on faults only.
    logger: false,
    rewriteUrl: originForm,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Longer than a fronting load balancer's usual 60s idle timeout, so the
    // LB, not us, closes idle connections (no race on reuse).
    keepAliveTimeout: 65_000,
    // A client socket idles while the upstream thinks: never cut it before
    // the upstream had its responseTimeout to answer with a 504.
    connectionTimeout: options.responseTimeoutMs + 10_000,
    // Whole request (headers and body) from the client; fastify's default 0 is unbounded.
    requestTimeout: 300_000,
  })
  app.server.headersTimeout = 20_000
  for (const method of METHODS) {
    if (method !== 'CONNECT' && !app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true })
  }
  // Bodies are never parsed: the raw request stream goes to the upstream.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  const handle = createRequestHandler(options)
  app.route({
    method: app.supportedMethods.filter((m) => m !== 'CONNECT'),
    url: '*',
    handler(request, reply) {
      reply.hijack()
      handle(request.raw, reply.raw)
    },
  })
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    req.url = originForm(req)
    proxyUpgrade(req, socket, head, options)
  })
  return app
}
