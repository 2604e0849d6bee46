/** How analysis.falseRollbackRate is spent over one rollout: a share per stage (in proportion to 1/weight), split equally among the checks that can roll back. */

/**
 * The bound is per rollout: every test that can roll a canary back, in every
 * stage, takes a part of it, and the parts add up to falseRollbackRate (a
 * union bound: the chance that any of them ever rejects is at most the sum).
 *
 * Stages are the configured steps below 100 and the bake (at 100, or at 100
 * minus rollout.bakeStableShare). Each test
 * restarts at every stage, on that stage's counts only: a canary that turns
 * bad in the third step is then not slowed down by the evidence of health it
 * piled up in the first two.
 *
 * Shares in proportion to 1/weight: a stage at weight w sees the canary at w%
 * of the traffic, so gathering the same evidence takes time in proportion to
 * 1/w. Spending by 1/w gives the first, slowest stage the most (steps
 * 5/25/50 + bake: 74%, 15%, 7.4%, 3.7%), where a larger α buys the most time
 * and the canary's failures reach the fewest users; the later stages see 5x,
 * 10x, 20x more canary requests per second and lose little to a smaller α
 * (ln(1/α) grows by only ln(20) = 3 between the first stage and the bake).
 *
 * Within a stage the share is split equally among the checks that can roll
 * back (maxErrorRate, maxErrorRateIncrease, maxP99, maxP99Ratio: those
 * configured); stable.health and the shared-failure filter only hold, so they
 * spend none of it (they run at HOLD_LEVEL).
 *
 * An observation the plan did not foresee (a weight set by hand, a step
 * observed afresh after a restart) gets the share its weight would have as a
 * stage: a rollout that takes such detours can spend that much more. That is
 * the price of keeping α a function of the weight alone, with nothing to
 * remember between evaluations.
 */
export interface AlphaPlan {
  readonly falseRollbackRate: number
  /** Each stage's weight (percent) and share of falseRollbackRate. */
  readonly stages: readonly { readonly weight: number; readonly share: number }[]
  /** Checks that can roll back; the stage's share is split among them. */
  readonly failingChecks: number
  /** α of one rolling-back check's test while the rollout is at `weight` percent. */
  alphaAt(weight: number): number
}

/** Level of the tests that only hold a step (stable.health, the shared-failure filter): 1% per stage. */
export const HOLD_LEVEL = 0.01

/** `bakeStableShare`: percent kept on stable in the bake, whose stage then runs at 100 minus it. */
export function alphaPlan(falseRollbackRate: number, steps: readonly number[], failingChecks: number, bakeStableShare = 0): AlphaPlan {
  const bake = 100 - Math.min(50, Math.max(0, bakeStableShare))
  const weights = [...new Set([...steps.filter((w) => w > 0 && w < bake), bake])].sort((a, b) => a - b)
  const total = weights.reduce((sum, w) => sum + 1 / w, 0)
  const stages = weights.map((weight) => ({ weight, share: 1 / weight / total }))
  const checks = Math.max(1, failingChecks)
  return {
    falseRollbackRate,
    stages,
    failingChecks: checks,
    alphaAt(weight: number): number {
      const w = Math.min(100, Math.max(weight, 0.01))
      return (falseRollbackRate * Math.min(1, 1 / w / total)) / checks
    },
  }
}
