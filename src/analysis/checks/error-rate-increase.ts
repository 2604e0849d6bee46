/** maxErrorRateIncrease: the canary's error share minus stable's against the limit, by a betting e-process on the random routing itself. */
import type { Check, GateInput } from '../check.js'
import type { Finding } from '../finding.js'
import { differenceLogE, evidenceNeeded, formatEvidence } from '../sequential.js'
import { finding, liveStable, share, shortOfMinimum, type CheckContext } from './common.js'
import { count, pct, points } from './words.js'

/**
 * Null: at every moment, canary error probability - stable error probability
 * <= limit. Guarantee: while it holds and requests are routed at random with
 * the weight's probability, this check fails the canary in a stage with
 * probability at most plan.alphaAt(weight), however often it is evaluated
 * (differenceLogE), even when both sides' error rates move together. Not
 * applied at 100%: there is no live stable to compare with.
 */
export function errorRateIncreaseCheck(context: CheckContext, limit: number): Check {
  const id = 'maxErrorRateIncrease'
  return {
    id,
    evaluate(input: GateInput): Finding {
      const { requests: n, errors: k } = input.canary.step
      const stable = liveStable(input)
      if (stable === null) {
        return finding(id, 'pass', null, limit, n, 'not applied at 100%: no live stable to compare with (each step below 100% compared with it live)')
      }
      const rc = n === 0 ? 0 : k / n
      const rs = stable.requests === 0 ? 0 : stable.errors / stable.requests
      const increase = rc - rs
      const observed = n === 0 || stable.requests === 0 ? null : increase
      const alpha = context.plan.alphaAt(input.weight)
      const need = evidenceNeeded(alpha)
      const logE = differenceLogE(k, n, stable.errors, stable.requests, share(input), limit)
      const text = `canary error rate ${pct(rc)} vs stable ${pct(rs)} (${count(n)} vs ${count(stable.requests)} requests): increase ${points(increase)}`
      const at = (verdict: Finding['verdict'], reason: string): Finding => finding(id, verdict, observed, limit, n, reason)
      if (logE >= need) return at('fail', `${text} > max ${points(limit)} (sequential test: evidence ${formatEvidence(logE)} >= ${formatEvidence(need)} needed)`)
      if (observed !== null && increase > limit) {
        return at('insufficient', `holding: ${text} > max ${points(limit)}, not yet proven (evidence ${formatEvidence(logE)} of ${formatEvidence(need)} needed); collecting more requests`)
      }
      const short = shortOfMinimum(input, context.settings.minRequests)
      if (short !== null) return at('insufficient', `holding: ${text} <= max ${points(limit)}; ${short}`)
      const stableWindow = input.stable?.window.requests ?? 0
      if (stableWindow < context.settings.minRequests) {
        return at('insufficient', `holding: ${count(stableWindow)} of ${count(context.settings.minRequests)} stable requests in the window; no comparison to pass on yet`)
      }
      return at('pass', `${text} <= max ${points(limit)}`)
    },
  }
}
