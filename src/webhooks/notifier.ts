/**
 * Notification webhooks (event, post-rollout, rollback), fed by the event
 * feed. The feed's emitter never waits: a transition is turned into a payload
 * and queued in O(1); each webhook has its own bounded queue, delivered in
 * order, one call at a time, each call bounded by the webhook's timeout and
 * retried with doubling backoff. A slow or dead receiver therefore delays only
 * its own queue; when that queue is full the oldest notification is dropped
 * and counted (`result="dropped"`).
 *
 * - event: every transition (the feed's `transition` events, notes included).
 * - post-rollout: a rollout that ends (to succeeded, rolled_back or aborted).
 * - rollback: a rollout whose canary weight is dropped to 0 by a rollback or
 *   an abort (the payload's `phase` says which).
 */
import type { WebhookConfig } from '../config/schema.js'
import type { Clock, Timer } from '../core/clock.js'
import { isEnded } from '../core/phases.js'
import type { ControlEvent, EventFeed } from '../events/feed.js'
import type { ControlPlaneHttp } from '../probes/http.js'
import { callWebhook, describeWebhook } from './call.js'
import type { WebhookCounters } from './counters.js'
import { eventPayload, formatted } from './payload.js'
import { secretsOf } from './redact.js'

export interface NotifierLog {
  warn(fields: object, message: string): void
  debug(fields: object, message: string): void
}

export interface WebhookNotifierOptions {
  /** Every webhook of the config; the gates among them are ignored here. */
  readonly webhooks: readonly WebhookConfig[]
  readonly http: ControlPlaneHttp
  readonly clock: Clock
  readonly counters: WebhookCounters
  /** The upstream URLs at the time of the transition (for the payload); they carry no secret. */
  readonly urls?: () => { readonly stable: string | null; readonly canary: string | null }
  readonly log?: NotifierLog
}

interface Lane {
  readonly webhook: WebhookConfig
  readonly secrets: string[]
  readonly queue: unknown[]
  busy: boolean
  abort: AbortController | null
  sleep: { readonly timer: Timer; readonly wake: () => void } | null
  done: Promise<void>
  resolveDone: () => void
}

const NOTIFICATION_TYPES = new Set<WebhookConfig['type']>(['event', 'post-rollout', 'rollback'])

/** Whether a webhook of this type is sent this transition. */
export function takesTransition(type: WebhookConfig['type'], from: { readonly phase: string }, to: { readonly phase: string }): boolean {
  switch (type) {
    case 'event':
      return true
    case 'post-rollout':
      return isEnded(to.phase as never) && !isEnded(from.phase as never)
    case 'rollback':
      return (to.phase === 'rolled_back' || to.phase === 'aborted') && !isEnded(from.phase as never)
    default:
      return false
  }
}

export class WebhookNotifier {
  readonly #options: WebhookNotifierOptions
  readonly #lanes: Lane[]
  #closed = false
  /** Set once close()'s flush time is over: calls in flight are aborted and no try starts. */
  #giveUp = false

  constructor(options: WebhookNotifierOptions) {
    this.#options = options
    this.#lanes = options.webhooks
      .filter((w) => NOTIFICATION_TYPES.has(w.type))
      .map((webhook) => {
        const lane: Lane = { webhook, secrets: secretsOf(webhook), queue: [], busy: false, abort: null, sleep: null, done: Promise.resolve(), resolveDone: () => {} }
        return lane
      })
  }

  /** Subscribes to the feed; returns the unsubscribe function. */
  attach(feed: EventFeed): () => void {
    return feed.subscribe((event) => this.notify(event))
  }

  /** Queues the event for every webhook that takes it; never waits, never throws for a receiver's sake. */
  notify(event: ControlEvent): void {
    if (this.#closed || event.type !== 'transition') return
    const { record } = event
    const urls = this.#options.urls?.() ?? { stable: null, canary: null }
    for (const lane of this.#lanes) {
      if (!takesTransition(lane.webhook.type, record.from, record.to)) continue
      const payload = formatted(lane.webhook, eventPayload(lane.webhook, record, event.generation, event.findings, urls))
      if (lane.queue.length >= lane.webhook.maxQueue) {
        lane.queue.shift()
        this.#options.counters.add(lane.webhook.name, 'dropped')
        this.#options.log?.warn({ webhook: lane.webhook.name, maxQueue: lane.webhook.maxQueue }, `${describeWebhook(lane.webhook)}: queue full (${lane.webhook.maxQueue}); the oldest notification was dropped`)
      }
      lane.queue.push(payload)
      this.#pump(lane)
    }
  }

  /** Notifications waiting or being sent, per webhook. */
  pending(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#lanes.map((l) => [l.webhook.name, l.queue.length + (l.busy ? 1 : 0)]))
  }

  /** Resolves when every queue is empty (tests; shutdown before close). */
  async idle(): Promise<void> {
    while (this.#lanes.some((l) => l.busy)) await Promise.all(this.#lanes.map((l) => l.done))
  }

  /**
   * Stops taking notifications. Those queued get up to `flushMs` to be
   * delivered (their retries included); then the call in flight is aborted
   * and the rest are given up (counted as dropped).
   */
  async close(flushMs = 0): Promise<void> {
    this.#closed = true
    if (flushMs > 0) {
      let timer: Timer | null = null
      await Promise.race([this.idle(), new Promise<void>((resolve) => (timer = this.#options.clock.after(flushMs, resolve)))])
      ;(timer as Timer | null)?.cancel()
    }
    this.#giveUp = true
    for (const lane of this.#lanes) {
      for (let i = 0; i < lane.queue.length; i++) this.#options.counters.add(lane.webhook.name, 'dropped')
      lane.queue.length = 0
      lane.abort?.abort(new Error('the proxy is stopping'))
      if (lane.sleep !== null) {
        lane.sleep.timer.cancel()
        lane.sleep.wake()
      }
    }
    await this.idle()
  }

  #pump(lane: Lane): void {
    if (lane.busy) return
    lane.busy = true
    lane.done = new Promise<void>((resolve) => (lane.resolveDone = resolve))
    void (async () => {
      try {
        for (let payload = lane.queue.shift(); payload !== undefined; payload = lane.queue.shift()) await this.#deliver(lane, payload)
      } finally {
        lane.busy = false
        lane.resolveDone()
      }
    })()
  }

  async #deliver(lane: Lane, payload: unknown): Promise<void> {
    const { webhook } = lane
    const { clock, counters, http, log } = this.#options
    for (let attempt = 1; attempt <= webhook.retries + 1; attempt++) {
      if (this.#giveUp) return
      const abort = new AbortController()
      lane.abort = abort
      const outcome = await callWebhook(http, clock, webhook, lane.secrets, payload, abort.signal)
      lane.abort = null
      if (abort.signal.aborted) return
      counters.add(webhook.name, outcome.result)
      if (outcome.result === 'success') {
        log?.debug({ webhook: webhook.name, status: outcome.status, attempt }, `${describeWebhook(webhook)} delivered`)
        return
      }
      const last = attempt === webhook.retries + 1
      const wait = Math.min(webhook.maxBackoffMs, webhook.backoffMs * 2 ** (attempt - 1))
      log?.warn(
        { webhook: webhook.name, result: outcome.result, status: outcome.status, attempt, ...(last ? {} : { retryInMs: wait }) },
        `${describeWebhook(webhook)} failed (${outcome.detail})${last ? `; given up after ${attempt} tr${attempt === 1 ? 'y' : 'ies'}` : `; retry in ${wait}ms`}`,
      )
      if (last) return
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          lane.sleep = null
          resolve()
        }
        lane.sleep = { timer: clock.after(wait, wake), wake }
      })
    }
  }
}
