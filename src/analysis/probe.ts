/**
 * Probes: checks whose data comes from elsewhere (a side's /metrics, a
 * Prometheus query, a gate webhook). Each runs on its own schedule, off the
 * hot path and off the gate's tick; the gate only reads its latest result and
 * that result's age. A missing or stale result is `insufficient`, never `fail`.
 */

export interface ProbeResult<T = unknown> {
  /** When the measurement was taken (epoch ms). */
  readonly at: number
  /** The measurement, or null when it failed (then `error` says why). */
  readonly value: T | null
  readonly error: string | null
}

/** What a probe may read of the proxy while it runs (nothing of the data plane's objects). */
export interface ProbeContext {
  readonly now: () => number
  /** Aborted when the probe's timeout passes or the proxy stops. */
  readonly signal: AbortSignal
  /** The rollout as it stands: upstream URLs, phase, weight, step (for templating and webhook payloads). */
  readonly rollout: ProbeRollout
  /** Requests each side has served through the proxy so far (cumulative, never reset), for per-request ratios. */
  readonly servedRequests: (side: 'stable' | 'canary') => number
}

export interface ProbeRollout {
  readonly phase: string
  readonly weight: number
  readonly step: number | null
  readonly stableUrl: string
  readonly canaryUrl: string | null
  readonly generation: number
}

export interface Probe<T = unknown> {
  /** Unique among probes; checks name the probe they read. */
  readonly id: string
  readonly intervalMs: number
  /** How long one run may take before its signal is aborted; the runner's default is intervalMs. */
  readonly timeoutMs?: number
  /** Run again at once on every rollout transition (gate webhooks: a new step is asked at its start, not an interval later). */
  readonly runOnTransition?: boolean
  /** One measurement. May throw or reject: the runner turns that into a result with `error`. */
  run(context: ProbeContext): Promise<T>
}

/** The latest result of every probe, as the gate sees it at one evaluation. */
export interface ProbeResults {
  latest<T = unknown>(probeId: string): ProbeResult<T> | null
}

export const NO_PROBES: ProbeResults = { latest: () => null }
