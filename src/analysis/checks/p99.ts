/** maxP99: the canary's share of responses slower than maxP99 against 1%, by a mixture SPRT on the step's slow counts, with the worst-slot rule and the shared-slowness filter. */
import { HOLD_LEVEL } from '../alpha.js'
import type { Check, GateInput } from '../check.js'
import type { Finding } from '../finding.js'
import { bernoulliLogE, evidenceNeeded, formatEvidence, shareLogE } from '../sequential.js'
import { finding, share, shortOfMinimum, slotWords, type CheckContext } from './common.js'
import { startMixture, tallyOf } from './latency-common.js'
import { count, ms, pct } from './words.js'

/** p99 > T means more than 1% of responses are slower than T. */
const TAIL = 0.01

/**
 * Null: at every moment a canary response is slower than maxP99 with
 * probability at most 1% (that is, its p99 is within maxP99). Guarantee:
 * while it holds, with responses independent of one another, this check
 * fails the canary in a stage with probability at most plan.alphaAt(weight),
 * however often it is evaluated (a mixture over where the test starts, as for
 * maxP99Ratio: startMixture). The worst-slot rule forgives one slot of
 * slow responses (a pause) and the shared-slowness filter a stall stable
 * suffers as much (proven at HOLD_LEVEL on stable's own counts, and the
 * canary not proven slower by the share test): both only remove rollbacks.
 */
export function p99Check(context: CheckContext, maxP99Ms: number): Check {
  const id = 'maxP99'
  const boundUs = maxP99Ms * 1000
  return {
    id,
    evaluate(input: GateInput): Finding {
      const window = input.canary.window
      const p99 = window.quantileUs(0.99)
      const observed = p99 === null ? null : p99 / 1e6
      const at = (verdict: Finding['verdict'], n: number, reason: string): Finding => finding(id, verdict, observed, boundUs / 1e6, n, reason)
      const head = p99 === null ? 'no canary latency measured yet' : `canary p99 ${ms(p99)} over ${count(window.latencyCount)} responses`
      const got = tallyOf(input)
      if ('missing' in got) return at('insufficient', window.latencyCount, `holding: ${head}; ${got.missing}`)
      const family = got.latency.absolute
      const short = shortOfMinimum(input, context.settings.minRequests)
      if (family === null) return at('insufficient', window.latencyCount, `holding: ${head}; no responses counted against max ${ms(boundUs)} yet`)
      const c = family.step.canary
      const slow = c.slow[0] ?? 0
      const alpha = context.plan.alphaAt(input.weight)
      const need = evidenceNeeded(alpha)
      const { logE, logRest } = startMixture(family, [0], (tally) => bernoulliLogE(tally.canary.slow[0] ?? 0, tally.canary.measured, TAIL))
      const evidence = `${pct(c.measured === 0 ? 0 : slow / c.measured)} of ${count(c.measured)} responses this step slower than ${ms(boundUs)}`
      if (logE >= need && logRest >= need) {
        const s = family.step.stable
        const stableSlow = s.slow[0] ?? 0
        const hold = evidenceNeeded(HOLD_LEVEL)
        if (input.weight < 100 && s.measured > 0 && bernoulliLogE(stableSlow, s.measured, TAIL) >= hold && shareLogE(slow, stableSlow, share(input), c.measured, s.measured) < hold) {
          return at('insufficient', c.measured, `holding: ${head} > max ${ms(boundUs)} (${evidence}), but stable is as slow (${pct(stableSlow / s.measured)} of ${count(s.measured)}): a host-wide slowdown, not charged to the canary`)
        }
        return at('fail', c.measured, `${head} > max ${ms(boundUs)} (${evidence}; sequential test: evidence ${formatEvidence(Math.min(logE, logRest))} >= ${formatEvidence(need)} needed)`)
      }
      if (logE >= need) {
        return at('insufficient', c.measured, `holding: ${head} > max ${ms(boundUs)} (${evidence}), but the slow responses are mostly within one ${slotWords(input)} slot: a pause or a spike, not yet a trend`)
      }
      if (p99 !== null && p99 > boundUs) {
        return at('insufficient', c.measured, `holding: ${head} > max ${ms(boundUs)} (${evidence}), not yet proven (evidence ${formatEvidence(logE)} of ${formatEvidence(need)} needed)`)
      }
      if (short !== null) return at('insufficient', window.latencyCount, `holding: ${head}${p99 === null ? '' : ` <= max ${ms(boundUs)}`}; ${short}`)
      return at('pass', window.latencyCount, `${head} <= max ${ms(boundUs)}`)
    },
  }
}
