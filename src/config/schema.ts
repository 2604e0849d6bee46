/** The configuration schema (JSON Schema via TypeBox), its defaults, and the resolved Config type the rest of the code reads. */
import { Type, type Static, type TInteger, type TSchema, type TString } from '@sinclair/typebox'
import { DURATION_PATTERN } from '../core/duration.js'
import { DEFAULT_DURATION_BUCKETS_SECONDS, MAX_DURATION_BUCKETS } from '../stats/buckets.js'

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
       * One-sided confidence that a breach is real before it rolls back (the
       * moment it is, at once); a breach not yet conclusive holds the step.
       * 0.5 compares the observed figures with the thresholds as they are,
       * which at low traffic rolls back almost every healthy canary with a
       * little background noise. The gate looks again every interval, so each
       * look's chance of a false alarm adds up over a rollout: 0.999 keeps it
       * near 1 in 1,000 rollouts, 0.99 near 1 in 100 (bench/RESULTS.md).
       */
      confidence: Type.Number({ minimum: 0.5, exclusiveMaximum: 1, default: 0.999 }),
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
    metrics: section({
      /** Upper bounds (seconds) of canary_proxy_request_duration_seconds, ascending; +Inf is always added. */
      buckets: Type.Array(Type.Number({ exclusiveMinimum: 0, 'x-expected': 'a finite number of seconds such as 0.25' }), {
        minItems: 1,
        maxItems: MAX_DURATION_BUCKETS,
        default: [...DEFAULT_DURATION_BUCKETS_SECONDS],
      }),
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
    readonly autoStart: boolean
  }
  readonly analysis: AnalysisConfig
  readonly state: { readonly file: string; readonly redis: string | null }
  readonly audit: { readonly file: string }
  readonly log: { readonly level: LogLevel }
  readonly metrics: {
    /** Ascending, finite, > 0; without +Inf. */
    readonly bucketsSeconds: readonly number[]
  }
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
  readonly confidence: number
}
