/** WebSocket (and other HTTP/1.1 Upgrade) pass-through to the side chosen for the handshake request. */
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { monotonicMicros, type Clock } from '../core/clock.js'
import { messageOf, statusOf, type ErrorCode } from '../core/errors.js'
import { pickSide } from '../routing/pick-side.js'
import type { UpstreamTarget } from '../routing/snapshot.js'
import type { DataPlaneOptions } from './server.js'
import { prepareRequestHeaders, prepareResponseHeaders } from './headers.js'
import { classifyFailure, PROXY_ERROR_HEADER } from './local-reply.js'

/**
 * Whether an Upgrade request is proxied as an upgrade. Node hands every
 * request with `Connection: upgrade` to the 'upgrade' event, body and all,
 * but a tunnel can only start after a request without content; and h2c is
 * never tunnelled, wherever it stands in the list (`Upgrade: h2c, websocket`
 * let an upstream pick h2c, and the requests inside that tunnel reached it
 * unrouted and uncounted: issue 7, defect 11): its HTTP2-Settings header is
 * hop-by-hop, and an HTTP/2 connection to one side would carry every later
 * request past the split and the measurements. RFC 9110 §7.8 lets a server
 * ignore Upgrade, so these go through as ordinary requests (`curl --http2 -d
 * @file http://…` sends one).
 */
export function upgradeable(req: IncomingMessage): boolean {
  const headers = req.headers
  if (headers['transfer-encoding'] !== undefined) return false
  if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return false
  const protocol = headers.upgrade
  return typeof protocol === 'string' && !offersH2c(protocol)
}

/** An h2c token (any case, any version suffix such as h2c/1) anywhere in an Upgrade list. */
export function offersH2c(upgrade: string): boolean {
  return upgrade
    .toLowerCase()
    .split(',')
    .some((token) => {
      const name = token.trim()
      return name === 'h2c' || name.startsWith('h2c/')
    })
}

/**
 * Gives an Upgrade request back to the HTTP server as an ordinary request.
 * Node has already detached the socket from its parser, so the request head
 * is rebuilt without `upgrade` (in Connection and as a header) and put back
 * in front of the bytes that followed it; the socket then re-enters as a new
 * connection and the body, chunked or not, is parsed by Node as usual.
 * Header text is latin1 both ways, so the rebuilt head is byte-exact.
 */
export function replayWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const raw = req.rawHeaders
  let text = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}\r\n`
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (lower === 'upgrade') continue
    if (lower === 'connection') {
      const rest = value
        .split(',')
        .map((token) => token.trim())
        .filter((token) => token !== '' && token.toLowerCase() !== 'upgrade')
      if (rest.length > 0) text += `${name}: ${rest.join(', ')}\r\n`
      continue
    }
    text += `${name}: ${value}\r\n`
  }
  socket.unshift(head.length === 0 ? Buffer.from(`${text}\r\n`, 'latin1') : Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]))
  server.emit('connection', socket)
}

/** The bytes of a reply the proxy generates on a raw socket (no HTTP server response object there): status, x-canary-proxy-error, short body. */
export function rawLocalReply(code: ErrorCode, message: string): string {
  const body = `canary-proxy: ${message}\n`
  const status = statusOf(code)
  const reason = STATUS_CODES[status] ?? 'Error'
  return (
    `HTTP/1.1 ${status} ${reason}\r\n` +
    `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nconnection: close\r\n\r\n${body}`
  )
}

/** What closing a raw client socket needs: the linger bound and the clock that times it. */
export interface LingerOptions {
  readonly lingerTimeoutMs: number
  readonly clock: Clock
}

/** A reply the proxy generates on a raw (not yet upgraded) client socket, then closes it. */
export function writeLocalReply(client: Duplex, code: ErrorCode, message: string, linger: LingerOptions): void {
  client.end(rawLocalReply(code, message))
  reclaimAfterEnd(client, linger)
}

/**
 * After the proxy's FIN on a socket Node no longer manages (the 'upgrade' and
 * 'connect' events hand it over with no timeout listener, and the HTTP
 * server's keep-alive timeout no longer applies), a client that keeps its
 * side open would hold the descriptor forever (issue 7, defect 5: 300 such
 * clients held 300 fds). What it still sends is read and dropped, so a
 * polite client's FIN closes the socket at once; whatever it does, the
 * socket is destroyed lingerTimeout after the last byte was handed to the
 * kernel (NGINX's lingering_timeout, 5 s by default). A client that never
 * reads keeps 'finish' from coming: the idle timeout covers that.
 */
function reclaimAfterEnd(client: Duplex, { lingerTimeoutMs, clock }: LingerOptions): void {
  if (client.destroyed) return
  const destroy = (): void => void client.destroy()
  client.removeAllListeners('data')
  client.on('data', () => undefined)
  client.once('end', destroy)
  client.once('timeout', destroy)
  client.resume()
  client.once('finish', () => {
    const timer = clock.after(lingerTimeoutMs, destroy)
    client.once('close', () => timer.cancel())
  })
}

/**
 * The handshake is one exchange like any other: a 101 is recorded as a 1xx
 * response with its latency, a refused or failed handshake as that side's
 * error. After the 101 the two sockets are piped and no longer measured.
 */
export function proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, options: DataPlaneOptions): void {
  client.on('error', () => client.destroy())
  const snapshot = options.ref.current
  const target = pickSide(snapshot, req.headers, options.random, req.socket)
  const protocol = typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket'
  const url = req.url ?? '/'
  const headers = prepareRequestHeaders(req, snapshot.preserveHost ? null : target.host, snapshot.trustForwarded)
  const handler = new UpgradeExchange(client, head, target, snapshot.responseTimeoutMs, options)
  try {
    target.dispatcher.dispatch(
      {
        method: req.method ?? 'GET',
        path: target.basePath + url,
        headers: headers as Record<string, string | string[] | undefined>,
        upgrade: protocol,
        headersTimeout: snapshot.responseTimeoutMs,
      },
      handler,
    )
  } catch (error) {
    handler.onResponseError(null, error as Error)
  }
}

const CLIENT_GONE = Object.assign(new Error(messageOf('CPX_ERR_CLIENT_ABORT')), { code: 'CPX_ERR_CLIENT_ABORT' })

/**
 * Bytes a client may send after its handshake and before the upstream's
 * answer (a client that does not wait for the 101); kept for the tunnel.
 * Beyond this the socket is paused, which also stops the proxy from noticing
 * that client's FIN until the upstream answers.
 */
const EARLY_DATA_LIMIT = 64 * 1024

class UpgradeExchange implements Dispatcher.DispatchHandler {
  readonly #client: Duplex
  readonly #head: Buffer
  readonly #target: UpstreamTarget
  readonly #responseTimeoutMs: number
  readonly #linger: LingerOptions
  readonly #startUs = monotonicMicros()
  #controller: Dispatcher.DispatchController | null = null
  #status = 0
  #latencyUs = 0
  #settled = false
  #early: Buffer[] = []
  #earlyBytes = 0
  #onDrain: (() => void) | null = null

  constructor(client: Duplex, head: Buffer, target: UpstreamTarget, responseTimeoutMs: number, linger: LingerOptions) {
    this.#client = client
    this.#head = head
    this.#target = target
    this.#responseTimeoutMs = responseTimeoutMs
    this.#linger = linger
    client.once('close', this.#onClientGone)
    // Node hands the socket over unread, so a client that gives up on a
    // pending handshake with a FIN (not a reset) went unnoticed until the
    // upstream's responseTimeout, and was charged to that side as a 504
    // (issue 7, defect 15). Reading it shows the FIN; Node's HTTP server
    // treats a FIN before the response as an abort too (httpAllowHalfOpen).
    client.on('end', this.#onClientGone)
    client.on('data', this.#onEarlyData)
  }

  /**
   * Required even though it only keeps the controller: undici 7 recognises a
   * new-style handler by `onRequestStart` (UnwrapHandler.unwrap) and without
   * it validates this one as a legacy handler, failing every upgrade with
   * "invalid onConnect method" (a proxy 500 for each WebSocket handshake).
   */
  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#settled) controller.abort(CLIENT_GONE)
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, upstream: Duplex): void {
    if (this.#settled) {
      upstream.destroy()
      return
    }
    upstream.on('error', () => upstream.destroy())
    // The upstream may only switch to a protocol the client offered (RFC 9110
    // §7.8), and h2c is never offered: switching to it is a bad response.
    const switched = headers.upgrade
    if (typeof switched === 'string' && offersH2c(switched)) {
      upstream.destroy()
      this.onResponseError(null, Object.assign(new Error('switched to h2c, which was not offered'), { code: 'HPE_INVALID_UPGRADE' }))
      return
    }
    this.#settled = true
    this.#target.stats.recordResponse(statusCode, monotonicMicros() - this.#startUs)
    const client = this.#client
    client.removeListener('end', this.#onClientGone)
    client.removeListener('data', this.#onEarlyData)
    // A tunnel may idle as long as its peers like (the server's socket timeout stays for HTTP only).
    ;(client as Duplex & { setTimeout?: (ms: number) => void }).setTimeout?.(0)
    client.write(statusHead(statusCode, 'Switching Protocols', headers, false))
    if (this.#head.length > 0) upstream.write(this.#head)
    for (const chunk of this.#early) upstream.write(chunk)
    this.#early = []
    upstream.on('close', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.pipe(client)
    client.pipe(upstream)
  }

  /** The upstream refused the upgrade with an ordinary response: pass it on and close. */
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (this.#settled || statusCode < 200) return
    this.#status = statusCode
    this.#latencyUs = monotonicMicros() - this.#startUs
    this.#early = []
    // The server's idle timeout (responseTimeout + 10 s) is still set on the
    // socket, but Node removed its listener: a client that stops reading
    // would otherwise hold the upstream, paused, forever.
    this.#client.once('timeout', () => this.#client.destroy())
    // Node's reason phrase, not the upstream's: these bytes go to the raw socket.
    this.#client.write(statusHead(statusCode, STATUS_CODES[statusCode] ?? '', prepareResponseHeaders(headers), true))
  }

  /**
   * Backpressure as in Exchange: a refused upgrade answered with 200 and a
   * large body, to four clients that never read, grew the proxy's RSS from
   * 131 to 360 MB, every byte queued in the client sockets (issue 7, defect 4).
   */
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return
    if (!this.#client.write(chunk)) {
      controller.pause()
      if (this.#onDrain === null) this.#onDrain = () => controller.resume()
      this.#client.once('drain', this.#onDrain)
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#settled = true
    this.#target.stats.recordResponse(this.#status, this.#latencyUs)
    this.#client.end()
    reclaimAfterEnd(this.#client, this.#linger)
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    if (this.#settled) return
    this.#settled = true
    const failure = classifyFailure(error, this.#target.side, this.#responseTimeoutMs)
    if (failure.upstreamFault) this.#target.stats.recordFailure()
    if (this.#status !== 0) {
      this.#client.destroy()
      return
    }
    writeLocalReply(this.#client, failure.code, failure.message, this.#linger)
  }

  /** A close, or a FIN while the exchange is still open: the client went away first. */
  readonly #onClientGone = (): void => {
    if (this.#settled) return
    this.#settled = true
    this.#target.stats.recordClientAbort()
    this.#controller?.abort(CLIENT_GONE)
    this.#client.destroy()
  }

  readonly #onEarlyData = (chunk: Buffer): void => {
    // Once a refused upgrade's response has begun, what the client sends is dropped with its connection.
    if (this.#status !== 0) return
    this.#early.push(chunk)
    this.#earlyBytes += chunk.length
    if (this.#earlyBytes > EARLY_DATA_LIMIT) this.#client.pause()
  }
}

function statusHead(status: number, message: string, headers: Record<string, unknown>, close: boolean): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (value === undefined) continue
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${String(v)}\r\n`
    else head += `${name}: ${String(value)}\r\n`
  }
  if (close) head += 'connection: close\r\n'
  return `${head}\r\n`
}
