/** A step of traffic for the analysis checks, slot by slot: both sides' windows (from raw latencies) and the latency tally (through the real LatencyTallyRing), as GateInput. */
import type { GateInput, WindowView } from '../../src/analysis/check.js'
import { ladderFor, LatencyTallyRing, robustQuantileUs, type LadderSettings, type LatencySample } from '../../src/analysis/latency-ladder.js'
import { NO_PROBES } from '../../src/analysis/probe.js'

interface Response {
  readonly error: boolean
  /** Latency in us; null for a failure without a response. */
  readonly us: number | null
}

class Side {
  /** Window slots, oldest first; the last one is current. */
  slots: Response[][] = [[]]
  requests = 0
  errors = 0

  record(r: Response): void {
    this.slots[this.slots.length - 1]!.push(r)
    this.requests++
    if (r.error) this.errors++
  }

  current(): LatencySample {
    return sample(this.slots[this.slots.length - 1]!)
  }
}

function sample(slot: readonly Response[]): LatencySample {
  const values = slot.flatMap((r) => (r.us === null ? [] : [r.us])).sort((a, b) => a - b)
  return { count: values.length, above: (us) => aboveSorted(values, us) }
}

/** Values above `us` in an ascending array. */
function aboveSorted(values: readonly number[], us: number): number {
  let lo = 0
  let hi = values.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (values[mid]! <= us) lo = mid + 1
    else hi = mid
  }
  return values.length - lo
}

/** A WindowView over raw slots: quantiles by rank, as an HDR histogram reads them (to its resolution). */
export function windowOf(slots: readonly (readonly Response[])[], slotMs = 1000): WindowView {
  const perSlot = slots.map((slot) => slot.flatMap((r) => (r.us === null ? [] : [r.us])).sort((a, b) => a - b))
  const values = perSlot.flat().sort((a, b) => a - b)
  let requests = 0
  let errors = 0
  for (const slot of slots) {
    requests += slot.length
    for (const r of slot) if (r.error) errors++
  }
  return {
    requests,
    errors,
    latencyCount: values.length,
    slotMs,
    quantileUs: (q) => (values.length === 0 ? null : values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!),
    countAbove: (us) => aboveSorted(values, us),
    slowestSlot: (us) => {
      let above = 0
      let count = 0
      for (const slot of perSlot) {
        const n = aboveSorted(slot, us)
        if (n > above) {
          above = n
          count = slot.length
        }
      }
      return { above, count }
    },
  }
}

export interface StepOptions {
  readonly weight: number
  readonly phase?: string
  readonly ladder?: LadderSettings
  /** Slots in the window. */
  readonly windowSlots?: number
  /** Stable's reference p99 before the step (us): the first slot's ladder. */
  readonly referenceUs?: number | null
}

/** One step: record responses into the current slot, move to the next slot, read a GateInput at any time. */
export class AnalysisStep {
  readonly weight: number
  readonly #phase: string
  readonly #settings: LadderSettings
  readonly #windowSlots: number
  readonly #ring: LatencyTallyRing
  readonly stable = new Side()
  readonly canary = new Side()
  #now = 1_750_000_000_000

  constructor(options: StepOptions) {
    this.weight = options.weight
    this.#phase = options.phase ?? (options.weight >= 100 ? 'baking' : 'progressing')
    this.#settings = options.ladder ?? { maxP99Ms: 500, maxP99Ratio: 1.5, minP99DeltaMs: 5 }
    this.#windowSlots = options.windowSlots ?? 30
    this.#ring = new LatencyTallyRing(this.#windowSlots, ladderFor(this.#settings, options.referenceUs ?? null))
  }

  /** One response of `side`: its latency in ms (null: no response at all), and whether it failed. */
  record(side: 'stable' | 'canary', latencyMs: number | null, error = false): void {
    this[side].record({ error, us: latencyMs === null ? null : Math.round(latencyMs * 1000) })
  }

  /** The current slot ends; the next is counted against a ladder from stable's window as it stands. */
  nextSlot(): void {
    const { stable, canary } = this
    this.#ring.close(stable.current(), canary.current())
    for (const side of [stable, canary]) {
      side.slots.push([])
      if (side.slots.length > this.#windowSlots) side.slots.shift()
    }
    this.#now += 1000
    this.#ring.open(ladderFor(this.#settings, robustQuantileUs(windowOf(stable.slots))))
  }

  input(): GateInput {
    const { stable, canary } = this
    const latency = this.#ring.view(stable.current(), canary.current())
    return {
      now: this.#now,
      phase: this.#phase,
      weight: this.weight,
      canary: { window: windowOf(canary.slots), step: { requests: canary.requests, errors: canary.errors } },
      stable: this.weight >= 100 ? null : { window: windowOf(stable.slots), step: { requests: stable.requests, errors: stable.errors } },
      stableBaseline: null,
      probes: NO_PROBES,
      latency,
    }
  }
}

/** A GateInput from counts alone (no latency): the error checks read nothing else. */
export function countsInput(weight: number, canary: { requests: number; errors: number; windowRequests?: number }, stable: { requests: number; errors: number } | null): GateInput {
  const view = (requests: number, errors: number): WindowView => ({
    requests,
    errors,
    latencyCount: 0,
    slotMs: 1000,
    quantileUs: () => null,
    countAbove: () => 0,
    slowestSlot: () => ({ above: 0, count: 0 }),
  })
  return {
    now: 1_750_000_000_000,
    phase: weight >= 100 ? 'baking' : 'progressing',
    weight,
    canary: { window: view(canary.windowRequests ?? canary.requests, canary.errors), step: { requests: canary.requests, errors: canary.errors } },
    stable: stable === null ? null : { window: view(stable.requests, stable.errors), step: stable },
    stableBaseline: null,
    probes: NO_PROBES,
  }
}
