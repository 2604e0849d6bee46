/** The rollout phases of the SPEC, from one constant: the machine, the metrics, the wire schemas and the CLI all read them here. */

export const PHASES = ['idle', 'progressing', 'paused', 'baking', 'succeeded', 'rolled_back', 'aborted'] as const

export type Phase = (typeof PHASES)[number]

/** Phases in which a rollout is under way (SPEC "Rollout phases"): checks run, a breach rolls back. */
export const UNDER_WAY_PHASES = ['progressing', 'paused', 'baking'] as const satisfies readonly Phase[]

/** Phases that end a rollout; `wait` returns on them. */
export const ENDED_PHASES = ['succeeded', 'rolled_back', 'aborted'] as const satisfies readonly Phase[]

export type UnderWayPhase = (typeof UNDER_WAY_PHASES)[number]
export type EndedPhase = (typeof ENDED_PHASES)[number]

export function isUnderWay(phase: Phase): phase is UnderWayPhase {
  return phase === 'progressing' || phase === 'paused' || phase === 'baking'
}

export function isEnded(phase: Phase): phase is EndedPhase {
  return phase === 'succeeded' || phase === 'rolled_back' || phase === 'aborted'
}
