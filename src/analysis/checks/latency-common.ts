/** What the two latency checks share: the worst-slot rule and the tally they read. */
import type { GateInput } from '../check.js'
import { subtractPair, type FamilyTally, type PairTally } from '../latency-ladder.js'

/**
 * The step's counts without the window slot where the canary had the most
 * slow responses on rung j. Latencies are not independent samples: a pause
 * of one side's host (a GC, a neighbour taking the CPU, a cold start) slows
 * every response in flight there at once, and the sequential tests assume
 * each response on its own. A latency breach must stand without that slot
 * too (a real regression slows every slot; a pause sits in one), so it fails
 * one slot later. Requiring both is the intersection of the test with a
 * smaller one, so it can only remove rollbacks: the bound stands.
 */
export function withoutWorstSlot(family: FamilyTally, rung: number): PairTally {
  let worst: PairTally | null = null
  for (const slot of family.slots) if ((slot.canary.slow[rung] ?? 0) > (worst?.canary.slow[rung] ?? 0)) worst = slot
  return worst === null ? family.step : subtractPair(family.step, worst)
}

/** The latency tally, or words saying why there is none. */
export function tallyOf(input: GateInput): { readonly latency: NonNullable<GateInput['latency']> } | { readonly missing: string } {
  const latency = input.latency
  if (latency === undefined || latency === null) return { missing: 'no slow-response tally in the gate input (GateInput.latency), so latency is not judged' }
  return { latency }
}
