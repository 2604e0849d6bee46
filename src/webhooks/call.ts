/** One webhook call: POST the payload as JSON within the timeout, and the outcome in words that carry no secret. */
import type { WebhookConfig } from '../config/schema.js'
import type { Clock } from '../core/clock.js'
import { describeFailure, type ControlPlaneHttp } from '../probes/http.js'
import type { WebhookResult } from './counters.js'
import { redactUrl, scrub } from './redact.js'

export interface CallOutcome {
  readonly result: WebhookResult
  readonly status: number | null
  /** For people: `HTTP 500: <start of the body>`, `timed out after 10s`, `connection refused (ECONNREFUSED)`; scrubbed of the webhook's secrets. */
  readonly detail: string
}

/**
 * `signal` is the caller's (a probe's timeout, the proxy stopping); the
 * webhook's own timeout is added here on the injected clock. The receiver's
 * body is read (up to 64 KiB) so the connection can be reused, and its start
 * shown when the status is not 2xx: it usually says why.
 */
export async function callWebhook(http: ControlPlaneHttp, clock: Clock, webhook: WebhookConfig, secrets: readonly string[], payload: unknown, signal?: AbortSignal): Promise<CallOutcome> {
  const abort = new AbortController()
  const timer = clock.after(webhook.timeoutMs, () => abort.abort(new Error(`timed out after ${webhook.timeoutMs}ms`)))
  const onOuterAbort = (): void => abort.abort(signal?.reason)
  signal?.addEventListener('abort', onOuterAbort, { once: true })
  if (signal?.aborted === true) onOuterAbort()
  try {
    const res = await http.call(webhook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'canary-proxy', ...webhook.headers },
      body: JSON.stringify(payload),
      signal: abort.signal,
      maxBytes: 64 * 1024,
    })
    if (res.status >= 200 && res.status < 300) return { result: 'success', status: res.status, detail: `HTTP ${res.status}` }
    const excerpt = res.body.replace(/\s+/g, ' ').trim().slice(0, 160)
    return { result: 'http_error', status: res.status, detail: scrub(`HTTP ${res.status}${excerpt === '' ? '' : `: ${excerpt}`}`, secrets) }
  } catch (error) {
    const timedOut = abort.signal.aborted && !(signal?.aborted ?? false)
    return { result: timedOut ? 'timeout' : 'network_error', status: null, detail: scrub(describeFailure(error, abort.signal), secrets) }
  } finally {
    timer.cancel()
    signal?.removeEventListener('abort', onOuterAbort)
  }
}

/** How a webhook is named in logs and reasons: its name, type and redacted URL. */
export function describeWebhook(webhook: Pick<WebhookConfig, 'name' | 'type' | 'url'>): string {
  return `webhook ${webhook.name} (${webhook.type}, ${redactUrl(webhook.url)})`
}
