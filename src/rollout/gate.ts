/** The analysis gate: canary and stable window figures + thresholds -> pass, fail (with the reason in words) or insufficient. Pure. */
import type { Histogram } from 'hdr-histogram-js'
import type { AnalysisConfig } from '../config/schema.js'
import { countAbove } from '../stats/latency-histogram.js'
import { differenceLowerBound, proportionBounds } from './confidence.js'
import type { SlotCount } from '../stats/window.js'
import type { Decision, Finding as PlainFinding } from '../analysis/finding.js'

export interface GateFigures {
  readonly requests: number
  readonly errors: number
  /** p99 of the upstream responses, in microseconds; null when none were measured. */
  readonly p99Us: number | null
}

export interface CanaryFigures extends GateFigures {
  /** The window's latency histogram (microseconds), for counting how many responses exceed a bound. */
  readonly latency: Histogram
  /** The window's slot with the most responses slower than `us` (see SlidingWindow.slowestSlot). */
  readonly slowestSlot: (us: number) => SlotCount
  /** Length of one window slot, for the words of a hold. */
  readonly slotMs: number
}

export interface StableFigures extends GateFigures {
  /** True when these are the last figures measured before stable traffic left the window (at 100% and in the bake). */
  readonly baseline: boolean
}

export type GateSettings = AnalysisConfig

interface Finding {
  readonly check: string
  readonly breached: boolean
  /** Breached and significant at the configured confidence. */
  readonly conclusive: boolean
  readonly text: string
  readonly observed: number | null
  readonly threshold: number | null
  readonly n: number
}

function findingOf(f: Finding): PlainFinding {
  return { check: f.check, verdict: f.conclusive ? 'fail' : f.breached ? 'insufficient' : 'pass', observed: f.observed, threshold: f.threshold, n: f.n, reason: f.text }
}

/**
 * Each configured check compares the observed canary figure with its
 * threshold. A breach only fails the canary when it is also conclusive: the
 * one-sided lower confidence bound (exact, Clopper–Pearson) of the canary's share of errors (or of
 * responses slower than the latency bound; p99 > T means more than 1% of
 * responses are slower than T) is itself above the threshold. A breach that is
 * not yet conclusive holds the step like too little traffic does: it neither
 * rolls back on one unlucky error nor advances a suspect canary.
 */
export function evaluateGate(canary: CanaryFigures, stable: StableFigures | null, s: GateSettings, now: number): Decision {
  if (canary.requests < s.minRequests) {
    const reason = `holding: ${canary.requests} of ${s.minRequests} canary requests in the window; no verdict yet`
    return { at: now, verdict: 'insufficient', reason, findings: [{ check: 'minRequests', verdict: 'insufficient', observed: canary.requests, threshold: s.minRequests, n: canary.requests, reason }] }
  }
  const stableUsable = stable !== null && stable.requests >= s.minRequests ? stable : null
  const findings: Finding[] = []
  const n = canary.requests
  const rate = canary.errors / n

  if (s.maxErrorRate !== null) {
    const breached = rate > s.maxErrorRate
    findings.push({
      check: 'maxErrorRate',
      observed: rate,
      threshold: s.maxErrorRate,
      n,
      breached,
      conclusive: breached && proportionBounds(canary.errors, n, s.confidence).lower > s.maxErrorRate,
      text: `canary error rate ${pct(rate)} over ${count(n)} requests ${breached ? '>' : '<='} max ${pct(s.maxErrorRate)}`,
    })
  }
  if (s.maxErrorRateIncrease !== null && stableUsable !== null) {
    const stableRate = stableUsable.errors / stableUsable.requests
    const increase = rate - stableRate
    const breached = increase > s.maxErrorRateIncrease
    findings.push({
      check: 'maxErrorRateIncrease',
      observed: increase,
      threshold: s.maxErrorRateIncrease,
      n,
      breached,
      conclusive: breached && differenceLowerBound(canary.errors, n, stableUsable.errors, stableUsable.requests, s.confidence) > s.maxErrorRateIncrease,
      text: `canary error rate ${pct(rate)} vs ${stableName(stableUsable)} ${pct(stableRate)} (${count(n)} vs ${count(stableUsable.requests)} requests): increase ${points(increase)} ${breached ? '>' : '<='} max ${points(s.maxErrorRateIncrease)}`,
    })
  }
  const latencyCount = canary.latency.totalCount
  if (canary.p99Us !== null && latencyCount > 0) {
    if (s.maxP99Ms !== null) {
      const boundUs = s.maxP99Ms * 1000
      findings.push(latencyFinding('maxP99', canary, boundUs, s.confidence, `canary p99 ${ms(canary.p99Us)} over ${count(latencyCount)} responses`, `max ${ms(boundUs)}`))
    }
    if (s.maxP99Ratio !== null && stableUsable !== null && stableUsable.p99Us !== null && stableUsable.p99Us > 0) {
      const sp99 = stableUsable.p99Us
      const boundUs = Math.max(sp99 * s.maxP99Ratio, sp99 + s.minP99DeltaMs * 1000)
      const ratio = canary.p99Us / sp99
      findings.push(
        latencyFinding(
          'maxP99Ratio',
          canary,
          boundUs,
          s.confidence,
          `canary p99 ${ms(canary.p99Us)} is ${ratio.toFixed(2)}x ${stableName(stableUsable)} p99 ${ms(sp99)} (${count(latencyCount)} vs ${count(stableUsable.requests)} requests)`,
          `max ${s.maxP99Ratio}x and ${ms(s.minP99DeltaMs * 1000)} above stable, i.e. ${ms(boundUs)}`,
        ),
      )
    }
  }

  const plain = findings.map(findingOf)
  const failed = findings.filter((f) => f.conclusive)
  if (failed.length > 0) return { at: now, verdict: 'fail', reason: failed.map((f) => f.text).join('; '), findings: plain }
  const suspect = findings.filter((f) => f.breached)
  if (suspect.length > 0) {
    const confidence = `${Math.round(s.confidence * 1000) / 10}%`
    return { at: now, verdict: 'insufficient', reason: `holding: ${suspect.map((f) => f.text).join('; ')}, not yet conclusive at ${confidence} confidence; collecting more requests`, findings: plain }
  }
  const latency = (f: GateFigures): string => (f.p99Us === null ? '' : `, p99 ${ms(f.p99Us)}`)
  const comparing = s.maxErrorRateIncrease !== null || s.maxP99Ratio !== null
  const reference =
    stableUsable !== null
      ? `; ${stableName(stableUsable)} ${pct(stableUsable.errors / stableUsable.requests)}${latency(stableUsable)} over ${count(stableUsable.requests)}`
      : comparing
        ? `; no stable reference (fewer than ${s.minRequests} stable requests and no baseline), so the comparisons with stable are not applied`
        : ''
  if (findings.length === 0) return { at: now, verdict: 'pass', reason: `${count(n)} canary requests${comparing ? reference : '; no checks configured'}`, findings: plain }
  return {
    at: now,
    verdict: 'pass',
    reason: `canary error rate ${pct(rate)}${latency(canary)} over ${count(n)} requests${reference}: within ${findings.length === 1 ? 'the 1 check' : `all ${findings.length} checks`} applied`,
    findings: plain,
  }
}

/**
 * A latency breach is conclusive when the share of responses slower than the
 * bound is above 1% at the configured confidence, and still is without the
 * window slot that holds most of them. Latencies are not independent samples:
 * a pause of the host (a GC, CPU taken by a neighbour) slows every response in
 * flight at once, and right after a weight change there are few others to
 * dilute them. A real regression slows responses in every slot; a pause sits
 * in one. Error checks have no such rule: a failing canary must go in well
 * under a second.
 */
function latencyFinding(check: string, canary: CanaryFigures, boundUs: number, confidence: number, observed: string, limit: string): Finding {
  const p99 = canary.p99Us ?? 0
  const total = canary.latency.totalCount
  const figures = { check, observed: p99 / 1e6, threshold: boundUs / 1e6, n: total }
  if (p99 <= boundUs) return { ...figures, breached: false, conclusive: false, text: `${observed} <= ${limit}` }
  const text = `${observed} > ${limit}`
  const slower = countAbove(canary.latency, boundUs)
  if (!(proportionBounds(slower, total, confidence).lower > 0.01)) return { ...figures, breached: true, conclusive: false, text }
  const worst = canary.slowestSlot(boundUs)
  if (proportionBounds(slower - worst.above, total - worst.count, confidence).lower > 0.01) return { ...figures, breached: true, conclusive: true, text }
  return { ...figures, breached: true, conclusive: false, text: `${text} (the slow responses are mostly within one ${duration(canary.slotMs)} slot: a pause or a spike, not yet a trend)` }
}

function stableName(stable: StableFigures): string {
  return stable.baseline ? 'stable baseline' : 'stable'
}

export function pct(ratio: number): string {
  const value = ratio * 100
  return `${value !== 0 && value < 0.1 ? value.toFixed(2) : value.toFixed(1)}%`
}

function points(ratio: number): string {
  return `${(ratio * 100).toFixed(2)} points`
}

function ms(us: number): string {
  const value = us / 1000
  return `${value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : Math.round(value)}ms`
}

function duration(msValue: number): string {
  return msValue % 1000 === 0 ? `${msValue / 1000}s` : `${msValue}ms`
}

function count(n: number): string {
  return n.toLocaleString('en-US')
}
