/** Exchange: one proxied request as an undici dispatch handler, streaming the upstream response into the client's. */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import { monotonicMicros, type Clock, type Timer } from '../core/clock.js'
import { formatDuration } from '../core/duration.js'
import { messageOf } from '../core/errors.js'
import type { RoutingSnapshot, UpstreamTarget } from '../routing/snapshot.js'
import { prepareRequestHeaders, prepareResponseHeaders } from './headers.js'
import { classifyFailure, errorCode, sendLocalReply } from './local-reply.js'
import { onNewConnection, UpstreamPool } from './upstreams.js'

/**
 * What every exchange shares: counters the control plane reads (proxy-internal
 * faults and client-side timeouts, never charged to a side; requests in
 * flight, for the drain) and the data plane's own settings. One object handed
 * to each exchange, so a setting costs no extra argument per request.
 */
export interface DataPlaneCounters {
  internalErrors: number
  inFlight: number
  /** Requests answered 408 because their body stalled for bodyTimeoutMs: the client's doing. */
  bodyTimeouts: number
  /** Set when the drain begins: responses then carry `Connection: close`, so clients move on. */
  draining: boolean
  /** Called when inFlight drops to 0, while set (during a drain). */
  onIdle: (() => void) | null
  /** listen.bodyTimeout: the longest a request body may go without a byte from the client. */
  readonly bodyTimeoutMs: number
  /** Times the body idle timeout (the injected clock, so no timer of its own). */
  readonly clock: Clock
}

const CLIENT_GONE = Object.assign(new Error(messageOf('CPX_ERR_CLIENT_ABORT')), { code: 'CPX_ERR_CLIENT_ABORT' })
const BODY_STALLED = Object.assign(new Error('the request body stalled'), { code: 'CPX_ERR_CLIENT_BODY_TIMEOUT' })

/**
 * Methods retried once when a kept-alive connection closes under them:
 * RFC 9110 §9.2.2's idempotent methods, the set NGINX's proxy_next_upstream
 * retries by default (POST, LOCK and PATCH need its `non_idempotent`).
 * Only without a body: bodies are streamed, not buffered, so the bytes
 * already sent cannot be sent again.
 */
const RETRY_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
/** The connection closed or was reset: what a keep-alive race looks like (not a timeout, not a bad response). */
const RETRY_CODES: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE'])
/** RFC 9112 §6.3: a 204 or 304 ends with its header section whatever Content-Length says (RFC 9110 §8.6 allows it on a 304). */
const CONTENT_LENGTH_MISMATCH = 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
/** The body idle timeout is checked this many times per period; a body is cut after that many quiet checks in a row, so within 1.25 periods of its last byte. */
const BODY_CHECKS = 4

/**
 * A 204 or 304 has no body whatever Content-Length says (RFC 9112 §6.3), but
 * on a 204 a sender MUST NOT send one and on a 304 it describes a body that is
 * not there (RFC 9110 §8.6, §15.4.5), and some clients refuse it (undici, so
 * fetch(): "Response body length does not match content-length header").
 * Dropped on the way to the client; a copy, as `delete` would slow writeHead.
 */
function withoutContentLength(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) if (name !== 'content-length') out[name] = headers[name]
  return out
}

/**
 * Life of an exchange: constructed with the chosen side -> dispatched on that
 * side's pool -> onResponseStart writes the status and headers -> data is
 * streamed with backpressure -> onResponseEnd records the outcome once.
 * Exactly one of recordResponse / recordFailure / recordClientAbort runs (or
 * none, when the client is at fault): the `#settled` flag guards it, because
 * a client can vanish at any point. A request that loses a keep-alive race is
 * sent once more before anything is recorded (#retryable).
 */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly #req: IncomingMessage
  readonly #res: ServerResponse
  /**
   * The client's socket, kept from the start: undici's util.destroy(body)
   * sets `req.socket = null` once it has read the body (so destroying the
   * request does not close the client), and an error after that must still
   * tell whether the client is there (issue 7, defect 1).
   */
  readonly #socket: Socket
  readonly #target: UpstreamTarget
  readonly #startUs: number
  readonly #responseTimeoutMs: number
  readonly #faults: DataPlaneCounters
  #controller: Dispatcher.DispatchController | null = null
  /** What was dispatched, kept for a retry. */
  #options: Dispatcher.DispatchOptions | null = null
  #status = 0
  #latencyUs = 0
  #settled = false
  /** Some byte of a response (interim ones included) has arrived: past that point nothing is retried. */
  #responseStarted = false
  /** The request went out on a connection taken from the keep-alive cache. */
  #reused = false
  #retried = false
  #onDrain: (() => void) | null = null
  #bodyTimer: Timer | null = null
  #bodyBytesRead = 0
  #bodyQuietChecks = 0

  constructor(req: IncomingMessage, res: ServerResponse, target: UpstreamTarget, snapshot: RoutingSnapshot, faults: DataPlaneCounters, startUs: number) {
    this.#req = req
    this.#res = res
    this.#socket = req.socket
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
    const options: Dispatcher.DispatchOptions = {
      method,
      path,
      headers: headers as Record<string, string | string[] | undefined>,
      body: hasBody ? req : null,
      headersTimeout: snapshot.responseTimeoutMs,
      bodyTimeout: snapshot.responseTimeoutMs,
      // Never pipelined behind another request.
      blocking: true,
    }
    this.#options = options
    try {
      this.#target.dispatcher.dispatch(options, this)
    } catch (error) {
      this.onResponseError(null, error as Error)
    }
    if (hasBody && !this.#settled) this.#watchBody()
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    this.#reused = !onNewConnection()
    if (this.#settled) controller.abort(CLIENT_GONE)
  }

  /** undici's first-byte signal (llhttp's message begin), for every response including interim ones. */
  onResponseStarted(): void {
    this.#responseStarted = true
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
    let out = prepareResponseHeaders(headers)
    if ((statusCode === 304 || statusCode === 204) && out['content-length'] !== undefined) out = withoutContentLength(out)
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
    this.#settle()
    this.#res.end()
    this.#target.stats.recordResponse(this.#status, this.#latencyUs)
  }

  /**
   * Called by undici inside its own error paths (a socket's 'close', the
   * parser), where a throw becomes a client 'error' event: so this never
   * throws, and anything unexpected is the proxy's fault, not the side's.
   */
  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#settled) return
    try {
      if (this.#clientGone()) {
        this.#settle()
        this.#target.stats.recordClientAbort()
        return
      }
      if ((this.#status === 304 || this.#status === 204) && errorCode(error) === CONTENT_LENGTH_MISMATCH) {
        this.onResponseEnd()
        return
      }
      if (this.#retryable(error)) {
        this.#retry()
        return
      }
      this.#settle()
      const failure = classifyFailure(error, this.#target.side, this.#responseTimeoutMs)
      if (failure.upstreamFault) this.#target.stats.recordFailure()
      else this.#faults.internalErrors++
      // A body the client is still sending will not be read: close rather than drain it (RFC 9112 §9.6).
      sendLocalReply(this.#res, failure.code, failure.message, !this.#req.complete)
    } catch {
      this.#settled = true
      this.#faults.internalErrors++
      this.#res.destroy()
    }
  }

  /**
   * The keep-alive race (issue 7, defect 8): the upstream closes an idle
   * connection just as a request goes out on it. Retried once, on a new
   * connection, when nothing can have been lost: the connection came from the
   * keep-alive cache, no byte of a response arrived, no body was attached and
   * the method is idempotent. This is NGINX's proxy_next_upstream `error` and
   * Envoy's `reset-before-request`, narrowed to the one case that is always safe.
   */
  #retryable(error: Error): boolean {
    const options = this.#options
    return (
      !this.#retried &&
      this.#reused &&
      !this.#responseStarted &&
      options !== null &&
      options.body === null &&
      RETRY_METHODS.has(options.method) &&
      RETRY_CODES.has(errorCode(error))
    )
  }

  #retry(): void {
    this.#retried = true
    this.#controller = null
    this.#target.stats.recordRetry()
    const pool = this.#target.dispatcher
    const options = this.#options!
    try {
      if (pool instanceof UpstreamPool) pool.dispatchOnNewConnection(options, this)
      else pool.dispatch(options, this)
    } catch (error) {
      this.onResponseError(null, error as Error)
    }
  }

  #settle(): void {
    this.#settled = true
    if (this.#bodyTimer !== null) this.#stopBodyWatch()
  }

  #clientGone(): boolean {
    return this.#socket.destroyed || (this.#res.destroyed && !this.#res.writableFinished)
  }

  /**
   * listen.bodyTimeout (NGINX's client_body_timeout): a request body that
   * goes quiet for that long is answered 408 and its upstream request is
   * aborted, which frees the upstream connection. One timer per request with
   * a body, nothing per chunk: each check compares the client socket's
   * bytesRead with the last one. Time when the body is not being read (the
   * upstream applies backpressure, or no connection yet) is never counted
   * against the client; the upstream's own slowness there is undici's
   * headersTimeout, a 504.
   */
  #watchBody(): void {
    this.#bodyBytesRead = this.#socket.bytesRead
    const every = Math.max(1, Math.ceil(this.#faults.bodyTimeoutMs / BODY_CHECKS))
    this.#bodyTimer = this.#faults.clock.every(every, () => this.#checkBody())
  }

  #stopBodyWatch(): void {
    this.#bodyTimer?.cancel()
    this.#bodyTimer = null
  }

  #checkBody(): void {
    const req = this.#req
    if (this.#settled || req.complete) {
      this.#stopBodyWatch()
      return
    }
    const read = this.#socket.bytesRead
    if (read !== this.#bodyBytesRead || req.readableFlowing !== true) {
      this.#bodyBytesRead = read
      this.#bodyQuietChecks = 0
      return
    }
    if (++this.#bodyQuietChecks < BODY_CHECKS) return
    this.#settle()
    this.#faults.bodyTimeouts++
    sendLocalReply(this.#res, 'CPX_ERR_CLIENT_BODY_TIMEOUT', messageOf('CPX_ERR_CLIENT_BODY_TIMEOUT', { timeout: formatDuration(this.#faults.bodyTimeoutMs) }), true)
    this.#controller?.abort(BODY_STALLED)
  }

  /** 'close' fires once for every response, finished or cut short. */
  readonly #onClientClose = (): void => {
    const counters = this.#faults
    if (--counters.inFlight === 0 && counters.onIdle !== null) counters.onIdle()
    if (this.#settled || this.#res.writableFinished) return
    this.#settle()
    this.#target.stats.recordClientAbort()
    this.#controller?.abort(CLIENT_GONE)
  }
}
