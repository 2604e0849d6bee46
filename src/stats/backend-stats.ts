/**
 * BackendStats: what one exchange records, per backend (one upstream of one
 * side, for as long as that side sends there). Every outcome goes to the
 * side's cumulative counters (Prometheus) and to the backend's own
 * WindowRecorder (the analysis); a canary error also raises a signal that
 * the control plane receives as a message, never as a call from here.
 */
import type { SideStats } from './side-stats.js'
import { RETIRED_RECORDER, WindowRecorder } from './recorder.js'

/** The three outcomes an exchange can record; exactly one per request. */
export interface OutcomeRecorder {
  /** A response from the upstream: status, and time from request arrival to its response headers. */
  recordResponse(status: number, latencyUs: number): void
  /** No response at all (connect failure, reset, timeout). */
  recordFailure(): void
  /** The client went away first: never an upstream error. */
  recordClientAbort(): void
  /** Sent once more on a new connection after a kept-alive one closed under it: not an outcome (the retry records one). */
  recordRetry(): void
}

/**
 * A raised flag and a message, at most one outstanding: the data plane raises
 * it on a canary error; the control plane hears of it on the next turn of the
 * event loop (queueMicrotask: the exchange has finished its own work by then)
 * and lowers it when it drains the recorders, so a burst of errors costs one
 * message.
 */
export class ErrorSignal {
  #raised = false
  #listener: (() => void) | null = null

  raise(): void {
    if (this.#raised || this.#listener === null) return
    this.#raised = true
    queueMicrotask(this.#deliver)
  }

  lower(): void {
    this.#raised = false
  }

  /** The one listener (the control plane's evaluation scheduler); null to stop listening. */
  listen(listener: (() => void) | null): void {
    this.#listener = listener
  }

  readonly #deliver = (): void => {
    this.#listener?.()
  }
}

export class BackendStats implements OutcomeRecorder {
  readonly side: SideStats
  /** This backend's window results; RETIRED_RECORDER once the routing table no longer names it. */
  window = new WindowRecorder()
  /** Raised on errors; null for sides whose errors need no early look (stable). */
  readonly #errors: ErrorSignal | null

  constructor(side: SideStats, errors: ErrorSignal | null) {
    this.side = side
    this.#errors = errors
  }

  recordResponse(status: number, latencyUs: number): void {
    this.side.recordResponse(status, latencyUs)
    const isError = status >= 500 || status < 100
    this.window.recordResponse(isError, latencyUs)
    if (isError && this.#errors !== null) this.#errors.raise()
  }

  recordFailure(): void {
    this.side.recordFailure()
    this.window.recordFailure()
    this.#errors?.raise()
  }

  recordClientAbort(): void {
    this.side.recordClientAbort()
  }

  recordRetry(): void {
    this.side.recordRetry()
  }

  /** The routing table moved on: later results (requests in flight) count in Prometheus only. */
  retire(): void {
    if (this.window === RETIRED_RECORDER) return
    this.window.dispose()
    this.window = RETIRED_RECORDER
  }

  dispose(): void {
    this.retire()
  }
}
