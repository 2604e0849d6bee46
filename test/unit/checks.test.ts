import t from 'tap'
import { seededRng } from '../../bench/lib/random.js'
import type { Check, GateInput } from '../../src/analysis/check.js'
import { buildChecks, type CheckSettings } from '../../src/analysis/checks/index.js'
import type { Finding } from '../../src/analysis/finding.js'
import { AnalysisStep, countsInput } from '../helpers/analysis-step.js'

/** The SPEC example's analysis section. */
const SPEC: CheckSettings = {
  minRequests: 50,
  maxErrorRate: 0.01,
  maxErrorRateIncrease: 0.005,
  maxP99Ms: 500,
  maxP99Ratio: 1.5,
  minP99DeltaMs: 5,
  falseRollbackRate: 0.001,
  steps: [5, 25, 50, 100],
}

function check(id: string, settings: CheckSettings = SPEC): Check {
  const found = buildChecks(settings).checks.find((c) => c.id === id)
  if (found === undefined) throw new Error(`no check ${id}`)
  return found
}

const judge = (id: string, input: GateInput, settings?: CheckSettings): Finding => check(id, settings).evaluate(input)

t.test('buildChecks: one check per configured threshold, stable.health with maxErrorRate, in a fixed order', async (t) => {
  t.same(
    buildChecks(SPEC).checks.map((c) => c.id),
    ['maxErrorRate', 'maxErrorRateIncrease', 'maxP99', 'maxP99Ratio', 'stable.health'],
  )
  const few = buildChecks({ ...SPEC, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null })
  t.same(
    few.checks.map((c) => c.id),
    ['maxErrorRate', 'stable.health'],
  )
  t.equal(few.plan.failingChecks, 1, 'the one rolling-back check gets the whole stage share')
  t.same(buildChecks({ ...SPEC, maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null }).checks, [])
  t.same(
    buildChecks({ ...SPEC, steps: undefined } as unknown as CheckSettings).plan.stages.map((s) => s.weight),
    [5, 25, 50, 100],
    'the SPEC steps by default',
  )
})

t.test('maxErrorRate: the issue example reads as written, and needs no minimum to fail', async (t) => {
  const f = judge('maxErrorRate', countsInput(5, { requests: 240, errors: 29 }, { requests: 4560, errors: 20 }))
  t.equal(f.verdict, 'fail')
  t.match(f.reason, /^canary error rate 12\.1% over 240 requests > max 1\.0% \(sequential test: evidence .* >= 5,400 needed\)$/)
  t.same([f.check, f.threshold, f.n], ['maxErrorRate', 0.01, 240])
  t.ok(Math.abs(f.observed! - 29 / 240) < 1e-12)
  const three = judge('maxErrorRate', countsInput(5, { requests: 3, errors: 3 }, { requests: 57, errors: 0 }))
  t.equal(three.verdict, 'fail', 'three failed requests of three, far below minRequests: proven')
  const two = judge('maxErrorRate', countsInput(5, { requests: 2, errors: 2 }, { requests: 38, errors: 0 }))
  t.equal(two.verdict, 'insufficient', 'two are not proof at 1/α = 5,400')
  t.match(two.reason, /^holding: canary error rate 100\.0% over 2 requests > max 1\.0%, not yet proven \(evidence .* of 5,400 needed\)/)
})

t.test('maxErrorRate: no pass before minRequests in the window; a pass within the limit after', async (t) => {
  const few = judge('maxErrorRate', countsInput(5, { requests: 30, errors: 0 }, { requests: 570, errors: 2 }))
  t.equal(few.verdict, 'insufficient')
  t.match(few.reason, 'holding: canary error rate 0.0% over 30 requests <= max 1.0%; 30 of 50 canary requests in the window, no pass before 50')
  const enough = judge('maxErrorRate', countsInput(5, { requests: 800, errors: 4 }, { requests: 15_200, errors: 70 }))
  t.equal(enough.verdict, 'pass')
  t.equal(enough.reason, 'canary error rate 0.5% over 800 requests <= max 1.0%')
  const over = judge('maxErrorRate', countsInput(5, { requests: 800, errors: 12 }, { requests: 15_200, errors: 70 }))
  t.equal(over.verdict, 'insufficient', 'over the limit as observed but not proven: holds rather than passes')
  const none = judge('maxErrorRate', countsInput(5, { requests: 0, errors: 0 }, null))
  t.same([none.verdict, none.observed, none.n], ['insufficient', null, 0])
})

t.test('maxErrorRate: the α of the stage decides; later stages need more evidence', async (t) => {
  // 3 failures of 3: ln E = 11.58; the 5% step needs ln(5,400) = 8.6, the bake ln(108,000) = 11.59.
  t.equal(judge('maxErrorRate', countsInput(5, { requests: 3, errors: 3 }, { requests: 57, errors: 0 })).verdict, 'fail')
  t.equal(judge('maxErrorRate', countsInput(100, { requests: 3, errors: 3 }, null)).verdict, 'insufficient')
  t.equal(judge('maxErrorRate', countsInput(100, { requests: 4, errors: 4 }, null)).verdict, 'fail')
  t.equal(judge('maxErrorRate', countsInput(100, { requests: 3, errors: 3 }, null), { ...SPEC, falseRollbackRate: 0.01 }).verdict, 'fail', 'a larger falseRollbackRate needs less')
})

t.test('a dead canary at 1 req/s is rolled back (5%: one canary request every ~20 s)', async (t) => {
  const rng = seededRng(9)
  const c = check('maxErrorRate')
  const counts = { canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } }
  let failedAt: number | null = null
  for (let s = 1; s <= 600 && failedAt === null; s++) {
    if (rng() < 0.05) {
      counts.canary.requests++
      counts.canary.errors++
    } else {
      counts.stable.requests++
      if (rng() < 0.005) counts.stable.errors++
    }
    if (c.evaluate(countsInput(5, { ...counts.canary }, { ...counts.stable })).verdict === 'fail') failedAt = s
  }
  t.not(failedAt, null, 'rolled back within the 10 min progressDeadline')
  t.equal(counts.canary.requests, 3, `on its third request (after ${failedAt} s)`)
})

t.test('shared failures: a stable failing as much is not charged to the canary; one failing less is', async (t) => {
  const shared = countsInput(25, { requests: 2500, errors: 250 }, { requests: 7500, errors: 760 })
  const f = judge('maxErrorRate', shared)
  t.equal(f.verdict, 'insufficient')
  t.match(f.reason, /^holding: canary error rate 10\.0% over 2,500 requests > max 1\.0%, but stable is failing too \(10\.1% over 7,500 requests\) and the canary is not proven worse: not charged to the canary$/)
  const health = judge('stable.health', shared)
  t.equal(health.verdict, 'insufficient')
  t.match(health.reason, /^stable is unhealthy: stable error rate 10\.1% over 7,500 requests > max 1\.0% \(evidence .*\); holding: not charged to the canary, and no promotion against a failing stable$/)
  const worse = countsInput(25, { requests: 2500, errors: 1250 }, { requests: 7500, errors: 760 })
  t.equal(judge('maxErrorRate', worse).verdict, 'fail', 'a canary at 50% against a stable at 10%: its own failure')
  t.equal(judge('maxErrorRateIncrease', worse).verdict, 'fail')
  t.equal(judge('maxErrorRateIncrease', shared).verdict, 'pass', 'no increase over stable')
  t.equal(judge('stable.health', countsInput(25, { requests: 2500, errors: 10 }, { requests: 7500, errors: 38 })).verdict, 'pass')
})

t.test('stable.health and the comparisons are not applied at 100% (no live stable)', async (t) => {
  const bake = countsInput(100, { requests: 5000, errors: 20 }, null)
  const health = judge('stable.health', bake)
  t.same([health.verdict, health.observed, health.n], ['pass', null, 0])
  t.match(health.reason, 'no live stable at 100%')
  const increase = judge('maxErrorRateIncrease', bake)
  t.equal(increase.verdict, 'pass')
  t.match(increase.reason, /^not applied at 100%/)
  t.equal(judge('maxErrorRate', bake).verdict, 'pass', 'the absolute limit still judges the bake')
})

t.test('maxErrorRateIncrease: words, holds and passes', async (t) => {
  const soft = judge('maxErrorRateIncrease', countsInput(5, { requests: 2000, errors: 60 }, { requests: 38_000, errors: 190 }))
  t.equal(soft.verdict, 'fail')
  t.match(soft.reason, /^canary error rate 3\.0% vs stable 0\.5% \(2,000 vs 38,000 requests\): increase 2\.50 points > max 0\.50 points \(sequential test: /)
  t.ok(Math.abs(soft.observed! - 0.025) < 1e-12)
  const marginal = judge('maxErrorRateIncrease', countsInput(5, { requests: 200, errors: 3 }, { requests: 3800, errors: 19 }))
  t.equal(marginal.verdict, 'insufficient')
  t.match(marginal.reason, /^holding: .* increase 1\.00 points > max 0\.50 points, not yet proven/)
  const fine = judge('maxErrorRateIncrease', countsInput(5, { requests: 200, errors: 1 }, { requests: 3800, errors: 19 }))
  t.equal(fine.verdict, 'pass')
  const noStable = judge('maxErrorRateIncrease', countsInput(5, { requests: 60, errors: 0 }, { requests: 20, errors: 0 }))
  t.equal(noStable.verdict, 'insufficient')
  t.match(noStable.reason, '20 of 50 stable requests in the window')
  const short = judge('maxErrorRateIncrease', countsInput(5, { requests: 10, errors: 0 }, { requests: 190, errors: 0 }))
  t.match(short.reason, '10 of 50 canary requests in the window')
  t.equal(judge('maxErrorRateIncrease', countsInput(5, { requests: 5, errors: 5 }, { requests: 95, errors: 0 })).verdict, 'fail', 'a dead canary: 5 failed requests')
  t.equal(judge('maxErrorRateIncrease', countsInput(5, { requests: 5, errors: 5 }, null)).verdict, 'insufficient', 'all of 5 requests on the canary at 5% is not random routing at 5%: no proof from it')
})

/** Exponential latencies like the bench's: 5ms + Exp(mean 5ms) + 0.3ms (p99 ~28ms). */
const healthyMs = (rng: () => number): number => 5 - 5 * Math.log(1 - rng()) + 0.3

interface Traffic {
  readonly slots: number
  readonly perSlot: number
  readonly stableMs: (rng: () => number, slot: number) => number
  readonly canaryMs: (rng: () => number, slot: number) => number
  readonly weight?: number
  readonly referenceUs?: number | null
}

/** A step of `slots` 1 s slots at `perSlot` requests each, routed at random by the weight; the check's finding after each slot. */
function run(id: string, traffic: Traffic, seed = 1): { findings: Finding[]; step: AnalysisStep } {
  const rng = seededRng(seed)
  const weight = traffic.weight ?? 5
  const step = new AnalysisStep({ weight, referenceUs: traffic.referenceUs === undefined ? 28_000 : traffic.referenceUs })
  const c = check(id)
  const findings: Finding[] = []
  for (let s = 0; s < traffic.slots; s++) {
    for (let i = 0; i < traffic.perSlot; i++) {
      if (rng() * 100 < weight) step.record('canary', traffic.canaryMs(rng, s))
      else step.record('stable', traffic.stableMs(rng, s))
    }
    findings.push(c.evaluate(step.input()))
    step.nextSlot()
  }
  return { findings, step }
}

const firstFail = (findings: readonly Finding[]): number => findings.findIndex((f) => f.verdict === 'fail')

t.test('maxP99Ratio: a canary 3x slower is rolled back within 3 slots; a healthy one passes', async (t) => {
  const slow = run('maxP99Ratio', { slots: 10, perSlot: 1000, stableMs: healthyMs, canaryMs: (r) => 3 * healthyMs(r) })
  const at = firstFail(slow.findings)
  t.ok(at >= 0 && at <= 2, `failed after ${at + 1} slot(s)`)
  t.match(slow.findings[at]!.reason, /^canary p99 .* is [\d.]+x stable p99 .* > max 1\.5x and 5\.00ms above stable, i\.e\. .*; \d+ of \d+ responses slower than .* were the canary's, against its .* share of responses \(sequential test: /)
  const healthy = run('maxP99Ratio', { slots: 10, perSlot: 1000, stableMs: healthyMs, canaryMs: healthyMs })
  t.equal(firstFail(healthy.findings), -1)
  t.equal(healthy.findings[9]!.verdict, 'pass')
  t.match(healthy.findings[9]!.reason, /^canary p99 .* is [\d.]+x stable p99 .* <= max 1\.5x and 5\.00ms above stable, i\.e\. /)
})

t.test('maxP99Ratio: a tail regression (1% of requests +500ms) is caught, on the rungs beyond the p99', async (t) => {
  const tail = run('maxP99Ratio', { slots: 40, perSlot: 1000, stableMs: healthyMs, canaryMs: (r) => healthyMs(r) + (r() < 0.01 ? 500 : 0) })
  const at = firstFail(tail.findings)
  t.ok(at >= 0 && at < 30, `failed after ${at + 1} s`)
  t.match(tail.findings[at]!.reason, /responses slower than .* \(stable: .*\) were the canary's/)
  const p99 = run('maxP99', { slots: 40, perSlot: 1000, stableMs: healthyMs, canaryMs: (r) => healthyMs(r) + (r() < 0.01 ? 500 : 0) })
  t.equal(firstFail(p99.findings), -1, 'maxP99 (500ms) cannot see it: the p99 sits exactly on the knife edge')
})

t.test('maxP99Ratio: a host stall that slows both sides cancels out; one slot of canary-only pause is forgiven', async (t) => {
  const stall = run('maxP99Ratio', { slots: 20, perSlot: 1000, stableMs: (r, s) => healthyMs(r) + (s === 5 ? 300 : 0), canaryMs: (r, s) => healthyMs(r) + (s === 5 ? 300 : 0) })
  t.equal(firstFail(stall.findings), -1, 'a 1 s stall on both sides')
  t.equal(stall.findings[19]!.verdict, 'pass')
  const pause = run('maxP99Ratio', { slots: 20, perSlot: 1000, stableMs: healthyMs, canaryMs: (r, s) => healthyMs(r) + (s === 5 ? 300 : 0) })
  t.equal(firstFail(pause.findings), -1, 'a 1 s pause of the canary alone')
  t.match(pause.findings[5]!.reason, /mostly within one 1s slot: a pause or a spike, not yet a trend/)
  const twice = run('maxP99Ratio', { slots: 20, perSlot: 1000, stableMs: healthyMs, canaryMs: (r, s) => healthyMs(r) + (s === 5 || s === 9 ? 300 : 0) })
  t.ok(firstFail(twice.findings) >= 9, 'a second pause is a pattern: rolled back')
})

t.test('maxP99Ratio: not applied at 100%; holds without a tally or a reference', async (t) => {
  const bake = run('maxP99Ratio', { slots: 3, perSlot: 1000, weight: 100, stableMs: healthyMs, canaryMs: (r) => 3 * healthyMs(r) })
  t.equal(bake.findings[2]!.verdict, 'pass')
  t.match(bake.findings[2]!.reason, /^not applied at 100%/)
  const noRef = run('maxP99Ratio', { slots: 1, perSlot: 1000, referenceUs: null, stableMs: healthyMs, canaryMs: (r) => 3 * healthyMs(r) })
  t.equal(noRef.findings[0]!.verdict, 'insufficient')
  t.match(noRef.findings[0]!.reason, 'no stable latency reference yet')
  const noTally = { ...noRef.step.input(), latency: null }
  const f = check('maxP99Ratio').evaluate(noTally)
  t.equal(f.verdict, 'insufficient')
  t.match(f.reason, 'no slow-response tally in the gate input')
  t.equal(check('maxP99').evaluate(noTally).verdict, 'insufficient')
})

t.test('maxP99: slow in every slot fails; in one slot holds; a stall on both sides is not charged', async (t) => {
  const slow = run('maxP99', { slots: 10, perSlot: 1000, stableMs: healthyMs, canaryMs: (r) => (r() < 0.2 ? 700 : healthyMs(r)) })
  const at = firstFail(slow.findings)
  t.ok(at >= 1 && at <= 3, `failed after ${at + 1} slots`)
  t.match(slow.findings[at]!.reason, /^canary p99 .* over [\d,]+ responses > max 500ms \([\d.]+% of [\d,]+ responses this step slower than 500ms; sequential test: /)
  t.same([slow.findings[at]!.threshold, slow.findings[at]!.observed! > 0.5], [0.5, true])
  const once = run('maxP99', { slots: 10, perSlot: 1000, stableMs: healthyMs, canaryMs: (r, s) => (s === 2 ? 700 : healthyMs(r)) })
  t.equal(firstFail(once.findings), -1)
  t.match(once.findings[2]!.reason, /within one 1s slot/)
  const host = run('maxP99', { slots: 10, perSlot: 1000, stableMs: (r) => (r() < 0.2 ? 700 : healthyMs(r)), canaryMs: (r) => (r() < 0.2 ? 700 : healthyMs(r)) })
  t.equal(firstFail(host.findings), -1)
  t.match(host.findings[9]!.reason, /but stable is as slow .*: a host-wide slowdown, not charged to the canary/)
  const fine = run('maxP99', { slots: 5, perSlot: 1000, stableMs: healthyMs, canaryMs: healthyMs })
  t.equal(fine.findings[4]!.verdict, 'pass')
  t.match(fine.findings[4]!.reason, /^canary p99 .* over [\d,]+ responses <= max 500ms$/)
  const bake = run('maxP99', { slots: 10, perSlot: 1000, weight: 100, stableMs: healthyMs, canaryMs: (r) => (r() < 0.2 ? 700 : healthyMs(r)) })
  t.ok(firstFail(bake.findings) >= 0, 'judged in the bake too')
})

t.test('a regression that begins late in a step is not slowed by the step’s healthy history (start points)', async (t) => {
  const late = run('maxP99Ratio', { slots: 40, perSlot: 1000, stableMs: healthyMs, canaryMs: (r, s) => (s >= 25 ? 3 : 1) * healthyMs(r) })
  const at = firstFail(late.findings)
  t.ok(at >= 25 && at <= 27, `turned 3x slower at 25 s, rolled back after ${at + 1} s`)
})

t.test('maxP99 and maxP99Ratio: the holds, in words', async (t) => {
  const none = new AnalysisStep({ weight: 5, referenceUs: 28_000 })
  const empty = check('maxP99').evaluate(none.input())
  t.same([empty.verdict, empty.observed], ['insufficient', null])
  t.match(empty.reason, /^holding: no canary latency measured yet; 0 of 50 canary requests/)
  t.match(check('maxP99Ratio').evaluate(none.input()).reason, /^holding: canary p99 - vs stable p99 - \(0 vs 0 responses\); 0 of 50 stable responses/)
  const noLadder = { ...none.input(), latency: { ladder: { absolute: null, ratio: null, referenceUs: null }, absolute: null, ratio: null } }
  t.match(check('maxP99').evaluate(noLadder).reason, 'no responses counted against max 500ms yet')
  // 2 slow responses of 100: the p99 is over 500ms as observed, not proven.
  const unproven = new AnalysisStep({ weight: 5, referenceUs: 28_000 })
  for (let i = 0; i < 100; i++) unproven.record('canary', i < 2 ? 700 : 10)
  for (let i = 0; i < 1900; i++) unproven.record('stable', 10)
  const held = check('maxP99').evaluate(unproven.input())
  t.equal(held.verdict, 'insufficient')
  t.match(held.reason, /^holding: canary p99 700ms over 100 responses > max 500ms \(2\.0% of 100 responses this step slower than 500ms\), not yet proven/)
  const few = run('maxP99', { slots: 1, perSlot: 100, stableMs: healthyMs, canaryMs: healthyMs })
  t.match(few.findings[0]!.reason, /<= max 500ms; \d of 50 canary requests in the window/)
  // At 90% stable has too few responses to pass a comparison on.
  const high = run('maxP99Ratio', { slots: 1, perSlot: 120, weight: 90, stableMs: healthyMs, canaryMs: healthyMs })
  t.equal(high.findings[0]!.verdict, 'insufficient')
  t.match(high.findings[0]!.reason, /\d+ of 50 stable responses in the window, no comparison to pass on yet/)
  const shortRatio = run('maxP99Ratio', { slots: 1, perSlot: 400, stableMs: healthyMs, canaryMs: healthyMs })
  t.match(shortRatio.findings[0]!.reason, /of 50 canary requests in the window/)
})

t.test('stable.health: over the limit but not proven passes, and says so', async (t) => {
  const f = judge('stable.health', countsInput(5, { requests: 100, errors: 0 }, { requests: 300, errors: 4 }))
  t.equal(f.verdict, 'pass')
  t.equal(f.reason, 'stable error rate 1.3% over 300 requests > max 1.0%, not proven')
  t.equal(judge('stable.health', countsInput(5, { requests: 0, errors: 0 }, null)).observed, null, 'no stable request yet')
  t.match(judge('maxErrorRate', countsInput(5, { requests: 1, errors: 0 }, null)).reason, 'over 1 request ')
})
