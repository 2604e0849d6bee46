/** Rollout phases, the state each one carries, the events that move it, and the effects a transition asks for. */

import type { BaselineFigures } from '../analysis/check.js'
import type { Decision } from '../analysis/finding.js'
import type { AuditRecord } from '../events/feed.js'

export { isUnderWay, type Phase } from '../core/phases.js'
export type { Decision } from '../analysis/finding.js'
export type { AuditRecord } from '../events/feed.js'

/** Fields every phase has. */
interface Common {
  readonly stableUrl: string
  /** The canary slot: set while a canary is known, kept after rolled_back/aborted for `x-canary: always`. */
  readonly canaryUrl: string | null
  /** Counts rollouts started; figures of a new rollout start empty. */
  readonly generation: number
  readonly updatedAt: number
  /** The config's upstream URLs when last reconciled, so a changed config can be told from a promotion. */
  readonly configStable: string
  readonly configCanary: string | null
  readonly lastDecision: Decision | null
  /**
   * Stable's figures last measured while it took live traffic, kept when the
   * canary reaches 100% so a restart in the bake still has the reference the
   * comparison checks need.
   */
  readonly baseline?: StableBaseline | null
}

export type StableBaseline = BaselineFigures

export interface IdleState extends Common {
  readonly phase: 'idle'
  readonly weight: 0
}

export interface ProgressingState extends Common {
  readonly phase: 'progressing'
  readonly weight: number
  /** Index into the steps; the weight may sit between steps after a manual set-weight and resume. */
  readonly stepIndex: number
  /** When the observation of this step began (restarts after a restart of the process). */
  readonly stepStartedAt: number
}

export interface PausedState extends Common {
  readonly phase: 'paused'
  readonly weight: number
  /** Index of the highest step at or below the weight, or null when below the first. */
  readonly stepIndex: number | null
}

export interface BakingState extends Common {
  readonly phase: 'baking'
  readonly weight: 100
  readonly stepIndex: number | null
  readonly bakeStartedAt: number
}

export interface EndedState extends Common {
  readonly phase: 'succeeded' | 'rolled_back' | 'aborted'
  readonly weight: 0
  readonly reason: string
}

export type RolloutState = IdleState | ProgressingState | PausedState | BakingState | EndedState

export type Actor = string

/** The upstreams and autoStart of a config, as the machine reconciles them with the state. */
export interface UpstreamsConfig {
  readonly stable: string
  readonly canary: string | null
  readonly autoStart: boolean
}

export type RolloutEvent =
  | { readonly type: 'start'; readonly canary: string | null }
  | { readonly type: 'pause' }
  | { readonly type: 'resume' }
  | { readonly type: 'promote' }
  | { readonly type: 'abort'; readonly reason: string | null }
  | { readonly type: 'setWeight'; readonly weight: number }
  /** A verdict of the analysis gate, given at `now`. */
  | { readonly type: 'analysis'; readonly verdict: Decision }
  /** The config was read (start-up or SIGHUP): adopt a changed stable, start a rollout for a new canary. */
  | { readonly type: 'config'; readonly upstreams: UpstreamsConfig }

export type OperatorEvent = Extract<RolloutEvent, { type: 'start' | 'pause' | 'resume' | 'promote' | 'abort' | 'setWeight' }>
export type OperatorAction = OperatorEvent['type']

export type Effect =
  /** Weights or upstreams changed: compile and publish a new routing table. */
  | { readonly type: 'publish' }
  | { readonly type: 'persist' }
  | { readonly type: 'audit'; readonly record: AuditRecord }
  /** Both sides' windows start empty: a new weight, a new canary or a promotion is observed afresh. */
  | { readonly type: 'resetWindows' }
  /** The canary became the stable. */
  | { readonly type: 'promoted' }
  | { readonly type: 'rolledBack' }

export interface RolloutSettings {
  readonly steps: readonly number[]
  readonly stepDurationMs: number
  readonly bakeMs: number
  /** Each step's own observation period (rollout.steps[i].duration); stepDurationMs where absent. */
  readonly stepDurationsMs?: readonly (number | undefined)[]
  /** Steps that wait for `resume` once reached (rollout.steps[i].pause). */
  readonly pauseSteps?: readonly boolean[]
  /** A step (or the bake) not finished this long after it began: onDeadline. Absent: no deadline. */
  readonly progressDeadlineMs?: number | null
  readonly onDeadline?: 'pause' | 'rollback'
  /** rollout.bakeStableShare: percent still sent to stable during the bake, so the comparisons with stable stay live (0: the bake is at 100%). */
  readonly bakeStableShare?: number
  /**
   * The check ids of the pre-rollout gates (`webhook.<name>`): with any, a
   * rollout starts at weight 0 (step index -1) and enters its first step once
   * every one of them has passed.
   */
  readonly preRolloutChecks?: readonly string[]
}

/** What the rollout was restored from (a StateStore's LoadResult has this shape). */
export type Restored =
  | { readonly kind: 'empty' }
  | { readonly kind: 'loaded'; readonly state: RolloutState }
  | { readonly kind: 'corrupt'; readonly problem: string; readonly keptAs: string | null }
