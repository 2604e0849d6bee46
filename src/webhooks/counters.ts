/** canary_proxy_webhook_calls_total{webhook,result}: every call made (and every notification dropped from a full queue), read at scrape time. */

/**
 * success: 2xx; http_error: any other status; timeout: no full answer within
 * the webhook's timeout; network_error: no connection, or it broke;
 * dropped: a notification pushed out of a full queue, never sent.
 */
export const WEBHOOK_RESULTS = ['success', 'http_error', 'timeout', 'network_error', 'dropped'] as const
export type WebhookResult = (typeof WEBHOOK_RESULTS)[number]

export interface WebhookCallValue {
  readonly labels: { readonly webhook: string; readonly result: WebhookResult }
  readonly value: number
}

export class WebhookCounters {
  readonly #counts = new Map<string, number[]>()

  /** Every configured webhook starts with all its series at 0, so a dashboard sees them before the first call. */
  constructor(webhooks: readonly string[] = []) {
    this.track(webhooks)
  }

  /** Series at 0 for webhooks not seen yet (a reload adding one); those already counted keep their counts. */
  track(webhooks: readonly string[]): void {
    for (const name of webhooks) this.#row(name)
  }

  add(webhook: string, result: WebhookResult): void {
    const row = this.#row(webhook)
    row[WEBHOOK_RESULTS.indexOf(result)]!++
  }

  get(webhook: string, result: WebhookResult): number {
    return this.#counts.get(webhook)?.[WEBHOOK_RESULTS.indexOf(result)] ?? 0
  }

  /** In the shape prom-client's registry formats (a MetricValue per series), for the lead's ScrapeTimeMetric. */
  values(): WebhookCallValue[] {
    const out: WebhookCallValue[] = []
    for (const [webhook, row] of this.#counts) WEBHOOK_RESULTS.forEach((result, i) => out.push({ labels: { webhook, result }, value: row[i] ?? 0 }))
    return out
  }

  #row(webhook: string): number[] {
    let row = this.#counts.get(webhook)
    if (row === undefined) {
      row = WEBHOOK_RESULTS.map(() => 0)
      this.#counts.set(webhook, row)
    }
    return row
  }
}
