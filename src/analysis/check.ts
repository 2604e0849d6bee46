/**
 * A Check turns the gate's plain input into one Finding. The set of checks is
 * built once from the config (analysis/checks.ts); the gate runs each on every
 * evaluation and joins their findings into a Decision (analysis/gate.ts).
 * Checks are pure: everything they read is in GateInput.
 */
import type { Finding } from './finding.js'
import type { LatencyTally } from './latency-ladder.js'
import type { ProbeResults } from './probe.js'

/** Requests and errors of one side; `errors` are 5xx and no-response outcomes. */
export interface Counts {
  readonly requests: number
  readonly errors: number
}

/**
 * One side's figures over the analysis window, frozen for one evaluation: the
 * counts, and the latency queries the checks need, answered from a merged HDR
 * histogram (microseconds). It holds no reference into the live window.
 */
export interface WindowView extends Counts {
  /** Responses with a latency (no-response failures have none). */
  readonly latencyCount: number
  /** The latency at quantile q (0..1) in microseconds; null when none was measured. */
  quantileUs(q: number): number | null
  /** Responses slower than `us`, to the histogram's resolution. */
  countAbove(us: number): number
  /** The window slot with the most responses slower than `us`: how many were slower there, and how many it measured. */
  slowestSlot(us: number): { readonly above: number; readonly count: number }
  /** Length of one window slot (ms). */
  readonly slotMs: number
}

export interface SideInput {
  /** The sliding window (at most `analysis.window`, restarted at every weight change). */
  readonly window: WindowView
  /** Everything since the current step (weight) began, for sequential tests on cumulative counts. */
  readonly step: Counts
}

/** Stable's figures kept from the last window in which it took traffic (p99 in microseconds; null when none was measured). */
export interface BaselineFigures extends Counts {
  readonly p99Us: number | null
}

export interface GateInput {
  /** Epoch ms of this evaluation. */
  readonly now: number
  readonly phase: string
  readonly weight: number
  readonly canary: SideInput
  /**
   * Stable's live figures over the same span; null at 100% and in the bake,
   * where stable takes no traffic. `stableBaseline` holds the last figures
   * measured while it did (saved with the state, so a restart keeps them).
   */
  readonly stable: SideInput | null
  readonly stableBaseline: BaselineFigures | null
  readonly probes: ProbeResults
  /**
   * Slow-response counts of the step, both sides, per window slot, against
   * the latency ladder (analysis/latency-ladder.ts: LatencyTallyRing.view).
   * The latency checks read only this; without it they hold, never fail.
   */
  readonly latency?: LatencyTally | null
}

export interface Check {
  /** The finding's `check` field and the `check` label of the metrics. */
  readonly id: string
  evaluate(input: GateInput): Finding
}
