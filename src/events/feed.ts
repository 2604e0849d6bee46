/**
 * The control plane's one event feed. The rollout controller emits; the audit
 * log, the metrics, the demo's live view, the webhooks and the admin stream
 * (Server-Sent Events) subscribe. Delivery is synchronous and in order; a
 * subscriber that throws is isolated (counted, never seen by the emitter or the
 * other subscribers), and a subscriber must not block: anything slow (a file,
 * a network call) is queued by the subscriber itself.
 */
import type { Decision } from '../analysis/finding.js'
import type { EventView } from '../api/wire.js'
import type { Phase } from '../core/phases.js'

/** One transition or operator action, as the audit log keeps it (`at` in epoch ms; the file and the API write ISO 8601). */
export interface AuditRecord {
  readonly at: number
  /** 'auto' for the rollout's own decisions, else the admin token's name ('admin' without names). */
  readonly actor: string
  /** start, advance, pause, resume, set-weight, promote, abort, rollback, succeed, recover, config, … */
  readonly action: string
  readonly from: { readonly phase: Phase; readonly weight: number }
  readonly to: { readonly phase: Phase; readonly weight: number }
  readonly reason: string | null
}

export type ControlEvent =
  /** Every audit record: transitions, operator actions, and notes (config change, recovery) where from = to. */
  | { readonly type: 'transition'; readonly record: AuditRecord; readonly generation: number; readonly findings: Decision['findings'] }
  /** Every gate evaluation while a rollout is under way, whether or not it changed anything. */
  | { readonly type: 'decision'; readonly decision: Decision; readonly phase: Phase; readonly weight: number }
  /** A state save failed: the change is applied in memory and retried. */
  | { readonly type: 'persistFailure'; readonly at: number; readonly store: string; readonly error: string }
  /**
   * state.redis: an audit event another replica recorded, as the shared trail
   * holds it. For this replica's stream only: its audit file, its log and its
   * notifications are the recording replica's business.
   */
  | { readonly type: 'sharedEvent'; readonly event: EventView }
  /** A config reload (SIGHUP) was applied or refused. */
  | { readonly type: 'configReload'; readonly at: number; readonly ok: boolean; readonly problems: readonly string[] }

export type ControlEventType = ControlEvent['type']
export type Listener = (event: ControlEvent) => void

export class EventFeed {
  readonly #listeners = new Set<Listener>()
  /** Subscriber exceptions swallowed so far (a bug in a subscriber, never the emitter's problem). */
  listenerFailures = 0
  readonly #onListenerError: (error: unknown, event: ControlEvent) => void

  constructor(onListenerError: (error: unknown, event: ControlEvent) => void = () => {}) {
    this.#onListenerError = onListenerError
  }

  /** Returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  emit(event: ControlEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch (error) {
        this.listenerFailures++
        this.#onListenerError(error, event)
      }
    }
  }

  get size(): number {
    return this.#listeners.size
  }
}
