/**
 * The admin API's wire types as TypeBox schemas: the routes' response schemas,
 * the OpenAPI description, the CLI's client and the tests all use these, so
 * the JSON on the wire has one definition. Times are ISO 8601 strings.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { VERDICTS } from '../analysis/finding.js'
import { PHASES } from '../core/phases.js'

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const isoTime = Type.String({ format: 'date-time', description: 'ISO 8601 time' })

export const PhaseSchema = Type.Union(
  PHASES.map((p) => Type.Literal(p)),
  { description: 'idle · progressing · paused · baking · succeeded · rolled_back · aborted' },
)
export const VerdictSchema = Type.Union(VERDICTS.map((v) => Type.Literal(v)))

export const SideViewSchema = Type.Object(
  {
    url: Type.String({ description: 'the upstream URL this side sends to' }),
    requests: Type.Integer({ minimum: 0, description: 'requests in the analysis window' }),
    errors: Type.Integer({ minimum: 0 }),
    errorRate: Type.Number({ minimum: 0, maximum: 1 }),
    p50Ms: nullable(Type.Number()),
    p99Ms: nullable(Type.Number()),
    requestsTotal: Type.Optional(
      Type.Integer({ minimum: 0, description: 'responses and failures of this side since the process started (canary_proxy_requests_total summed): rates come from its change' }),
    ),
  },
  { additionalProperties: true },
)

export const FindingSchema = Type.Object(
  {
    check: Type.String({ description: 'check id, e.g. maxErrorRate, maxP99Ratio, resources.maxMemory, checks.<name>, webhook.<name>' }),
    verdict: VerdictSchema,
    observed: nullable(Type.Number()),
    threshold: nullable(Type.Number()),
    n: Type.Integer({ minimum: 0 }),
    reason: Type.String(),
  },
  { additionalProperties: true },
)

export const DecisionViewSchema = Type.Object(
  {
    at: isoTime,
    verdict: VerdictSchema,
    reason: Type.String(),
    findings: Type.Array(FindingSchema),
  },
  { additionalProperties: true },
)

export const StateBackendViewSchema = Type.Object(
  {
    kind: Type.String({ description: 'where the rollout state lives: file, memory or redis' }),
    up: Type.Boolean({ description: 'the store was reachable at the last attempt (canary_proxy_state_backend_up)' }),
    role: Type.Union([Type.Literal('single'), Type.Literal('leader'), Type.Literal('follower')], {
      description: 'single: one process decides; leader / follower among replicas sharing the state (state.redis)',
    }),
    leader: nullable(Type.String({ description: 'the replica holding the lease, when known' })),
    replica: nullable(Type.String({ description: "this replica's id" })),
    replicas: Type.Optional(Type.Integer({ minimum: 1, description: 'replicas that published the last window slot, this one included' })),
  },
  { additionalProperties: true },
)

export const StatusViewSchema = Type.Object(
  {
    phase: PhaseSchema,
    weight: Type.Number({ minimum: 0, maximum: 100, description: 'canary weight in percent' }),
    step: nullable(Type.Integer({ minimum: 0, description: '0-based index into steps' })),
    steps: Type.Array(Type.Number(), { description: 'the weight of each rollout step, in order' }),
    stable: SideViewSchema,
    canary: nullable(SideViewSchema),
    lastDecision: nullable(DecisionViewSchema),
    reason: nullable(Type.String({ description: 'why the rollout ended (succeeded, rolled_back, aborted)' })),
    stepStartedAt: nullable(isoTime),
    stepEndsAt: nullable(isoTime),
    generation: Type.Integer({ minimum: 0, description: 'counts rollouts started' }),
    stateBackend: Type.Optional(StateBackendViewSchema),
  },
  { additionalProperties: true },
)

export const EventViewSchema = Type.Object(
  {
    at: isoTime,
    actor: Type.String(),
    action: Type.String(),
    from: Type.Object({ phase: PhaseSchema, weight: Type.Number() }),
    to: Type.Object({ phase: PhaseSchema, weight: Type.Number() }),
    reason: nullable(Type.String()),
  },
  { additionalProperties: true },
)

export const EventsViewSchema = Type.Object({ events: Type.Array(EventViewSchema) })

export const ErrorBodySchema = Type.Object(
  {
    error: Type.String({ description: 'what went wrong, naming the field for bad input' }),
    code: Type.String({ description: 'a CPX_ERR_* code (README "Errors")' }),
    field: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)

export type SideView = Static<typeof SideViewSchema>
export type FindingView = Static<typeof FindingSchema>
export type DecisionView = Static<typeof DecisionViewSchema>
export type StatusView = Static<typeof StatusViewSchema>
export type StateBackendView = Static<typeof StateBackendViewSchema>
export type EventView = Static<typeof EventViewSchema>
export type ErrorBody = Static<typeof ErrorBodySchema>
