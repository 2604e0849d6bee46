/** The rollout state machine: transition(state, event, now) -> new state and effects. Pure: no timers, no I/O. */
import { formatDuration } from '../core/duration.js'
import {
  isUnderWay,
  type Actor,
  type BakingState,
  type Decision,
  type Effect,
  type EndedState,
  type IdleState,
  type PausedState,
  type ProgressingState,
  type RolloutEvent,
  type RolloutSettings,
  type RolloutState,
} from './phase.js'

export type TransitionResult =
  | { readonly ok: true; readonly state: RolloutState; readonly effects: readonly Effect[] }
  | { readonly ok: false; readonly conflict: string }

/** The state of a proxy that has never run a rollout. */
export function initialState(stableUrl: string, canaryUrl: string | null, now: number): IdleState {
  return { phase: 'idle', weight: 0, stableUrl, canaryUrl, generation: 0, updatedAt: now, configStable: stableUrl, configCanary: canaryUrl, lastDecision: null }
}

/**
 * Operator events are refused (ok: false, a 409 for the admin API) when they
 * make no sense in the current phase; analysis verdicts are never refused.
 * `actor` is recorded in the audit trail: 'auto' for the analysis.
 */
export function transition(state: RolloutState, event: RolloutEvent, now: number, settings: RolloutSettings, actor: Actor = 'auto'): TransitionResult {
  const base = { ...commonOf(state), updatedAt: now }
  switch (event.type) {
    case 'start': {
      // Paused with no canary is the safe state after an unusable state file: nothing is being rolled out.
      if (isUnderWay(state.phase) && state.canaryUrl !== null) return refuse(`a rollout is already under way (phase ${state.phase}); abort it or wait for it to end`)
      const canaryUrl = event.canary ?? state.canaryUrl
      if (canaryUrl === null) return refuse('no canary upstream is known: give its URL (canary-proxy start --canary URL)')
      const next = enterStep({ ...base, canaryUrl, generation: state.generation + 1, lastDecision: null }, 0, now, settings)
      return moved(state, next, actor, 'start', `rollout of canary ${canaryUrl} started at ${next.weight}%`, [{ type: 'resetCanaryFigures' }, { type: 'publish' }])
    }
    case 'pause': {
      if (state.phase !== 'progressing' && state.phase !== 'baking') {
        return refuse(state.phase === 'paused' ? 'the rollout is already paused' : `nothing to pause: no rollout is progressing (phase ${state.phase})`)
      }
      const next: PausedState = { ...base, phase: 'paused', weight: state.weight, stepIndex: state.stepIndex }
      return moved(state, next, actor, 'pause', `paused at ${state.weight}%`, [])
    }
    case 'resume': {
      if (state.phase !== 'paused') return refuse(`nothing is paused (phase ${state.phase})`)
      if (state.canaryUrl === null) return refuse('no canary upstream is known: start a rollout instead (canary-proxy start --canary URL)')
      let next: RolloutState
      if (state.weight >= 100) next = { ...base, phase: 'baking', weight: 100, stepIndex: stepIndexAtOrBelow(100, settings.steps), bakeStartedAt: now }
      else if (state.stepIndex === null) next = enterStep(base, 0, now, settings)
      else next = { ...base, phase: 'progressing', weight: state.weight, stepIndex: state.stepIndex, stepStartedAt: now }
      return moved(state, next, actor, 'resume', `resumed at ${next.weight}%`, [{ type: 'publish' }])
    }
    case 'promote': {
      if (state.canaryUrl === null) return refuse('no canary upstream to promote')
      // A canary that failed (or was stopped) does not become the stable in one call: it goes through a start first.
      if (state.phase === 'rolled_back' || state.phase === 'aborted') {
        return refuse(`the canary was ${state.phase === 'rolled_back' ? 'rolled back' : 'aborted'}; start a new rollout of it (canary-proxy start) before promoting it`)
      }
      const next = ended(base, 'succeeded', `promoted by ${actor}: ${state.canaryUrl} is the new stable`, state.canaryUrl)
      return moved(state, next, actor, 'promote', next.reason, [{ type: 'promoted' }, { type: 'publish' }])
    }
    case 'abort': {
      if (!isUnderWay(state.phase)) return refuse(`no rollout under way to abort (phase ${state.phase})`)
      const next = ended(base, 'aborted', event.reason ?? `aborted by ${actor}`)
      return moved(state, next, actor, 'abort', next.reason, [{ type: 'publish' }])
    }
    case 'setWeight': {
      if (state.canaryUrl === null) return refuse('no canary upstream is known: start a rollout first (canary-proxy start --canary URL)')
      // From idle or an ended rollout, a manual weight puts a new rollout under way.
      const fresh = isUnderWay(state.phase) ? {} : { generation: state.generation + 1, lastDecision: null }
      const next: PausedState = { ...base, ...fresh, phase: 'paused', weight: event.weight, stepIndex: stepIndexAtOrBelow(event.weight, settings.steps) }
      return moved(state, next, actor, 'set-weight', `weight set to ${event.weight}% by ${actor}; automation paused`, [{ type: 'publish' }])
    }
    case 'analysis':
      return judge(state, event.verdict, now, settings)
  }
}

function judge(state: RolloutState, verdict: Decision, now: number, settings: RolloutSettings): TransitionResult {
  if (!isUnderWay(state.phase)) return { ok: true, state, effects: [] }
  const base = { ...commonOf(state), updatedAt: now, lastDecision: verdict }
  if (verdict.verdict === 'fail') {
    const next = ended(base, 'rolled_back', verdict.reason)
    return moved(state, next, 'auto', 'rollback', verdict.reason, [{ type: 'rolledBack' }, { type: 'publish' }])
  }
  // The same verdict for the same reason keeps its first time: `lastDecision.at`
  // says since when it holds, and the status does not churn on every tick.
  const same = state.lastDecision !== null && state.lastDecision.verdict === verdict.verdict && state.lastDecision.reason === verdict.reason
  const noted: RolloutState = same ? state : { ...state, lastDecision: verdict }
  if (verdict.verdict !== 'pass') return { ok: true, state: noted, effects: [] }
  if (state.phase === 'progressing' && now - state.stepStartedAt >= settings.stepDurationMs) {
    const next = advance(state, base, now, settings)
    const held = formatDuration(now - state.stepStartedAt)
    return moved(state, next, 'auto', 'advance', `${state.weight}% held ${held} and passed (${verdict.reason}); now ${next.weight}%`, [{ type: 'publish' }])
  }
  if (state.phase === 'baking' && now - state.bakeStartedAt >= settings.bakeMs) {
    const next = ended(base, 'succeeded', `bake of ${formatDuration(settings.bakeMs)} at 100% passed (${verdict.reason}); ${state.canaryUrl ?? ''} is the new stable`, state.canaryUrl)
    return moved(state, next, 'auto', 'succeed', next.reason, [{ type: 'promoted' }, { type: 'publish' }])
  }
  return { ok: true, state: noted, effects: [] }
}

type Base = Omit<IdleState, 'phase' | 'weight'>

function commonOf(state: RolloutState): Base {
  return {
    stableUrl: state.stableUrl,
    canaryUrl: state.canaryUrl,
    generation: state.generation,
    updatedAt: state.updatedAt,
    configStable: state.configStable,
    configCanary: state.configCanary,
    lastDecision: state.lastDecision,
    baseline: state.baseline ?? null,
  }
}

/** Enters step `index`: 100% (or beyond the last step) is the bake. */
function enterStep(base: Base, index: number, now: number, settings: RolloutSettings): ProgressingState | BakingState {
  const weight = settings.steps[index]
  if (weight === undefined || weight >= 100) {
    return { ...base, phase: 'baking', weight: 100, stepIndex: weight === undefined ? null : index, bakeStartedAt: now }
  }
  return { ...base, phase: 'progressing', weight, stepIndex: index, stepStartedAt: now }
}

/** The next step above the current weight (which a manual set-weight may have put between steps). */
function advance(state: ProgressingState, base: Base, now: number, settings: RolloutSettings): ProgressingState | BakingState {
  let next = state.stepIndex + 1
  while (next < settings.steps.length && (settings.steps[next] ?? 0) <= state.weight) next++
  return enterStep(base, next, now, settings)
}

export function stepIndexAtOrBelow(weight: number, steps: readonly number[]): number | null {
  let found: number | null = null
  steps.forEach((step, i) => {
    if (step <= weight) found = i
  })
  return found
}

function ended(base: Base, phase: EndedState['phase'], reason: string, promotedUrl: string | null = null): EndedState {
  if (phase === 'succeeded' && promotedUrl !== null) return { ...base, phase, weight: 0, reason, stableUrl: promotedUrl, canaryUrl: null }
  return { ...base, phase, weight: 0, reason }
}

function moved(from: RolloutState, to: RolloutState, actor: Actor, action: string, reason: string, effects: readonly Effect[]): TransitionResult {
  const record = {
    at: to.updatedAt,
    actor,
    action,
    from: { phase: from.phase, weight: from.weight },
    to: { phase: to.phase, weight: to.weight },
    reason,
  }
  return { ok: true, state: to, effects: [...effects, { type: 'persist' }, { type: 'audit', record }] }
}

function refuse(conflict: string): TransitionResult {
  return { ok: false, conflict }
}
