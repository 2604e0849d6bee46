/**
 * SharedEventRelay (state.redis): follows the shared audit trail so that a
 * replica's GET /api/v1/stream shows the shared rollout's events, whichever
 * replica recorded them. On each change another replica stored (the state
 * store's watch) it reads the trail's new entries and emits the others' into
 * this replica's feed as `sharedEvent`; it keeps the recent ones, its own
 * included, for the stream's replay at connect (which must be synchronous).
 */
import type { Logger } from 'pino'
import type { EventView } from '../api/wire.js'
import type { EventFeed } from '../events/feed.js'
import type { RedisAuditTrail } from './redis-audit.js'

export interface SharedEventRelayOptions {
  readonly audit: Pick<RedisAuditTrail, 'since' | 'newestId' | 'recent'>
  readonly replica: string
  readonly events: EventFeed
  readonly log: Logger
  /** Events kept for the replay; default 1000 (as the audit file keeps). */
  readonly capacity?: number
}

export class SharedEventRelay {
  readonly #options: SharedEventRelayOptions
  readonly #capacity: number
  #recent: EventView[] = []
  /** The last trail entry read; null until the first read landed. */
  #lastId: string | null = null
  #pulling: Promise<void> | null = null
  #again = false
  #lastError: string | null = null
  #closed = false

  constructor(options: SharedEventRelayOptions) {
    this.#options = options
    this.#capacity = options.capacity ?? 1000
  }

  /** The recent events of every replica, oldest first (what was read so far, and this replica's own). */
  recent(): readonly EventView[] {
    return this.#recent
  }

  /** An event this replica recorded itself (its feed already carries it). */
  noteOwn(event: EventView): void {
    this.#keep(event)
  }

  /** Another replica stored a change: read what it added to the trail. Coalesced; never rejects. */
  changed(): Promise<void> {
    if (this.#closed) return Promise.resolve()
    if (this.#pulling !== null) {
      this.#again = true
      return this.#pulling
    }
    this.#pulling = (async () => {
      do {
        this.#again = false
        await this.#pull()
      } while (this.#again && !this.#closed)
      this.#pulling = null
    })()
    return this.#pulling
  }

  close(): void {
    this.#closed = true
  }

  async #pull(): Promise<void> {
    const { audit, replica, events, log } = this.#options
    try {
      if (this.#lastId === null) {
        // The first read: the trail's recent history for the replay, and where to follow it from.
        const [history, newest] = await Promise.all([audit.recent(this.#capacity), audit.newestId()])
        this.#recent = [...history, ...this.#recent].slice(-this.#capacity)
        this.#lastId = newest
        return
      }
      for (const entry of await audit.since(this.#lastId)) {
        this.#lastId = entry.id
        if (entry.replica === replica) continue
        this.#keep(entry.event)
        events.emit({ type: 'sharedEvent', event: entry.event })
      }
      this.#lastError = null
    } catch (error) {
      // Redis unreachable: the stream goes without the others' events until the next change is read.
      const message = (error as Error).message
      if (message !== this.#lastError) log.warn({ err: error }, `cannot read the shared audit trail for the event stream: ${message}`)
      this.#lastError = message
    }
  }

  #keep(event: EventView): void {
    this.#recent.push(event)
    if (this.#recent.length > this.#capacity) this.#recent.splice(0, this.#recent.length - this.#capacity)
  }
}
