/** The Prometheus registry: the SPEC's metric names, read from our own structures at scrape time, plus Node's process metrics. */
import { collectDefaultMetrics, Registry, type MetricValue, type MetricValueWithName } from 'prom-client'
import { PHASES, type Phase } from '../core/phases.js'
import type { SideName } from '../routing/snapshot.js'
import { DURATION_BUCKETS_SECONDS, STATUS_CLASSES, type SideStats } from './side-stats.js'

/** What the control plane exposes to the scrape. */
export interface MetricsSource {
  readonly sides: readonly SideStats[]
  weight(): number
  phase(): Phase
  rollbacks(): number
  internalErrors(): number
  /** Requests answered 408 because their body stalled (listen.bodyTimeout). */
  bodyTimeouts(): number
  /** Errors that escaped every handler and reached the process guard (`serve` only). */
  uncaughtErrors(): number
  persistFailures(): number
  /** Current window figures per side, computed when scraped. */
  windowFigures(side: SideName): { errorRate: number; p50Seconds: number | null; p99Seconds: number | null; requests: number }
}

type Values = MetricValue<string>[] | MetricValueWithName<string>[]

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
  readonly type: 'counter' | 'gauge' | 'histogram'
  readonly aggregator = 'sum' as const
  readonly #read: () => Values

  constructor(name: string, help: string, type: 'counter' | 'gauge' | 'histogram', read: () => Values) {
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
    return (await super.metrics()).replace(/^([^#\n][^\n]*) Nan$/gm, '$1 NaN')
  }
}

export function createRegistry(source: MetricsSource): Registry {
  const registry = new ExpositionRegistry()
  collectDefaultMetrics({ register: registry })
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
        DURATION_BUCKETS_SECONDS.forEach((le, i) => {
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
  add(new ScrapeTimeMetric('canary_proxy_canary_weight', 'Canary weight in percent (0..100).', 'gauge', () => [{ labels: {}, value: source.weight() }]))
  add(
    new ScrapeTimeMetric('canary_proxy_rollout_phase', 'Rollout phase: 1 for the current phase, 0 for the others.', 'gauge', () => {
      const current = source.phase()
      return PHASES.map((phase) => ({ labels: { phase }, value: phase === current ? 1 : 0 }))
    }),
  )
  add(new ScrapeTimeMetric('canary_proxy_rollbacks_total', 'Automatic rollbacks (canary weight dropped to 0 on a breach).', 'counter', () => [{ labels: {}, value: source.rollbacks() }]))
  add(
    new ScrapeTimeMetric('canary_proxy_client_aborts_total', 'Requests whose client went away before the response ended (not upstream errors).', 'counter', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: s.clientAborts })),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_window_error_ratio', 'Error ratio (errors / requests) over the analysis window.', 'gauge', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: source.windowFigures(s.side).errorRate })),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_window_latency_seconds', 'Latency quantiles over the analysis window (NaN when nothing was measured).', 'gauge', () =>
      source.sides.flatMap((s) => {
        const f = source.windowFigures(s.side)
        return [
          { labels: { upstream: s.side, quantile: '0.5' }, value: f.p50Seconds ?? Number.NaN },
          { labels: { upstream: s.side, quantile: '0.99' }, value: f.p99Seconds ?? Number.NaN },
        ]
      }),
    ),
  )
  add(
    new ScrapeTimeMetric('canary_proxy_window_requests', 'Requests in the analysis window (a verdict needs analysis.minRequests on canary).', 'gauge', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: source.windowFigures(s.side).requests })),
    ),
  )
  add(new ScrapeTimeMetric('canary_proxy_internal_errors_total', 'Replies the proxy generated for its own faults (never charged to a side).', 'counter', () => [{ labels: {}, value: source.internalErrors() }]))
  add(
    new ScrapeTimeMetric('canary_proxy_upstream_retries_total', 'Requests sent once more on a new connection after a kept-alive one closed before any response byte (idempotent, no body).', 'counter', () =>
      source.sides.map((s) => ({ labels: { upstream: s.side }, value: s.retries })),
    ),
  )
  add(new ScrapeTimeMetric('canary_proxy_client_body_timeouts_total', 'Requests answered 408 because the client sent no body byte for listen.bodyTimeout (never charged to a side).', 'counter', () => [{ labels: {}, value: source.bodyTimeouts() }]))
  add(new ScrapeTimeMetric('canary_proxy_uncaught_errors_total', 'Errors no handler caught, logged and counted by the serve process instead of exiting (a bug: please report).', 'counter', () => [{ labels: {}, value: source.uncaughtErrors() }]))
  add(new ScrapeTimeMetric('canary_proxy_state_persist_failures_total', 'Failed writes of the rollout state file.', 'counter', () => [{ labels: {}, value: source.persistFailures() }]))
  return registry
}
