/** What the two latency checks share: the worst-slot rule and the tally they read. */
import type { GateInput } from '../check.js'
import { addPair, subtractPair, type FamilyTally, type PairTally } from '../latency-ladder.js'
import { logSumExp } from '../sequential.js'

/**
 * The counts without the window slot where the canary had the most slow
 * responses on rung j, when that slot holds most of them (more than half);
 * the counts as they are otherwise. Latencies are not independent samples: a
 * pause of one side's host (a GC, a neighbour taking the CPU, a cold start)
 * slows every response in flight there at once, and the sequential tests
 * assume each response on its own. A breach that rests on one slot must
 * stand without it (a real regression slows every slot; a pause sits in
 * one), so it fails a slot or so later; one whose slow responses are spread
 * over several slots is not a pause. Requiring this besides the test itself
 * is an intersection with a valid test, so it can only remove rollbacks: the
 * bound stands.
 */
export function withoutWorstSlot(family: Pick<FamilyTally, 'step' | 'slots'>, rung: number): PairTally {
  let worst: PairTally | null = null
  for (const slot of family.slots) if ((slot.canary.slow[rung] ?? 0) > (worst?.canary.slow[rung] ?? 0)) worst = slot
  if (worst === null || 2 * (worst.canary.slow[rung] ?? 0) <= (family.step.canary.slow[rung] ?? 0)) return family.step
  return subtractPair(family.step, worst)
}

/**
 * Prior weight of starting the test at the step's slot a: 1/2 for the step's
 * start, 1/(2a(a+1)) for slot a >= 1 (they add up to 1). Fixed before any
 * data, over the step's own slot numbers.
 */
function startWeight(a: number): number {
  return a === 0 ? 0.5 : 0.5 / (a * (a + 1))
}

/**
 * ln E of a latency check as a mixture over where the test starts: the
 * step's first slot, or any slot still in the window. A test started at slot
 * a, on the counts from a on, is a supermartingale that stays at 1 until a
 * (every slot is counted against a ladder fixed before it), so the mixture
 * with weights fixed in advance is one too (a start older than the window
 * cannot be computed and is left out: that only lowers the sum).
 *
 * Why: a test from the step's start carries the healthy history. Every
 * stable slow response before the canary turned bad is evidence for the
 * null, so a regression that begins 25 s into a step must first outweigh 25
 * s of it; a test that starts at the onset pays ln(1/weight) instead (3.2
 * nats for slot 3, 7 for slot 25) and nothing for the history.
 *
 * Starts: the step's first slot and the last RECENT_STARTS slots of the
 * window. `rungStat(tally, j)` is rung j's ln E on a tally; `rungLogWeights` its
 * weight. Returns the mixture on the counts as they are, and on the counts
 * without the worst slot (per start and rung): the check fails only when both
 * reach the level.
 */
/**
 * Starts tried besides the step's own: the last 10 slots. A regression is
 * proven within a few slots of its onset or not at all by this route, and
 * each start costs a look 6 share tests (measured: all 30 made a look 3x
 * slower). Leaving terms out of the mixture only lowers it: still valid.
 */
const RECENT_STARTS = 10

export function startMixture(family: FamilyTally, rungLogWeights: readonly number[], rungStat: (tally: PairTally, rung: number) => number): { readonly logE: number; readonly logRest: number } {
  const full: number[] = []
  const rest: number[] = []
  const add = (start: number, tally: PairTally, slots: readonly PairTally[]): void => {
    const w = Math.log(startWeight(start))
    rungLogWeights.forEach((rw, j) => {
      // No canary slow response from this start: its e-value is below 1, its term below its weight; leaving it out only lowers the sum.
      if ((tally.canary.slow[j] ?? 0) === 0) return
      const e = rungStat(tally, j)
      full.push(w + rw + e)
      const without = withoutWorstSlot({ step: tally, slots }, j)
      rest.push(w + rw + (without === tally ? e : rungStat(without, j)))
    })
  }
  add(0, family.step, family.slots)
  const first = family.stepSlots - family.slots.length
  let suffix: PairTally | null = null
  for (let i = family.slots.length - 1; i >= Math.max(0, family.slots.length - RECENT_STARTS); i--) {
    suffix = suffix === null ? family.slots[i]! : addPair(suffix, family.slots[i]!)
    const start = first + i
    if (start > 0) add(start, suffix, family.slots.slice(i))
  }
  return { logE: logSumExp(full), logRest: logSumExp(rest) }
}

/** The latency tally, or words saying why there is none. */
export function tallyOf(input: GateInput): { readonly latency: NonNullable<GateInput['latency']> } | { readonly missing: string } {
  const latency = input.latency
  if (latency === undefined || latency === null) return { missing: 'no slow-response tally in the gate input (GateInput.latency), so latency is not judged' }
  return { latency }
}
