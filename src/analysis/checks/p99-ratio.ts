/** maxP99Ratio: the canary's latency tail against live stable's, scaled by the ratio, by the share test on the slow responses of the ladder's rungs. */
import type { Check, GateInput } from '../check.js'
import type { Finding } from '../finding.js'
import { canaryBoundUs, RATIO_RUNGS, REFERENCE_MIN_RESPONSES, type PairTally } from '../latency-ladder.js'
import { evidenceNeeded, formatEvidence, shareLogE } from '../sequential.js'
import { finding, share, shortOfMinimum, slotWords, type CheckContext } from './common.js'
import { startMixture, tallyOf } from './latency-common.js'
import { count, ms, pct } from './words.js'

const LOG_RUNG_WEIGHTS = RATIO_RUNGS.map((r) => Math.log(r.weight))

/**
 * Null, at every moment and on every rung of the ladder (stable bound b at
 * 1x, 2x, 4x stable's reference p99): a canary response is no more likely to
 * be slower than max(ratio x b, b + minP99Delta) than a stable response is to
 * be slower than b. On the first rung that is "canary p99 <= ratio x stable
 * p99 (and minP99Delta above it)"; the others say the same of the tail beyond
 * the p99, where a regression of 1% of requests shows (at the p99 itself it
 * sits exactly on the limit and no test can see it).
 *
 * Guarantee: while the null holds and requests are routed at random with the
 * weight's probability, this check fails the canary in a stage with
 * probability at most plan.alphaAt(weight), however often it is evaluated,
 * and whatever both sides go through together: a stall of the host or of a
 * shared dependency slows stable's responses as much as the canary's, and the
 * labels of the slow responses stay the weight's coin flips (shareLogE). The
 * e-value is the mixture over the rungs (weights RATIO_RUNGS) and over where
 * the test starts (startMixture) of each rung's share test; the worst-slot
 * rule applies per rung and start. Not applied at 100%.
 */
export function p99RatioCheck(context: CheckContext, ratio: number, minDeltaMs: number): Check {
  const id = 'maxP99Ratio'
  const deltaUs = minDeltaMs * 1000
  return {
    id,
    evaluate(input: GateInput): Finding {
      const cw = input.canary.window
      const sw = input.stable?.window ?? null
      const cp99 = cw.quantileUs(0.99)
      const sp99 = sw?.quantileUs(0.99) ?? null
      const bound = sp99 === null ? null : canaryBoundUs(sp99, ratio, deltaUs)
      const at = (verdict: Finding['verdict'], n: number, reason: string): Finding => finding(id, verdict, cp99 === null ? null : cp99 / 1e6, bound === null ? null : bound / 1e6, n, reason)
      if (input.weight >= 100) return at('pass', cw.latencyCount, 'not applied at 100%: no live stable to compare with (each step below 100% compared with it live)')
      const limit = `max ${ratio}x and ${ms(deltaUs)} above stable`
      const head =
        cp99 === null || sp99 === null || sp99 <= 0
          ? `canary p99 ${cp99 === null ? '-' : ms(cp99)} vs stable p99 ${sp99 === null ? '-' : ms(sp99)} (${count(cw.latencyCount)} vs ${count(sw?.latencyCount ?? 0)} responses)`
          : `canary p99 ${ms(cp99)} is ${(cp99 / sp99).toFixed(2)}x stable p99 ${ms(sp99)} (${count(cw.latencyCount)} vs ${count(sw?.latencyCount ?? 0)} responses)`
      const breached = cp99 !== null && bound !== null && cp99 > bound
      const limitWords = bound === null ? limit : `${limit}, i.e. ${ms(bound)}`
      const got = tallyOf(input)
      if ('missing' in got) return at('insufficient', cw.latencyCount, `holding: ${head}; ${got.missing}`)
      const family = got.latency.ratio
      if (family === null) {
        // No ladder was in force when this slot began (the first slot with stable traffic): nothing can be proven
        // yet, but a pass on the point figures costs the guarantee nothing (it bounds fails) and spares a step a slot.
        const pointPass = !breached && cp99 !== null && sp99 !== null && (sw?.latencyCount ?? 0) >= context.settings.minRequests && shortOfMinimum(input, context.settings.minRequests) === null
        if (pointPass) return at('pass', cw.latencyCount, `${head} <= ${limitWords} (point figures: no latency reference was in force when this ${slotWords(input)} slot began)`)
        return at('insufficient', cw.latencyCount, `holding: ${head}; no stable latency reference yet (it needs ${REFERENCE_MIN_RESPONSES} stable responses in the window when a slot begins)`)
      }
      const w = share(input)
      const stat = (tally: PairTally, j: number): number => shareLogE(tally.canary.slow[j] ?? 0, tally.stable.slow[j] ?? 0, w, tally.canary.measured, tally.stable.measured)
      const { logE, logRest } = startMixture(family, LOG_RUNG_WEIGHTS, stat)
      const perRung = RATIO_RUNGS.map((_, j) => stat(family.step, j))
      const need = evidenceNeeded(context.plan.alphaAt(input.weight))
      const best = perRung.indexOf(Math.max(...perRung))
      const n = family.step.canary.measured
      const evidence = rungWords(got.latency.ladder.ratio?.[best] ?? null, family.step.canary.slow[best] ?? 0, family.step.stable.slow[best] ?? 0, family.step.canary.measured, family.step.stable.measured)
      if (logE >= need && logRest >= need) {
        const proof = `sequential test: evidence ${formatEvidence(Math.min(logE, logRest))} >= ${formatEvidence(need)} needed`
        if (breached) return at('fail', n, `${head} > ${limitWords}; ${evidence} (${proof})`)
        return at('fail', n, `canary latency tail beyond the p99 is more than ${ratio}x stable's: ${evidence}; ${head} (${proof})`)
      }
      if (logE >= need) return at('insufficient', n, `holding: ${head}; ${evidence}, but the canary's slow responses are mostly within one ${slotWords(input)} slot: a pause or a spike, not yet a trend`)
      // A stable p99 from a handful of responses says little: that comes first among the holds.
      if ((sw?.latencyCount ?? 0) < context.settings.minRequests) {
        return at('insufficient', cw.latencyCount, `holding: ${head}; ${count(sw?.latencyCount ?? 0)} of ${count(context.settings.minRequests)} stable responses in the window, no comparison to pass on yet`)
      }
      if (breached) return at('insufficient', n, `holding: ${head} > ${limitWords}, not yet proven (evidence ${formatEvidence(logE)} of ${formatEvidence(need)} needed)`)
      const short = shortOfMinimum(input, context.settings.minRequests)
      if (short !== null) return at('insufficient', cw.latencyCount, `holding: ${head}; ${short}`)
      return at('pass', cw.latencyCount, `${head} <= ${limitWords}`)
    },
  }
}

function rungWords(rung: { stableUs: number; canaryUs: number } | null, canarySlow: number, stableSlow: number, canaryMeasured: number, stableMeasured: number): string {
  const total = canaryMeasured + stableMeasured
  const bounds = rung === null ? 'the bound' : `${ms(rung.canaryUs)} (stable: ${ms(rung.stableUs)})`
  return `${count(canarySlow)} of ${count(canarySlow + stableSlow)} responses slower than ${bounds} were the canary's, against its ${pct(total === 0 ? 0 : canaryMeasured / total)} share of responses`
}
