/** SideStats: one side's cumulative counters for Prometheus (by status class, duration buckets, client aborts), preallocated. */
import type { SideName } from '../routing/snapshot.js'
import type { WindowFigures } from './window.js'

/** Label values of canary_proxy_requests_total{status_class}; the index is the counter slot. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const
export const ERROR_CLASS = 5

/** Upper bounds (seconds) of canary_proxy_request_duration_seconds: Prometheus' defaults plus 1ms/2.5ms for fast services and 30s for the default responseTimeout. */
export const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const
const BUCKET_BOUNDS_US = Float64Array.from(DURATION_BUCKETS_SECONDS, (s) => s * 1e6)

/**
 * Everything here is allocated once per side, only incremented by the data
 * plane, and read by prom-client at scrape time. These counters never reset
 * (Prometheus counters) and outlive upstreams: after a promotion the stable
 * series continues on the new stable (canary_proxy_info says which). The
 * analysis window is fed apart, per backend (BackendStats).
 */
export class SideStats {
  readonly side: SideName
  /** Cumulative responses by STATUS_CLASSES index. */
  readonly byClass = new Float64Array(STATUS_CLASSES.length)
  /** Non-cumulative duration bucket counts; the last slot is +Inf. */
  readonly durationBuckets = new Float64Array(DURATION_BUCKETS_SECONDS.length + 1)
  durationSumSeconds = 0
  durationCount = 0
  clientAborts = 0

  constructor(side: SideName) {
    this.side = side
  }

  /** One response from the upstream: status, and time from request arrival to its response headers. */
  recordResponse(status: number, latencyUs: number): void {
    let cls = ((status / 100) | 0) - 1
    if (cls < 0 || cls > 4) cls = 4
    this.byClass[cls]!++
    let b = 0
    const bounds = BUCKET_BOUNDS_US
    while (b < bounds.length && latencyUs > bounds[b]!) b++
    this.durationBuckets[b]!++
    this.durationSumSeconds += latencyUs / 1e6
    this.durationCount++
  }

  /** No response at all (connect failure, reset, timeout): status_class="error". */
  recordFailure(): void {
    this.byClass[ERROR_CLASS]!++
  }

  /** The client went away first: counted here only, never as an upstream error. */
  recordClientAbort(): void {
    this.clientAborts++
  }

  /** Every outcome recorded so far (responses and failures). */
  get outcomes(): number {
    let n = 0
    for (const count of this.byClass) n += count
    return n
  }
}

/** Window figures as people read them: milliseconds, null percentiles when nothing was measured. */
export interface SideSummary {
  readonly requests: number
  readonly errors: number
  readonly errorRate: number
  readonly p50Ms: number | null
  readonly p90Ms: number | null
  readonly p99Ms: number | null
  readonly p999Ms: number | null
}

export function summarize(figures: WindowFigures): SideSummary {
  const h = figures.latency
  const none = h.totalCount === 0
  const ms = (p: number): number | null => (none ? null : Math.round(h.getValueAtPercentile(p)) / 1000)
  return {
    requests: figures.requests,
    errors: figures.errors,
    errorRate: figures.errorRate,
    p50Ms: ms(50),
    p90Ms: ms(90),
    p99Ms: ms(99),
    p999Ms: ms(99.9),
  }
}
