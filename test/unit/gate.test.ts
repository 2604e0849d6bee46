import t from 'tap'
import type { Histogram } from 'hdr-histogram-js'
import { builtinChecks } from '../../src/analysis/builtin-checks.js'
import type { GateInput, WindowView } from '../../src/analysis/check.js'
import type { Decision } from '../../src/analysis/finding.js'
import { decide } from '../../src/analysis/gate.js'
import { NO_PROBES } from '../../src/analysis/probe.js'
import type { AnalysisConfig } from '../../src/config/schema.js'
import { countAbove, newLatencyHistogram } from '../../src/stats/latency-histogram.js'

type GateSettings = AnalysisConfig

interface CanaryFigures {
  readonly requests: number
  readonly errors: number
  readonly latency: Histogram
  readonly slowestSlot: (us: number) => { above: number; count: number }
  readonly slotMs: number
}

interface StableFigures {
  readonly requests: number
  readonly errors: number
  readonly p99Us: number
  /** The figures kept from before 100% rather than a live window. */
  readonly baseline: boolean
}

/** The gate as the controller runs it: the configured checks over one GateInput, joined by decide(). */
function evaluateGate(c: CanaryFigures, s: StableFigures, a: GateSettings, now: number): Decision {
  const window: WindowView = {
    requests: c.requests,
    errors: c.errors,
    latencyCount: c.latency.totalCount,
    quantileUs: (q) => (c.latency.totalCount === 0 ? null : c.latency.getValueAtPercentile(q * 100)),
    countAbove: (us) => countAbove(c.latency, us),
    slowestSlot: c.slowestSlot,
    slotMs: c.slotMs,
  }
  const stableWindow: WindowView = { requests: s.requests, errors: s.errors, latencyCount: s.requests, quantileUs: () => s.p99Us, countAbove: () => 0, slowestSlot: () => ({ above: 0, count: 0 }), slotMs: 1000 }
  const input: GateInput = {
    now,
    phase: 'progressing',
    weight: s.baseline ? 100 : 5,
    canary: { window, step: c },
    stable: s.baseline ? null : { window: stableWindow, step: s },
    stableBaseline: s.baseline ? { requests: s.requests, errors: s.errors, p99Us: s.p99Us } : null,
    probes: NO_PROBES,
  }
  return decide(builtinChecks(a), input, { minRequests: a.minRequests, compares: a.maxErrorRateIncrease !== null || a.maxP99Ratio !== null })
}

const analysis: AnalysisConfig = {
  intervalMs: 1000,
  windowMs: 30_000,
  minRequests: 50,
  maxErrorRate: 0.01,
  maxErrorRateIncrease: 0.005,
  maxP99Ms: 500,
  maxP99Ratio: 1.5,
  minP99DeltaMs: 5,
  falseRollbackRate: 0.01,
  confidence: 0.99,
}
const settings = (over: Partial<AnalysisConfig> = {}): GateSettings => ({ ...analysis, ...over })

/**
 * Canary figures with `requests` responses, `errors` of them 5xx, latencies
 * from fn(i) in ms; response i falls in window slot slotOf(i) (by default
 * spread over 10 slots, as steady traffic is).
 */
function canary(requests: number, errors: number, latencyMs: (i: number) => number = () => 10, slotOf: (i: number) => number = (i) => i % 10): CanaryFigures {
  const h = newLatencyHistogram()
  const slots = new Map<number, number[]>()
  for (let i = 0; i < requests; i++) {
    const us = Math.round(latencyMs(i) * 1000)
    h.recordValue(us)
    const slot = slots.get(slotOf(i)) ?? []
    slot.push(us)
    slots.set(slotOf(i), slot)
  }
  const slowestSlot = (bound: number): { above: number; count: number } => {
    let worst = { above: 0, count: 0 }
    for (const values of slots.values()) {
      const above = values.filter((v) => v > bound).length
      if (above > worst.above) worst = { above, count: values.length }
    }
    return worst
  }
  return { requests, errors, latency: h, slowestSlot, slotMs: 1000 }
}
const stable = (requests: number, errors: number, p99Ms = 10, baseline = false): StableFigures => ({ requests, errors, p99Us: p99Ms * 1000, baseline })

t.test('no pass before minRequests canary requests; a proven fail needs no minimum (issue 9)', async (t) => {
  const clean = evaluateGate(canary(49, 0), stable(1000, 0), settings(), 1)
  t.equal(clean.verdict, 'insufficient', '49 clean requests hold')
  t.match(clean.reason, /49 of 50 canary requests/)
  t.equal(clean.findings[0]?.check, 'minRequests')
  t.equal(evaluateGate(canary(49, 49), stable(1000, 0), settings(), 1).verdict, 'fail', '49 failures out of 49 fail at once')
})

t.test('the issue example reads as written', async (t) => {
  const d = evaluateGate(canary(240, 29), stable(1000, 0), settings({ maxErrorRateIncrease: null, maxP99Ratio: null }), 1)
  t.equal(d.verdict, 'fail')
  t.match(d.reason, 'canary error rate 12.1% over 240 requests > max 1.0%')
})

t.test('a canary returning 30% 5xx fails as soon as it has minRequests', async (t) => {
  for (const min of [10, 20, 50]) {
    const d = evaluateGate(canary(min, Math.round(min * 0.3)), stable(1000, 0), settings({ minRequests: min }), 1)
    t.equal(d.verdict, 'fail', `at minRequests ${min}`)
  }
})

t.test('hard failure: 100% 5xx fails at minRequests', async (t) => {
  t.equal(evaluateGate(canary(20, 20), stable(500, 2), settings({ minRequests: 20 }), 1).verdict, 'fail')
})

t.test('one unlucky error among few requests holds instead of rolling back', async (t) => {
  const d = evaluateGate(canary(20, 1), stable(2000, 10), settings({ minRequests: 20 }), 1)
  t.equal(d.verdict, 'insufficient', 'observed 5% > 1% but not conclusive at 99%')
  t.match(d.reason, /not yet conclusive at 99% confidence/)
})

t.test('confidence 0.5 compares the observed figures as they are', async (t) => {
  const d = evaluateGate(canary(20, 1), stable(2000, 10), settings({ minRequests: 20, confidence: 0.5 }), 1)
  t.equal(d.verdict, 'fail')
})

t.test('error-rate increase over stable', async (t) => {
  const s = settings({ maxErrorRate: null, maxP99Ms: null, maxP99Ratio: null })
  t.equal(evaluateGate(canary(2000, 60), stable(20_000, 100), s, 1).verdict, 'fail', '3% vs 0.5% over plenty of requests')
  t.equal(evaluateGate(canary(2000, 12), stable(20_000, 100), s, 1).verdict, 'pass', '0.6% vs 0.5% is within 0.5 points')
  const noStable = evaluateGate(canary(2000, 60), stable(10, 0), s, 1)
  t.equal(noStable.verdict, 'pass', 'without enough stable requests the increase check is not applied')
})

t.test('absolute p99', async (t) => {
  const s = settings({ maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ratio: null })
  const slow = evaluateGate(canary(200, 0, () => 800), stable(1000, 0), s, 1)
  t.equal(slow.verdict, 'fail')
  t.match(slow.reason, /canary p99 800ms over 200 responses > max 500ms/)
  t.equal(evaluateGate(canary(200, 0, () => 100), stable(1000, 0), s, 1).verdict, 'pass')
  // 1 slow response in 100 puts p99 at the slow value, but is one sample, not a trend.
  const one = evaluateGate(canary(100, 0, (i) => (i === 0 ? 900 : 10)), stable(1000, 0), s, 1)
  t.not(one.verdict, 'fail', 'a single outlier does not roll back')
})

t.test('a latency breach that sits in one window slot holds; the same share spread over slots fails', async (t) => {
  const s = settings({ maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ratio: null })
  // 30 slow responses of 300 (10%): conclusive by count, but all in slot 0, as a
  // pause of the host leaves them.
  const pause = evaluateGate(
    canary(300, 0, (i) => (i < 30 ? 800 : 10), (i) => (i < 30 ? 0 : 1 + (i % 9))),
    stable(1000, 0),
    s,
    1,
  )
  t.equal(pause.verdict, 'insufficient')
  t.match(pause.reason, /canary p99 800ms over 300 responses > max 500ms \(the slow responses are mostly within one 1s slot: a pause or a spike, not yet a trend\)/)
  // The same 30 in 300, three in each of 10 slots: a trend.
  const trend = evaluateGate(
    canary(300, 0, (i) => (i < 30 ? 800 : 10), (i) => i % 10),
    stable(1000, 0),
    s,
    1,
  )
  t.equal(trend.verdict, 'fail')
  // Two slots with half each: without the worst, 15 of 150 remain (10%), still conclusive.
  const two = evaluateGate(canary(300, 0, (i) => (i < 30 ? 800 : 10), (i) => i % 2), stable(1000, 0), s, 1)
  t.equal(two.verdict, 'fail')
  // The ratio check follows the same rule.
  const ratio = settings({ maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null })
  const ratioPause = evaluateGate(canary(300, 0, (i) => (i < 30 ? 60 : 10), (i) => (i < 30 ? 0 : 1 + (i % 9))), stable(2000, 0, 10), ratio, 1)
  t.equal(ratioPause.verdict, 'insufficient')
  t.match(ratioPause.reason, /stable p99 10\.0ms .* \(the slow responses are mostly within one 1s slot/)
})

t.test('p99 ratio against stable, with the minP99Delta floor', async (t) => {
  const s = settings({ maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null })
  const threeX = evaluateGate(canary(200, 0, () => 30), stable(2000, 0, 10), s, 1)
  t.equal(threeX.verdict, 'fail', '3x slower fails')
  t.match(threeX.reason, /3\.\d+x stable p99/)
  t.equal(evaluateGate(canary(200, 0, () => 0.9), stable(2000, 0, 0.3), s, 1).verdict, 'pass', '3x of sub-millisecond noise is within minP99Delta')
  t.equal(evaluateGate(canary(200, 0, () => 12), stable(2000, 0, 10), s, 1).verdict, 'pass', '1.2x passes')
})

t.test('the stable baseline stands in at 100% and is named so', async (t) => {
  const s = settings({ maxErrorRate: null, maxP99Ms: null })
  const d = evaluateGate(canary(500, 0, () => 40), stable(800, 0, 10, true), s, 1)
  t.equal(d.verdict, 'fail')
  t.match(d.reason, /stable baseline p99/)
})

t.test('checks absent from the config are off', async (t) => {
  const none = settings({ maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null })
  const d = evaluateGate(canary(100, 100, () => 5000), stable(100, 0), none, 1)
  t.equal(d.verdict, 'pass')
  t.match(d.reason, /no checks configured/)
})

t.test('a healthy canary passes and the reason gives both sides', async (t) => {
  const d = evaluateGate(canary(300, 1), stable(3000, 12), settings(), 42)
  t.equal(d.verdict, 'pass')
  t.equal(d.at, 42)
  t.match(d.reason, /canary error rate 0\.3%.*over 300 requests; stable 0\.4%/)
})
