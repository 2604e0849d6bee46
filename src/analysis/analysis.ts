/**
 * Analysis: the control plane's figures and judgement. It owns each side's
 * sliding window (fed by draining the data plane's recorders, or by deltas
 * from other processes), the counts since the current step began, the check
 * set built from the config, and the probes' latest results; evaluate() turns
 * them into one GateInput and runs the gate.
 */
import type { AnalysisConfig } from '../config/schema.js'
import type { SideName } from '../routing/snapshot.js'
import type { WindowDelta, WindowRecorder } from '../stats/recorder.js'
import { summarize, type SideSummary } from '../stats/side-stats.js'
import { SlidingWindow } from '../stats/window.js'
import { builtinChecks } from './builtin-checks.js'
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

interface StepCounts {
  requests: number
  errors: number
}

export class Analysis {
  #windows: Record<SideName, SlidingWindow>
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
    this.#checks = options.checks ?? builtinChecks(config)
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
  configure(config: AnalysisConfig, now: number, checks: readonly Check[] = builtinChecks(config)): void {
    if (config.windowMs !== this.#config.windowMs) {
      this.#disposeWindows()
      this.#windows = { stable: new SlidingWindow(config.windowMs, now), canary: new SlidingWindow(config.windowMs, now) }
      this.#revision++
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

  /** From another process (a worker, a replica): one recorder's delta for a side's current backend. */
  addDelta(side: SideName, delta: WindowDelta): void {
    if (delta.requests === 0) return
    const step = this.#step[side]
    step.requests += delta.requests
    step.errors += delta.errors
    this.#windows[side].addDelta(delta)
    this.#revision++
  }

  /** Moves both windows to `now` (the slot tick). */
  advance(now: number): void {
    this.#windows.stable.advance(now)
    this.#windows.canary.advance(now)
  }

  /** A new weight, canary or stable: both sides are observed afresh. */
  reset(now: number): void {
    for (const side of ['stable', 'canary'] as const) {
      this.#windows[side].reset(now)
      this.#step[side] = { requests: 0, errors: 0 }
    }
    this.#revision++
  }

  /** The canary became the stable: stable's remembered figures describe another upstream now. */
  forgetStable(): void {
    this.#liveStable = null
  }

  evaluate(situation: Situation): Judged {
    const { now } = situation
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
    }
    return { decision: decide(this.#checks, input, this.#gate), liveStable: live ? this.#liveStable : null }
  }

  /** Both sides' window figures for the status and the metrics; one summary serves every read until something changes (or 50ms pass). */
  figures(now: number): { readonly stable: SideSummary; readonly canary: SideSummary } {
    const cached = this.#summary
    if (cached !== null && cached.revision === this.#revision && now - cached.at >= 0 && now - cached.at < 50) return cached
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

function gateSettings(a: AnalysisConfig): GateSettings {
  return { minRequests: a.minRequests, compares: a.maxErrorRateIncrease !== null || a.maxP99Ratio !== null }
}
