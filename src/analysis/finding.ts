/** What the gate says: one Finding per check, and a Decision that joins them. Plain data: it is saved, sent over the wire and across processes. */

import type { Verdict } from '../core/verdicts.js'

export { VERDICTS, type Verdict } from '../core/verdicts.js'

export interface Finding {
  /** The check's id: `maxErrorRate`, `maxP99Ratio`, `resources.maxMemory`, `checks.<name>`, `webhook.<name>`, `stable.health`… Stable across releases: metrics are labelled with it. */
  readonly check: string
  readonly verdict: Verdict
  /** The figure compared, in the check's own unit (ratio, seconds, bytes, …); null when there is none yet. */
  readonly observed: number | null
  /** The limit it was compared with, in the same unit; null when the check has no single number (a gate webhook). */
  readonly threshold: number | null
  /** How many samples the figure stands on (requests, responses, scrapes); 0 when none. */
  readonly n: number
  /** The finding in words, e.g. `canary error rate 12.1% over 240 requests > max 1.0%`. */
  readonly reason: string
}

export interface Decision {
  /** Epoch milliseconds. */
  readonly at: number
  readonly verdict: Verdict
  /** The findings that decided, joined in words (kept for people and the audit log). */
  readonly reason: string
  readonly findings: readonly Finding[]
}
