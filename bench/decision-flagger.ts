/**
 * A Flagger-style policy replayed on recorded traffic: Prometheus scrapes the
 * proxy's cumulative counters every `scrapeS`, the controller runs the checks
 * every `intervalS` over `rate(...[windowS])`, a failing check increments
 * failedChecks, and the tick that finds failedChecks >= threshold rolls back
 * (fluxcd/flagger pkg/controller/scheduler.go advanceCanary: the threshold is
 * tested at the start of a tick, before that tick's analysis). Pure: the
 * randomness (bootstrap draws, tick and scrape phases) comes from `rng`.
 */
import { DURATION_BUCKETS_SECONDS } from '../src/stats/side-stats.js'
import type { Scrape, SideCounters } from './decision-harness.js'

/** One second of traffic: what each side's counters grew by. */
export interface Second {
  readonly weight: number
  readonly stable: SideCounters
  readonly canary: SideCounters
}

export interface FlaggerChecks {
  /** request-success-rate: fails when the canary's 5xx share exceeds this (Flagger docs: success rate min 99). */
  readonly maxErrorRate: number | null
  /** A custom template (flagger #739): canary error rate minus primary error rate. */
  readonly maxErrorRateIncrease: number | null
  /** request-duration: histogram_quantile(0.99, ...) in ms (Flagger docs: max 500). */
  readonly maxP99Ms: number | null
  /** A custom template: canary p99 / primary p99, applied only when the canary is also minP99DeltaMs slower. */
  readonly maxP99Ratio: number | null
  readonly minP99DeltaMs: number
}

export interface FlaggerPolicy {
  readonly intervalS: number
  readonly windowS: number
  readonly scrapeS: number
  readonly threshold: number
  readonly checks: FlaggerChecks
}

export type Rng = () => number


/**
 * Increments between consecutive scrapes of a run, scaled to one second (a
 * late timer makes an interval longer than asked), each tagged with the
 * weight, which must be the same at both ends.
 */
export function secondsOf(scrapes: readonly Scrape[], keep: (from: Scrape, to: Scrape) => boolean): Second[] {
  const out: Second[] = []
  for (let i = 1; i < scrapes.length; i++) {
    const from = scrapes[i - 1]!
    const to = scrapes[i]!
    const seconds = (to.at - from.at) / 1000
    if (from.weight !== to.weight || seconds <= 0 || !keep(from, to)) continue
    out.push({ weight: to.weight, stable: scale(minus(to.stable, from.stable), 1 / seconds), canary: scale(minus(to.canary, from.canary), 1 / seconds) })
  }
  return out
}

function scale(a: SideCounters, k: number): SideCounters {
  return { requests: a.requests * k, errors: a.errors * k, buckets: a.buckets.map((v) => v * k) }
}

function minus(a: SideCounters, b: SideCounters): SideCounters {
  return { requests: a.requests - b.requests, errors: a.errors - b.errors, buckets: a.buckets.map((v, i) => v - (b.buckets[i] ?? 0)) }
}

function plus(a: SideCounters, b: SideCounters): SideCounters {
  return { requests: a.requests + b.requests, errors: a.errors + b.errors, buckets: a.buckets.map((v, i) => v + (b.buckets[i] ?? 0)) }
}

const ZERO: SideCounters = { requests: 0, errors: 0, buckets: [...DURATION_BUCKETS_SECONDS, Infinity].map(() => 0) }

/**
 * Prometheus histogram_quantile over cumulative bucket increases (upper bounds
 * DURATION_BUCKETS_SECONDS then +Inf): linear interpolation inside the bucket
 * the rank falls in; the +Inf bucket answers the highest finite bound. In ms;
 * null when there is nothing (Prometheus: NaN, "no values" for Flagger).
 */
export function histogramQuantileMs(q: number, buckets: readonly number[]): number | null {
  const total = buckets[buckets.length - 1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  let b = 0
  while (b < buckets.length - 1 && (buckets[b] ?? 0) < rank) b++
  if (b === buckets.length - 1) return (DURATION_BUCKETS_SECONDS[b - 1] ?? 0) * 1000
  const start = b === 0 ? 0 : (DURATION_BUCKETS_SECONDS[b - 1] ?? 0)
  const end = DURATION_BUCKETS_SECONDS[b] ?? 0
  const below = b === 0 ? 0 : (buckets[b - 1] ?? 0)
  const inBucket = (buckets[b] ?? 0) - below
  return (start + (end - start) * ((rank - below) / inBucket)) * 1000
}

/**
 * One analysis over the counters' increase between the first and last scrape
 * in the window (rate() divides both by the same duration, so ratios and
 * quantiles of increases equal those of rates). True when the check fails.
 */
export function checkFails(canary: SideCounters, stable: SideCounters, checks: FlaggerChecks): boolean {
  // "no values found" counts as a failed check in Flagger.
  if (canary.requests <= 0) return true
  const rate = canary.errors / canary.requests
  if (checks.maxErrorRate !== null && rate > checks.maxErrorRate) return true
  const stableRate = stable.requests > 0 ? stable.errors / stable.requests : null
  if (checks.maxErrorRateIncrease !== null && stableRate !== null && rate - stableRate > checks.maxErrorRateIncrease) return true
  const p99 = histogramQuantileMs(0.99, canary.buckets)
  if (checks.maxP99Ms !== null && (p99 === null || p99 > checks.maxP99Ms)) return true
  const stableP99 = histogramQuantileMs(0.99, stable.buckets)
  if (checks.maxP99Ratio !== null && p99 !== null && stableP99 !== null && stableP99 > 0) {
    if (p99 > Math.max(stableP99 * checks.maxP99Ratio, stableP99 + checks.minP99DeltaMs)) return true
  }
  return false
}

export interface FailureReplay {
  /** From the switch to the first failing check, s. */
  readonly firstFailAfterS: number | null
  /** From the switch to the tick that set the weight to 0, s; null when it never did within the horizon. */
  readonly rollbackAfterS: number | null
  /** Canary requests served from the switch to the rollback (or the horizon). */
  readonly canaryServed: number
  /** Checks that failed on healthy traffic before the switch. */
  readonly failedBeforeSwitch: number
}

/**
 * Healthy history of `historyS` seconds, then the canary turns bad at a
 * second boundary; every second is drawn (with replacement) from the
 * recorded seconds of its phase. Tick and scrape phases are uniform.
 */
export function replayFailure(healthy: readonly Second[], bad: readonly Second[], policy: FlaggerPolicy, rng: Rng, historyS = 180, horizonS = 1200): FailureReplay {
  if (healthy.length === 0 || bad.length === 0) throw new Error('replayFailure needs recorded healthy and bad seconds')
  const total = historyS + horizonS
  const pick = (from: readonly Second[]): Second => from[Math.floor(rng() * from.length)]!
  const seconds: Second[] = []
  for (let t = 0; t < total; t++) seconds.push(pick(t < historyS ? healthy : bad))
  // cumulative[t]: counters at time t (sum of seconds before t).
  const cumulative: { stable: SideCounters; canary: SideCounters }[] = [{ stable: ZERO, canary: ZERO }]
  for (const s of seconds) {
    const last = cumulative[cumulative.length - 1]!
    cumulative.push({ stable: plus(last.stable, s.stable), canary: plus(last.canary, s.canary) })
  }
  const scrapePhase = Math.floor(rng() * policy.scrapeS)
  const tickPhase = Math.floor(rng() * policy.intervalS)
  let failedChecks = 0
  let failedBeforeSwitch = 0
  let firstFail: number | null = null
  for (let tick = tickPhase + policy.windowS; tick <= total; tick += policy.intervalS) {
    if (failedChecks >= policy.threshold) {
      return { firstFailAfterS: firstFail, rollbackAfterS: tick - historyS, canaryServed: servedBetween(seconds, historyS, tick), failedBeforeSwitch }
    }
    // Range selector (tick - window, tick]: the scrapes in it.
    const first = Math.max(0, Math.ceil((tick - policy.windowS + 1 - scrapePhase) / policy.scrapeS)) * policy.scrapeS + scrapePhase
    const last = Math.floor((tick - scrapePhase) / policy.scrapeS) * policy.scrapeS + scrapePhase
    let fails: boolean
    // Fewer than two samples: rate() is empty, "no values found".
    if (last <= first) fails = true
    else {
      const a = cumulative[first]!
      const b = cumulative[last]!
      fails = checkFails(minus(b.canary, a.canary), minus(b.stable, a.stable), policy.checks)
    }
    if (fails) {
      failedChecks++
      if (tick <= historyS) failedBeforeSwitch++
      else firstFail ??= tick - historyS
    }
  }
  return { firstFailAfterS: firstFail, rollbackAfterS: null, canaryServed: servedBetween(seconds, historyS, total), failedBeforeSwitch }
}

function servedBetween(seconds: readonly Second[], from: number, to: number): number {
  let n = 0
  for (let t = from; t < to; t++) n += seconds[t]?.canary.requests ?? 0
  return n
}

export interface HealthyReplay {
  readonly failedChecks: number
  readonly rolledBack: boolean
  /** Analyses until the last step passed: one interval per step. */
  readonly durationS: number
}

/**
 * A healthy rollout through `steps`: Flagger moves one step per interval when
 * the check passes, so each step is judged once, on a window of that step's
 * traffic drawn from the recorded seconds at that weight.
 */
export function replayHealthy(byWeight: ReadonlyMap<number, readonly Second[]>, steps: readonly number[], policy: FlaggerPolicy, rng: Rng): HealthyReplay {
  let failedChecks = 0
  let elapsed = 0
  for (const weight of steps) {
    const recorded = byWeight.get(weight)
    if (recorded === undefined || recorded.length === 0) throw new Error(`no recorded healthy seconds at ${weight}%`)
    let canary = ZERO
    let stable = ZERO
    for (let t = 0; t < policy.windowS; t++) {
      const s = recorded[Math.floor(rng() * recorded.length)]!
      canary = plus(canary, s.canary)
      stable = plus(stable, s.stable)
    }
    elapsed += policy.intervalS
    if (checkFails(canary, stable, policy.checks)) failedChecks++
    if (failedChecks >= policy.threshold) return { failedChecks, rolledBack: true, durationS: elapsed }
  }
  return { failedChecks, rolledBack: false, durationS: elapsed }
}
