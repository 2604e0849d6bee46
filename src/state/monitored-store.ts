/** MonitoredStore: any StateStore, plus whether its backend answered the last call (canary_proxy_state_backend_up). */
import type { AuditRecord } from '../events/feed.js'
import type { RolloutState } from '../rollout/phase.js'
import type { LoadResult, SaveResult, StateStore, StoredChange } from './store.js'

/**
 * Up until a load or save rejects (an I/O failure: a full disk, a read-only
 * mount, an unreachable server), then down until one resolves again. A save
 * refused by compare-and-set (conflict, fenced) is an answer: the backend is up.
 * The controller retries a failed save on every analysis tick, so the gauge
 * comes back by itself once the backend does.
 */
export class MonitoredStore implements StateStore {
  readonly #inner: StateStore
  #up = true

  constructor(inner: StateStore) {
    this.#inner = inner
  }

  get name(): string {
    return this.#inner.name
  }

  /** False from a failed load or save until one succeeds. */
  get up(): boolean {
    return this.#up
  }

  load(): Promise<LoadResult> {
    return this.#watched(this.#inner.load())
  }

  save(state: RolloutState, expected: number, fence?: number | null, audit?: readonly AuditRecord[]): Promise<SaveResult> {
    return this.#watched(this.#inner.save(state, expected, fence, audit))
  }

  watch(listener: (change: StoredChange) => void): () => void {
    return this.#inner.watch(listener)
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  #watched<T>(call: Promise<T>): Promise<T> {
    return call.then(
      (value) => {
        this.#up = true
        return value
      },
      (error: unknown) => {
        this.#up = false
        throw error
      },
    )
  }
}
