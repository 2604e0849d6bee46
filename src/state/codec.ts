/**
 * The rollout state's stored form: one JSON document per state, versioned by
 * `version`, checked phase by phase on the way in so a state that parses but is
 * incomplete is refused like a corrupt one. Shared by every store (file,
 * memory, Redis); imports no config code.
 */
import { Type, type TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { upstreamUrlProblem } from '../core/domain.js'
import { schemaProblems } from '../core/schema-errors.js'
import type { RolloutState } from '../rollout/phase.js'

/**
 * The stored document. `version` is the format's (1 since the first release);
 * `revision` the store's version of this state (compare-and-set), `fence` the
 * highest lease token that wrote it.
 */
export interface StoredState {
  readonly version: 1
  readonly revision: number
  readonly fence: number | null
  readonly savedAt: string
  readonly state: RolloutState
}

export const STATE_FORMAT = 1

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const finding = Type.Object({
  check: Type.String(),
  verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('insufficient')]),
  observed: nullable(Type.Number()),
  threshold: nullable(Type.Number()),
  n: Type.Number({ minimum: 0 }),
  reason: Type.String(),
})
const common = {
  stableUrl: Type.String(),
  canaryUrl: nullable(Type.String()),
  generation: Type.Integer({ minimum: 0 }),
  updatedAt: Type.Number(),
  configStable: Type.String(),
  configCanary: nullable(Type.String()),
  lastDecision: nullable(
    Type.Object({
      at: Type.Number(),
      verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('insufficient')]),
      reason: Type.String(),
      // Absent in states saved before findings existed.
      findings: Type.Optional(Type.Array(finding)),
    }),
  ),
  baseline: Type.Optional(nullable(Type.Object({ requests: Type.Integer({ minimum: 0 }), errors: Type.Integer({ minimum: 0 }), p99Us: nullable(Type.Number({ minimum: 0 })) }))),
}
const weight = Type.Number({ minimum: 0, maximum: 100 })
const stepIndex = Type.Integer({ minimum: -1 })

const PHASE_SCHEMAS = {
  idle: Type.Object({ ...common, phase: Type.Literal('idle'), weight: Type.Literal(0) }),
  progressing: Type.Object({ ...common, phase: Type.Literal('progressing'), weight, stepIndex, stepStartedAt: Type.Number() }),
  paused: Type.Object({ ...common, phase: Type.Literal('paused'), weight, stepIndex: nullable(stepIndex) }),
  baking: Type.Object({ ...common, phase: Type.Literal('baking'), weight: Type.Literal(100), stepIndex: nullable(stepIndex), bakeStartedAt: Type.Number() }),
  ended: Type.Object({ ...common, phase: Type.String(), weight: Type.Literal(0), reason: Type.String() }),
}
const ajv = new Ajv({ allErrors: false, strict: false })
const validators = {
  idle: ajv.compile(PHASE_SCHEMAS.idle),
  progressing: ajv.compile(PHASE_SCHEMAS.progressing),
  paused: ajv.compile(PHASE_SCHEMAS.paused),
  baking: ajv.compile(PHASE_SCHEMAS.baking),
  succeeded: ajv.compile(PHASE_SCHEMAS.ended),
  rolled_back: ajv.compile(PHASE_SCHEMAS.ended),
  aborted: ajv.compile(PHASE_SCHEMAS.ended),
}

export function encodeState(state: RolloutState, revision: number, fence: number | null): string {
  const doc: StoredState = { version: STATE_FORMAT, revision, fence, savedAt: new Date(state.updatedAt).toISOString(), state }
  return `${JSON.stringify(doc, null, 2)}\n`
}

export type Decoded = { readonly ok: true; readonly stored: StoredState } | { readonly ok: false; readonly problem: string }

/** Parses and checks a stored document. Documents written before revisions existed read as revision 1. */
export function decodeState(text: string): Decoded {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (error) {
    return { ok: false, problem: `cannot parse: ${(error as Error).message}` }
  }
  const problem = stateProblem(doc)
  if (problem !== null) return { ok: false, problem: `not a rollout state: ${problem}` }
  const d = doc as { revision?: number; fence?: number | null; savedAt?: string; state: RolloutState }
  const decision = d.state.lastDecision
  // A decision saved before findings existed reads as one without any.
  const state = decision !== null && decision.findings === undefined ? { ...d.state, lastDecision: { ...decision, findings: [] } } : d.state
  return { ok: true, stored: { version: STATE_FORMAT, revision: d.revision ?? 1, fence: d.fence ?? null, savedAt: d.savedAt ?? '', state } }
}

/** Checks a parsed document is a state this version can resume from; returns the problem in words, or null. */
export function stateProblem(doc: unknown): string | null {
  const d = doc as { version?: unknown; revision?: unknown; state?: { phase?: unknown } } | null
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return 'not a JSON object'
  if (d.version !== STATE_FORMAT) return `unknown format version ${JSON.stringify(d.version)}`
  if (d.revision !== undefined && !(Number.isInteger(d.revision) && (d.revision as number) >= 1)) return `revision ${JSON.stringify(d.revision)} is not a whole number >= 1`
  const phase = d.state?.phase
  const validate = typeof phase === 'string' && Object.hasOwn(validators, phase) ? validators[phase as keyof typeof validators] : undefined
  if (validate === undefined) return `unknown phase ${JSON.stringify(phase)}`
  if (!validate(d.state)) {
    const first = schemaProblems(validate.errors ?? [])[0]
    return `a ${String(phase)} state: ${first === undefined ? 'is not valid' : `${first.path}: ${first.message}`}`
  }
  const state = d.state as RolloutState
  for (const [name, url] of [
    ['stableUrl', state.stableUrl],
    ['canaryUrl', state.canaryUrl],
  ] as const) {
    if (url !== null && upstreamUrlProblem(url) !== null) return `state.${name} ${JSON.stringify(url)} is not an upstream URL`
  }
  if ((state.phase === 'progressing' || state.phase === 'baking') && state.canaryUrl === null) return `a ${state.phase} rollout has no canary URL`
  return null
}
