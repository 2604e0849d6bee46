/** WebSocket (and other HTTP/1.1 Upgrade) pass-through to the side chosen for the handshake request. */
import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { monotonicMicros } from '../core/clock.js'
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
 * never tunnelled: its HTTP2-Settings header is hop-by-hop, and an HTTP/2
 * connection to one side would carry every later request past the split and
 * the measurements. RFC 9110 §7.8 lets a server ignore Upgrade, so these go
 * through as ordinary requests (`curl --http2 -d @file http://…` sends one).
 */
export function upgradeable(req: IncomingMessage): boolean {
  const headers = req.headers
  if (headers['transfer-encoding'] !== undefined) return false
  if (headers['content-length'] !== undefined && headers['content-length'] !== '0') return false
  const protocol = headers.upgrade
  return typeof protocol === 'string' && protocol.trim().toLowerCase() !== 'h2c'
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

/** A reply the proxy generates on a raw (not yet upgraded) client socket, then closes it. */
export function writeLocalReply(client: Duplex, code: ErrorCode, message: string): void {
  const body = `canary-proxy: ${message}\n`
  const status = statusOf(code)
  const reason = STATUS_CODES[status] ?? 'Error'
  client.end(
    `HTTP/1.1 ${status} ${reason}\r\n` +
      `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/**
 * The handshake is one exchange like any other: a 101 is recorded as a 1xx
 * response with its latency, a refused or failed handshake as that side's
 * error. After the 101 the two sockets are piped and no longer measured.
 */
export function proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, options: DataPlaneOptions): void {
  client.on('error', () => client.destroy())
  const snapshot = options.ref.current
  const target = pickSide(snapshot, req.headers, options.random)
  const protocol = typeof req.headers.upgrade === 'string' ? req.headers.upgrade : 'websocket'
  const url = req.url ?? '/'
  const headers = prepareRequestHeaders(req, snapshot.preserveHost ? null : target.host, snapshot.trustForwarded)
  const handler = new UpgradeExchange(client, head, target, snapshot.responseTimeoutMs)
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

class UpgradeExchange implements Dispatcher.DispatchHandler {
  readonly #client: Duplex
  readonly #head: Buffer
  readonly #target: UpstreamTarget
  readonly #responseTimeoutMs: number
  readonly #startUs = monotonicMicros()
  #controller: Dispatcher.DispatchController | null = null
  #status = 0
  #latencyUs = 0
  #settled = false

  constructor(client: Duplex, head: Buffer, target: UpstreamTarget, responseTimeoutMs: number) {
    this.#client = client
    this.#head = head
    this.#target = target
    this.#responseTimeoutMs = responseTimeoutMs
    client.once('close', () => {
      if (this.#settled) return
      this.#settled = true
      target.stats.recordClientAbort()
      this.#controller?.abort(CLIENT_GONE)
    })
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
    this.#settled = true
    this.#target.stats.recordResponse(statusCode, monotonicMicros() - this.#startUs)
    const client = this.#client
    client.write(statusHead(statusCode, 'Switching Protocols', headers, false))
    if (this.#head.length > 0) upstream.write(this.#head)
    upstream.on('error', () => upstream.destroy())
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
    // Node's reason phrase, not the upstream's: these bytes go to the raw socket.
    this.#client.write(statusHead(statusCode, STATUS_CODES[statusCode] ?? '', prepareResponseHeaders(headers), true))
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#settled) this.#client.write(chunk)
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#settled = true
    this.#target.stats.recordResponse(this.#status, this.#latencyUs)
    this.#client.end()
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
    writeLocalReply(this.#client, failure.code, failure.message)
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
