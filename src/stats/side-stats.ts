/** SideStats: one side's cumulative counters for Prometheus (by status class, duration buckets, client aborts), preallocated. */
import type { SideName } from '../routing/snapshot.js'
import { DEFAULT_DURATION_BUCKETS_SECONDS } from './buckets.js'
import type { WindowFigures } from './window.js'

/** Label values of canary_proxy_requests_total{status_class}; the index is the counter slot. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const
export const ERROR_CLASS = 5

/** Default upper bounds (seconds) of canary_proxy_request_duration_seconds; `metrics.buckets` replaces them (see buckets.ts). */
export const DURATION_BUCKETS_SECONDS = DEFAULT_DURATION_BUCKETS_SECONDS

/**
 * The bucket search starts from a precomputed index: cells of 2^8 = 256 µs up
 * to ~1 s, each holding the first bucket whose bound is not below the cell's
 * start, so a response under a second costs one table read and about one
 * compare whatever the bounds. A plain linear search over the 25 default bounds
 * cost ~2 ns more per response than over the 14 it replaced (issue 12's fill-ins);
 * this keeps recordResponse as cheap as before (README, Metrics).
 */
const CELL_SHIFT = 8
const CELLS = 4096
const INDEXED_US = CELLS << CELL_SHIFT

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
  /** Upper bounds of the duration buckets in seconds, ascending, without +Inf (the `le` labels). */
  readonly bucketsSeconds: readonly number[]
  /** Non-cumulative duration bucket counts, one per bound; the last slot is +Inf. */
  readonly durationBuckets: Float64Array
  /** The same bounds in microseconds, as the hot path compares them. */
  readonly #boundsUs: Float64Array
  /** Per 256 µs cell: where the bucket search starts (see CELL_SHIFT). */
  readonly #firstBucket: Uint8Array
  durationSumSeconds = 0
  durationCount = 0
  clientAborts = 0
  /** Requests sent a second time after a kept-alive connection closed under them (each still has one outcome). */
  retries = 0

  /** `bucketsSeconds`: ascending, finite, > 0 (the config loader checks `metrics.buckets`). */
  constructor(side: SideName, bucketsSeconds: readonly number[] = DEFAULT_DURATION_BUCKETS_SECONDS) {
    this.side = side
    this.bucketsSeconds = Object.freeze([...bucketsSeconds])
    const bounds = Float64Array.from(bucketsSeconds, (s) => s * 1e6)
    this.#boundsUs = bounds
    this.#firstBucket = new Uint8Array(CELLS)
    for (let cell = 0, b = 0; cell < CELLS; cell++) {
      while (b < bounds.length && bounds[b]! < cell << CELL_SHIFT) b++
      this.#firstBucket[cell] = b
    }
    this.durationBuckets = new Float64Array(bucketsSeconds.length + 1)
  }

  /** One response from the upstream: status, and time from request arrival to its response headers. */
  recordResponse(status: number, latencyUs: number): void {
    let cls = ((status / 100) | 0) - 1
    if (cls < 0 || cls > 4) cls = 4
    this.byClass[cls]!++
    const bounds = this.#boundsUs
    let b = this.#firstBucket[latencyUs < INDEXED_US ? latencyUs >>> CELL_SHIFT : CELLS - 1]!
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

  /** A request retried on a new connection: not an outcome (the retry records one). */
  recordRetry(): void {
    this.retries++
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
  /** Responses with a latency in the window (errors without a response have none): the window summary's `_count`. */
  readonly latencyCount: number
  /** Their latencies added up, in seconds: the window summary's `_sum`. */
  readonly latencySumSeconds: number
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
    latencyCount: h.totalCount,
    latencySumSeconds: none ? 0 : (h.mean * h.totalCount) / 1e6,
  }
}
