/** StateStore: where the rollout state lives between runs; load() reports a corrupt store instead of guessing. */
import { Type, type TSchema } from '@sinclair/typebox'
import { Ajv } from 'ajv'
import { upstreamUrlProblem } from '../config/load.js'
import type { RolloutState } from '../rollout/phase.js'

export type LoadResult =
  | { readonly kind: 'empty' }
  | { readonly kind: 'loaded'; readonly state: RolloutState }
  /** Unreadable or unparsable: the bad copy was kept as `keptAs` (null when even that failed). */
  | { readonly kind: 'corrupt'; readonly problem: string; readonly keptAs: string | null }

export interface StateStore {
  /** Human name of the store for logs, e.g. the file path. */
  readonly name: string
  load(): Promise<LoadResult>
  /** Resolves once the state is durable; saves are applied in call order. */
  save(state: RolloutState): Promise<void>
  close(): Promise<void>
}

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const common = {
  stableUrl: Type.String(),
  canaryUrl: nullable(Type.String()),
  generation: Type.Integer({ minimum: 0 }),
  updatedAt: Type.Number(),
  configStable: Type.String(),
  configCanary: nullable(Type.String()),
  lastDecision: nullable(Type.Object({ at: Type.Number(), verdict: Type.Union([Type.Literal('pass'), Type.Literal('fail'), Type.Literal('insufficient')]), reason: Type.String() })),
  baseline: Type.Optional(nullable(Type.Object({ requests: Type.Integer({ minimum: 0 }), errors: Type.Integer({ minimum: 0 }), p99Us: nullable(Type.Number({ minimum: 0 })) }))),
}
const weight = Type.Number({ minimum: 0, maximum: 100 })
const stepIndex = Type.Integer({ minimum: -1 })

/** Every phase with the fields it must carry, so a state that parses but is incomplete is refused like a corrupt one. */
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

/**
 * Checks a parsed document is a state this version can resume from; returns
 * the problem in words, or null. Our own format, versioned by `version`.
 */
export function stateProblem(doc: unknown): string | null {
  const d = doc as { version?: unknown; state?: { phase?: unknown } } | null
  if (d === null || typeof d !== 'object') return 'not a JSON object'
  if (d.version !== 1) return `unknown format version ${JSON.stringify(d.version)}`
  const phase = d.state?.phase
  const validate = typeof phase === 'string' && Object.hasOwn(validators, phase) ? validators[phase as keyof typeof validators] : undefined
  if (validate === undefined) return `unknown phase ${JSON.stringify(phase)}`
  if (!validate(d.state)) {
    const e = validate.errors?.[0]
    return `a ${String(phase)} state: ${e === undefined || e.instancePath === '' ? '' : `${e.instancePath.slice(1).replace(/\//g, '.')} `}${e?.message ?? 'is not valid'}`
  }
  const state = d.state as RolloutState
  for (const [name, url] of [['stableUrl', state.stableUrl], ['canaryUrl', state.canaryUrl]] as const) {
    if (url !== null && upstreamUrlProblem(url) !== null) return `state.${name} ${JSON.stringify(url)} is not an upstream URL`
  }
  if ((state.phase === 'progressing' || state.phase === 'baking') && state.canaryUrl === null) return `a ${state.phase} rollout has no canary URL`
  return null
}
