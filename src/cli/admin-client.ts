/** A small typed client for the admin API, shared by the CLI's client commands. */
import { request } from 'undici'
import type { StatusView } from '../api/wire.js'
import type { AuditEvent } from '../state/audit-log.js'
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

  events(): Promise<{ events: AuditEvent[] }> {
    return this.#call('GET', '/api/v1/events')
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
      const code = (error as { code?: string }).code
      throw new AdminError(`cannot reach the admin API at ${this.#base} (${code ?? (error as Error).message}); is canary-proxy running? (--admin URL or CANARY_PROXY_ADMIN)`, null)
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
}
