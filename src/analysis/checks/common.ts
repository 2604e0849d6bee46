/** What every built-in check shares: its settings, the α plan, the findings' shape, and the rules for "live stable" and "no pass before minRequests". */
import type { AnalysisConfig } from '../../config/schema.js'
import type { AlphaPlan } from '../alpha.js'
import type { Counts, GateInput } from '../check.js'
import type { Finding, Verdict } from '../finding.js'
import { count } from './words.js'

/**
 * The analysis config the checks are built from: the fields of
 * AnalysisConfig (config/schema.ts) they read, falseRollbackRate, and the
 * rollout's steps (the stages α is spent over; default the SPEC's).
 */
export type CheckSettings = Pick<AnalysisConfig, 'minRequests' | 'maxErrorRate' | 'maxErrorRateIncrease' | 'maxP99Ms' | 'maxP99Ratio' | 'minP99DeltaMs' | 'falseRollbackRate'> & {
  readonly steps?: readonly number[]
  /** rollout.bakeStableShare: the bake's stage runs at 100 - this (default 0). */
  readonly bakeStableShare?: number
}

export const DEFAULT_STEPS: readonly number[] = [5, 25, 50, 100]

export interface CheckContext {
  readonly settings: CheckSettings
  readonly plan: AlphaPlan
}

export function finding(check: string, verdict: Verdict, observed: number | null, threshold: number | null, n: number, reason: string): Finding {
  return { check, verdict, observed: observed !== null && Number.isFinite(observed) ? observed : null, threshold, n, reason }
}

/** The routing share of the canary, 0..1. */
export function share(input: GateInput): number {
  return Math.min(1, Math.max(0, input.weight / 100))
}

/**
 * Stable's counts for a comparison, or null when there is no live stable: at
 * 100% (and in the bake) stable takes no traffic, and the checks that compare
 * with it are not applied there (the steps below 100 compared with it live;
 * a frozen baseline would charge a host-wide slowdown to the canary, issue 9).
 * Below 100% a stable that has not answered yet counts as zero requests.
 */
export function liveStable(input: GateInput): Counts | null {
  if (input.weight >= 100) return null
  return input.stable?.step ?? { requests: 0, errors: 0 }
}

/** "12 of 50 canary requests in the window" while the canary has fewer than minRequests there (no pass before then); null once it has them. */
export function shortOfMinimum(input: GateInput, minRequests: number): string | null {
  const n = input.canary.window.requests
  return n >= minRequests ? null : `${count(n)} of ${count(minRequests)} canary requests in the window, no pass before ${count(minRequests)}`
}

/** A slot length in words. */
export function slotWords(input: GateInput): string {
  const slot = input.canary.window.slotMs
  return slot % 1000 === 0 ? `${slot / 1000}s` : `${slot}ms`
}
