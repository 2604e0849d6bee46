/** Exchange: one proxied request as an undici dispatch handler, streaming the upstream response into the client's. */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { monotonicMicros } from '../core/clock.js'
import { messageOf } from '../core/errors.js'
import type { RoutingSnapshot, UpstreamTarget } from '../routing/snapshot.js'
import { prepareRequestHeaders, prepareResponseHeaders } from './headers.js'
import { classifyFailure, sendLocalReply } from './local-reply.js'

/** Data-plane counters the control plane reads: proxy-internal faults (never charged to a side) and requests in flight, for the drain. */
export interface DataPlaneCounters {
  internalErrors: number
  inFlight: number
  /** Set when the drain begins: responses then carry `Connection: close`, so clients move on. */
  draining: boolean
  /** Called when inFlight drops to 0, while set (during a drain). */
  onIdle: (() => void) | null
}

const CLIENT_GONE = Object.assign(new Error(messageOf('CPX_ERR_CLIENT_ABORT')), { code: 'CPX_ERR_CLIENT_ABORT' })

/**
 * Life of an exchange: constructed with the chosen side -> dispatched on that
 * side's pool -> onResponseStart writes the status and headers -> data is
 * streamed with backpressure -> onResponseEnd records the outcome once.
 * Exactly one of recordResponse / recordFailure / recordClientAbort runs: the
 * `#settled` flag guards it, because a client can vanish at any point.
 */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  readonly #target: UpstreamTarget
  readonly #startUs: number
  readonly #responseTimeoutMs: number
  readonly #faults: DataPlaneCounters
  #controller: Dispatcher.DispatchController | null = null
  #status = 0
  #latencyUs = 0
  #settled = false
  #onDrain: (() => void) | null = null

  constructor(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, snapshot: RoutingSnapshot, faults: DataPlaneCounters, startUs: number) {
    this.#req = req
    this.#res = res
    this.#target = target
    this.#startUs = startUs
    this.#responseTimeoutMs = snapshot.responseTimeoutMs
    this.#faults = faults
    faults.inFlight++
    // 'close' fires exactly once per response: `on` spares the wrapper `once` allocates.
    res.on('close', this.#onClientClose)
  }

  /** Sends the request upstream. Headers are rewritten in place on the request. */
  start(snapshot: RoutingSnapshot, path: string, upstreamHost: string | null): void {
    const req = this.#req
    const method = req.method ?? 'GET'
    // A body is present when the client framed one (RFC 9112 §6.3); GET and
    // HEAD requests almost never do, and then no stream is attached.
    const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
    const headers = prepareRequestHeaders(req, upstreamHost, snapshot.trustForwarded)
    try {
      this.#target.dispatcher.dispatch(
        {
          method,
          path,
          headers: headers as Record<string, string | string[] | undefined>,
          body: hasBody ? req : null,
          headersTimeout: snapshot.responseTimeoutMs,
          bodyTimeout: snapshot.responseTimeoutMs,
          // Idempotent requests may be retried by undici on a stale socket only
          // when no body is attached; never pipelined behind another request.
          blocking: true,
        },
        this,
      )
    } catch (error) {
      this.onResponseError(null, error as Error)
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#settled) controller.abort(CLIENT_GONE)
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // undici reports informational responses (103 Early Hints, …) here too;
    // writing one as the response would make the real one impossible.
    if (this.#settled || statusCode < 200) return
    this.#status = statusCode
    // Latency is the time to the upstream's response headers (as Linkerd's
    // response_latency): how fast the client then reads the body is the
    // client's, and must not make a canary look slow.
    this.#latencyUs = monotonicMicros() - this.#startUs
    const out = prepareResponseHeaders(headers)
    if (this.#faults.draining) out.connection = 'close'
    try {
      // Node's own reason phrase, never the upstream's: HTTP/1.1 clients
      // ignore it (RFC 9112 §4), and Node refuses some bytes an upstream may send there.
      this.#res.writeHead(statusCode, out)
    } catch (error) {
      // Node refuses a header value the upstream sent (say, a bare CR): the
      // response is unusable, which is the upstream's fault.
      controller.abort(Object.assign(new Error(`invalid response header: ${(error as Error).message}`), { code: 'HPE_INVALID_HEADER_TOKEN' }))
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    if (!this.#res.write(chunk)) {
      controller.pause()
      if (this.#onDrain === null) this.#onDrain = () => controller.resume()
      this.#res.once('drain', this.#onDrain)
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#settled = true
    this.#res.end()
    this.#target.stats.recordResponse(this.#status, this.#latencyUs)
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#settled) return
    this.#settled = true
    if (this.#clientGone()) {
      this.#target.stats.recordClientAbort()
      return
    }
    const failure = classifyFailure(error, this.#target.side, this.#responseTimeoutMs)
    if (failure.upstreamFault) this.#target.stats.recordFailure()
    else this.#faults.internalErrors++
    sendLocalReply(this.#res, failure.code, failure.message)
  }

  #clientGone(): boolean {
    return this.#req.socket.destroyed || (this.#res.destroyed && !this.#res.writableFinished)
  }

  /** 'close' fires once for every response, finished or cut short. */
  readonly #onClientClose = (): void => {
    const counters = this.#faults
    if (--counters.inFlight === 0 && counters.onIdle !== null) counters.onIdle()
    if (this.#settled || this.#res.writableFinished) return
    this.#settled = true
    this.#target.stats.recordClientAbort()
    this.#controller?.abort(CLIENT_GONE)
  }
}
