/** SideStats: one side's preallocated counters and analysis window; `recordResponse` is the hot call. */
import type { SideName } from '../routing/snapshot.js'
import { SlidingWindow, type WindowFigures } from './window.js'

/** Label values of canary_proxy_requests_total{status_class}; the index is the counter slot. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const
export const ERROR_CLASS = 5

/** Upper bounds (seconds) of canary_proxy_request_duration_seconds: Prometheus' defaults plus 1ms/2.5ms for fast services and 30s for the default responseTimeout. */
export const DURATION_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const
const BUCKET_BOUNDS_US = Float64Array.from(DURATION_BUCKETS_SECONDS, (s) => s * 1e6)

/**
 * Everything here is allocated once per side and only incremented by the data
 * plane; prom-client reads it at scrape time and the gate reads the window on
 * its tick. Cumulative counters never reset (Prometheus counters); the window
 * resets when a new rollout starts.
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
  /** Requests sent a second time after a kept-alive connection closed under them (each still has one outcome). */
  retries = 0
  readonly window: SlidingWindow
  /**
   * Called (synchronously, so it must only schedule) on every error outcome,
   * when set; the rollout controller uses it to judge a failing canary before
   * its next tick. Null when nobody listens: one null check per error.
   */
  onError: (() => void) | null = null
  /** The epoch of the upstream the window measures (see UpstreamTarget.epoch). */
  epoch = 0

  constructor(side: SideName, windowMs: number, now: number) {
    this.side = side
    this.window = new SlidingWindow(windowMs, now)
  }

  /**
   * One response from the upstream: status, and time from request arrival to
   * its response headers. `epoch` is the target's (see UpstreamTarget.epoch).
   */
  recordResponse(status: number, latencyUs: number, epoch = this.epoch): void {
    let cls = ((status / 100) | 0) - 1
    if (cls < 0 || cls > 4) cls = 4
    this.byClass[cls]!++
    const isError = status >= 500
    const current = epoch === this.epoch
    if (current) this.window.recordResponse(isError, latencyUs)
    let b = 0
    const bounds = BUCKET_BOUNDS_US
    while (b < bounds.length && latencyUs > bounds[b]!) b++
    this.durationBuckets[b]!++
    this.durationSumSeconds += latencyUs / 1e6
    this.durationCount++
    if (isError && current && this.onError !== null) this.onError()
  }

  /** No response at all (connect failure, reset, timeout): status_class="error". */
  recordFailure(epoch = this.epoch): void {
    this.byClass[ERROR_CLASS]!++
    if (epoch !== this.epoch) return
    this.window.recordFailure()
    if (this.onError !== null) this.onError()
  }

  /** The client went away first: counted here only, never as an upstream error. */
  recordClientAbort(): void {
    this.clientAborts++
  }

  /** A request retried on a new connection: not an outcome (the retry records one). */
  recordRetry(): void {
    this.retries++
  }

  summarize(now: number): SideSummary {
    return summarize(this.window.read(now))
  }

  /** Releases the window's histograms once nothing can record any more (after the upstream pools closed). */
  dispose(): void {
    this.window.dispose()
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
