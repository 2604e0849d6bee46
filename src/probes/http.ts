/** The control plane's own HTTP client (scrapes, Prometheus queries, webhooks): a dedicated undici Agent, a size cap on bodies, and failures described without the URL. */
import { Agent, request, type Dispatcher } from 'undici'

export interface HttpResponse {
  readonly status: number
  readonly contentType: string
  readonly body: string
}

export interface HttpRequest {
  readonly method?: 'GET' | 'POST'
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string
  /** Aborts the call: the probe's timeout, or the webhook call's. */
  readonly signal: AbortSignal
  /** A longer body is refused (a /metrics page of a large service is ~1 MB). */
  readonly maxBytes?: number
}

/**
 * One pool for everything the control plane calls, apart from the proxy's
 * upstream pools: a slow webhook receiver can hold at most `connections`
 * sockets per origin, and never one the data plane needs.
 */
export class ControlPlaneHttp {
  readonly #agent: Agent

  constructor(options: { readonly connections?: number; readonly connectTimeoutMs?: number } = {}) {
    this.#agent = new Agent({ connections: options.connections ?? 4, connect: { timeout: options.connectTimeoutMs ?? 5000 }, keepAliveTimeout: 10_000 })
  }

  get dispatcher(): Dispatcher {
    return this.#agent
  }

  async call(url: string, options: HttpRequest): Promise<HttpResponse> {
    const maxBytes = options.maxBytes ?? 16 * 1024 * 1024
    const res = await request(url, {
      method: options.method ?? 'GET',
      headers: { ...options.headers },
      body: options.body ?? null,
      signal: options.signal,
      dispatcher: this.#agent,
    })
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length
      if (size > maxBytes) {
        res.body.destroy()
        // A local marker, not a product error code (those are CPX_ERR_*, in core/errors.ts): it never leaves this module's callers.
        throw Object.assign(new Error(`response body larger than ${maxBytes} bytes`), { code: 'BODY_TOO_LARGE' })
      }
      chunks.push(chunk as Buffer)
    }
    const type = res.headers['content-type']
    return { status: res.statusCode, contentType: (Array.isArray(type) ? type[0] : type) ?? '', body: Buffer.concat(chunks).toString('utf8') }
  }

  close(): Promise<void> {
    return this.#agent.close()
  }
}

/**
 * A failed call in words that never carry the URL (it may hold a secret): the
 * abort reason (our own timeout text) when the call was aborted, else the
 * error's code (ECONNREFUSED, UND_ERR_SOCKET, …), else its class name.
 */
export function describeFailure(error: unknown, signal?: AbortSignal): string {
  if (signal?.aborted === true) {
    const reason: unknown = signal.reason
    return typeof reason === 'object' && reason !== null && 'message' in reason ? String(reason.message) : 'aborted'
  }
  if (typeof error === 'object' && error !== null) {
    const e = error as { code?: unknown; name?: unknown; message?: unknown }
    if (e.code === 'BODY_TOO_LARGE') return String(e.message)
    if (typeof e.code === 'string') return CODE_WORDS[e.code] ?? e.code
    if (typeof e.name === 'string') return e.name
  }
  return 'failed'
}

const CODE_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (ECONNREFUSED)',
  ECONNRESET: 'connection reset (ECONNRESET)',
  ENOTFOUND: 'host not found (ENOTFOUND)',
  EAI_AGAIN: 'host name lookup failed (EAI_AGAIN)',
  UND_ERR_CONNECT_TIMEOUT: 'connect timeout (UND_ERR_CONNECT_TIMEOUT)',
  UND_ERR_SOCKET: 'the connection closed before the response (UND_ERR_SOCKET)',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers in time (UND_ERR_HEADERS_TIMEOUT)',
  UND_ERR_BODY_TIMEOUT: 'the response body stalled (UND_ERR_BODY_TIMEOUT)',
}
