import t from 'tap'
import { alphaPlan } from '../../src/analysis/alpha.js'
import { BET_FRACTIONS, bernoulliLogE, differenceLogE, effectiveShare, evidenceNeeded, formatEvidence, LOG_ODDS_OFFSETS, logSumExp, shareLogE } from '../../src/analysis/sequential.js'

const expit = (x: number): number => 1 / (1 + Math.exp(-x))
const logit = (p: number): number => Math.log(p / (1 - p))

/** The mixture written out the plain way (products, no logs): only usable for small counts. */
function plainMixture(k: number, n: number, p0: number): number {
  let sum = 0
  LOG_ODDS_OFFSETS.forEach((d, i) => {
    const q = expit(logit(p0) + d)
    sum += (q / p0) ** k * ((1 - q) / (1 - p0)) ** (n - k) * (i < 8 ? 0.1 / 8 : 0.9 / 12)
  })
  return sum
}

/** The difference e-process written out the plain way. */
function plainDifference(kc: number, nc: number, ks: number, ns: number, w: number, delta: number): number {
  const maxBet = 1 / (1 / (1 - w) + delta)
  let sum = 0
  for (const f of BET_FRACTIONS) {
    const bet = f * maxBet
    sum += ((1 + bet * (1 / w - delta)) ** kc * (1 - bet * (1 / (1 - w) + delta)) ** ks * (1 - bet * delta) ** (nc + ns - kc - ks)) / BET_FRACTIONS.length
  }
  return sum
}

t.test('bernoulliLogE: the mixture SPRT, computed in logs, equals the plain product form', async (t) => {
  for (const [k, n, p0] of [
    [0, 1, 0.01],
    [1, 1, 0.01],
    [3, 3, 0.01],
    [2, 100, 0.01],
    [5, 40, 0.05],
    [10, 200, 0.02],
    [50, 60, 0.5],
  ] as const) {
    t.ok(Math.abs(bernoulliLogE(k, n, p0) - Math.log(plainMixture(k, n, p0))) < 1e-9, `k=${k} n=${n} p0=${p0}`)
  }
})

t.test('bernoulliLogE: edge cases n = 0, k = 0, k = n, p0 at 0 and 1, bad counts', async (t) => {
  t.equal(bernoulliLogE(0, 0, 0.01), 0, 'no data: e-value 1')
  t.ok(bernoulliLogE(0, 1, 0.01) < 0, 'a success-free trial is evidence for the null')
  t.ok(bernoulliLogE(0, 10_000, 0.01) < bernoulliLogE(0, 100, 0.01), 'more clean trials, less evidence')
  t.ok(bernoulliLogE(3, 3, 0.01) > Math.log(16_000), 'three failures of three against 1% pass even 1/α = 16,000')
  t.ok(bernoulliLogE(2, 2, 0.01) < Math.log(5_000), 'two are not enough for 1/α = 5,000')
  t.equal(bernoulliLogE(1, 10, 0), Infinity, 'limit 0: one event proves the breach')
  t.equal(bernoulliLogE(0, 10, 0), 0)
  t.equal(bernoulliLogE(10, 10, 1), -Infinity, 'limit 1: nothing can breach it')
  t.equal(bernoulliLogE(5, 3, 0.01), bernoulliLogE(3, 3, 0.01), 'k above n is read as k = n')
  t.equal(bernoulliLogE(-1, 10, 0.01), bernoulliLogE(0, 10, 0.01))
  t.equal(bernoulliLogE(Number.NaN, Number.NaN, 0.01), 0)
})

t.test('bernoulliLogE: monotone in k, n and the limit', async (t) => {
  for (let k = 0; k < 30; k++) t.ok(bernoulliLogE(k + 1, 200, 0.01) > bernoulliLogE(k, 200, 0.01), `more events, more evidence (k=${k})`)
  for (let n = 10; n < 300; n += 10) t.ok(bernoulliLogE(5, n + 10, 0.01) < bernoulliLogE(5, n, 0.01), `more trials for the same events, less (n=${n})`)
  for (const p0 of [0.005, 0.01, 0.02, 0.05]) t.ok(bernoulliLogE(10, 100, p0 * 1.5, 0.005) < bernoulliLogE(10, 100, p0, 0.005), `a higher limit on the same grid, less (p0=${p0})`)
})

t.test('bernoulliLogE: huge counts stay finite, with no overflow', async (t) => {
  const atLimit = bernoulliLogE(1e10, 1e12, 0.01)
  t.ok(Number.isFinite(atLimit) && atLimit < 0, `1e12 trials exactly at the limit: ln E = ${atLimit}`)
  const over = bernoulliLogE(1.1e10, 1e12, 0.01)
  t.ok(Number.isFinite(over) && over > 1e6, `1.1% against a 1% limit in 1e12 trials: ln E = ${over.toExponential(2)}`)
  t.ok(bernoulliLogE(1.1e5, 1e7, 0.01) > Math.log(1e4), 'the fine offsets prove a 10% relative excess once there are enough trials')
  t.ok(Number.isFinite(bernoulliLogE(1e9, 1e9, 0.01)))
})

t.test('bernoulliLogE: a martingale at the limit and a supermartingale below it (one more trial, expectation taken exactly)', async (t) => {
  for (const [k, n] of [
    [0, 0],
    [1, 10],
    [3, 50],
    [0, 200],
    [8, 400],
  ] as const) {
    const now = Math.exp(bernoulliLogE(k, n, 0.01))
    const next = (p: number): number => p * Math.exp(bernoulliLogE(k + 1, n + 1, 0.01)) + (1 - p) * Math.exp(bernoulliLogE(k, n + 1, 0.01))
    t.ok(Math.abs(next(0.01) - now) < 1e-9 * Math.max(1, now), `at p = p0 the expected next e-value is the current one (k=${k} n=${n})`)
    t.ok(next(0.005) < now, `below the limit it shrinks in expectation (k=${k} n=${n})`)
  }
})

t.test('bernoulliLogE: raising p0 above the grid base only ever lowers an e-value above 1 (what shareLogE relies on)', async (t) => {
  for (let k = 0; k <= 40; k += 4) {
    for (const n of [40, 80, 200]) {
      const base = bernoulliLogE(k, n, 0.05, 0.05)
      for (const p0 of [0.06, 0.08, 0.12]) {
        const raised = bernoulliLogE(k, n, p0, 0.05)
        t.ok(raised <= 0 || raised <= base + 1e-12, `k=${k} n=${n} p0=${p0}: ${raised} vs ${base}`)
      }
    }
  }
})

t.test('shareLogE: the labels of the events against the canary share', async (t) => {
  t.equal(shareLogE(3, 7, 0.05), bernoulliLogE(3, 10, 0.05), 'no request counts: p0 is the weight')
  t.equal(shareLogE(3, 7, 0.05, 40, 960), bernoulliLogE(3, 10, 0.05), 'an observed share below the weight keeps the weight')
  t.equal(shareLogE(3, 7, 0.05, 55, 945), bernoulliLogE(3, 10, 0.05), 'a share above it by routing noise alone keeps it too')
  t.ok(shareLogE(10, 5, 0.05, 80, 920) < shareLogE(10, 5, 0.05, 40, 960), 'a heavier share than noise explains (sticky users) raises p0')
  t.equal(effectiveShare(0.05, 0, 0), 0.05)
  t.ok(Math.abs(effectiveShare(0.05, 80, 920) - (0.08 - 3 * Math.sqrt(0.0475 / 1000))) < 1e-15)
  t.equal(effectiveShare(0.5, 1, 0), 0.5, 'one request says nothing of the share')
  t.equal(shareLogE(5, 0, 1), -Infinity, 'at 100% there is nothing to compare')
  t.equal(shareLogE(5, 0, 0), 0)
  t.ok(shareLogE(4, 0, 0.05) > Math.log(1e4), 'four canary events and no stable one at 5%: strong evidence')
  t.ok(shareLogE(5, 95, 0.05) < 0, 'a 5% share of the events at 5% weight: evidence for the null')
  const now = Math.exp(shareLogE(2, 20, 0.25))
  const next = 0.25 * Math.exp(shareLogE(3, 20, 0.25)) + 0.75 * Math.exp(shareLogE(2, 21, 0.25))
  t.ok(Math.abs(next - now) < 1e-12, 'a martingale when each event is the canary’s with the weight’s probability')
})

t.test('differenceLogE: the betting e-process for pc - ps <= delta', async (t) => {
  for (const [kc, nc, ks, ns, w, d] of [
    [0, 1, 0, 19, 0.05, 0.005],
    [2, 50, 5, 950, 0.05, 0.005],
    [5, 5, 4, 95, 0.05, 0.005],
    [10, 500, 3, 500, 0.5, 0.005],
    [1, 10, 0, 10, 0.5, 0],
  ] as const) {
    t.ok(Math.abs(differenceLogE(kc, nc, ks, ns, w, d) - Math.log(plainDifference(kc, nc, ks, ns, w, d))) < 1e-9, `kc=${kc} nc=${nc} ks=${ks} ns=${ns} w=${w} delta=${d}`)
  }
  t.equal(differenceLogE(0, 0, 0, 0, 0.05, 0.005), 0, 'no data')
  t.equal(differenceLogE(3, 3, 0, 0, 1, 0.005), 0, 'no stable share: not applicable')
  t.equal(differenceLogE(3, 3, 0, 10, 0.05, 1), -Infinity, 'a margin of 1 cannot be exceeded')
  t.ok(differenceLogE(5, 5, 0, 95, 0.05, 0.005) > Math.log(1e4), 'a dead canary at 5%: 5 failed requests are enough')
  t.ok(differenceLogE(50, 1000, 500, 10_000, 0.09, 0.005) < 0, 'both at 5%: no evidence of an increase')
  t.ok(differenceLogE(20, 1000, 5, 1000, 0.5, 0.005) > differenceLogE(10, 1000, 5, 1000, 0.5, 0.005), 'more canary errors, more evidence')
  t.ok(differenceLogE(10, 80, 5, 920, 0.05, 0.005) < Math.log(plainDifference(10, 80, 5, 920, 0.05, 0.005)), 'a heavier canary share than noise explains: less')
  t.ok(differenceLogE(10, 1000, 10, 1000, 0.5, 0.005) < differenceLogE(10, 1000, 5, 1000, 0.5, 0.005), 'more stable errors, less')
  const huge = differenceLogE(2e9, 1e11, 5e9, 9e11, 0.1, 0.005)
  t.ok(Number.isFinite(huge) && huge > 1e6, 'huge counts stay finite')
})

t.test('differenceLogE: a martingale exactly at the margin (one more request, expectation taken exactly)', async (t) => {
  const w = 0.25
  const ps = 0.02
  const pc = ps + 0.005
  for (const [kc, nc, ks, ns] of [
    [0, 0, 0, 0],
    [3, 40, 4, 160],
    [1, 20, 6, 180],
  ] as const) {
    const e = (a: number, b: number, c: number, d: number): number => Math.exp(differenceLogE(a, b, c, d, w, 0.005))
    const now = e(kc, nc, ks, ns)
    const next = w * pc * e(kc + 1, nc + 1, ks, ns) + w * (1 - pc) * e(kc, nc + 1, ks, ns) + (1 - w) * ps * e(kc, nc, ks + 1, ns + 1) + (1 - w) * (1 - ps) * e(kc, nc, ks, ns + 1)
    t.ok(Math.abs(next - now) < 1e-9 * Math.max(1, now), `kc=${kc} nc=${nc} ks=${ks} ns=${ns}: ${next} vs ${now}`)
  }
})

t.test('logSumExp, evidenceNeeded and formatEvidence', async (t) => {
  t.equal(logSumExp([]), -Infinity)
  t.equal(logSumExp([1000, 1000]), 1000 + Math.log(2))
  t.equal(logSumExp([-Infinity, 0]), 0)
  t.equal(logSumExp([Infinity, 0]), Infinity)
  t.equal(evidenceNeeded(0.001), Math.log(1000))
  t.equal(evidenceNeeded(0), Infinity)
  t.equal(formatEvidence(Math.log(5400)), '5,400')
  t.equal(formatEvidence(Math.log(320_000)), '3.2e5')
  t.equal(formatEvidence(Math.log(2.5)), '2.5')
  t.equal(formatEvidence(Infinity), '∞')
  t.equal(formatEvidence(-Infinity), '0')
  t.equal(formatEvidence(1e4), 'e^10000')
})

t.test('alphaPlan: shares in proportion to 1/weight, split among the checks; the plan adds up to falseRollbackRate', async (t) => {
  const plan = alphaPlan(0.001, [5, 25, 50, 100], 4)
  t.same(
    plan.stages.map((s) => s.weight),
    [5, 25, 50, 100],
  )
  t.ok(Math.abs(plan.stages.reduce((sum, s) => sum + s.share, 0) - 1) < 1e-12)
  t.ok(Math.abs(plan.stages[0]!.share - 0.2 / 0.27) < 1e-12, 'the 5% step: (1/5) / (1/5 + 1/25 + 1/50 + 1/100)')
  const spent = plan.stages.reduce((sum, s) => sum + plan.alphaAt(s.weight) * plan.failingChecks, 0)
  t.ok(Math.abs(spent - 0.001) < 1e-15, 'every check of every stage: exactly falseRollbackRate')
  t.ok(plan.alphaAt(5) > plan.alphaAt(25) && plan.alphaAt(25) > plan.alphaAt(100))
  t.same(
    alphaPlan(0.01, [10, 50], 2).stages.map((s) => s.weight),
    [10, 50, 100],
    'the bake (100) is a stage even when the steps stop short of it',
  )
  t.equal(alphaPlan(0.01, [1], 1).alphaAt(0.001), alphaPlan(0.01, [1], 1).alphaAt(0.01), 'weights below 0.01 are read as 0.01')
  t.ok(alphaPlan(0.01, [50], 1).alphaAt(1) <= 0.01, 'an unplanned weight never gets more than the whole budget')
  t.equal(alphaPlan(0.01, [50], 0).failingChecks, 1)
  const kept = alphaPlan(0.001, [5, 25, 50, 100], 4, 5)
  t.same(
    kept.stages.map((s) => s.weight),
    [5, 25, 50, 95],
    'with bakeStableShare 5 the bake runs at 95%',
  )
  t.ok(Math.abs(kept.stages.reduce((sum, s) => sum + kept.alphaAt(s.weight) * 4, 0) - 0.001) < 1e-15)
})

t.test('the simulation statistics: exact binomial tail and bounds', async (t) => {
  const { binomialUpperTail, binomialLowerBound, binomialUpperBound } = await import('../../bench/lib/threshold-sim.js')
  t.ok(Math.abs(binomialUpperTail(1, 10, 0.1) - (1 - 0.9 ** 10)) < 1e-12)
  t.ok(Math.abs(binomialUpperTail(2, 3, 0.5) - 0.5) < 1e-12)
  t.same([binomialUpperTail(0, 5, 0.3), binomialUpperTail(6, 5, 0.3), binomialUpperTail(1, 5, 0), binomialUpperTail(1, 5, 1)], [1, 0, 0, 1])
  t.ok(Math.abs(binomialUpperTail(1, 10, binomialLowerBound(1, 10, 0.95)) - 0.05) < 1e-9, 'lower bound: P(X >= k) = 5% there')
  t.ok(Math.abs(1 - binomialUpperTail(1, 10, binomialUpperBound(0, 10, 0.95)) - 0.05) < 1e-9, 'upper bound: P(X <= k) = 5% there')
  t.same([binomialLowerBound(0, 10, 0.95), binomialUpperBound(10, 10, 0.95), binomialUpperBound(0, 0, 0.95)], [0, 1, 1])
})
