/**
 * Persister: writes the rollout state to the StateStore, one save at a time,
 * newest state wins, compare-and-set against the version last seen. A failed
 * write leaves the state dirty; it is written again on the next tick (and on
 * flush) until it lands, so an acknowledged change is never silently lost.
 */
import type { Logger } from 'pino'
import type { EventFeed } from '../events/feed.js'
import type { Clock } from '../core/clock.js'
import type { StateStore } from '../state/store.js'
import type { RolloutState } from './phase.js'

export class Persister {
  readonly #store: StateStore
  readonly #events: EventFeed
  readonly #clock: Clock
  readonly #log: Logger
  #version: number
  #fence: number | null = null
  /** The newest state not yet known to be stored. */
  #pending: RolloutState | null = null
  #writing: Promise<void> | null = null
  failures = 0
  /** False from a failed save until one lands (canary_proxy_state_backend_up). */
  healthy = true

  constructor(store: StateStore, version: number, deps: { readonly events: EventFeed; readonly clock: Clock; readonly log: Logger }) {
    this.#store = store
    this.#version = version
    this.#events = deps.events
    this.#clock = deps.clock
    this.#log = deps.log
  }

  get dirty(): boolean {
    return this.#pending !== null
  }

  /** The lease token every save carries from now on (a leader's). */
  fence(token: number | null): void {
    this.#fence = token
  }

  /** Saves `state` (or a newer one requested meanwhile); rejects when the write failed, the change staying applied in memory. */
  save(state: RolloutState): Promise<void> {
    this.#pending = state
    return this.#drain()
  }

  /** Writes the pending state again after a failure; a no-op when nothing is pending. */
  retry(): Promise<void> {
    return this.#pending === null ? Promise.resolve() : this.#drain()
  }

  async #drain(): Promise<void> {
    // One write at a time: a caller that arrives mid-write waits for it, then
    // writes whatever is newest (its own state or a newer one).
    while (this.#writing !== null) await this.#writing.catch(() => undefined)
    const state = this.#pending
    if (state === null) return
    this.#writing = this.#write(state)
    try {
      await this.#writing
    } finally {
      this.#writing = null
    }
  }

  async #write(state: RolloutState): Promise<void> {
    const store = this.#store
    let result
    try {
      result = await store.save(state, this.#version, this.#fence)
    } catch (error) {
      this.failures++
      this.healthy = false
      this.#events.emit({ type: 'persistFailure', at: this.#clock.now(), store: store.name, error: (error as Error).message })
      this.#log.error({ err: error }, `cannot save the rollout state to ${store.name}; the change is applied and the save is retried on every analysis tick`)
      throw error
    }
    if (this.#pending === state) this.#pending = null
    this.healthy = true
    this.#version = result.version
    if (!result.ok) {
      // Another writer got there first. This process's state is the one it routes by, so it is written over the stored one.
      if (this.#pending === null) this.#pending = state
      this.#log.warn({ stored: result.version, reason: result.reason }, `the state in ${store.name} changed under this process (${result.reason}); saving again on the next tick`)
    }
  }
}
