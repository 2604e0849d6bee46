/**
 * Analysis: the control plane's figures and judgement. It owns each side's
 * sliding window (fed by draining the data plane's recorders, or by deltas
 * from other processes), the counts since the current step began, the check
 * set built from the config, and the probes' latest results; evaluate() turns
 * them into one GateInput and runs the gate.
 */
import type { AnalysisConfig } from '../config/schema.js'
import type { SideName } from '../routing/snapshot.js'
import { countAbove } from '../stats/latency-histogram.js'
import { withDecodedLatency, type WindowDelta, type WindowRecorder } from '../stats/recorder.js'
import { summarize, type SideSummary } from '../stats/side-stats.js'
import { SlidingWindow } from '../stats/window.js'
import { buildChecks } from './checks/index.js'
import { ladderFor, LatencyTallyRing, robustQuantileUs, type LadderSettings, type LatencySample } from './latency-ladder.js'
import type { BaselineFigures, Check, Counts, GateInput } from './check.js'
import type { Decision } from './finding.js'
import { decide, type GateSettings } from './gate.js'
import { NO_PROBES, type ProbeResults } from './probe.js'

export interface Judged {
  readonly decision: Decision
  /** Stable's live figures in this evaluation when it had minRequests (the baseline candidate), else null. */
  readonly liveStable: BaselineFigures | null
}

/** What the gate needs of the rollout at one evaluation. */
export interface Situation {
  readonly now: number
  readonly phase: string
  readonly weight: number
  /** The baseline saved with the state (at 100%), if any. */
  readonly baseline: BaselineFigures | null
}

/** What a DataPlaneLink feeds: the in-process recorders, or deltas from other processes. Analysis is one. */
export interface WindowSink {
  drain(side: SideName, recorder: WindowRecorder | null): void
  addDelta(side: SideName, delta: WindowDelta, slotNo?: number): void
}

interface StepCounts {
  requests: number
  errors: number
}

const EMPTY_SAMPLE: LatencySample = { count: 0, above: () => 0 }

/** The sequential built-in checks of an analysis config (rollout.steps, when given, is what falseRollbackRate is spent over). */
export function defaultChecks(config: AnalysisConfig, rollout?: { readonly steps: readonly number[]; readonly bakeStableShare?: number }): Check[] {
  return [...buildChecks({ ...config, ...(rollout === undefined ? {} : { steps: rollout.steps, bakeStableShare: rollout.bakeStableShare ?? 0 }) }).checks]
}

export class Analysis implements WindowSink {
  #windows: Record<SideName, SlidingWindow>
  /** Slow-response counts of the step, per slot, for the latency checks (latency-ladder.ts). */
  #tally: LatencyTallyRing
  #tallySlot: number
  readonly #step: Record<SideName, StepCounts> = { stable: { requests: 0, errors: 0 }, canary: { requests: 0, errors: 0 } }
  #config: AnalysisConfig
  #checks: readonly Check[]
  #gate: GateSettings
  #probes: ProbeResults
  /** Stable's last live figures with minRequests, kept in memory; the machine saves them as the baseline at 100%. */
  #liveStable: BaselineFigures | null = null
  /** Bumped whenever the figures can have changed, so a scrape's several reads share one summary. */
  #revision = 0
  #summary: { at: number; revision: number; stable: SideSummary; canary: SideSummary } | null = null

  constructor(config: AnalysisConfig, now: number, options: { readonly checks?: readonly Check[]; readonly probes?: ProbeResults } = {}) {
    this.#config = config
    this.#windows = { stable: new SlidingWindow(config.windowMs, now), canary: new SlidingWindow(config.windowMs, now) }
    this.#tally = new LatencyTallyRing(this.#windows.stable.slotCount, ladderFor(ladderSettings(config), null))
    this.#tallySlot = this.#windows.stable.slotNumber(now)
    this.#checks = options.checks ?? defaultChecks(config)
    this.#probes = options.probes ?? NO_PROBES
    this.#gate = gateSettings(config)
  }

  get slotMs(): number {
    return this.#windows.stable.slotMs
  }

  /** The last live stable figures that had minRequests (null before any, and after a promotion). */
  get liveStable(): BaselineFigures | null {
    return this.#liveStable
  }

  /** A reloaded config: the check set is built anew; a new window length starts empty windows. */
  configure(config: AnalysisConfig, now: number, checks: readonly Check[] = defaultChecks(config)): void {
    if (config.windowMs !== this.#config.windowMs) {
      this.#disposeWindows()
      this.#windows = { stable: new SlidingWindow(config.windowMs, now), canary: new SlidingWindow(config.windowMs, now) }
      this.#tally = new LatencyTallyRing(this.#windows.stable.slotCount, ladderFor(ladderSettings(config), null))
      this.#tallySlot = this.#windows.stable.slotNumber(now)
      this.#revision++
    } else if (config.maxP99Ms !== this.#config.maxP99Ms || config.maxP99Ratio !== this.#config.maxP99Ratio || config.minP99DeltaMs !== this.#config.minP99DeltaMs) {
      this.#tally.open(ladderFor(ladderSettings(config), this.#tally.ladder.referenceUs))
    }
    this.#config = config
    this.#checks = checks
    this.#gate = gateSettings(config)
  }

  setProbes(probes: ProbeResults): void {
    this.#probes = probes
  }

  /** In process: what a side's current backend recorded since the last drain (null: no such backend). */
  drain(side: SideName, recorder: WindowRecorder | null): void {
    if (recorder === null || recorder.empty) return
    const step = this.#step[side]
    step.requests += recorder.requests
    step.errors += recorder.errors
    this.#windows[side].drain(recorder)
    this.#revision++
  }

  /**
   * From another process (a worker, a replica): one recorder's delta for a
   * side's current backend, into the current slot or, with `slotNo`, into the
   * slot it was measured in (dropped when that slot has left the window).
   */
  addDelta(side: SideName, delta: WindowDelta, slotNo?: number): void {
    if (delta.requests === 0) return
    if (!this.#windows[side].addDelta(delta, slotNo)) return
    // A slot the latency tally has closed already: its slow counts go in late (the current slot's are tallied when it closes).
    const back = slotNo === undefined ? 0 : this.#tallySlot - slotNo
    if (back > 0) {
      withDecodedLatency(delta, (latency) => {
        if (latency === null || latency.totalCount === 0) return
        const sample: LatencySample = { count: latency.totalCount, above: (us) => (latency.maxValue <= us ? 0 : countAbove(latency, us)) }
        this.#tally.late(side === 'stable' ? sample : EMPTY_SAMPLE, side === 'canary' ? sample : EMPTY_SAMPLE, back)
      })
    }
    const step = this.#step[side]
    step.requests += delta.requests
    step.errors += delta.errors
    this.#revision++
  }

  /** The current window slot's number (floor(now / slotMs)). */
  get currentSlotNo(): number {
    return this.#windows.stable.currentSlotNo
  }

  /** Moves both windows to `now` (the slot tick). */
  advance(now: number): void {
    this.#tick(now)
  }

  /**
   * At a slot boundary the slot that ends is tallied against the ladder it
   * began with, and the next one gets a ladder from stable's window as it
   * stands (a robust p99: one stalled slot moves it little). Runs before
   * anything reads the windows, so no slot is left out of the tally.
   */
  #tick(now: number): void {
    const { stable, canary } = this.#windows
    const slot = stable.slotNumber(now)
    if (slot > this.#tallySlot) {
      this.#tally.close(stable.currentSample(), canary.currentSample())
      // Slots nobody looked at had no traffic the windows saw (drains land in the current slot).
      const skipped = Math.min(slot - this.#tallySlot - 1, stable.slotCount)
      for (let i = 0; i < skipped; i++) this.#tally.close(EMPTY_SAMPLE, EMPTY_SAMPLE)
      this.#tallySlot = slot
      stable.advance(now)
      canary.advance(now)
      this.#tally.open(ladderFor(ladderSettings(this.#config), robustQuantileUs(stable.view(now))))
      return
    }
    stable.advance(now)
    canary.advance(now)
  }

  /** A new weight, canary or stable: both sides are observed afresh. */
  reset(now: number): void {
    for (const side of ['stable', 'canary'] as const) {
      this.#windows[side].reset(now)
      this.#step[side] = { requests: 0, errors: 0 }
    }
    this.#tally.restart()
    this.#tallySlot = this.#windows.stable.slotNumber(now)
    this.#revision++
  }

  /** The canary became the stable: stable's remembered figures describe another upstream now. */
  forgetStable(): void {
    this.#liveStable = null
  }

  evaluate(situation: Situation): Judged {
    const { now } = situation
    this.#tick(now)
    const stableWindow = this.#windows.stable.view(now)
    const live = situation.weight < 100 && stableWindow.requests >= this.#config.minRequests
    if (live) this.#liveStable = { requests: stableWindow.requests, errors: stableWindow.errors, p99Us: stableWindow.quantileUs(0.99) }
    const input: GateInput = {
      now,
      phase: situation.phase,
      weight: situation.weight,
      canary: { window: this.#windows.canary.view(now), step: counts(this.#step.canary) },
      stable: situation.weight < 100 ? { window: stableWindow, step: counts(this.#step.stable) } : null,
      stableBaseline: situation.baseline ?? this.#liveStable,
      probes: this.#probes,
      latency: this.#tally.view(this.#windows.stable.currentSample(), this.#windows.canary.currentSample()),
    }
    return { decision: decide(this.#checks, input, this.#gate), liveStable: live ? this.#liveStable : null }
  }

  /** Both sides' window figures for the status and the metrics; one summary serves every read until something changes (or 50ms pass). */
  figures(now: number): { readonly stable: SideSummary; readonly canary: SideSummary } {
    const cached = this.#summary
    if (cached !== null && cached.revision === this.#revision && now - cached.at >= 0 && now - cached.at < 50) return cached
    this.#tick(now)
    const fresh = { at: now, revision: this.#revision, stable: summarize(this.#windows.stable.read(now)), canary: summarize(this.#windows.canary.read(now)) }
    this.#summary = fresh
    return fresh
  }

  dispose(): void {
    this.#disposeWindows()
  }

  #disposeWindows(): void {
    this.#windows.stable.dispose()
    this.#windows.canary.dispose()
  }
}

function counts(step: StepCounts): Counts {
  return { requests: step.requests, errors: step.errors }
}

function ladderSettings(a: AnalysisConfig): LadderSettings {
  return { maxP99Ms: a.maxP99Ms, maxP99Ratio: a.maxP99Ratio, minP99DeltaMs: a.minP99DeltaMs }
}

function gateSettings(a: AnalysisConfig): GateSettings {
  return { minRequests: a.minRequests, compares: a.maxErrorRateIncrease !== null || a.maxP99Ratio !== null }
}
