/** The latency ladder: the bounds the latency checks count slow responses against, the stable reference they follow, and the per-slot tally of slow responses the checks read. */
import type { WindowView } from './check.js'

/*
 * maxP99Ratio compares the TAILS of the two sides' latency distributions,
 * live, over the same slots: for a stable bound b and the canary bound
 * g(b) = max(ratio x b, b + minP99Delta), the null is "a canary response is
 * no more likely to be slower than g(b) than a stable response is to be
 * slower than b", at every moment. At b = stable's p99 that is exactly
 * "canary p99 <= g(stable p99)"; at 2x and 4x stable's p99 it is the same
 * statement one step further into the tail (p99.9, p99.99 for an exponential
 * tail). The share test (sequential.ts) on the labels of the slow responses
 * tests it, so a host stall, which slows both sides at once, cancels out.
 *
 *   rung   stable bound b        canary bound g(b)        weight in the mixture
 *   0      reference             g(reference)             1/2   whole distribution slower (x3)
 *   1      2 x reference         g(2 x reference)         1/4   a slower tail (1% of requests +500ms:
 *   2      4 x reference         g(4 x reference)         1/4   p99 sits on the knife edge, p99.9 does not)
 *
 * The reference is stable's p99 over the window without its worst slot
 * (robustQuantileUs), so one stall does not lift every rung for a whole
 * window and blind the check, as a plain p99 did (issue 9: latency x3 took
 * 14-29 s in 3 of 10 runs).
 *
 * A bound must be fixed before the responses counted against it are seen,
 * or the test is no longer a supermartingale: each window slot is counted
 * against the ladder chosen when that slot began (from the data before it),
 * when it closes (LatencyTallyRing). The data plane is not involved: the
 * counts come from the slot's own histograms.
 */

export interface Rung {
  /** Stable responses slower than this (us) are slow. */
  readonly stableUs: number
  /** Canary responses slower than this (us) are slow. */
  readonly canaryUs: number
}

export interface Ladder {
  /** maxP99's bound, the same on both sides; null when maxP99 is off. */
  readonly absolute: Rung | null
  /** maxP99Ratio's rungs (RATIO_RUNGS), from the stable reference; null while there is none, or when the check is off. */
  readonly ratio: readonly Rung[] | null
  /** The stable reference the ratio rungs were set from (us), or null. */
  readonly referenceUs: number | null
}

export const RATIO_RUNGS: readonly { readonly multiple: number; readonly weight: number }[] = [
  { multiple: 1, weight: 0.5 },
  { multiple: 2, weight: 0.25 },
  { multiple: 4, weight: 0.25 },
]

export const NO_LADDER: Ladder = { absolute: null, ratio: null, referenceUs: null }

/**
 * Fewer stable responses in the window than this, and there is no reference.
 * A p99 of 20 responses is about their maximum: a high bound, so the ratio
 * test has less power until more arrive, but it stays valid (the share test
 * holds for any bound fixed before the responses it judges). With 100, a
 * service at a few requests per second never got a reference in a short
 * window, and maxP99Ratio held every such rollout for ever.
 */
export const REFERENCE_MIN_RESPONSES = 20

export interface LadderSettings {
  readonly maxP99Ms: number | null
  readonly maxP99Ratio: number | null
  readonly minP99DeltaMs: number
}

/** The canary bound that corresponds to a stable bound: max(ratio x b, b + minP99Delta). */
export function canaryBoundUs(stableUs: number, ratio: number, minDeltaUs: number): number {
  return Math.max(stableUs * ratio, stableUs + minDeltaUs)
}

/** The ladder for a slot that begins now, given stable's reference p99 (us) measured before it. */
export function ladderFor(settings: LadderSettings, referenceUs: number | null): Ladder {
  const absolute = settings.maxP99Ms === null ? null : { stableUs: settings.maxP99Ms * 1000, canaryUs: settings.maxP99Ms * 1000 }
  const ratio = settings.maxP99Ratio
  const usable = referenceUs !== null && Number.isFinite(referenceUs) && referenceUs > 0 ? referenceUs : null
  if (ratio === null || usable === null) return { absolute, ratio: null, referenceUs: ratio === null ? null : usable }
  const deltaUs = settings.minP99DeltaMs * 1000
  return {
    absolute,
    ratio: RATIO_RUNGS.map((r) => ({ stableUs: usable * r.multiple, canaryUs: canaryBoundUs(usable * r.multiple, ratio, deltaUs) })),
    referenceUs: usable,
  }
}

/**
 * The latency at quantile q over the window without its worst slot (the one
 * holding the most responses slower than the answer), in us; null under
 * REFERENCE_MIN_RESPONSES responses (the plain quantile when leaving the slot
 * out would leave fewer). A stall that slowed one slot's responses then moves
 * the reference little.
 *
 * Two passes, each one slowestSlot and one quantile read. The worst slot's
 * responses slower than the bound of the pass are taken as slower than the
 * answer too (a stall's are far slower), so the answer is the window's
 * quantile at the level that leaves them out and keeps 1 - q of the rest
 * above it. The first pass looks for the worst slot above the window's p90,
 * which every response of a stalled slot passes (a p99 it inflated would
 * hide them); the second, above the first answer, so that a calm window's
 * worst slot is charged only its share of the tail. A calm window, whose
 * worst slot holds at most twice its share of the top 10%, gets the plain
 * quantile after the first slowestSlot call. A bisection on the bound measured 300 ms per call on real HDR
 * windows (every countAbove walks the histogram); this is a few ms, once per
 * slot.
 */
export function robustQuantileUs(view: WindowView, q = 0.99): number | null {
  const n = view.latencyCount
  if (n < REFERENCE_MIN_RESPONSES) return null
  const plain = view.quantileUs(q)
  if (plain === null) return null
  let bound = view.quantileUs(0.9) ?? plain
  let answer = plain
  for (let pass = 0; pass < 2; pass++) {
    const worst = view.slowestSlot(bound)
    const rest = n - worst.count
    // One slot (or nearly all responses in one): nothing to leave out, the plain quantile it is.
    if (rest < REFERENCE_MIN_RESPONSES) return plain
    if (worst.above === 0) return answer
    // A calm window: no slot holds more than twice its share of the top 10%. Nothing to leave out (and one slowestSlot call only).
    if (pass === 0 && worst.above <= 2 * 0.1 * worst.count) return plain
    const level = 1 - ((1 - q) * rest + worst.above) / n
    if (!(level > 0)) return answer
    answer = Math.min(plain, view.quantileUs(level) ?? answer)
    bound = answer
  }
  return answer
}

/** What a tally needs of one slot's latencies on one side: the responses measured, and how many were slower than a bound. */
export interface LatencySample {
  readonly count: number
  above(us: number): number
}

export interface SideSlow {
  /** Responses with a latency. */
  readonly measured: number
  /** Responses slower than each rung's bound for this side. */
  readonly slow: readonly number[]
}

export interface PairTally {
  readonly stable: SideSlow
  readonly canary: SideSlow
}

export interface FamilyTally {
  /** Since the step began (slots that had no such rungs are not in it). */
  readonly step: PairTally
  /** The window's slots, oldest first, the current one last (zero counts where the rungs were not in force): for the worst-slot rule and the start points. */
  readonly slots: readonly PairTally[]
  /** Slots in the step so far, the current one included: slots[i] is the step's slot number stepSlots - slots.length + i (0 = its first). */
  readonly stepSlots: number
}

/** What the latency checks read (GateInput.latency). */
export interface LatencyTally {
  /** The ladder in force now (for the words). */
  readonly ladder: Ladder
  readonly absolute: FamilyTally | null
  readonly ratio: FamilyTally | null
}

interface SlotRecord {
  readonly absolute: PairTally | null
  readonly ratio: PairTally | null
}

function count(sample: LatencySample, bounds: readonly number[]): SideSlow {
  return { measured: sample.count, slow: bounds.map((us) => (sample.count === 0 ? 0 : sample.above(us))) }
}

function pair(stable: LatencySample, canary: LatencySample, rungs: readonly Rung[]): PairTally {
  return { stable: count(stable, rungs.map((r) => r.stableUs)), canary: count(canary, rungs.map((r) => r.canaryUs)) }
}

function zeroLike(p: PairTally): PairTally {
  const zero = (x: SideSlow): SideSlow => ({ measured: 0, slow: x.slow.map(() => 0) })
  return { stable: zero(p.stable), canary: zero(p.canary) }
}

function addSide(a: SideSlow, b: SideSlow): SideSlow {
  return { measured: a.measured + b.measured, slow: a.slow.map((v, i) => v + (b.slow[i] ?? 0)) }
}

function plus(a: PairTally | null, b: PairTally | null): PairTally | null {
  return a === null ? b : b === null ? a : addPair(a, b)
}

export function addPair(a: PairTally, b: PairTally): PairTally {
  return { stable: addSide(a.stable, b.stable), canary: addSide(a.canary, b.canary) }
}

export function subtractPair(a: PairTally, b: PairTally): PairTally {
  const sub = (x: SideSlow, y: SideSlow): SideSlow => ({ measured: Math.max(0, x.measured - y.measured), slow: x.slow.map((v, i) => Math.max(0, v - (y.slow[i] ?? 0))) })
  return { stable: sub(a.stable, b.stable), canary: sub(a.canary, b.canary) }
}

/**
 * The step's slow-response counts, slot by slot, each slot against the
 * ladder chosen when it began. The owner of the window drives it:
 *
 *     at each slot boundary:  ring.close(stableSlot, canarySlot)      the slot that ends, final
 *                             ring.open(ladderFor(settings, robustQuantileUs(stableWindow)))
 *     at a weight change:     ring.restart()                          the step's counts start again
 *     at a look:              input.latency = ring.view(stableCurrent, canaryCurrent)
 *
 * The ladder survives restart(): the first slot of a step is counted against
 * the reference of the step before (data from before it: still a fixed bound).
 * Control plane only: a slot costs a few histogram reads per rung when it
 * closes; the hot path is not touched.
 */
export class LatencyTallyRing {
  readonly #keep: number
  #ladder: Ladder
  #closed: SlotRecord[] = []
  #absolute: PairTally | null = null
  #ratio: PairTally | null = null
  #closedInStep = 0

  /** `windowSlots`: slots in the analysis window (the worst-slot rule looks at those). */
  constructor(windowSlots: number, ladder: Ladder = NO_LADDER) {
    this.#keep = Math.max(0, windowSlots - 1)
    this.#ladder = ladder
  }

  get ladder(): Ladder {
    return this.#ladder
  }

  /** The slot that begins now is counted against `ladder`. */
  open(ladder: Ladder): void {
    this.#ladder = ladder
  }

  /** The current slot is over: its final samples, counted against the ladder it began with. */
  close(stable: LatencySample, canary: LatencySample): void {
    const record = this.#record(stable, canary)
    if (record.absolute !== null) this.#absolute = this.#absolute === null ? record.absolute : addPair(this.#absolute, record.absolute)
    if (record.ratio !== null) this.#ratio = this.#ratio === null ? record.ratio : addPair(this.#ratio, record.ratio)
    this.#closed.push(record)
    this.#closedInStep++
    if (this.#closed.length > this.#keep) this.#closed.shift()
  }

  /**
   * Responses of a slot already closed (`back` slots ago: 1 is the one closed
   * last) that arrived late: another replica's delta is read a slot after it
   * was measured. They count in the step and in that slot's record, against
   * the ladder in force now (the one that slot began with is not kept; it
   * moves little from slot to slot). Slots before the step began are ignored.
   */
  late(stable: LatencySample, canary: LatencySample, back: number): void {
    if (back < 1 || back > this.#closedInStep) return
    const add = this.#record(stable, canary)
    this.#absolute = plus(this.#absolute, add.absolute)
    this.#ratio = plus(this.#ratio, add.ratio)
    const index = this.#closed.length - back
    const slot = this.#closed[index]
    if (slot !== undefined) this.#closed[index] = { absolute: plus(slot.absolute, add.absolute), ratio: plus(slot.ratio, add.ratio) }
  }

  /** A new step: its counts start from nothing; the ladder stays. */
  restart(): void {
    this.#closed = []
    this.#absolute = null
    this.#ratio = null
    this.#closedInStep = 0
  }

  /** The step so far, with the current slot counted from its partial samples. */
  view(stable: LatencySample, canary: LatencySample): LatencyTally {
    const current = this.#record(stable, canary)
    const stepSlots = this.#closedInStep + 1
    const family = (total: PairTally | null, now: PairTally | null, pick: (r: SlotRecord) => PairTally | null): FamilyTally | null => {
      const step = total === null ? now : now === null ? total : addPair(total, now)
      if (step === null) return null
      const zero = zeroLike(step)
      return { step, slots: [...this.#closed, current].map((r) => pick(r) ?? zero), stepSlots }
    }
    return {
      ladder: this.#ladder,
      absolute: family(this.#absolute, current.absolute, (r) => r.absolute),
      ratio: family(this.#ratio, current.ratio, (r) => r.ratio),
    }
  }

  #record(stable: LatencySample, canary: LatencySample): SlotRecord {
    const l = this.#ladder
    return { absolute: l.absolute === null ? null : pair(stable, canary, [l.absolute]), ratio: l.ratio === null ? null : pair(stable, canary, l.ratio) }
  }
}
