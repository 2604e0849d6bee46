/** OverrideStats: outcomes of requests routed by the override header, counted apart so they never reach a side's window or the gate. */
import type { SideName } from '../routing/snapshot.js'
import type { OutcomeRecorder } from './backend-stats.js'
import { ERROR_CLASS, STATUS_CLASSES } from './side-stats.js'

/**
 * The side's status classes plus `client_abort`: every request the override
 * routed has one (issue 7, defect 2); canary_proxy_override_requests_total
 * exposes their sum per side, as the SPEC names it.
 */
export const OVERRIDE_CLASSES = [...STATUS_CLASSES, 'client_abort'] as const
const CLIENT_ABORT_CLASS = STATUS_CLASSES.length

/**
 * The same record interface as SideStats, so an Exchange records into
 * whichever it was handed without knowing which; but only a counter per
 * status class: no window, no latency, no early gate evaluation. A client
 * sending `x-canary: always` to a healthy path could otherwise pass a canary
 * that fails every real request, and a path failing on both sides could roll
 * back a healthy one.
 */
export class OverrideStats implements OutcomeRecorder {
  readonly side: SideName
  /** Cumulative requests by OVERRIDE_CLASSES index. */
  readonly byClass = new Float64Array(OVERRIDE_CLASSES.length)

  /** Every request the override routed, whatever its outcome. */
  get total(): number {
    let n = 0
    for (const count of this.byClass) n += count
    return n
  }

  constructor(side: SideName) {
    this.side = side
  }

  recordResponse(status: number): void {
    let cls = ((status / 100) | 0) - 1
    if (cls < 0 || cls > 4) cls = 4
    this.byClass[cls]!++
  }

  recordFailure(): void {
    this.byClass[ERROR_CLASS]!++
  }

  recordClientAbort(): void {
    this.byClass[CLIENT_ABORT_CLASS]!++
  }

  /** The retry records the outcome; nothing to count here. */
  recordRetry(): void {}
}

/** One per side, for the life of the process (snapshots come and go; the counters are Prometheus counters). */
export interface OverrideStatsPair {
  readonly stable: OverrideStats
  readonly canary: OverrideStats
}

export function newOverrideStats(): OverrideStatsPair {
  return { stable: new OverrideStats('stable'), canary: new OverrideStats('canary') }
}
