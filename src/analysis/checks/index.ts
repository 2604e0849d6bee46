/** The built-in checks, built once from the analysis config: each turns a GateInput into one Finding. */
import { alphaPlan, type AlphaPlan } from '../alpha.js'
import type { Check } from '../check.js'
import { DEFAULT_STEPS, type CheckContext, type CheckSettings } from './common.js'
import { errorRateIncreaseCheck } from './error-rate-increase.js'
import { errorRateCheck } from './error-rate.js'
import { p99RatioCheck } from './p99-ratio.js'
import { p99Check } from './p99.js'
import { stableHealthCheck } from './stable-health.js'

export type { CheckSettings } from './common.js'

export interface BuiltChecks {
  /** In a fixed order: maxErrorRate, maxErrorRateIncrease, maxP99, maxP99Ratio, stable.health (each only when configured). */
  readonly checks: readonly Check[]
  /** How falseRollbackRate is spent (alpha.ts). */
  readonly plan: AlphaPlan
}

/**
 * The check set of an analysis config. Checks that can roll back share
 * falseRollbackRate (alpha.ts); stable.health comes with maxErrorRate (it is
 * the same limit, applied to stable) and only holds.
 */
export function buildChecks(settings: CheckSettings): BuiltChecks {
  const failing = [settings.maxErrorRate, settings.maxErrorRateIncrease, settings.maxP99Ms, settings.maxP99Ratio].filter((v) => v !== null).length
  const plan = alphaPlan(settings.falseRollbackRate, settings.steps ?? DEFAULT_STEPS, failing, settings.bakeStableShare ?? 0)
  const context: CheckContext = { settings, plan }
  const checks: Check[] = []
  if (settings.maxErrorRate !== null) checks.push(errorRateCheck(context, settings.maxErrorRate))
  if (settings.maxErrorRateIncrease !== null) checks.push(errorRateIncreaseCheck(context, settings.maxErrorRateIncrease))
  if (settings.maxP99Ms !== null) checks.push(p99Check(context, settings.maxP99Ms))
  if (settings.maxP99Ratio !== null) checks.push(p99RatioCheck(context, settings.maxP99Ratio, settings.minP99DeltaMs))
  if (settings.maxErrorRate !== null) checks.push(stableHealthCheck(settings.maxErrorRate))
  return { checks, plan }
}
