/**
 * The gate: runs every check on one GateInput and joins their findings into a
 * Decision. Any proven fail fails, at any number of requests (a canary that
 * fails every request is rolled back at 1 req/s too); else any insufficient
 * holds; else pass. No pass is given before the canary has minRequests
 * requests in the window: that holds, and says so. Pure.
 */
import type { Check, GateInput } from './check.js'
import type { Decision, Finding } from './finding.js'
import { count, ms, pct } from '../core/format.js'

export interface GateSettings {
  readonly minRequests: number
  /** Whether any check compares with stable (for the words of a pass without a stable reference). */
  readonly compares: boolean
}

export function decide(checks: readonly Check[], input: GateInput, settings: GateSettings): Decision {
  const now = input.now
  const canary = input.canary.window
  const n = canary.requests
  const findings: Finding[] = checks.map((check) => check.evaluate(input))
  const failed = findings.filter((f) => f.verdict === 'fail')
  if (failed.length > 0) return { at: now, verdict: 'fail', reason: failed.map((f) => f.reason).join('; '), findings }
  if (n < settings.minRequests) {
    const reason = `${count(n)} of ${count(settings.minRequests)} canary requests in the window; no pass before ${count(settings.minRequests)}`
    const short: Finding = { check: 'minRequests', verdict: 'insufficient', observed: n, threshold: settings.minRequests, n, reason }
    const others = findings.filter((f) => f.verdict === 'insufficient').map((f) => f.reason)
    return { at: now, verdict: 'insufficient', reason: `holding: ${[reason, ...others].join('; ')}`, findings: [short, ...findings] }
  }
  const held = findings.filter((f) => f.verdict === 'insufficient')
  if (held.length > 0) return { at: now, verdict: 'insufficient', reason: `holding: ${held.map((f) => f.reason).join('; ')}; collecting more requests`, findings }

  const latency = (p99Us: number | null): string => (p99Us === null ? '' : `, p99 ${ms(p99Us)}`)
  // Only live stable figures are a reference: at 100% (and in the bake) the comparisons are not applied (issue 9).
  const live = input.stable?.window
  const reference = live !== undefined && live.requests >= settings.minRequests ? live : null
  const compared =
    reference !== null
      ? `; stable ${pct(reference.errors / reference.requests)}${latency(reference.quantileUs(0.99))} over ${count(reference.requests)}`
      : settings.compares
        ? input.weight >= 100
          ? '; no live stable at 100%, so the comparisons with stable are not applied'
          : `; no stable reference (fewer than ${settings.minRequests} stable requests), so the comparisons with stable are not applied`
        : ''
  // A comparison without a stable reference passes without having been applied.
  const used = findings.filter((f) => f.observed !== null).length
  if (used === 0) return { at: now, verdict: 'pass', reason: `${count(n)} canary requests${settings.compares ? compared : '; no checks configured'}`, findings }
  const applied = used === 1 ? 'the 1 check' : `all ${used} checks`
  return { at: now, verdict: 'pass', reason: `canary error rate ${pct(canary.errors / n)}${latency(canary.quantileUs(0.99))} over ${count(n)} requests${compared}: within ${applied} applied`, findings }
}
