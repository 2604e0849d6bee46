/**
 * The four built-in checks of `analysis` (maxErrorRate, maxErrorRateIncrease,
 * maxP99, maxP99Ratio) as Check objects, built once from the config.
 *
 * Each compares the canary's window figure with its threshold. A breach fails
 * only when it is also conclusive: the one-sided lower confidence bound (exact,
 * Clopper–Pearson) of the canary's share of errors (or of responses slower than
 * the latency bound; p99 > T means more than 1% of responses are slower than T)
 * is itself beyond the threshold. A breach not yet conclusive is
 * `insufficient`: it holds the step, neither rolling back on one unlucky error
 * nor advancing a suspect canary.
 */
import type { AnalysisConfig } from '../config/schema.js'
import type { Check, GateInput, WindowView } from './check.js'
import { differenceLowerBound, proportionBounds } from './confidence.js'
import type { Finding } from './finding.js'
import { count, ms, pct, points, span } from '../core/format.js'

/** Stable's figures the comparisons use: the live window, or the baseline kept from before 100%. */
export interface StableReference {
  readonly requests: number
  readonly errors: number
  readonly p99Us: number | null
  readonly baseline: boolean
}

/** The stable reference of one evaluation: live when stable had minRequests in the window, else the baseline if it had; null when neither. */
export function stableReference(input: GateInput, minRequests: number): StableReference | null {
  const live = input.stable?.window
  if (live !== undefined && live.requests >= minRequests) return { requests: live.requests, errors: live.errors, p99Us: live.quantileUs(0.99), baseline: false }
  const b = input.stableBaseline
  if (b !== null && b.requests >= minRequests) return { requests: b.requests, errors: b.errors, p99Us: b.p99Us, baseline: true }
  return null
}

export function stableName(reference: StableReference): string {
  return reference.baseline ? 'stable baseline' : 'stable'
}

/** Builds the configured checks, in the order their findings are reported. */
export function builtinChecks(a: AnalysisConfig): Check[] {
  const checks: Check[] = []
  const confidence = a.confidence
  if (a.maxErrorRate !== null) checks.push(maxErrorRate(a.maxErrorRate, confidence))
  if (a.maxErrorRateIncrease !== null) checks.push(maxErrorRateIncrease(a.maxErrorRateIncrease, confidence, a.minRequests))
  if (a.maxP99Ms !== null) checks.push(maxP99(a.maxP99Ms * 1000, confidence))
  if (a.maxP99Ratio !== null) checks.push(maxP99Ratio(a.maxP99Ratio, a.minP99DeltaMs * 1000, confidence, a.minRequests))
  return checks
}

function maxErrorRate(max: number, confidence: number): Check {
  return {
    id: 'maxErrorRate',
    evaluate(input) {
      const { requests: n, errors } = input.canary.window
      const rate = n === 0 ? 0 : errors / n
      const breached = rate > max
      const text = `canary error rate ${pct(rate)} over ${count(n)} requests ${breached ? '>' : '<='} max ${pct(max)}`
      const proven = breached && proportionBounds(errors, n, confidence).lower > max
      return finding('maxErrorRate', breached, proven, confidence, text, rate, max, n)
    },
  }
}

function maxErrorRateIncrease(max: number, confidence: number, minRequests: number): Check {
  return {
    id: 'maxErrorRateIncrease',
    evaluate(input) {
      const { requests: n, errors } = input.canary.window
      const reference = stableReference(input, minRequests)
      if (reference === null) return { check: 'maxErrorRateIncrease', verdict: 'pass', observed: null, threshold: max, n, reason: 'no stable reference: not applied' }
      const rate = n === 0 ? 0 : errors / n
      const stableRate = reference.errors / reference.requests
      const increase = rate - stableRate
      const breached = increase > max
      const text = `canary error rate ${pct(rate)} vs ${stableName(reference)} ${pct(stableRate)} (${count(n)} vs ${count(reference.requests)} requests): increase ${points(increase)} ${breached ? '>' : '<='} max ${points(max)}`
      const proven = breached && differenceLowerBound(errors, n, reference.errors, reference.requests, confidence) > max
      return finding('maxErrorRateIncrease', breached, proven, confidence, text, increase, max, n)
    },
  }
}

function maxP99(boundUs: number, confidence: number): Check {
  return {
    id: 'maxP99',
    evaluate(input) {
      const w = input.canary.window
      const p99 = w.quantileUs(0.99)
      if (p99 === null) return { check: 'maxP99', verdict: 'pass', observed: null, threshold: boundUs / 1e6, n: 0, reason: 'no canary latency measured yet' }
      return latencyFinding('maxP99', w, p99, boundUs, confidence, `canary p99 ${ms(p99)} over ${count(w.latencyCount)} responses`, `max ${ms(boundUs)}`)
    },
  }
}

function maxP99Ratio(ratio: number, minDeltaUs: number, confidence: number, minRequests: number): Check {
  return {
    id: 'maxP99Ratio',
    evaluate(input) {
      const w = input.canary.window
      const p99 = w.quantileUs(0.99)
      const reference = stableReference(input, minRequests)
      if (p99 === null || reference === null || reference.p99Us === null || reference.p99Us <= 0) {
        return { check: 'maxP99Ratio', verdict: 'pass', observed: null, threshold: ratio, n: w.latencyCount, reason: p99 === null ? 'no canary latency measured yet' : 'no stable reference: not applied' }
      }
      const sp99 = reference.p99Us
      const boundUs = Math.max(sp99 * ratio, sp99 + minDeltaUs)
      const f = latencyFinding(
        'maxP99Ratio',
        w,
        p99,
        boundUs,
        confidence,
        `canary p99 ${ms(p99)} is ${(p99 / sp99).toFixed(2)}x ${stableName(reference)} p99 ${ms(sp99)} (${count(w.latencyCount)} vs ${count(reference.requests)} requests)`,
        `max ${ratio}x and ${ms(minDeltaUs)} above stable, i.e. ${ms(boundUs)}`,
      )
      // The finding's figures are the ratio and its limit, the unit of the setting.
      return { ...f, observed: p99 / sp99, threshold: ratio }
    },
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
function latencyFinding(check: string, w: WindowView, p99: number, boundUs: number, confidence: number, observed: string, limit: string): Finding {
  const total = w.latencyCount
  if (p99 <= boundUs) return { check, verdict: 'pass', observed: p99 / 1e6, threshold: boundUs / 1e6, n: total, reason: `${observed} <= ${limit}` }
  const text = `${observed} > ${limit}`
  const slower = w.countAbove(boundUs)
  if (!(proportionBounds(slower, total, confidence).lower > 0.01)) return finding(check, true, false, confidence, text, p99 / 1e6, boundUs / 1e6, total)
  const worst = w.slowestSlot(boundUs)
  if (proportionBounds(slower - worst.above, total - worst.count, confidence).lower > 0.01) return finding(check, true, true, confidence, text, p99 / 1e6, boundUs / 1e6, total)
  const pause = `${text} (the slow responses are mostly within one ${span(w.slotMs)} slot: a pause or a spike, not yet a trend)`
  return finding(check, true, false, confidence, pause, p99 / 1e6, boundUs / 1e6, total)
}

function finding(check: string, breached: boolean, proven: boolean, confidence: number, text: string, observed: number, threshold: number, n: number): Finding {
  if (proven) return { check, verdict: 'fail', observed, threshold, n, reason: text }
  if (breached) return { check, verdict: 'insufficient', observed, threshold, n, reason: `${text}, not yet conclusive at ${Math.round(confidence * 1000) / 10}% confidence` }
  return { check, verdict: 'pass', observed, threshold, n, reason: text }
}
