/**
 * The rollout state machine, the one authority over rollout state:
 * transition(state, event, now) -> new state and effects, and restore() for a
 * process that starts from a stored state (or none, or a corrupt one). Pure:
 * no timers, no I/O. Window resets, baseline capture, publication and
 * persistence are effects it returns; the controller only carries them out.
 */
import type { BaselineFigures } from '../analysis/check.js'
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
  type Restored,
  type RolloutEvent,
  type RolloutSettings,
  type RolloutState,
  type UpstreamsConfig,
} from './phase.js'

export type TransitionResult =
  | { readonly ok: true; readonly state: RolloutState; readonly effects: readonly Effect[] }
  | { readonly ok: false; readonly conflict: string }

export type Accepted = Extract<TransitionResult, { ok: true }>

/** The state of a proxy that has never run a rollout. */
export function initialState(stableUrl: string, canaryUrl: string | null, now: number): IdleState {
  return { phase: 'idle', weight: 0, stableUrl, canaryUrl, generation: 0, updatedAt: now, configStable: stableUrl, configCanary: canaryUrl, lastDecision: null }
}

/**
 * Operator events are refused (ok: false, a 409 for the admin API) when they
 * make no sense in the current phase; analysis verdicts and config events are
 * never refused. `actor` is recorded in the audit trail: 'auto' for the
 * analysis. `observed` is stable's latest live figures, kept as the baseline
 * when the canary reaches 100%.
 */
export function transition(state: RolloutState, event: RolloutEvent, now: number, settings: RolloutSettings, actor: Actor = 'auto', observed: BaselineFigures | null = null): TransitionResult {
  const base = { ...commonOf(state), updatedAt: now }
  switch (event.type) {
    case 'start': {
      // Paused with no canary is the safe state after an unusable state file: nothing is being rolled out.
      if (isUnderWay(state.phase) && state.canaryUrl !== null) return refuse(`a rollout is already under way (phase ${state.phase}); abort it or wait for it to end`)
      const canaryUrl = event.canary ?? state.canaryUrl
      if (canaryUrl === null) return refuse('no canary upstream is known: give its URL (canary-proxy start --canary URL)')
      const fresh = { ...base, canaryUrl, generation: state.generation + 1, lastDecision: null }
      const gates = settings.preRolloutChecks ?? []
      if (gates.length > 0) {
        // Pre-rollout gates are asked at weight 0: no user reaches the canary before they pass.
        const next = preRolloutStage(fresh, now)
        return moved(state, next, actor, 'start', `rollout of canary ${canaryUrl} started at 0%: waiting for the pre-rollout gate${gates.length === 1 ? '' : 's'} (${gates.join(', ')})`, [{ type: 'publish' }], observed)
      }
      const next = enterStep(fresh, 0, now, settings)
      return moved(state, next, actor, 'start', `rollout of canary ${canaryUrl} started at ${next.weight}%`, [{ type: 'publish' }], observed)
    }
    case 'pause': {
      if (state.phase !== 'progressing' && state.phase !== 'baking') {
        return refuse(state.phase === 'paused' ? 'the rollout is already paused' : `nothing to pause: no rollout is progressing (phase ${state.phase})`)
      }
      const next: PausedState = { ...base, phase: 'paused', weight: state.weight, stepIndex: state.stepIndex }
      return moved(state, next, actor, 'pause', `paused at ${state.weight}%`, [], observed)
    }
    case 'resume': {
      if (state.phase !== 'paused') return refuse(`nothing is paused (phase ${state.phase})`)
      if (state.canaryUrl === null) return refuse('no canary upstream is known: start a rollout instead (canary-proxy start --canary URL)')
      let next: RolloutState
      if (state.weight >= 100) next = { ...base, phase: 'baking', weight: 100, stepIndex: stepIndexAtOrBelow(100, settings.steps), bakeStartedAt: now }
      // At 0% with pre-rollout gates, resuming goes back to waiting for them: they pass before the first step, always.
      else if (state.stepIndex === null) next = state.weight === 0 && (settings.preRolloutChecks ?? []).length > 0 ? preRolloutStage(base, now) : enterStep(base, 0, now, settings)
      else next = { ...base, phase: 'progressing', weight: state.weight, stepIndex: state.stepIndex, stepStartedAt: now }
      return moved(state, next, actor, 'resume', `resumed at ${next.weight}%`, [{ type: 'publish' }], observed)
    }
    case 'promote': {
      if (state.canaryUrl === null) return refuse('no canary upstream to promote')
      // A canary that failed (or was stopped) does not become the stable in one call: it goes through a start first.
      if (state.phase === 'rolled_back' || state.phase === 'aborted') {
        return refuse(`the canary was ${state.phase === 'rolled_back' ? 'rolled back' : 'aborted'}; start a new rollout of it (canary-proxy start) before promoting it`)
      }
      const next = ended(base, 'succeeded', `promoted by ${actor}: ${state.canaryUrl} is the new stable`, state.canaryUrl)
      return moved(state, next, actor, 'promote', next.reason, [{ type: 'promoted' }, { type: 'publish' }], observed)
    }
    case 'abort': {
      if (!isUnderWay(state.phase)) return refuse(`no rollout under way to abort (phase ${state.phase})`)
      const next = ended(base, 'aborted', event.reason ?? `aborted by ${actor}`)
      return moved(state, next, actor, 'abort', next.reason, [{ type: 'publish' }], observed)
    }
    case 'setWeight': {
      if (state.canaryUrl === null) return refuse('no canary upstream is known: start a rollout first (canary-proxy start --canary URL)')
      // From idle or an ended rollout, a manual weight puts a new rollout under way.
      const fresh = isUnderWay(state.phase) ? {} : { generation: state.generation + 1, lastDecision: null }
      const next: PausedState = { ...base, ...fresh, phase: 'paused', weight: event.weight, stepIndex: stepIndexAtOrBelow(event.weight, settings.steps) }
      return moved(state, next, actor, 'set-weight', `weight set to ${event.weight}% by ${actor}; automation paused`, [{ type: 'publish' }], observed)
    }
    case 'analysis':
      return judge(state, event.verdict, now, settings, observed)
    case 'config': {
      // A reload may change the routing rules as well as the upstreams: the table is published anew either way.
      const reconciled = reconcile(state, event.upstreams, now, settings)
      return reconciled.effects.some((e) => e.type === 'publish') ? reconciled : { ...reconciled, effects: [...reconciled.effects, { type: 'publish' }] }
    }
  }
}

/**
 * The state a starting process takes up. A stored state resumes the same
 * phase, step and weight with a fresh observation of the current step (its
 * figures were in memory); it never jumps to 0% or 100% by itself. A corrupt
 * store starts safe: all traffic to stable, paused. Then the config is
 * reconciled as on a reload.
 */
export function restore(restored: Restored, upstreams: UpstreamsConfig, now: number, settings: RolloutSettings): Accepted {
  const fresh = initialState(upstreams.stable, upstreams.canary, now)
  if (restored.kind === 'corrupt') {
    const safe: PausedState = { ...fresh, phase: 'paused', weight: 0, stepIndex: null }
    const kept = restored.keptAs === null ? 'it could not be moved aside' : `kept as ${restored.keptAs}`
    const note = noted(safe, safe, 'recover', `state file unusable (${restored.problem}); ${kept}; started safe, paused at 0%`)
    return { ok: true, state: safe, effects: [...note, { type: 'persist' }, { type: 'publish' }] }
  }
  if (restored.kind === 'empty') return chain({ ok: true, state: fresh, effects: [{ type: 'persist' }, { type: 'publish' }] }, (s) => autoStart(s, upstreams, now, settings))
  const resumed = resumeObservation(restored.state, now, settings.steps)
  const reconciled = reconcile(resumed, upstreams, now, settings)
  return { ok: true, state: reconciled.state, effects: [...reconciled.effects, { type: 'publish' }] }
}

/**
 * A replica takes up a state another replica committed (its change feed, a
 * reload after a conflict, joining a running rollout): the state as stored,
 * with the effects that replica's own transition had here, bar the ones
 * the writer alone carries out (persist, audit, the rollback count). Each
 * weight, canary or stable is observed afresh, as in moved().
 */
export function adopt(current: RolloutState, stored: RolloutState): Accepted {
  const promoted = stored.phase === 'succeeded' && stored.stableUrl !== current.stableUrl
  const fresh =
    (isUnderWay(stored.phase) && (stored.weight !== current.weight || stored.generation !== current.generation)) ||
    stored.stableUrl !== current.stableUrl ||
    stored.canaryUrl !== current.canaryUrl
  const effects: Effect[] = [...(fresh ? [{ type: 'resetWindows' } as const] : []), ...(promoted ? [{ type: 'promoted' } as const] : []), { type: 'publish' }]
  return { ok: true, state: stored, effects }
}

/** The config's upstreams against the state: a changed stable is adopted, a new canary starts a new rollout (with autoStart). */
function reconcile(state: RolloutState, upstreams: UpstreamsConfig, now: number, settings: RolloutSettings): Accepted {
  let next: RolloutState = withSteps(state, settings.steps)
  const effects: Effect[] = []
  if (upstreams.stable !== next.configStable) {
    const changed: RolloutState = { ...next, stableUrl: upstreams.stable, configStable: upstreams.stable, updatedAt: now }
    effects.push(...noted(next, changed, 'config', `stable upstream changed in the config: ${next.stableUrl} -> ${upstreams.stable}`), { type: 'publish' })
    next = changed
  }
  if (upstreams.canary !== null && upstreams.canary !== next.configCanary) {
    const replaced = isUnderWay(next.phase) ? ` (replaces the rollout of ${next.canaryUrl ?? ''})` : ''
    const idle: IdleState = { ...initialState(next.stableUrl, upstreams.canary, now), generation: next.generation }
    effects.push(...noted(next, idle, 'config', `new canary upstream in the config: ${upstreams.canary}${replaced}`), { type: 'resetWindows' }, { type: 'publish' })
    next = idle
  }
  if (effects.length > 0) effects.push({ type: 'persist' })
  return chain({ ok: true, state: next, effects }, (s) => autoStart(s, upstreams, now, settings))
}

/** Idle with a canary known means its rollout never started (an ended one is not idle). */
function autoStart(state: RolloutState, upstreams: UpstreamsConfig, now: number, settings: RolloutSettings): TransitionResult | null {
  if (!upstreams.autoStart || state.phase !== 'idle' || state.canaryUrl === null) return null
  return transition(state, { type: 'start', canary: null }, now, settings, 'auto')
}

function chain(first: Accepted, then: (state: RolloutState) => TransitionResult | null): Accepted {
  const second = then(first.state)
  if (second === null || !second.ok) return first
  return { ok: true, state: second.state, effects: [...first.effects, ...second.effects] }
}

function judge(state: RolloutState, verdict: Decision, now: number, settings: RolloutSettings, observed: BaselineFigures | null): TransitionResult {
  if (!isUnderWay(state.phase)) return { ok: true, state, effects: [] }
  const base = { ...commonOf(state), updatedAt: now, lastDecision: verdict }
  if (verdict.verdict === 'fail') {
    const next = ended(base, 'rolled_back', verdict.reason)
    return moved(state, next, 'auto', 'rollback', verdict.reason, [{ type: 'rolledBack' }, { type: 'publish' }], observed)
  }
  // The same verdict for the same reason keeps its first time: `lastDecision.at`
  // says since when it holds, and the status does not churn on every tick.
  const same = state.lastDecision !== null && state.lastDecision.verdict === verdict.verdict && state.lastDecision.reason === verdict.reason
  const noted: RolloutState = same ? state : { ...state, lastDecision: verdict }
  const gates = settings.preRolloutChecks ?? []
  if (state.phase === 'progressing' && state.weight === 0 && state.stepIndex < 0 && gates.length > 0) {
    // The pre-rollout stage: no canary traffic yet, so only its gates can pass it (a proven fail above still rolls back).
    const open = gates.every((id) => verdict.findings.some((f) => f.check === id && f.verdict === 'pass'))
    if (open) {
      const next = enterStep(base, 0, now, settings)
      return moved(state, next, 'auto', 'advance', `pre-rollout gate${gates.length === 1 ? '' : 's'} passed (${gates.join(', ')}); now ${next.weight}%`, [{ type: 'publish' }], observed)
    }
    return pastDeadline(state, noted, verdict, now, settings, observed) ?? { ok: true, state: noted, effects: [] }
  }
  if (verdict.verdict === 'pass') {
    if (state.phase === 'progressing' && now - state.stepStartedAt >= stepDuration(state.stepIndex, settings)) {
      const next = advance(state, base, now, settings)
      const held = formatDuration(now - state.stepStartedAt)
      const waits = next.phase === 'paused' ? `; step ${(next.stepIndex ?? 0) + 1} is a pause step: waiting for resume` : ''
      return moved(state, next, 'auto', 'advance', `${state.weight}% held ${held} and passed (${verdict.reason}); now ${next.weight}%${waits}`, [{ type: 'publish' }], observed)
    }
    if (state.phase === 'baking' && now - state.bakeStartedAt >= settings.bakeMs) {
      const next = ended(base, 'succeeded', `bake of ${formatDuration(settings.bakeMs)} at 100% passed (${verdict.reason}); ${state.canaryUrl ?? ''} is the new stable`, state.canaryUrl)
      return moved(state, next, 'auto', 'succeed', next.reason, [{ type: 'promoted' }, { type: 'publish' }], observed)
    }
  }
  return pastDeadline(state, noted, verdict, now, settings, observed) ?? { ok: true, state: noted, effects: [] }
}

/**
 * rollout.progressDeadline: a step (or the bake) that has not finished this
 * long after it began (too little traffic for a pass, a breach not yet proven,
 * a gate webhook that never answers 2xx) is ended by onDeadline: paused where
 * it is (an operator decides), or rolled back. A paused rollout waits for a
 * person and has no deadline.
 */
function pastDeadline(state: RolloutState, noted: RolloutState, verdict: Decision, now: number, settings: RolloutSettings, observed: BaselineFigures | null): TransitionResult | null {
  const deadline = settings.progressDeadlineMs
  if (deadline === undefined || deadline === null || deadline <= 0) return null
  const began = state.phase === 'progressing' ? state.stepStartedAt : state.phase === 'baking' ? state.bakeStartedAt : null
  if (began === null || now - began < deadline) return null
  const index = state.phase === 'progressing' ? state.stepIndex : 0
  const where = state.phase === 'baking' ? 'the bake at 100%' : index < 0 && state.weight === 0 ? 'the pre-rollout stage (0%)' : `step ${index + 1} (${state.weight}%)`
  const why = `progress deadline: ${where} did not finish within ${formatDuration(deadline)} (last verdict ${verdict.verdict}: ${verdict.reason})`
  const base = { ...commonOf(noted), updatedAt: now }
  if (settings.onDeadline === 'rollback') {
    const next = ended(base, 'rolled_back', `${why}; rolled back`)
    return moved(state, next, 'auto', 'rollback', next.reason, [{ type: 'rolledBack' }, { type: 'publish' }], observed)
  }
  const stepIndex = state.phase === 'progressing' ? (state.stepIndex >= 0 ? state.stepIndex : null) : state.phase === 'baking' ? state.stepIndex : null
  const next: PausedState = { ...base, phase: 'paused', weight: state.weight, stepIndex }
  return moved(state, next, 'auto', 'pause', `${why}; paused at ${state.weight}%, resume or abort`, [], observed)
}

/** The observation period of step `index` (its own duration, else rollout.stepDuration). */
function stepDuration(index: number, settings: RolloutSettings): number {
  return (index >= 0 ? settings.stepDurationsMs?.[index] : undefined) ?? settings.stepDurationMs
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

/** Waiting for the pre-rollout gates: under way at 0%, before the first step (index -1). */
function preRolloutStage(base: Base, now: number): ProgressingState {
  return { ...base, phase: 'progressing', weight: 0, stepIndex: -1, stepStartedAt: now }
}

/** Enters step `index`: 100% (or beyond the last step) is the bake; a pause step waits there for `resume`, checks still running. */
function enterStep(base: Base, index: number, now: number, settings: RolloutSettings): ProgressingState | BakingState | PausedState {
  const weight = settings.steps[index]
  if (weight !== undefined && settings.pauseSteps?.[index] === true) return { ...base, phase: 'paused', weight, stepIndex: index }
  if (weight === undefined || weight >= 100) {
    return { ...base, phase: 'baking', weight: 100, stepIndex: weight === undefined ? null : index, bakeStartedAt: now }
  }
  return { ...base, phase: 'progressing', weight, stepIndex: index, stepStartedAt: now }
}

/** The next step above the current weight (which a manual set-weight may have put between steps). */
function advance(state: ProgressingState, base: Base, now: number, settings: RolloutSettings): ProgressingState | BakingState | PausedState {
  let next = state.stepIndex + 1
  while (next < settings.steps.length && (settings.steps[next] ?? 0) <= state.weight) next++
  return enterStep(base, next, now, settings)
}

/**
 * The canary share the data plane serves in this state: the state's weight,
 * except in the bake with rollout.bakeStableShare, where that share of the
 * traffic stays on stable for the comparisons (the bake is still the bake at
 * "100%": the canary takes all of it once the bake has passed).
 */
export function servedWeight(state: RolloutState, settings: RolloutSettings): number {
  const share = settings.bakeStableShare ?? 0
  return state.phase === 'baking' && share > 0 ? 100 - share : state.weight
}

export function stepIndexAtOrBelow(weight: number, steps: readonly number[]): number | null {
  let found: number | null = null
  steps.forEach((step, i) => {
    if (step <= weight) found = i
  })
  return found
}

/**
 * After a restart the current step (or bake) is observed afresh: its figures
 * were in memory. The step index is found again from the weight, in case
 * rollout.steps changed in the config meanwhile (-1: below the first step,
 * which is the next one).
 */
function resumeObservation(state: RolloutState, now: number, steps: readonly number[]): RolloutState {
  const indexed = withSteps(state, steps)
  if (indexed.phase === 'progressing') return { ...indexed, stepStartedAt: now }
  if (indexed.phase === 'baking') return { ...indexed, bakeStartedAt: now }
  return indexed
}

/** The step index of the state's weight in `steps` (which a reload or a restart may have changed). */
function withSteps(state: RolloutState, steps: readonly number[]): RolloutState {
  if (state.phase === 'progressing') return { ...state, stepIndex: stepIndexAtOrBelow(state.weight, steps) ?? -1 }
  if (state.phase === 'paused') return { ...state, stepIndex: stepIndexAtOrBelow(state.weight, steps) }
  if (state.phase === 'baking') return { ...state, stepIndex: steps.at(-1) === 100 ? steps.length - 1 : null }
  return state
}

function ended(base: Base, phase: EndedState['phase'], reason: string, promotedUrl: string | null = null): EndedState {
  if (phase === 'succeeded' && promotedUrl !== null) return { ...base, phase, weight: 0, reason, stableUrl: promotedUrl, canaryUrl: null, baseline: null }
  return { ...base, phase, weight: 0, reason }
}

/**
 * An accepted move: persisted and audited. Each weight of a rollout is
 * observed afresh on both sides (so both windows cover the same span with
 * steady shares of traffic), as is a new canary and a promotion; ending a
 * rollout keeps the figures that ended it. Reaching 100% keeps stable's last
 * live figures as the baseline.
 */
function moved(from: RolloutState, to: RolloutState, actor: Actor, action: string, reason: string, effects: readonly Effect[], observed: BaselineFigures | null): Accepted {
  let next = to
  if (isUnderWay(to.phase) && to.weight === 100 && from.weight !== 100) next = { ...next, baseline: observed ?? from.baseline ?? null }
  const fresh = (isUnderWay(to.phase) && (to.weight !== from.weight || to.generation !== from.generation)) || effects.some((e) => e.type === 'promoted')
  const record = { at: next.updatedAt, actor, action, from: { phase: from.phase, weight: from.weight }, to: { phase: next.phase, weight: next.weight }, reason }
  return { ok: true, state: next, effects: [...(fresh ? [{ type: 'resetWindows' } as const] : []), ...effects, { type: 'persist' }, { type: 'audit', record }] }
}

/** A note in the audit trail that is not an operator action or a verdict (recovery, a config change). */
function noted(from: RolloutState, to: RolloutState, action: string, reason: string): Effect[] {
  return [{ type: 'audit', record: { at: to.updatedAt, actor: 'auto', action, from: { phase: from.phase, weight: from.weight }, to: { phase: to.phase, weight: to.weight }, reason } }]
}

function refuse(conflict: string): TransitionResult {
  return { ok: false, conflict }
}
