/**
 * Whole rollouts simulated in counts, for the false-rollback bound at the
 * threshold itself: the error checks are looked at after every canary error
 * (their e-values only rise there, so that is the same as looking after every
 * request), the latency checks after every quarter of a slot. Pure, seeded:
 * the same seed gives the same rollout.
 */
import type { Check, GateInput, WindowView } from '../../src/analysis/check.js'
import type { FamilyTally, LatencyTally, PairTally } from '../../src/analysis/latency-ladder.js'
import { NO_PROBES } from '../../src/analysis/probe.js'
import { binomial, geometric } from './random.js'

export interface Stage {
  /** Canary weight, percent. */
  readonly weight: number
  readonly durationMs: number
}

/** The SPEC's steps at their default durations: 30 s at 5, 25 and 50%, the bake 60 s at 100%. */
export const SPEC_STAGES: readonly Stage[] = [
  { weight: 5, durationMs: 30_000 },
  { weight: 25, durationMs: 30_000 },
  { weight: 50, durationMs: 30_000 },
  { weight: 100, durationMs: 60_000 },
]

export interface RolloutOutcome {
  readonly rolledBack: boolean
  /** The stage weight and the check that rolled back, or null. */
  readonly weight: number | null
  readonly check: string | null
  /** Evaluations made. */
  readonly looks: number
}

const NONE: RolloutOutcome = { rolledBack: false, weight: null, check: null, looks: 0 }

function view(requests: number, errors: number): WindowView {
  return { requests, errors, latencyCount: requests, slotMs: 1000, quantileUs: () => null, countAbove: () => 0, slowestSlot: () => ({ above: 0, count: 0 }) }
}

/** A GateInput from the step's counts (the window taken as the step: only a pass reads it). */
export function countsGateInput(weight: number, canary: { readonly requests: number; readonly errors: number }, stable: { readonly requests: number; readonly errors: number }, latency: LatencyTally | null = null): GateInput {
  return {
    now: 0,
    phase: weight >= 100 ? 'baking' : 'progressing',
    weight,
    canary: { window: view(canary.requests, canary.errors), step: { requests: canary.requests, errors: canary.errors } },
    stable: weight >= 100 ? null : { window: view(stable.requests, stable.errors), step: { requests: stable.requests, errors: stable.errors } },
    stableBaseline: null,
    probes: NO_PROBES,
    latency,
  }
}

function failing(checks: readonly Check[], input: GateInput): string | null {
  for (const c of checks) if (c.evaluate(input).verdict === 'fail') return c.id
  return null
}

export interface ErrorScenario {
  readonly canaryErrorRate: number
  readonly stableErrorRate: number
  /** Every `everyMs`, for `forMs`, both sides' rates are these instead (a shared dependency failing for a while). */
  readonly burst?: { readonly everyMs: number; readonly forMs: number; readonly canaryErrorRate: number; readonly stableErrorRate: number }
}

/** The stage as spans of constant error rates. */
function spans(durationMs: number, scenario: ErrorScenario): { readonly ms: number; readonly pc: number; readonly ps: number }[] {
  const b = scenario.burst
  if (b === undefined) return [{ ms: durationMs, pc: scenario.canaryErrorRate, ps: scenario.stableErrorRate }]
  const out: { ms: number; pc: number; ps: number }[] = []
  for (let t = 0; t < durationMs; t += b.everyMs) {
    const calm = Math.min(b.everyMs - b.forMs, durationMs - t)
    if (calm > 0) out.push({ ms: calm, pc: scenario.canaryErrorRate, ps: scenario.stableErrorRate })
    const hot = Math.min(b.forMs, durationMs - t - calm)
    if (hot > 0) out.push({ ms: hot, pc: b.canaryErrorRate, ps: b.stableErrorRate })
  }
  return out
}

/**
 * One rollout through `stages` at `perMs` requests per millisecond, each
 * routed to the canary with the stage's weight: the error checks after every
 * canary error. Event by event: the gap to the next canary error is
 * geometric, and what happened in it (canary successes, stable requests and
 * errors) is drawn by exact binomials.
 */
export function errorRollout(checks: readonly Check[], stages: readonly Stage[], scenario: ErrorScenario, rng: () => number, perMs = 1): RolloutOutcome {
  let looks = 0
  for (const stage of stages) {
    const w = stage.weight / 100
    const canary = { requests: 0, errors: 0 }
    const stable = { requests: 0, errors: 0 }
    for (const span of spans(stage.durationMs, scenario)) {
      const total = Math.round(span.ms * perMs)
      const { pc, ps } = span
      const a = w * pc
      let at = 0
      for (;;) {
        const gap = geometric(rng, a)
        const before = Math.min(gap, total - at + 1) - 1
        const canaryOk = w >= 1 ? before : binomial(rng, before, (w * (1 - pc)) / (1 - a))
        const stableRequests = before - canaryOk
        canary.requests += canaryOk
        stable.requests += stableRequests
        stable.errors += binomial(rng, stableRequests, ps)
        if (at + gap > total) break
        at += gap
        canary.requests++
        canary.errors++
        looks++
        const failed = failing(checks, countsGateInput(stage.weight, canary, stable))
        if (failed !== null) return { rolledBack: true, weight: stage.weight, check: failed, looks }
      }
    }
  }
  return { ...NONE, looks }
}

export interface LatencyScenario {
  /**
   * Chance that a stable response is slower than each rung's stable bound;
   * at the threshold the canary's chance of being slower than the rung's
   * canary bound is the same (canary latency = g(stable latency)).
   */
  readonly stableTail: readonly number[]
  /** The canary's, when it differs (a regression); default: stableTail. */
  readonly canaryTail?: readonly number[]
  /** Every this many slots, one slot where both sides have `stallTail` instead (a host stall). */
  readonly stallEvery?: number
  readonly stallTail?: readonly number[]
}

/** Nested slow counts on the rungs for n responses: slow[j] counts those above rung j (the rungs go up). */
function slowCounts(rng: () => number, n: number, tail: readonly number[]): number[] {
  const out = tail.map(() => 0)
  let left = n
  let above = 0
  let higher = 0
  for (let j = tail.length - 1; j >= 0; j--) {
    const p = tail[j]!
    const inBand = binomial(rng, left, Math.min(1, Math.max(0, (p - higher) / (1 - higher))))
    left -= inBand
    above += inBand
    out[j] = above
    higher = p
  }
  return out
}

function addInto(target: { measured: number; slow: number[] }, measured: number, slow: readonly number[]): void {
  target.measured += measured
  for (let j = 0; j < slow.length; j++) target.slow[j]! += slow[j]!
}

function freeze(p: { stable: { measured: number; slow: number[] }; canary: { measured: number; slow: number[] } }): PairTally {
  return { stable: { measured: p.stable.measured, slow: [...p.stable.slow] }, canary: { measured: p.canary.measured, slow: [...p.canary.slow] } }
}

/**
 * One rollout for a latency check whose rungs are in `scenario.stableTail`:
 * `family` says which tally the check reads (ratio: maxP99Ratio's rungs;
 * absolute: maxP99's single bound, where stableTail[0] is the chance of
 * exceeding maxP99). 1 s slots, looked at every 250 ms; the step's tally and
 * the window's last `windowSlots` slots, as LatencyTallyRing would give them.
 */
export function latencyRollout(checks: readonly Check[], stages: readonly Stage[], scenario: LatencyScenario, family: 'ratio' | 'absolute', rng: () => number, perMs = 1, windowSlots = 30): RolloutOutcome {
  const rungs = scenario.stableTail.length
  const ladder = { absolute: family === 'absolute' ? { stableUs: 500_000, canaryUs: 500_000 } : null, ratio: family === 'ratio' ? scenario.stableTail.map((_, j) => ({ stableUs: 28_000 * 2 ** j, canaryUs: 42_000 * 2 ** j })) : null, referenceUs: 28_000 }
  const empty = (): { stable: { measured: number; slow: number[] }; canary: { measured: number; slow: number[] } } => ({ stable: { measured: 0, slow: Array(rungs).fill(0) }, canary: { measured: 0, slow: Array(rungs).fill(0) } })
  let looks = 0
  for (const stage of stages) {
    const w = stage.weight / 100
    const slots = Math.round(stage.durationMs / 1000)
    const step = empty()
    const counts = { canary: { requests: 0, errors: 0 }, stable: { requests: 0, errors: 0 } }
    const closed: PairTally[] = []
    for (let s = 0; s < slots; s++) {
      const stall = scenario.stallEvery !== undefined && scenario.stallTail !== undefined && s % scenario.stallEvery === scenario.stallEvery - 1
      const stableTail = stall ? scenario.stallTail! : scenario.stableTail
      const canaryTail = stall ? scenario.stallTail! : (scenario.canaryTail ?? scenario.stableTail)
      const current = empty()
      for (let q = 0; q < 4; q++) {
        const n = Math.round(250 * perMs)
        const nc = binomial(rng, n, w)
        const ns = n - nc
        const cs = slowCounts(rng, nc, canaryTail)
        const ss = slowCounts(rng, ns, stableTail)
        addInto(current.canary, nc, cs)
        addInto(current.stable, ns, ss)
        addInto(step.canary, nc, cs)
        addInto(step.stable, ns, ss)
        counts.canary.requests += nc
        counts.stable.requests += ns
        const tally: FamilyTally = { step: freeze(step), slots: [...closed, freeze(current)], stepSlots: s + 1 }
        const latency: LatencyTally = { ladder, absolute: family === 'absolute' ? tally : null, ratio: family === 'ratio' ? tally : null }
        looks++
        const failed = failing(checks, countsGateInput(stage.weight, counts.canary, counts.stable, latency))
        if (failed !== null) return { rolledBack: true, weight: stage.weight, check: failed, looks }
      }
      closed.push(freeze(current))
      if (closed.length > windowSlots - 1) closed.shift()
    }
  }
  return { ...NONE, looks }
}

/** P(X >= k) for X ~ Binomial(n, p): 1 - the sum of the pmf below k, each term from the one before (O(k), in logs). */
export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1
  if (k > n) return 0
  if (p <= 0) return 0
  if (p >= 1) return 1
  const odds = Math.log(p) - Math.log1p(-p)
  let logPmf = n * Math.log1p(-p)
  let below = 0
  for (let i = 0; i < k; i++) {
    below += Math.exp(logPmf)
    logPmf += Math.log(n - i) - Math.log(i + 1) + odds
  }
  return Math.max(0, 1 - below)
}

/** Exact (Clopper–Pearson) one-sided lower confidence bound of a rate from k of n: the p with P(X >= k | p) = 1 - confidence. */
export function binomialLowerBound(k: number, n: number, confidence: number): number {
  if (k <= 0 || n <= 0) return 0
  let lo = 0
  let hi = k / n
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (binomialUpperTail(k, n, mid) < 1 - confidence) lo = mid
    else hi = mid
  }
  return lo
}

/** Exact one-sided upper confidence bound of a rate from k of n: the p with P(X <= k | p) = 1 - confidence. */
export function binomialUpperBound(k: number, n: number, confidence: number): number {
  if (n <= 0) return 1
  if (k >= n) return 1
  let lo = k / n
  let hi = 1
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2
    if (1 - binomialUpperTail(k + 1, n, mid) > 1 - confidence) lo = mid
    else hi = mid
  }
  return hi
}
