/** The configuration schema (JSON Schema via TypeBox), its defaults, and the resolved Config type the rest of the code reads. */
import { Type, type Static, type TInteger, type TSchema, type TString } from '@sinclair/typebox'
import { DURATION_PATTERN } from '../core/duration.js'

/**
 * `x-expected` is our own annotation: the config loader turns a failed
 * `pattern` into "must be <x-expected>", which reads better than a regex.
 */
const duration = (def?: string): TString =>
  Type.String({ pattern: DURATION_PATTERN, 'x-expected': 'a duration such as 250ms, 30s or 2m', ...(def === undefined ? {} : { default: def }) })

const headerName = (def?: string): TString =>
  Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", 'x-expected': 'an HTTP header name such as x-user-id', ...(def === undefined ? {} : { default: def }) })

const port = (def: number): TInteger => Type.Integer({ minimum: 0, maximum: 65535, default: def })
const host = (def: string): TString => Type.String({ minLength: 1, default: def })
const section = <T extends Record<string, TSchema>>(properties: T) => Type.Object(properties, { additionalProperties: false, default: {} })

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export const ConfigSchema = Type.Object(
  {
    listen: section({
      host: host('0.0.0.0'),
      port: port(8080),
      /** How long in-flight requests may take to finish after SIGTERM. */
      drainTimeout: duration('10s'),
    }),
    admin: section({
      host: host('127.0.0.1'),
      port: port(9901),
      token: Type.String({ default: '' }),
      /** Named tokens: the name is the actor recorded in the audit log. */
      tokens: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.@-]+$' }), Type.String({ minLength: 1 }))),
    }),
    upstreams: Type.Object(
      {
        stable: Type.String({ 'x-expected': 'an http:// or https:// URL' }),
        canary: Type.Optional(Type.String({ 'x-expected': 'an http:// or https:// URL' })),
      },
      { additionalProperties: false },
    ),
    routing: section({
      stickyHeader: Type.Optional(headerName()),
      stickyCookie: Type.Optional(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", 'x-expected': 'a cookie name' })),
      /** `always` sends a request to canary, `never` to stable; '' turns the override off. */
      overrideHeader: Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]*$", 'x-expected': 'an HTTP header name such as x-canary', default: 'x-canary' }),
      connectTimeout: duration('2s'),
      responseTimeout: duration('30s'),
      /** Send the client's Host to the upstream (Envoy's default) rather than the upstream's own. */
      preserveHost: Type.Boolean({ default: true }),
      /** The peer is a trusted proxy (a load balancer in front): pass on its X-Forwarded-Proto/-Host and Forwarded. */
      trustForwarded: Type.Boolean({ default: false }),
    }),
    rollout: section({
      steps: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 100 }), { minItems: 1, default: [5, 25, 50, 100] }),
      stepDuration: duration('30s'),
      bake: duration('60s'),
      /**
       * Percent of traffic kept on stable during the bake (0: the bake runs at
       * 100% and only the absolute limits judge it, maxErrorRate and maxP99).
       * With a share, the comparisons with stable stay live in the bake, so a
       * regression that shows only at full traffic is caught and a slowdown
       * both sides share is not charged (bench/RESULTS.md, issue 9). The
       * canary takes 100% when the bake has passed.
       */
      bakeStableShare: Type.Number({ minimum: 0, maximum: 50, default: 0 }),
      autoStart: Type.Boolean({ default: true }),
    }),
    analysis: section({
      interval: duration('1s'),
      window: duration('30s'),
      minRequests: Type.Integer({ minimum: 1, default: 50 }),
      // Each check absent from the config is off.
      maxErrorRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      maxErrorRateIncrease: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      maxP99: Type.Optional(duration()),
      maxP99Ratio: Type.Optional(Type.Number({ minimum: 1 })),
      minP99Delta: duration('5ms'),
      /**
       * Bound on the chance that a healthy canary (at or under every
       * threshold) is ever rolled back in one rollout, however often the gate
       * looks: the checks' sequential tests share it (analysis/alpha.ts).
       * Default 0.001 (resolved in load.ts, so that the deprecated alias below
       * can stand in for it).
       */
      falseRollbackRate: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 0.5 })),
      /**
       * Deprecated alias: read as falseRollbackRate = 1 - confidence (0.999 is
       * the old default and 1 in 1,000, which is what both said they meant).
       * Setting both is an error.
       */
      confidence: Type.Optional(Type.Number({ minimum: 0.5, exclusiveMaximum: 1 })),
    }),
    state: section({
      file: Type.String({ minLength: 1, default: 'data/state.json' }),
      redis: Type.Optional(Type.String({ minLength: 1 })),
    }),
    audit: section({
      file: Type.String({ minLength: 1, default: 'data/audit.jsonl' }),
    }),
    log: section({
      level: Type.Unsafe<LogLevel>({ type: 'string', enum: [...LOG_LEVELS], default: 'info' }),
    }),
  },
  { additionalProperties: false },
)

/** The config as written (after defaults), before durations are turned into milliseconds. */
export type RawConfig = Static<typeof ConfigSchema>

export type LogLevel = (typeof LOG_LEVELS)[number]

/** The config every other module reads: durations in ms, absent options as null. */
export interface Config {
  readonly listen: { readonly host: string; readonly port: number; readonly drainTimeoutMs: number }
  readonly admin: {
    readonly host: string
    readonly port: number
    /** token -> actor name; empty when the admin API needs no token. */
    readonly tokens: ReadonlyMap<string, string>
  }
  readonly upstreams: { readonly stable: string; readonly canary: string | null }
  readonly routing: {
    readonly stickyHeader: string | null
    readonly stickyCookie: string | null
    readonly overrideHeader: string | null
    readonly connectTimeoutMs: number
    readonly responseTimeoutMs: number
    readonly preserveHost: boolean
    readonly trustForwarded: boolean
  }
  readonly rollout: {
    readonly steps: readonly number[]
    readonly stepDurationMs: number
    readonly bakeMs: number
    /** Percent kept on stable in the bake (0 by default: the bake is at 100%). */
    readonly bakeStableShare: number
    readonly autoStart: boolean
  }
  readonly analysis: AnalysisConfig
  readonly state: { readonly file: string; readonly redis: string | null }
  readonly audit: { readonly file: string }
  readonly log: { readonly level: LogLevel }
}

export interface AnalysisConfig {
  readonly intervalMs: number
  readonly windowMs: number
  readonly minRequests: number
  readonly maxErrorRate: number | null
  readonly maxErrorRateIncrease: number | null
  readonly maxP99Ms: number | null
  readonly maxP99Ratio: number | null
  readonly minP99DeltaMs: number
  /** analysis.falseRollbackRate (or 1 - the deprecated analysis.confidence); default 0.001. */
  readonly falseRollbackRate: number
  /** Per-look confidence of the fixed-sample gate (rollout/gate.ts) until the sequential checks replace it: 1 - falseRollbackRate unless set. */
  readonly confidence: number
}
