/** What the false-rollback simulation tests share: α, the rollout's stages, the checks all off, and the rate with its exact lower bound. */
import type { Test } from 'tap'
import { binomialLowerBound, type RolloutOutcome, type Stage } from '../../bench/lib/threshold-sim.js'
import { seededRng } from '../../bench/lib/random.js'
import type { CheckSettings } from '../../src/analysis/checks/index.js'

/** 0.05, not the default 0.001, so that a broken bound shows in a thousand rollouts. */
export const ALPHA = 0.05

export const STAGES: readonly Stage[] = [
  { weight: 5, durationMs: 30_000 },
  { weight: 25, durationMs: 30_000 },
  { weight: 50, durationMs: 30_000 },
  { weight: 100, durationMs: 30_000 },
]

export const OFF: CheckSettings = { minRequests: 50, maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null, minP99DeltaMs: 5, falseRollbackRate: ALPHA, steps: [5, 25, 50, 100] }

export interface Rate {
  readonly rolledBack: number
  readonly runs: number
  /** The exact 99.9% lower confidence bound of the rollback rate. */
  readonly lower: number
  readonly looks: number
}

/** `runs` seeded rollouts: the same ones every run. */
export function rate(runs: number, seed: number, one: (rng: () => number) => RolloutOutcome): Rate {
  let rolledBack = 0
  let looks = 0
  for (let i = 0; i < runs; i++) {
    const o = one(seededRng(seed * 1_000_000 + i))
    looks += o.looks
    if (o.rolledBack) rolledBack++
  }
  return { rolledBack, runs, lower: binomialLowerBound(rolledBack, runs, 0.999), looks: looks / runs }
}

/** The bound holds unless the observed rate is proven above α. */
export function holds(t: Test, r: Rate, what: string): void {
  t.ok(r.lower <= ALPHA, `${what}: ${r.rolledBack} of ${r.runs} rolled back (${(100 * r.rolledBack / r.runs).toFixed(1)}%; 99.9% lower bound ${(100 * r.lower).toFixed(2)}% <= ${100 * ALPHA}%), ${Math.round(r.looks)} looks per rollout`)
}
