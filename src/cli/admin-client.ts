/** A small typed client for the admin API, shared by the CLI's client commands. */
import { request } from 'undici'
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
   * to read until `signal` aborts or the proxy goes away.
   */
  async stream(signal: AbortSignal): Promise<AsyncIterable<Buffer> | null> {
    let response
    try {
      response = await request(`${this.#base}/api/v1/stream`, {
        method: 'GET',
        headers: { accept: 'text/event-stream' },
        headersTimeout: 10_000,
        // Events come every analysis interval; a silent minute means the stream is stuck.
        bodyTimeout: 60_000,
        signal,
      })
    } catch (error) {
      throw this.#unreachable(error)
    }
    const type = String(response.headers['content-type'] ?? '')
    if (response.statusCode === 200 && type.startsWith('text/event-stream')) return response.body
    await response.body.dump()
    if (response.statusCode === 404 || response.statusCode === 405) return null
    throw new AdminError(`the admin API at ${this.#base} answered ${response.statusCode} to /api/v1/stream`, response.statusCode)
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
    let response
    try {
      response = await request(`${this.#base}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      })
    } catch (error) {
      throw this.#unreachable(error)
    }
    const text = await response.body.text()
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new AdminError(`the admin API at ${this.#base} answered ${response.statusCode} with something that is not JSON`, response.statusCode)
    }
    if (response.statusCode >= 400) {
      const message = (parsed as { error?: unknown }).error
      const hint = response.statusCode === 401 ? ' (pass --token or set CANARY_PROXY_ADMIN_TOKEN)' : response.statusCode === 403 ? ' (check --token or CANARY_PROXY_ADMIN_TOKEN)' : ''
      throw new AdminError(`refused (${response.statusCode}): ${typeof message === 'string' ? message : text}${hint}`, response.statusCode)
    }
    return parsed as T
  }

  #unreachable(error: unknown): AdminError {
    const code = (error as { code?: string }).code
    return new AdminError(`cannot reach the admin API at ${this.#base} (${code ?? (error as Error).message}); is canary-proxy running? (--admin URL or CANARY_PROXY_ADMIN)`, null)
  }
}
