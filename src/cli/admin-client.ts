/**
 * A small typed client for the admin API, shared by the CLI's client commands.
 *
 * It is built on node:http, not on the undici package the proxy pools with,
 * nor on fetch: loading them costs a client command, in CPU at start
 * (/usr/bin/time, over `node -e 0`), undici from node_modules ~130 ms, fetch
 * ~50 ms, node:http ~20 ms; and fetch refuses the "bad ports" of the Fetch
 * standard (6000, 10080, ...) that an admin API may well listen on.
 */
import type { IncomingMessage } from 'node:http'
import type { EventView, StatusView } from '../api/wire.js'
import type { ClientOptions } from './args.js'

/** The admin API could not be reached, or refused the call; `message` is ready to print. */
export class AdminError extends Error {
  readonly status: number | null

  constructor(message: string, status: number | null) {
    super(message)
    this.status = status
  }
}

/** An open Server-Sent Events response: its chunks, and a way to drop it (a stuck stream). */
export interface EventStream {
  readonly body: AsyncIterable<Buffer>
  close(): void
}

const TIMEOUT_MS = 10_000

export class AdminClient {
  readonly #base: string
  readonly #token: string | null

  constructor(options: ClientOptions) {
    this.#base = options.admin.replace(/\/+$/, '')
    this.#token = options.token
  }

  status(): Promise<StatusView> {
    return this.#call<StatusView>('GET', '/api/v1/status')
  }

  events(limit: number | null = null): Promise<{ events: EventView[] }> {
    return this.#call('GET', limit === null ? '/api/v1/events' : `/api/v1/events?limit=${limit}`)
  }

  /**
   * Opens `GET /api/v1/stream` (Server-Sent Events). Resolves with null when
   * this proxy has no stream (404: a version before it), else with the body
   * to read until `signal` aborts, close() is called or the proxy goes away.
   */
  async stream(signal: AbortSignal): Promise<EventStream | null> {
    const response = await this.#send('GET', '/api/v1/stream', null, { accept: 'text/event-stream' }, signal)
    const status = response.statusCode ?? 0
    if (status === 200 && String(response.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      // The headers came: from here on, silence is the reader's to judge.
      response.socket.setTimeout(0)
      return { body: response, close: () => response.destroy() }
    }
    response.resume()
    if (status === 404 || status === 405) return null
    throw new AdminError(`the admin API at ${this.#base} answered ${status} to /api/v1/stream`, status)
  }

  setWeight(weight: number): Promise<StatusView> {
    return this.#call('PUT', '/api/v1/weight', { weight })
  }

  rollout(action: 'start' | 'pause' | 'resume' | 'promote' | 'abort', body?: Record<string, unknown>): Promise<StatusView> {
    return this.#call('POST', `/api/v1/rollout/${action}`, body)
  }

  async #call<T>(method: 'GET' | 'PUT' | 'POST', path: string, body?: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (this.#token !== null && method !== 'GET') headers.authorization = `Bearer ${this.#token}`
    const response = await this.#send(method, path, body === undefined ? null : JSON.stringify(body), headers)
    const status = response.statusCode ?? 0
    let text = ''
    try {
      for await (const chunk of response) text += (chunk as Buffer).toString('utf8')
    } catch (error) {
      throw this.#unreachable(error)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new AdminError(`the admin API at ${this.#base} answered ${status} with something that is not JSON`, status)
    }
    if (status >= 400) {
      const message = (parsed as { error?: unknown }).error
      const hint = status === 401 ? ' (pass --token or set CANARY_PROXY_ADMIN_TOKEN)' : status === 403 ? ' (check --token or CANARY_PROXY_ADMIN_TOKEN)' : ''
      throw new AdminError(`refused (${status}): ${typeof message === 'string' ? message : text}${hint}`, status)
    }
    return parsed as T
  }

  /** One request; resolves at the response headers. No answer within TIMEOUT_MS (socket idle) is "cannot reach". */
  async #send(method: string, path: string, body: string | null, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
    const url = new URL(`${this.#base}${path}`)
    // https only when asked for: TLS is the larger part of what node:https loads.
    const { request } = url.protocol === 'https:' ? await import('node:https') : await import('node:http')
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, { method, headers: body === null ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) }, timeout: TIMEOUT_MS, ...(signal ? { signal } : {}) })
      req.once('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${TIMEOUT_MS / 1000}s`), { code: 'ETIMEDOUT' })))
      req.once('error', (error) => reject(this.#unreachable(error)))
      req.once('response', resolve)
      req.end(body ?? undefined)
    })
  }

  #unreachable(error: unknown): AdminError {
    const code = (error as { code?: string }).code
    return new AdminError(`cannot reach the admin API at ${this.#base} (${code ?? (error as Error).message}); is canary-proxy running? (--admin URL or CANARY_PROXY_ADMIN)`, null)
  }
}
