import t from 'tap'
import { binomialUpperTail, errorRollout } from '../../bench/lib/threshold-sim.js'
import { alphaPlan } from '../../src/analysis/alpha.js'
import type { Check } from '../../src/analysis/check.js'
import { buildChecks } from '../../src/analysis/checks/index.js'
import { ALPHA, holds, OFF, rate, STAGES } from '../helpers/false-rollback.js'

/*
 * The false-rollback bound, by simulation at the threshold itself: canaries
 * exactly at the limit, looked at after every canary error (where the error
 * checks' e-values rise: the same as after every request) or every 250 ms
 * (latency), through every stage of a rollout (5%, 25%, 50%, the bake), at
 * 1,000 req/s. falseRollbackRate is 0.05 here, not the default 0.001, so
 * that a broken bound shows in a thousand rollouts: the assertion is on the
 * exact lower confidence bound (99.9%) of the observed rate, which exceeds
 * 0.05 once the true rate is about 1.5x the bound or more; the last test
 * shows the harness catching a test that is not anytime-valid. Seeded: the
 * same rollouts every run. The bench runs the default 0.001 over more. The latency checks: false-rollback-latency.test.ts.
 */
t.test('both error checks with the canary exactly at both limits (1% errors, stable 0.5%: +0.5 points)', async (t) => {
  const { checks } = buildChecks({ ...OFF, maxErrorRate: 0.01, maxErrorRateIncrease: 0.005 })
  holds(t, rate(1000, 1, (rng) => errorRollout(checks, STAGES, { canaryErrorRate: 0.01, stableErrorRate: 0.005 }, rng)), 'maxErrorRate + maxErrorRateIncrease')
})

t.test('maxErrorRateIncrease at its limit while both sides burst together (stable 0.5% -> 20% for 1 s in 5)', async (t) => {
  const { checks } = buildChecks({ ...OFF, maxErrorRateIncrease: 0.005 })
  const scenario = { canaryErrorRate: 0.01, stableErrorRate: 0.005, burst: { everyMs: 5000, forMs: 1000, canaryErrorRate: 0.205, stableErrorRate: 0.2 } }
  holds(t, rate(250, 2, (rng) => errorRollout(checks, STAGES, scenario, rng)), 'maxErrorRateIncrease under shared bursts')
})

t.test('the harness can fail: a fixed-sample test applied at every look breaks the bound', async (t) => {
  // What the gate did before issue 9: a one-look test (exact binomial, at the same α per stage and check) repeated after every error.
  const plan = alphaPlan(ALPHA, [5, 25, 50, 100], 1)
  const naive: Check = {
    id: 'naive',
    evaluate: (input) => {
      const { requests, errors } = input.canary.step
      const p = binomialUpperTail(errors, requests, 0.01)
      return { check: 'naive', verdict: p < plan.alphaAt(input.weight) ? 'fail' : 'pass', observed: null, threshold: null, n: requests, reason: '' }
    },
  }
  const r = rate(300, 5, (rng) => errorRollout([naive], STAGES, { canaryErrorRate: 0.01, stableErrorRate: 0.005 }, rng))
  t.ok(r.lower > ALPHA, `${r.rolledBack} of ${r.runs} rolled back: lower bound ${(100 * r.lower).toFixed(1)}% > ${100 * ALPHA}%`)
})
