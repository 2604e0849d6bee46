/**
 * Decision simulation for issue 9: one simulated request stream per run (1 ms
 * resolution, seeded), judged by one of three deciders, each driving its own
 * small rollout loop (steps, bake, hold, rollback) so the routing follows its
 * own verdicts:
 *
 *   new      the sequential checks (src/analysis/checks) over GateInputs built
 *            here: windows of counts and latencies, step counts, the real
 *            LatencyTallyRing
 *   today    src/rollout/gate.ts as it is (evaluateGate), over the real
 *            SlidingWindow, with the controller's rules (evaluate every
 *            interval and 20 ms after a canary error; windows restart at each
 *            weight; stable's last figures stand in at 100%)
 *   flagger  a Flagger-style policy: Prometheus scrapes every 15 s, analysis
 *            every 60 s over 1 m, the same thresholds without a test, rollback
 *            after 5 failed checks, one step per passing analysis
 *
 * Nothing here depends on the rollout controller, which is being rewritten.
 */
import type { GateInput, WindowView } from '../src/analysis/check.js'
import { buildChecks, type CheckSettings } from '../src/analysis/checks/index.js'
import type { Decision, Finding } from '../src/analysis/finding.js'
import { ladderFor, LatencyTallyRing, robustQuantileUs, type LatencySample } from '../src/analysis/latency-ladder.js'
import { NO_PROBES } from '../src/analysis/probe.js'
import type { AnalysisConfig } from '../src/config/schema.js'
import { builtinChecks } from '../src/analysis/builtin-checks.js'
import type { BaselineFigures, Check } from '../src/analysis/check.js'
import { decide } from '../src/analysis/gate.js'
import { DURATION_BUCKETS_SECONDS } from '../src/stats/side-stats.js'
import { SlidingWindow } from '../src/stats/window.js'
import { checkFails, type FlaggerChecks } from './decision-flagger.js'
import type { SideCounters } from './decision-harness.js'
import { seededRng } from './lib/random.js'

export type DeciderName = 'new' | 'today' | 'flagger'
export type SideName = 'stable' | 'canary'

/** How one side answers a request at a moment. */
export interface Behaviour {
  /** Share answered 503 (after their latency). */
  readonly errorRatio: number
  /** Multiplies the whole latency distribution. */
  readonly latencyScale: number
  /** Share of responses that take `tailMs` longer. */
  readonly tailShare: number
  readonly tailMs: number
  /** No response at all (connection refused): a failure after 1 ms, without a latency. */
  readonly dead: boolean
}

export const HEALTHY: Behaviour = { errorRatio: 0.005, latencyScale: 1, tailShare: 0, tailMs: 0, dead: false }

export interface Moment {
  /** ms since the rollout started. */
  readonly t: number
  /** ms since the current stage started, and its weight. */
  readonly inStage: number
  readonly weight: number
  readonly baking: boolean
}

export interface Scenario {
  readonly key: string
  readonly title: string
  /** Requests per second, evenly spaced. */
  readonly rate: number
  readonly steps: readonly number[]
  readonly stepMs: number
  readonly bakeMs: number
  /** Stable share kept during the bake (percent; 0: the bake runs at 100%). */
  readonly bakeStableShare?: number
  /** The run ends here if the rollout has not. */
  readonly limitMs: number
  /** A step that has not passed this long after its duration holds for good (progressDeadline). */
  readonly behaviour: (side: SideName, m: Moment) => Behaviour
  /** The canary is bad from this moment (for times and blast radius); null: never. */
  readonly badFrom: ((m: Moment) => boolean) | null
  /** The proxy's event loop blocked: every `everyMs` for `forMs`, responses due then land at its end. */
  readonly stall?: { readonly everyMs: number; readonly forMs: number; readonly firstAtMs: number }
}

export interface RunOutcome {
  readonly decider: DeciderName
  readonly phase: 'succeeded' | 'rolled_back' | 'under_way'
  readonly reason: string | null
  /** Weight when the rollout ended (or at the limit). */
  readonly weight: number
  readonly endedAtMs: number
  /** First canary response under the bad behaviour, ms since the start. */
  readonly firstBadAtMs: number | null
  /** Canary requests that arrived while it was bad, before the rollback. */
  readonly badServed: number
  /** Rolled back before the canary was bad. */
  readonly early: boolean
  /** Checks named in the rollback reason (new: the failing findings' checks). */
  readonly failedChecks: readonly string[]
}

/** The analysis section every decider gets (the SPEC's thresholds; interval 250 ms as the real-time bench uses). */
export type SimAnalysis = Pick<AnalysisConfig, 'intervalMs' | 'windowMs' | 'minRequests' | 'maxErrorRate' | 'maxErrorRateIncrease' | 'maxP99Ms' | 'maxP99Ratio' | 'minP99DeltaMs' | 'falseRollbackRate' | 'confidence'>

const SLOT_MS = 1000
const MIN_EVALUATION_GAP_MS = 20

// ------------------------------------------------------------ a cheap latency histogram for the simulated windows

/** Log buckets 1% wide from 100 us: coarser than HDR's 0.1%, ample for a simulation, and plain JS (no WebAssembly to release). */
const BASE_US = 100
const GROWTH = Math.log(1.01)
const BUCKETS = 1500

function bucketOf(us: number): number {
  if (us <= BASE_US) return 0
  return Math.min(BUCKETS - 1, Math.floor(Math.log(us / BASE_US) / GROWTH) + 1)
}

function upperOf(bucket: number): number {
  return BASE_US * Math.exp(bucket * GROWTH)
}

class SimHistogram implements LatencySample {
  readonly counts = new Uint32Array(BUCKETS)
  count = 0
  top = 0

  record(us: number): void {
    const b = bucketOf(us)
    this.counts[b]!++
    this.count++
    if (b > this.top) this.top = b
  }

  add(other: SimHistogram, sign: 1 | -1): void {
    if (other.count === 0) return
    for (let b = 0; b <= other.top; b++) this.counts[b]! += sign * other.counts[b]!
    this.count += sign * other.count
    if (sign > 0 && other.top > this.top) this.top = other.top
  }

  clear(): void {
    if (this.count === 0) return
    this.counts.fill(0, 0, this.top + 1)
    this.count = 0
    this.top = 0
  }

  above(us: number): number {
    if (this.count === 0) return 0
    let n = 0
    for (let b = bucketOf(us) + 1; b <= this.top; b++) n += this.counts[b]!
    return n
  }

  quantile(q: number): number | null {
    if (this.count === 0) return null
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let b = 0; b <= this.top; b++) {
      seen += this.counts[b]!
      if (seen >= rank) return upperOf(b)
    }
    return upperOf(this.top)
  }
}

interface Slot {
  requests: number
  errors: number
  readonly latency: SimHistogram
}

/** One side's sliding window (30 slots of 1 s), its WindowView, and the step's counts. */
class SimWindow {
  readonly #slots: Slot[]
  #current = 0
  readonly #merged = new SimHistogram()
  requests = 0
  errors = 0
  stepRequests = 0
  stepErrors = 0

  constructor(slotCount: number) {
    this.#slots = Array.from({ length: slotCount }, () => ({ requests: 0, errors: 0, latency: new SimHistogram() }))
  }

  record(error: boolean, us: number | null): void {
    const s = this.#slots[this.#current]!
    s.requests++
    this.requests++
    this.stepRequests++
    if (error) {
      s.errors++
      this.errors++
      this.stepErrors++
    }
    if (us !== null) {
      s.latency.record(us)
      this.#merged.record(us)
    }
  }

  /** The current slot, as a tally sample. */
  get currentSlot(): SimHistogram {
    return this.#slots[this.#current]!.latency
  }

  /** The next slot begins; the oldest leaves the window. */
  nextSlot(): void {
    this.#current = (this.#current + 1) % this.#slots.length
    const s = this.#slots[this.#current]!
    this.requests -= s.requests
    this.errors -= s.errors
    this.#merged.add(s.latency, -1)
    s.requests = 0
    s.errors = 0
    s.latency.clear()
  }

  /** A new weight: everything starts again. */
  restart(): void {
    for (const s of this.#slots) {
      s.requests = 0
      s.errors = 0
      s.latency.clear()
    }
    this.#merged.clear()
    this.requests = 0
    this.errors = 0
    this.stepRequests = 0
    this.stepErrors = 0
  }

  view(): WindowView {
    const merged = this.#merged
    const slots = this.#slots
    return {
      requests: this.requests,
      errors: this.errors,
      latencyCount: merged.count,
      slotMs: SLOT_MS,
      quantileUs: (q) => merged.quantile(q),
      countAbove: (us) => merged.above(us),
      slowestSlot: (us) => {
        let above = 0
        let count = 0
        for (const s of slots) {
          const n = s.latency.above(us)
          if (n > above) {
            above = n
            count = s.latency.count
          }
        }
        return { above, count }
      },
    }
  }
}

// ------------------------------------------------------------ deciders

interface Judge {
  record(side: SideName, error: boolean, us: number | null): void
  /** A window slot boundary. */
  nextSlot(): void
  /** A new weight (stage); `baking` for the bake. */
  restart(weight: number, baking: boolean): void
  decide(now: number, weight: number, baking: boolean): Decision
  dispose(): void
}

function join(findings: readonly Finding[], now: number): Decision {
  const failed = findings.filter((f) => f.verdict === 'fail')
  if (failed.length > 0) return { at: now, verdict: 'fail', reason: failed.map((f) => f.reason).join('; '), findings }
  const held = findings.filter((f) => f.verdict === 'insufficient')
  if (held.length > 0) return { at: now, verdict: 'insufficient', reason: held.map((f) => f.reason).join('; '), findings }
  return { at: now, verdict: 'pass', reason: findings.map((f) => f.reason).join('; '), findings }
}

class NewJudge implements Judge {
  readonly #checks
  readonly #settings: CheckSettings
  readonly #stable = new SimWindow(30)
  readonly #canary = new SimWindow(30)
  readonly #ring: LatencyTallyRing

  constructor(analysis: SimAnalysis, steps: readonly number[], bakeStableShare: number) {
    this.#settings = { ...analysis, steps, bakeStableShare }
    this.#checks = buildChecks(this.#settings).checks
    this.#ring = new LatencyTallyRing(30, ladderFor(this.#settings, null))
  }

  record(side: SideName, error: boolean, us: number | null): void {
    ;(side === 'stable' ? this.#stable : this.#canary).record(error, us)
  }

  nextSlot(): void {
    this.#ring.close(this.#stable.currentSlot, this.#canary.currentSlot)
    this.#stable.nextSlot()
    this.#canary.nextSlot()
    this.#ring.open(ladderFor(this.#settings, robustQuantileUs(this.#stable.view())))
  }

  restart(): void {
    // The reference of the stage before is kept: data from before the new stage, a fixed bound for it.
    const reference = robustQuantileUs(this.#stable.view())
    this.#stable.restart()
    this.#canary.restart()
    this.#ring.restart()
    if (reference !== null) this.#ring.open(ladderFor(this.#settings, reference))
  }

  decide(now: number, weight: number, baking: boolean): Decision {
    const s = this.#stable
    const c = this.#canary
    const input: GateInput = {
      now,
      phase: baking ? 'baking' : 'progressing',
      weight,
      canary: { window: c.view(), step: { requests: c.stepRequests, errors: c.stepErrors } },
      stable: weight >= 100 ? null : { window: s.view(), step: { requests: s.stepRequests, errors: s.stepErrors } },
      stableBaseline: null,
      probes: NO_PROBES,
      latency: this.#ring.view(s.currentSlot, c.currentSlot),
    }
    return join(
      this.#checks.map((check) => check.evaluate(input)),
      now,
    )
  }

  dispose(): void {}
}

class TodayJudge implements Judge {
  readonly #settings: AnalysisConfig
  readonly #stable: SlidingWindow
  readonly #canary: SlidingWindow
  readonly #checks: readonly Check[]
  #baseline: BaselineFigures | null = null
  #now: number

  constructor(analysis: SimAnalysis, start: number) {
    this.#settings = analysis
    this.#checks = builtinChecks(analysis)
    this.#now = start
    this.#stable = new SlidingWindow(analysis.windowMs, start)
    this.#canary = new SlidingWindow(analysis.windowMs, start)
  }

  record(side: SideName, error: boolean, us: number | null): void {
    const w = side === 'stable' ? this.#stable : this.#canary
    if (us === null) w.recordFailure()
    else w.recordResponse(error, us)
  }

  nextSlot(): void {}

  restart(): void {
    this.#stable.reset(this.#now)
    this.#canary.reset(this.#now)
  }

  decide(now: number, weight: number): Decision {
    this.#now = now
    const c = this.#canary.view(now)
    const s = this.#stable.view(now)
    if (weight < 100 && s.requests >= this.#settings.minRequests) this.#baseline = { requests: s.requests, errors: s.errors, p99Us: s.quantileUs(0.99) }
    const input: GateInput = {
      now,
      phase: weight >= 100 ? 'baking' : 'progressing',
      weight,
      canary: { window: c, step: { requests: c.requests, errors: c.errors } },
      stable: weight >= 100 ? null : { window: s, step: { requests: s.requests, errors: s.errors } },
      stableBaseline: this.#baseline,
      probes: NO_PROBES,
    }
    const a = this.#settings
    // Today's gate gave no verdict at all, fail included, below minRequests (issue 9).
    if (c.requests < a.minRequests) return { at: now, verdict: 'insufficient', reason: `${c.requests} of ${a.minRequests} canary requests`, findings: [] }
    return decide(this.#checks, input, { minRequests: a.minRequests, compares: a.maxErrorRateIncrease !== null || a.maxP99Ratio !== null })
  }

  /** The real windows hold WebAssembly memory. */
  dispose(): void {
    this.#stable.dispose()
    this.#canary.dispose()
  }

  setNow(now: number): void {
    this.#now = now
  }
}

// ------------------------------------------------------------ one run

interface Pending {
  readonly side: SideName
  readonly error: boolean
  readonly us: number | null
  readonly bad: boolean
}

/** Upstream delay 5 ms + Exp(mean 5 ms), times the scale, plus 0.3 ms for the proxy (the real-time bench's distribution). */
function latencyUs(rng: () => number, b: Behaviour): number {
  const base = b.latencyScale * (5 - 5 * Math.log(1 - rng())) * 1000 + 300
  return b.tailShare > 0 && rng() < b.tailShare ? base + b.tailMs * 1000 : base
}

/** The checks a rollback reason of today's gate names. */
function todayChecks(reason: string): string[] {
  const out: string[] = []
  for (const part of reason.split('; ')) {
    if (/^canary error rate .*\): increase /.test(part)) out.push('maxErrorRateIncrease')
    else if (/^canary error rate .* > max/.test(part)) out.push('maxErrorRate')
    else if (/^canary p99 .* is [\d.]+x /.test(part)) out.push('maxP99Ratio')
    else if (/^canary p99 .* > max/.test(part)) out.push('maxP99')
  }
  return out
}

/** One rollout of `scenario` judged by `decider`, on the random stream of `seed`. */
export function simulateRun(scenario: Scenario, decider: DeciderName, analysis: SimAnalysis, flagger: FlaggerChecks, seed: number): RunOutcome {
  return decider === 'flagger' ? runFlagger(scenario, flagger, seed) : runGate(scenario, decider, analysis, seed)
}

interface Stage {
  readonly weight: number
  readonly ms: number
  readonly baking: boolean
}

function stagesOf(s: Scenario): Stage[] {
  const stages: Stage[] = s.steps.filter((w) => w < 100).map((weight) => ({ weight, ms: s.stepMs, baking: false }))
  stages.push({ weight: 100 - (s.bakeStableShare ?? 0), ms: s.bakeMs, baking: true })
  return stages
}

/** The request loop shared by the deciders: arrivals, routing, responses landing after their latency (and after a stall). */
class Stream {
  readonly #scenario: Scenario
  readonly #rng: () => number
  readonly #ring: Pending[][] = Array.from({ length: 16_384 }, () => [])
  #arrived = 0
  firstBadAtMs: number | null = null
  badServed = 0

  constructor(scenario: Scenario, seed: number) {
    this.#scenario = scenario
    this.#rng = seededRng(seed)
  }

  get rng(): () => number {
    return this.#rng
  }

  /** Requests that arrive in ms t (evenly spaced at the rate), routed by `weight`. */
  arrive(t: number, m: Moment, routeWeight: number): void {
    const due = Math.floor(((t + 1) * this.#scenario.rate) / 1000)
    while (this.#arrived < due) {
      this.#arrived++
      const side: SideName = this.#rng() * 100 < routeWeight ? 'canary' : 'stable'
      const b = this.#scenario.behaviour(side, m)
      const bad = side === 'canary' && this.#scenario.badFrom !== null && this.#scenario.badFrom(m)
      if (bad) this.badServed++
      let doneAt: number
      let us: number | null
      let error: boolean
      if (b.dead) {
        doneAt = t + 1
        us = null
        error = true
      } else {
        us = latencyUs(this.#rng, b)
        error = this.#rng() < b.errorRatio
        doneAt = t + Math.max(1, Math.ceil(us / 1000))
        const stall = this.#scenario.stall
        if (stall !== undefined && doneAt >= stall.firstAtMs) {
          const into = (doneAt - stall.firstAtMs) % stall.everyMs
          if (into < stall.forMs) {
            const wait = stall.forMs - into
            doneAt += wait
            us += wait * 1000
          }
        }
      }
      this.#ring[doneAt % this.#ring.length]!.push({ side, error, us, bad })
    }
  }

  /** Responses that land in ms t. */
  land(t: number): Pending[] {
    const slot = this.#ring[t % this.#ring.length]!
    if (slot.length === 0) return slot
    const out = slot.splice(0, slot.length)
    for (const r of out) if (r.bad && this.firstBadAtMs === null) this.firstBadAtMs = t
    return out
  }
}

function runGate(scenario: Scenario, decider: 'new' | 'today', analysis: SimAnalysis, seed: number): RunOutcome {
  const start = 1_750_000_000_000
  const judge: Judge = decider === 'new' ? new NewJudge(analysis, scenario.steps, scenario.bakeStableShare ?? 0) : new TodayJudge(analysis, start)
  const stream = new Stream(scenario, seed)
  const stages = stagesOf(scenario)
  let stage = 0
  let stageStart = 0
  let lastVerdict: Decision | null = null
  let lastEvaluation = -Infinity
  let errorPending: number | null = null
  let phase: RunOutcome['phase'] = 'under_way'
  let reason: string | null = null
  let failedChecks: string[] = []
  let endedAt = scenario.limitMs
  let early = false
  try {
    for (let t = 0; t < scenario.limitMs && phase === 'under_way'; t++) {
      const s = stages[stage]!
      const m: Moment = { t, inStage: t - stageStart, weight: s.weight, baking: s.baking }
      stream.arrive(t, m, s.weight)
      for (const r of stream.land(t)) {
        judge.record(r.side, r.error, r.us)
        if (r.side === 'canary' && r.error && errorPending === null) errorPending = Math.max(t, lastEvaluation + MIN_EVALUATION_GAP_MS)
      }
      if (judge instanceof TodayJudge) judge.setNow(start + t)
      if (t > 0 && t % SLOT_MS === 0) judge.nextSlot()
      const tick = t > 0 && t % analysis.intervalMs === 0
      if (tick || (errorPending !== null && t >= errorPending)) {
        errorPending = null
        lastEvaluation = t
        const d = judge.decide(start + t, s.weight, s.baking)
        lastVerdict = d
        if (d.verdict === 'fail') {
          phase = 'rolled_back'
          reason = d.reason
          failedChecks = decider === 'new' ? d.findings.filter((f) => f.verdict === 'fail').map((f) => f.check) : todayChecks(d.reason)
          endedAt = t
          early = scenario.badFrom !== null && stream.firstBadAtMs === null
          break
        }
        if (d.verdict === 'pass' && t - stageStart >= s.ms) {
          if (stage === stages.length - 1) {
            phase = 'succeeded'
            endedAt = t
            break
          }
          stage++
          stageStart = t
          judge.restart(stages[stage]!.weight, stages[stage]!.baking)
        }
      }
    }
  } finally {
    judge.dispose()
  }
  return {
    decider,
    phase,
    reason: reason ?? (phase === 'under_way' ? (lastVerdict?.reason ?? null) : null),
    weight: stages[stage]!.weight,
    endedAtMs: endedAt,
    firstBadAtMs: stream.firstBadAtMs,
    badServed: stream.badServed,
    early,
    failedChecks,
  }
}

// ------------------------------------------------------------ Flagger-style

const BOUNDS_US = DURATION_BUCKETS_SECONDS.map((s) => s * 1e6)

function emptyCounters(): { requests: number; errors: number; buckets: number[] } {
  return { requests: 0, errors: 0, buckets: [...BOUNDS_US, Infinity].map(() => 0) }
}

function minus(a: SideCounters, b: SideCounters): SideCounters {
  return { requests: a.requests - b.requests, errors: a.errors - b.errors, buckets: a.buckets.map((v, i) => v - (b.buckets[i] ?? 0)) }
}

/** Counters as a scrape reads them: buckets cumulative (le). */
function scrape(c: { requests: number; errors: number; buckets: number[] }): SideCounters {
  let sum = 0
  return { requests: c.requests, errors: c.errors, buckets: c.buckets.map((v) => (sum += v)) }
}

function runFlagger(scenario: Scenario, checks: FlaggerChecks, seed: number): RunOutcome {
  const stream = new Stream(scenario, seed)
  const rng = seededRng(seed ^ 0x5bd1e995)
  const stages = stagesOf(scenario)
  const cumulative = { stable: emptyCounters(), canary: emptyCounters() }
  const scrapes: { at: number; stable: SideCounters; canary: SideCounters }[] = []
  const scrapePhase = Math.floor(rng() * 15) * 1000
  const tickPhase = Math.floor(rng() * 60) * 1000
  let stage = 0
  let failed = 0
  let phase: RunOutcome['phase'] = 'under_way'
  let reason: string | null = null
  let endedAt = scenario.limitMs
  let stageStart = 0
  let early = false
  for (let t = 0; t < scenario.limitMs && phase === 'under_way'; t++) {
    const s = stages[stage]!
    stream.arrive(t, { t, inStage: t - stageStart, weight: s.weight, baking: s.baking }, s.weight)
    for (const r of stream.land(t)) {
      const c = cumulative[r.side]
      c.requests++
      if (r.error) c.errors++
      // The bucket the latency falls in (a failure has none: +Inf); scrape() makes them cumulative, as Prometheus reads them.
      const us = r.us ?? Infinity
      let b = 0
      while (b < BOUNDS_US.length && us > BOUNDS_US[b]!) b++
      c.buckets[b]!++
    }
    if (t % 15_000 === scrapePhase) scrapes.push({ at: t, stable: scrape(cumulative.stable), canary: scrape(cumulative.canary) })
    if (t >= 60_000 && t % 60_000 === tickPhase) {
      if (failed >= 5) {
        phase = 'rolled_back'
        reason = `${failed} failed checks`
        endedAt = t
        early = scenario.badFrom !== null && stream.firstBadAtMs === null
        break
      }
      const inWindow = scrapes.filter((x) => x.at > t - 60_000 && x.at <= t)
      const fails = inWindow.length < 2 || checkFails(minus(inWindow[inWindow.length - 1]!.canary, inWindow[0]!.canary), minus(inWindow[inWindow.length - 1]!.stable, inWindow[0]!.stable), checks)
      if (fails) failed++
      else if (stage === stages.length - 1) {
        phase = 'succeeded'
        endedAt = t
      } else {
        stage++
        stageStart = t
      }
    }
  }
  return { decider: 'flagger', phase, reason, weight: stages[stage]!.weight, endedAtMs: endedAt, firstBadAtMs: stream.firstBadAtMs, badServed: stream.badServed, early, failedChecks: [] }
}
