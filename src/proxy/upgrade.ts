/** WebSocket (and other HTTP/1.1 Upgrade) pass-through to the side chosen for the handshake request. */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { monotonicMicros } from '../core/clock.js'
import { statusOf } from '../core/errors.js'
import { pickSide } from '../routing/pick-side.js'
import type { UpstreamTarget } from '../routing/snapshot.js'
import type { DataPlaneOptions } from './server.js'
import { prepareRequestHeaders, prepareResponseHeaders } from './headers.js'
import { classifyFailure, PROXY_ERROR_HEADER } from './local-reply.js'

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
  const headers = prepareRequestHeaders(req, snapshot.preserveHost ? null : target.host)
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

class UpgradeExchange implements Dispatcher.DispatchHandler {
  readonly #client: Duplex
  readonly #head: Buffer
  readonly #target: UpstreamTarget
  readonly #responseTimeoutMs: number
  readonly #startUs = monotonicMicros()
  #status = 0
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
    })
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
  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (this.#settled) return
    this.#status = statusCode
    this.#client.write(statusHead(statusCode, statusMessage ?? '', prepareResponseHeaders(headers), true))
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#settled) this.#client.write(chunk)
  }

  onResponseEnd(): void {
    if (this.#settled) return
    this.#settled = true
    this.#target.stats.recordResponse(this.#status, monotonicMicros() - this.#startUs)
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
    const body = `canary-proxy: ${failure.message}\n`
    const status = statusOf(failure.code)
    this.#client.end(
      `HTTP/1.1 ${status} ${status === 504 ? 'Gateway Timeout' : status === 502 ? 'Bad Gateway' : 'Error'}\r\n` +
        `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${PROXY_ERROR_HEADER}: ${failure.code}\r\nconnection: close\r\n\r\n${body}`,
    )
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
