/** maxErrorRate: the canary's error share against the limit, by a mixture SPRT on the step's counts; a failure stable shares is not charged to the canary. */
import { HOLD_LEVEL } from '../alpha.js'
import type { Check, GateInput } from '../check.js'
import type { Finding } from '../finding.js'
import { bernoulliLogE, evidenceNeeded, formatEvidence, shareLogE } from '../sequential.js'
import { finding, liveStable, share, shortOfMinimum, type CheckContext } from './common.js'
import { count, pct, plural } from './words.js'

/**
 * Null: at every moment a canary request fails with probability at most
 * `limit`. Guarantee: while it holds, this check fails the canary in a stage
 * with probability at most plan.alphaAt(weight), however often it is
 * evaluated (bernoulliLogE). A fail needs no minimum of requests: a canary
 * that fails its first 3 requests against a 1% limit is proven bad.
 *
 * Shared failures: when stable is itself proven over the limit (at
 * HOLD_LEVEL) and the canary is not proven worse than stable (the share test,
 * at HOLD_LEVEL), the breach is the environment's (a dependency both sides
 * use), not the canary's: the check holds instead of failing. That can only
 * remove rollbacks, so the bound above stands. It is proven for stable first
 * whenever stable takes at least as much traffic (every step up to 50%);
 * above 50% the canary's own test may win the race and roll back.
 */
export function errorRateCheck(context: CheckContext, limit: number): Check {
  const id = 'maxErrorRate'
  return {
    id,
    evaluate(input: GateInput): Finding {
      const { requests: n, errors: k } = input.canary.step
      const rate = n === 0 ? 0 : k / n
      const alpha = context.plan.alphaAt(input.weight)
      const need = evidenceNeeded(alpha)
      const logE = bernoulliLogE(k, n, limit)
      const text = `canary error rate ${pct(rate)} over ${plural(n, 'request')}`
      const at = (verdict: Finding['verdict'], reason: string): Finding => finding(id, verdict, n === 0 ? null : rate, limit, n, reason)
      if (logE >= need) {
        const shared = sharedFailure(input, limit, k, n)
        if (shared !== null) return at('insufficient', `holding: ${text} > max ${pct(limit)}, but ${shared}: not charged to the canary`)
        return at('fail', `${text} > max ${pct(limit)} (sequential test: evidence ${formatEvidence(logE)} >= ${formatEvidence(need)} needed)`)
      }
      if (rate > limit) return at('insufficient', `holding: ${text} > max ${pct(limit)}, not yet proven (evidence ${formatEvidence(logE)} of ${formatEvidence(need)} needed); collecting more requests`)
      const short = shortOfMinimum(input, context.settings.minRequests)
      if (short !== null) return at('insufficient', `holding: ${text} <= max ${pct(limit)}; ${short}`)
      return at('pass', `${text} <= max ${pct(limit)}`)
    },
  }
}

/** Words for a stable that fails as much as the canary does, or null when the canary's breach is its own. */
function sharedFailure(input: GateInput, limit: number, k: number, n: number): string | null {
  const stable = liveStable(input)
  if (stable === null || stable.requests === 0) return null
  const hold = evidenceNeeded(HOLD_LEVEL)
  if (bernoulliLogE(stable.errors, stable.requests, limit) < hold) return null
  if (shareLogE(k, stable.errors, share(input), n, stable.requests) >= hold) return null
  return `stable is failing too (${pct(stable.errors / stable.requests)} over ${count(stable.requests)} requests) and the canary is not proven worse`
}
