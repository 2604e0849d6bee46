/** The Prometheus registry: the SPEC's metric names, read from our own structures at scrape time, plus Node's process metrics. */
import { collectDefaultMetrics, Registry, type MetricValue, type MetricValueWithName } from 'prom-client'
import type { Finding } from '../analysis/finding.js'
import { VERDICTS } from '../core/verdicts.js'
import { PHASES, type Phase } from '../core/phases.js'
import type { SideName } from '../routing/snapshot.js'
import type { OverrideStats } from './override-stats.js'
import { STATUS_CLASSES, type SideStats, type SideSummary } from './side-stats.js'

/** What every process exposes: its own faults (a worker's and the primary's add up). */
export interface ProcessMetricsSource {
  internalErrors(): number
  /** Errors that escaped every handler and reached the process guard (`serve` only). */
  uncaughtErrors(): number
}

/** What a data plane exposes: the counters its hot path keeps (a worker's registry holds these only). */
export interface DataPlaneMetricsSource extends ProcessMetricsSource {
  readonly sides: readonly SideStats[]
  /** Requests routed by the override header, counted apart from the sides. */
  readonly override: readonly OverrideStats[]
  /** Client connections closed at accept because listen.maxConnections were open. */
  connectionsDropped(): number
  /** Requests answered 408 because their body stalled (listen.bodyTimeout). */
  bodyTimeouts(): number
}

/** What the control plane exposes: the rollout, the window it judges, the stores (the primary's registry among workers). */
export interface ControlPlaneMetricsSource extends ProcessMetricsSource {
  /** The sides whose window figures are shown. */
  readonly sideNames: readonly SideName[]
  weight(): number
  phase(): Phase
  /** The 0-based index into rollout.steps, or -1 when no step applies (no rollout under way, or below the first step). */
  step(): number
  /** The upstreams and the rollout's generation, for canary_proxy_info. */
  info(): { readonly stable: string; readonly canary: string | null; readonly generation: number }
  /** Epoch ms of the last transition or operator action (the state's updatedAt). */
  lastTransitionAt(): number
  /** The findings of the last decision (empty when there is none). */
  findings(): readonly Finding[]
  /** True while /readyz answers 200. */
  ready(): boolean
  rollbacks(): number
  persistFailures(): number
  auditWriteFailures(): number
  /** The state store answers: false from a failed save until one lands. */
  stateBackendUp(): boolean
  /** canary_proxy_webhook_calls_total's series: every configured webhook, each result. */
  webhookCalls(): readonly MetricValue<string>[]
  /** Current window figures per side, computed when scraped. */
  windowFigures(side: SideName): SideSummary
  /** listen.workers: the workers accepting now and those replaced after dying (absent for one process). */
  workers?(): { readonly listening: number; readonly restarts: number }
}

/** One process that proxies and decides. */
export type MetricsSource = DataPlaneMetricsSource & Omit<ControlPlaneMetricsSource, 'sideNames'>

type Values = MetricValue<string>[] | MetricValueWithName<string>[]
type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary'

/**
 * A metric whose values are computed by `read` at scrape time. prom-client's
 * registry formats any object with name/help/type/get(); building values from
 * counters we already keep avoids a second, slower per-request update (a
 * labelled prom-client histogram observe costs several times our whole
 * SideStats.recordResponse: see the microbench in bench/RESULTS.md).
 */
class ScrapeTimeMetric {
  readonly name: string
  readonly help: string
  readonly type: MetricType
  readonly aggregator = 'sum' as const
  readonly #read: () => Values

  constructor(name: string, help: string, type: MetricType, read: () => Values) {
    this.name = name
    this.help = help
    this.type = type
    this.#read = read
  }

  /** The shape prom-client's Registry reads from every metric it formats. */
  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: Values } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.#read() }
  }

  reset(): void {}
}

/**
 * prom-client 15 writes a NaN sample value as `Nan`; the text format's
 * spelling is `NaN`, and parsers stricter than Go's ParseFloat (Java's
 * Double.parseDouble, several exporters' test parsers) refuse `Nan`.
 * Only sample lines are touched, never HELP text or label values.
 */
class ExpositionRegistry extends Registry {
  override async metrics(): Promise<string> {
    return textFormatNaN(await super.metrics())
  }
}

/** prom-client's `Nan` spelled `NaN`, for a registry's text and for an aggregate of several (listen.workers). */
export function textFormatNaN(text: string): string {
  return text.replace(/^([^#\n][^\n]*) Nan$/gm, '$1 NaN')
}

/** The window summary's quantile labels and the SideSummary field each one reads. */
const WINDOW_QUANTILES = [
  ['0.5', 'p50Ms'],
  ['0.9', 'p90Ms'],
  ['0.99', 'p99Ms'],
  ['0.999', 'p999Ms'],
] as const

/** One process that proxies and decides: every metric of the SPEC's table, and Node's process metrics. */
export function createRegistry(source: MetricsSource): Registry {
  return registryOf(
    (r) => addDataPlaneMetrics(r, source),
    (r) => addControlPlaneMetrics(r, { ...source, sideNames: source.sides.map((s) => s.side) }),
    (r) => addProcessMetrics(r, source),
  )
}

/** A worker's registry (listen.workers): its hot path's counters; the primary sums the workers' (AggregatorRegistry.aggregate). */
export function createDataPlaneRegistry(source: DataPlaneMetricsSource): Registry {
  return registryOf(
    (r) => addDataPlaneMetrics(r, source),
    (r) => addProcessMetrics(r, source),
  )
}

/** The primary's registry among workers: the rollout, the merged window, the stores; the workers' counters are summed beside it. */
export function createControlPlaneRegistry(source: ControlPlaneMetricsSource): Registry {
  return registryOf(
    (r) => addControlPlaneMetrics(r, source),
    (r) => addProcessMetrics(r, source),
  )
}

/** Node's process metrics, then each part's. */
function registryOf(...parts: readonly ((registry: Registry) => void)[]): Registry {
  const registry = new ExpositionRegistry()
  collectDefaultMetrics({ register: registry })
  for (const part of parts) part(registry)
  return registry
}

const one = (value: number): MetricValue<string>[] => [{ labels: {}, value }]

function addDataPlaneMetrics(registry: Registry, source: DataPlaneMetricsSource): void {
  const add = (metric: ScrapeTimeMetric): void => registry.registerMetric(metric as never)
  add(
    new ScrapeTimeMetric('canary_proxy_requests_total', 'Proxied requests by side and status class; "error" is no response from the upstream (the proxy answered 502/504).', 'counter', () =>
      source.sides.flatMap((s) => STATUS_CLASSES.map((cls, i) => ({ labels: { upstream: s.side, status_class: cls }, value: s.byClass[i] ?? 0 }))),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_request_duration_seconds', 'Time from request arrival to the upstream response headers, for requests the upstream answered.', 'histogram', () =>
      source.sides.flatMap((s) => {
        const values: MetricValueWithName<string>[] = []
        let cumulative = 0
        s.bucketsSeconds.forEach((le, i) => {
          cumulative += s.durationBuckets[i] ?? 0
          values.push({ metricName: 'canary_proxy_request_duration_seconds_bucket', labels: { upstream: s.side, le }, value: cumulative })
        })
        values.push({ metricName: 'canary_proxy_request_duration_seconds_bucket', labels: { upstream: s.side, le: '+Inf' }, value: s.durationCount })
        values.push({ metricName: 'canary_proxy_request_duration_seconds_sum', labels: { upstream: s.side }, value: s.durationSumSeconds })
        values.push({ metricName: 'canary_proxy_request_duration_seconds_count', labels: { upstream: s.side }, value: s.durationCount })
        return values
      }),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_client_aborts_total', 'Requests whose client went away before the response ended (not upstream errors).', 'counter', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: s.clientAborts })),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_upstream_retries_total', 'Requests sent once more on a new connection after a kept-alive one closed before any response byte (idempotent, no body).', 'counter', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: s.retries })),
    ),
  )
  add(new ScrapeTimeMetric('canary_proxy_client_body_timeouts_total', 'Requests answered 408 because the client sent no body byte for listen.bodyTimeout (never charged to a side).', 'counter', () => [{ labels: {}, value: source.bodyTimeouts() }]))
  add(
    new ScrapeTimeMetric('canary_proxy_override_requests_total', 'Requests routed by the override header (from routing.overrideFrom); never in canary_proxy_requests_total, the duration histogram or the gate.', 'counter', () =>
      source.override.map((s) => ({ labels: { upstream: s.side }, value: s.total })),
    ),
  )
  add(new ScrapeTimeMetric('canary_proxy_connections_dropped_total', 'Client connections closed at accept because listen.maxConnections were already open.', 'counter', () => one(source.connectionsDropped())))
}

function addControlPlaneMetrics(registry: Registry, source: ControlPlaneMetricsSource): void {
  const add = (metric: ScrapeTimeMetric): void => registry.registerMetric(metric as never)
  add(new ScrapeTimeMetric('canary_proxy_canary_weight', 'Canary weight in percent (0..100).', 'gauge', () => one(source.weight())))
  add(
    new ScrapeTimeMetric('canary_proxy_rollout_phase', 'Rollout phase: 1 for the current phase, 0 for the others.', 'gauge', () => {
      const current = source.phase()
      return PHASES.map((phase) => ({ labels: { phase }, value: phase === current ? 1 : 0 }))
    }),
  )
  add(new ScrapeTimeMetric('canary_proxy_rollout_step', 'The current step: 0-based index into rollout.steps, -1 when none applies.', 'gauge', () => one(source.step())))
  add(
    new ScrapeTimeMetric('canary_proxy_rollout_last_transition_timestamp_seconds', 'When the rollout last changed phase or weight, or an operator acted (Unix time).', 'gauge', () =>
      one(source.lastTransitionAt() / 1000),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_info', 'Always 1: the stable and canary upstream URLs (canary empty when none) and the rollout generation.', 'gauge', () => {
      const { stable, canary, generation } = source.info()
      return [{ labels: { stable, canary: canary ?? '', generation: String(generation) }, value: 1 }]
    }),
  )
  add(new ScrapeTimeMetric('canary_proxy_rollbacks_total', 'Automatic rollbacks (canary weight dropped to 0 on a breach).', 'counter', () => one(source.rollbacks())))
  add(
    new ScrapeTimeMetric('canary_proxy_window_error_ratio', 'Error ratio (errors / requests) over the analysis window.', 'gauge', () =>
      source.sideNames.map((side) => ({ labels: { upstream: side }, value: source.windowFigures(side).errorRate })),
    ),
  )
  add(
    new ScrapeTimeMetric(
      'canary_proxy_window_latency_seconds',
      'Latency over the analysis window (the figures the gate judges): quantiles from its HDR histogram (NaN when nothing was measured), _count and _sum of the responses in it.',
      'summary',
      () =>
        source.sideNames.flatMap((side) => {
          const f = source.windowFigures(side)
          const values: MetricValueWithName<string>[] = WINDOW_QUANTILES.map(([quantile, field]) => {
            const ms = f[field]
            return { metricName: 'canary_proxy_window_latency_seconds', labels: { upstream: side, quantile }, value: ms === null ? Number.NaN : ms / 1000 }
          })
          values.push({ metricName: 'canary_proxy_window_latency_seconds_sum', labels: { upstream: side }, value: f.latencySumSeconds })
          values.push({ metricName: 'canary_proxy_window_latency_seconds_count', labels: { upstream: side }, value: f.latencyCount })
          return values
        }),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_window_requests', 'Requests in the analysis window (a verdict needs analysis.minRequests on canary).', 'gauge', () =>
      source.sideNames.map((side) => ({ labels: { upstream: side }, value: source.windowFigures(side).requests })),
    ),
  )
  // The last decision's findings: what the gate compared and what it concluded,
  // kept after the rollout ends so the evidence of a rollback stays visible.
  add(
    new ScrapeTimeMetric('canary_proxy_check_value', "The figure each check of the last decision compared, in the check's unit (ratio, seconds, requests).", 'gauge', () =>
      checks(source.findings()).flatMap((f) => (f.observed === null ? [] : [{ labels: { check: f.check }, value: f.observed }])),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_check_threshold', "The limit each check of the last decision compared against, in the check's unit.", 'gauge', () =>
      checks(source.findings()).flatMap((f) => (f.threshold === null ? [] : [{ labels: { check: f.check }, value: f.threshold }])),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_check_verdict', "Each check's verdict in the last decision: 1 for the current one (pass, fail, insufficient), 0 for the others.", 'gauge', () =>
      checks(source.findings()).flatMap((f) => VERDICTS.map((verdict) => ({ labels: { check: f.check, verdict }, value: verdict === f.verdict ? 1 : 0 }))),
    ),
  )
  add(new ScrapeTimeMetric('canary_proxy_ready', '1 while the proxy is ready (/readyz answers 200), 0 while starting or draining.', 'gauge', () => one(source.ready() ? 1 : 0)))
  add(new ScrapeTimeMetric('canary_proxy_state_persist_failures_total', 'Failed saves of the rollout state (each is retried on the next analysis tick).', 'counter', () => one(source.persistFailures())))
  add(new ScrapeTimeMetric('canary_proxy_state_backend_up', '1 while the rollout state store is reachable (Redis: both connections up; a file: the last save landed), else 0; while it is 0, routing stays on the last state known.', 'gauge', () => one(source.stateBackendUp() ? 1 : 0)))
  add(new ScrapeTimeMetric('canary_proxy_webhook_calls_total', 'Webhook calls by result (success, http_error, timeout, network_error) and notifications dropped from a full queue.', 'counter', () => [...source.webhookCalls()]))
  const workers = source.workers?.bind(source)
  if (workers !== undefined) {
    add(new ScrapeTimeMetric('canary_proxy_workers', 'Worker processes accepting connections (listen.workers).', 'gauge', () => one(workers().listening)))
    add(new ScrapeTimeMetric('canary_proxy_worker_restarts_total', 'Workers that died and were replaced (their requests in flight were lost).', 'counter', () => one(workers().restarts)))
  }
  add(new ScrapeTimeMetric('canary_proxy_audit_write_failures_total', 'Audit records that could not be written to audit.file.', 'counter', () => one(source.auditWriteFailures())))
}

function addProcessMetrics(registry: Registry, source: ProcessMetricsSource): void {
  const add = (metric: ScrapeTimeMetric): void => registry.registerMetric(metric as never)
  add(new ScrapeTimeMetric('canary_proxy_internal_errors_total', 'Replies the proxy generated for its own faults (never charged to a side).', 'counter', () => one(source.internalErrors())))
  add(new ScrapeTimeMetric('canary_proxy_uncaught_errors_total', 'Errors no handler caught, logged and counted by the serve process instead of exiting (a bug: please report).', 'counter', () => [{ labels: {}, value: source.uncaughtErrors() }]))
}

/** One finding per check id (the first), so a check never yields two series with the same labels. */
function checks(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>()
  return findings.filter((f) => {
    if (seen.has(f.check)) return false
    seen.add(f.check)
    return true
  })
}
