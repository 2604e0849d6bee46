import t from 'tap'
import { latencyRollout } from '../../bench/lib/threshold-sim.js'
import { buildChecks } from '../../src/analysis/checks/index.js'
import { holds, OFF, rate, STAGES } from '../helpers/false-rollback.js'

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
 * same rollouts every run. The bench runs the default 0.001 over more. The error checks: false-rollback-errors.test.ts.
 */
t.test('maxP99Ratio with the canary exactly at g(stable) on every rung, host stalls included', async (t) => {
  const { checks } = buildChecks({ ...OFF, maxP99Ratio: 1.5 })
  const scenario = { stableTail: [0.01, 0.002, 0.0005], stallEvery: 7, stallTail: [0.3, 0.1, 0.02] }
  holds(t, rate(200, 3, (rng) => latencyRollout(checks, STAGES, scenario, 'ratio', rng)), 'maxP99Ratio')
})

t.test('maxP99 with the canary exactly at 1% of responses over the bound', async (t) => {
  const { checks } = buildChecks({ ...OFF, maxP99Ms: 500 })
  holds(t, rate(200, 4, (rng) => latencyRollout(checks, STAGES, { stableTail: [0.005], canaryTail: [0.01] }, 'absolute', rng)), 'maxP99')
})

