/** The default upper bounds of canary_proxy_request_duration_seconds (config `metrics.buckets`), apart so the config schema can name them without loading the stats. */

/**
 * Seconds. Prometheus' default set plus 1ms/2.5ms for fast services and 30s
 * for the default responseTimeout, filled in where histogram_quantile's
 * linear interpolation inside one wide bucket hid the figures operators
 * compare (issue 12): 10ms then 25ms read a 12ms p99 as anything up to 25ms,
 * 250ms then 500ms blurred the default maxP99 of 500ms. The hot path finds
 * a response's bucket by a linear search from the smallest bound, so a fast
 * response costs a few compares however many bounds follow (measured in the
 * README's Metrics section).
 */
export const DEFAULT_DURATION_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30,
])

/** More bounds than this is a config error: each one is a series per side. */
export const MAX_DURATION_BUCKETS = 64
