/** stable.health: a stable proven over maxErrorRate holds the rollout, "stable is unhealthy": it is neither charged to the canary nor a baseline to promote against. */
import { HOLD_LEVEL } from '../alpha.js'
import type { Check, GateInput } from '../check.js'
import type { Finding } from '../finding.js'
import { bernoulliLogE, evidenceNeeded, formatEvidence } from '../sequential.js'
import { finding, liveStable } from './common.js'
import { pct, plural } from './words.js'

/**
 * The same mixture SPRT as maxErrorRate, on stable's counts of the step, at
 * HOLD_LEVEL (1% per stage): it never rolls back, so it spends none of
 * falseRollbackRate; a false "unhealthy" only delays the step. It reads the
 * step's cumulative counts, like maxErrorRate, so after a failure both sides
 * shared, stable's evidence (larger: more traffic, at a looser level) lasts
 * longer than the canary's, and the shared failure is never charged late.
 */
export function stableHealthCheck(limit: number): Check {
  const id = 'stable.health'
  const need = evidenceNeeded(HOLD_LEVEL)
  return {
    id,
    evaluate(input: GateInput): Finding {
      const stable = liveStable(input)
      if (stable === null) return finding(id, 'pass', null, limit, 0, 'no live stable at 100% (stable was judged in the steps before)')
      const n = stable.requests
      const rate = n === 0 ? 0 : stable.errors / n
      const logE = bernoulliLogE(stable.errors, n, limit)
      const text = `stable error rate ${pct(rate)} over ${plural(n, 'request')}`
      if (logE >= need) {
        return finding(id, 'insufficient', rate, limit, n, `stable is unhealthy: ${text} > max ${pct(limit)} (evidence ${formatEvidence(logE)}); holding: not charged to the canary, and no promotion against a failing stable`)
      }
      return finding(id, 'pass', n === 0 ? null : rate, limit, n, `${text}${rate > limit ? ` > max ${pct(limit)}, not proven` : ` <= max ${pct(limit)}`}`)
    },
  }
}
