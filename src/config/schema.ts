/** The configuration schema (JSON Schema via TypeBox), its defaults, and the resolved Config type the rest of the code reads. */
import { Type, type Static, type TInteger, type TSchema, type TString } from '@sinclair/typebox'
import { BYTES_PATTERN } from '../core/bytes.js'
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

const bytes = (): TString => Type.String({ pattern: BYTES_PATTERN, 'x-expected': 'a size such as 512Mi or 1Gi (Ki, Mi, Gi, Ti: powers of 1024; K, M, G, T: of 1000)' })
const name = (): TString => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', 'x-expected': 'a name of letters, digits, -, _ and . such as load-test' })
const headers = () => Type.Record(headerName(), Type.String())

const port = (def: number): TInteger => Type.Integer({ minimum: 0, maximum: 65535, default: def })
const host = (def: string): TString => Type.String({ minLength: 1, default: def })
const WORKERS_EXPECTED = 'a whole number of worker processes from 1 to 256, or "auto" (one per core)'
/** A count or the word `auto`; every branch says the same words, so a bad value reads as one line. */
const workers = () =>
  Type.Unsafe<number | 'auto'>({
    anyOf: [
      { type: 'integer', minimum: 1, maximum: 256, 'x-expected': WORKERS_EXPECTED },
      { type: 'string', pattern: '^auto$', 'x-expected': WORKERS_EXPECTED },
    ],
    'x-expected': WORKERS_EXPECTED,
    default: 1,
  })
const section = <T extends Record<string, TSchema>>(properties: T) => Type.Object(properties, { additionalProperties: false, default: {} })

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/** Flagger's webhook types (SPEC `webhooks[].type`): the first three are gates, the others notifications. */
export const WEBHOOK_TYPES = ['pre-rollout', 'step', 'confirm-promotion', 'post-rollout', 'rollback', 'event'] as const
export const GATE_WEBHOOK_TYPES = ['pre-rollout', 'step', 'confirm-promotion'] as const satisfies readonly WebhookType[]
export type WebhookType = (typeof WEBHOOK_TYPES)[number]
export type GateWebhookType = (typeof GATE_WEBHOOK_TYPES)[number]

/** `analysis.resources`: CPU and memory of each side's instances, from their own Prometheus endpoints (docs/resources-and-webhooks.md). */
const ResourcesSchema = Type.Object(
  {
    interval: duration('5s'),
    /** Per scrape of one endpoint; at most `interval`. */
    timeout: duration('2s'),
    /** One URL per instance; `{{stable_url}}` / `{{canary_url}}` follow the upstreams through promotions. */
    stable: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, default: ['{{stable_url}}/metrics'] }),
    canary: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, default: ['{{canary_url}}/metrics'] }),
    maxCpuPerRequestRatio: Type.Optional(Type.Number({ minimum: 1 })),
    /** CPU (in cores, per canary instance) above what maxCpuPerRequestRatio allows before a ratio breach counts: below it, idle work dominates. */
    minCpuExcess: Type.Number({ minimum: 0, default: 0.01 }),
    /** Requests each side must have served over the span of `consecutive` samples before a CPU verdict. */
    minRequests: Type.Integer({ minimum: 1, default: 20 }),
    maxMemoryRatio: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
    maxMemory: Type.Optional(bytes()),
    maxMemoryGrowthPerMinute: Type.Optional(bytes()),
    /** Span of samples the memory growth slope is fitted over. */
    growthWindow: duration('1m'),
    /** Samples in a row over a limit before the breach is proven (memory, CPU). */
    consecutive: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  },
  { additionalProperties: false },
)

/** `analysis.prometheus`: the server custom checks query. */
const PrometheusSchema = Type.Object(
  {
    url: Type.String({ 'x-expected': 'an http:// or https:// URL such as http://127.0.0.1:9090' }),
    timeout: duration('5s'),
    headers: Type.Optional(headers()),
    /** Pod-name regexes for {{stable_pod}} / {{canary_pod}}; without them, the first label of each upstream's host name followed by -.* */
    pods: Type.Optional(Type.Object({ stable: Type.Optional(Type.String({ minLength: 1 })), canary: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
)

/** `analysis.checks[]`: one PromQL query, its bounds and its own schedule (Flagger's MetricTemplate + thresholdRange). */
const CustomCheckSchema = Type.Object(
  {
    name: name(),
    query: Type.String({ minLength: 1 }),
    min: Type.Optional(Type.Number()),
    max: Type.Optional(Type.Number()),
    interval: duration('15s'),
    /** Results in a row out of bounds before the breach is proven. */
    consecutive: Type.Integer({ minimum: 1, maximum: 100, default: 2 }),
  },
  { additionalProperties: false },
)

const WebhookSchema = Type.Object(
  {
    name: name(),
    type: Type.Unsafe<WebhookType>({ type: 'string', enum: [...WEBHOOK_TYPES] }),
    url: Type.String({ 'x-expected': 'an http:// or https:// URL' }),
    /** Per call. */
    timeout: duration('10s'),
    /** Notifications: further tries after a failed call. Gates are tried until they answer 2xx. */
    retries: Type.Integer({ minimum: 0, maximum: 20, default: 3 }),
    /** Wait before the first retry, doubling on each further one up to maxBackoff. */
    backoff: duration('1s'),
    maxBackoff: duration('30s'),
    headers: Type.Optional(headers()),
    /** Sent as is in the payload (Flagger's `metadata`), e.g. the load test's command. */
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    format: Type.Unsafe<'json' | 'slack'>({ type: 'string', enum: ['json', 'slack'], default: 'json' }),
    /** Notifications waiting for delivery; past it the oldest is dropped (and counted). */
    maxQueue: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  },
  { additionalProperties: false },
)

export const ConfigSchema = Type.Object(
  {
    listen: section({
      host: host('0.0.0.0'),
      port: port(8080),
      /** How long in-flight requests may take to finish after SIGTERM. */
      drainTimeout: duration('10s'),
      /** Client connections at once; absent: derived from the process's open-file limit at start (src/proxy/connection-limit.ts). */
      maxConnections: Type.Optional(Type.Integer({ minimum: 1 })),
      /** A client's request headers must have arrived within this (408 after it). */
      headersTimeout: duration('20s'),
      /** A client's whole request, headers and body, must have arrived within this (408 after it). */
      requestTimeout: duration('300s'),
      /** After the proxy closes its side of a connection it ends itself (a refused upgrade, a local reply), how long the client may keep its side open. */
      lingerTimeout: duration('5s'),
      /** The longest a request body may go without a byte from the client (NGINX's client_body_timeout): then 408. */
      bodyTimeout: duration('60s'),
      /** Worker processes proxying on this host (node:cluster); the primary owns the control plane. `auto`: one per core. */
      workers: workers(),
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
      /** Client addresses (CIDRs) whose override header is obeyed; from anyone else it is ignored. Default: this host only. */
      overrideFrom: Type.Array(Type.String({ 'x-expected': 'a CIDR such as 10.0.0.0/8 or ::1/128' }), { default: ['127.0.0.0/8', '::1/128'] }),
      connectTimeout: duration('2s'),
      responseTimeout: duration('30s'),
      /** Send the client's Host to the upstream (Envoy's default) rather than the upstream's own. */
      preserveHost: Type.Boolean({ default: true }),
      /** The peer is a trusted proxy (a load balancer in front): pass on its X-Forwarded-Proto/-Host and Forwarded. */
      trustForwarded: Type.Boolean({ default: false }),
    }),
    rollout: section({
      /** Weights, or objects {weight, duration?, pause?} (checked in load.ts semanticIssues, which names every bad field). */
      steps: Type.Array(Type.Unsafe<StepInput>({}), { minItems: 1, default: [5, 25, 50, 100] }),
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
      /** A step (or the bake) that has not finished this long after it began pauses, or rolls back with onDeadline: rollback. */
      progressDeadline: duration('10m'),
      onDeadline: Type.Unsafe<'pause' | 'rollback'>({ type: 'string', enum: ['pause', 'rollback'], default: 'pause' }),
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
      resources: Type.Optional(ResourcesSchema),
      prometheus: Type.Optional(PrometheusSchema),
      checks: Type.Array(CustomCheckSchema, { default: [] }),
    }),
    webhooks: Type.Array(WebhookSchema, { default: [] }),
    state: section({
      file: Type.String({ minLength: 1, default: 'data/state.json' }),
      /** redis:// or rediss:// URL: one rollout shared by every replica (checked in load.ts semanticIssues). */
      redis: Type.Optional(Type.String({ minLength: 1, 'x-expected': 'a redis:// or rediss:// URL' })),
      /** Every key the replicas share starts with this (several rollouts can share one Redis under different prefixes). */
      redisKeyPrefix: Type.String({ pattern: '^[A-Za-z0-9_.:{}-]{1,100}$', 'x-expected': 'letters, digits and _ . : { } - (at most 100)', default: 'canary-proxy' }),
    }),
    audit: section({
      file: Type.String({ minLength: 1, default: 'data/audit.jsonl' }),
    }),
    log: section({
      level: Type.Unsafe<LogLevel>({ type: 'string', enum: [...LOG_LEVELS], default: 'info' }),
    }),
    metrics: section({
      /** Upper bounds (seconds) of canary_proxy_request_duration_seconds, ascending; +Inf is always added. */
      buckets: Type.Array(Type.Number({ exclusiveMinimum: 0, 'x-expected': 'a finite number of seconds above 0, such as 0.25' }), {
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

/** One entry of rollout.steps as written: a weight, or a step object. */
export type StepInput = number | { readonly weight: number; readonly duration?: string; readonly pause?: boolean }

/** The config every other module reads: durations in ms, absent options as null. */
export interface Config {
  readonly listen: {
    readonly host: string
    readonly port: number
    readonly drainTimeoutMs: number
    /** listen.bodyTimeout: the longest a request body may go without a byte from the client. */
    readonly bodyTimeoutMs: number
    /** Null: derived from the open-file limit when the data plane is built. */
    readonly maxConnections: number | null
    readonly headersTimeoutMs: number
    readonly requestTimeoutMs: number
    readonly lingerTimeoutMs: number
    /** listen.workers resolved (`auto`: the host's available parallelism); 1 is one process, no cluster. */
    readonly workers: number
  }
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
    /** CIDRs or bare addresses, validated. */
    readonly overrideFrom: readonly string[]
    readonly connectTimeoutMs: number
    readonly responseTimeoutMs: number
    readonly preserveHost: boolean
    readonly trustForwarded: boolean
  }
  readonly rollout: {
    /** The steps' weights, in order. */
    readonly steps: readonly number[]
    /** Each step's observation period: its own duration, else stepDuration. */
    readonly stepDurationsMs: readonly number[]
    /** Steps that wait for `resume` once reached. */
    readonly pauseSteps: readonly boolean[]
    readonly progressDeadlineMs: number
    readonly onDeadline: 'pause' | 'rollback'
    readonly stepDurationMs: number
    readonly bakeMs: number
    /** Percent kept on stable in the bake (0 by default: the bake is at 100%). */
    readonly bakeStableShare: number
    readonly autoStart: boolean
  }
  readonly analysis: AnalysisConfig & ExternalChecksConfig
  readonly webhooks: readonly WebhookConfig[]
  readonly state: { readonly file: string; readonly redis: string | null; readonly redisKeyPrefix: string }
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
  /** analysis.falseRollbackRate (or 1 - the deprecated analysis.confidence); default 0.001. */
  readonly falseRollbackRate: number
  /** Per-look confidence of the fixed-sample gate (rollout/gate.ts) until the sequential checks replace it: 1 - falseRollbackRate unless set. */
  readonly confidence: number
}

/** The checks of `analysis` whose data comes from elsewhere, run as probes (src/probes/). */
export interface ExternalChecksConfig {
  readonly resources: ResourcesConfig | null
  readonly prometheus: PrometheusConfig | null
  readonly checks: readonly CustomCheckConfig[]
}

export interface ResourcesConfig {
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Endpoint URL templates per side (src/probes/template.ts). */
  readonly endpoints: { readonly stable: readonly string[]; readonly canary: readonly string[] }
  readonly maxCpuPerRequestRatio: number | null
  /** Cores per canary instance. */
  readonly minCpuExcess: number
  readonly minRequests: number
  readonly maxMemoryRatio: number | null
  readonly maxMemoryBytes: number | null
  readonly maxMemoryGrowthPerMinuteBytes: number | null
  readonly growthWindowMs: number
  readonly consecutive: number
}

export interface PrometheusConfig {
  readonly url: string
  readonly timeoutMs: number
  readonly headers: Readonly<Record<string, string>>
  readonly pods: { readonly stable: string | null; readonly canary: string | null }
}

export interface CustomCheckConfig {
  readonly name: string
  /** The PromQL template (src/probes/template.ts). */
  readonly query: string
  readonly min: number | null
  readonly max: number | null
  readonly intervalMs: number
  readonly consecutive: number
}

export interface WebhookConfig {
  readonly name: string
  readonly type: WebhookType
  readonly url: string
  readonly timeoutMs: number
  readonly retries: number
  readonly backoffMs: number
  readonly maxBackoffMs: number
  readonly headers: Readonly<Record<string, string>>
  readonly metadata: Readonly<Record<string, string>>
  readonly format: 'json' | 'slack'
  readonly maxQueue: number
}
