/** ProbeRunner: runs each probe on its own schedule on the injected Clock, off the hot path and off the gate's tick, and keeps its latest result for the gate (ProbeResults). */
import type { Probe, ProbeContext, ProbeResult, ProbeResults, ProbeRollout } from '../analysis/probe.js'
import type { Clock, Timer } from '../core/clock.js'
import { isUnderWay, type Phase } from '../core/phases.js'
import type { EventFeed } from '../events/feed.js'

export interface ProbeRunnerLog {
  warn(fields: object, message: string): void
  info(fields: object, message: string): void
}

export interface ProbeRunnerOptions {
  readonly clock: Clock
  readonly probes: readonly Probe[]
  /** The rollout as it stands, read at the start of every run. */
  readonly rollout: () => ProbeRollout
  /** Requests each side has served through the proxy (cumulative). */
  readonly servedRequests: (side: 'stable' | 'canary') => number
  /** Run only while a rollout is under way (default): nothing is measured, and no gate is asked, for a rollout that is not there. */
  readonly onlyUnderWay?: boolean
  readonly log?: ProbeRunnerLog
}

/** What the runner knows of one probe, for metrics (`canary_proxy_probe_*`) and the status view. */
export interface ProbeStats {
  readonly id: string
  readonly runs: number
  readonly failures: number
  /** Ticks that found the previous run still going (a slow source). */
  readonly overlaps: number
  readonly lastDurationMs: number | null
  readonly lastAt: number | null
  readonly lastError: string | null
}

interface Slot {
  readonly probe: Probe
  timer: Timer | null
  inFlight: Promise<void> | null
  abort: AbortController | null
  /** Run again as soon as the one in flight ends (a kick that came during it). */
  again: boolean
  latest: { readonly result: ProbeResult; readonly generation: number } | null
  runs: number
  failures: number
  overlaps: number
  lastDurationMs: number | null
  failing: boolean
}

export class ProbeRunner implements ProbeResults {
  readonly #options: ProbeRunnerOptions
  readonly #slots = new Map<string, Slot>()
  #started = false
  #stopped = false

  constructor(options: ProbeRunnerOptions) {
    this.#options = options
    for (const probe of options.probes) {
      if (this.#slots.has(probe.id)) throw new Error(`two probes with the id ${probe.id}`)
      if (!(probe.intervalMs > 0)) throw new Error(`probe ${probe.id}: interval must be > 0`)
      this.#slots.set(probe.id, { probe, timer: null, inFlight: null, abort: null, again: false, latest: null, runs: 0, failures: 0, overlaps: 0, lastDurationMs: null, failing: false })
    }
  }

  /** Schedules every probe and runs each once now. */
  start(): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    for (const slot of this.#slots.values()) {
      slot.timer = this.#options.clock.every(slot.probe.intervalMs, () => this.#run(slot))
      this.#run(slot)
    }
  }

  /** Cancels the schedules, aborts the runs in flight and waits for them to end. */
  async stop(): Promise<void> {
    this.#stopped = true
    const running: Promise<void>[] = []
    for (const slot of this.#slots.values()) {
      slot.timer?.cancel()
      slot.timer = null
      slot.again = false
      slot.abort?.abort(new Error('the proxy is stopping'))
      if (slot.inFlight !== null) running.push(slot.inFlight)
    }
    await Promise.all(running)
  }

  /** Runs the matching probes now (or right after their run in flight). */
  kick(filter: (probe: Probe) => boolean = () => true): void {
    if (!this.#started || this.#stopped) return
    for (const slot of this.#slots.values()) {
      if (!filter(slot.probe)) continue
      if (slot.inFlight !== null) slot.again = true
      else this.#run(slot)
    }
  }

  /** Kicks the probes marked `runOnTransition` on every transition of the feed; returns the unsubscribe function. */
  attach(feed: EventFeed): () => void {
    return feed.subscribe((event) => {
      if (event.type === 'transition') this.kick((p) => p.runOnTransition === true)
    })
  }

  /**
   * The latest result, or null when there is none for the rollout under way:
   * a result measured for an earlier rollout (another generation) is not
   * this canary's, so a new rollout starts with no probe results, as it
   * starts with empty canary figures.
   */
  latest<T = unknown>(probeId: string): ProbeResult<T> | null {
    const latest = this.#slots.get(probeId)?.latest
    if (latest === null || latest === undefined) return null
    return latest.generation === this.#options.rollout().generation ? (latest.result as ProbeResult<T>) : null
  }

  stats(): readonly ProbeStats[] {
    return [...this.#slots.values()].map((s) => ({
      id: s.probe.id,
      runs: s.runs,
      failures: s.failures,
      overlaps: s.overlaps,
      lastDurationMs: s.lastDurationMs,
      lastAt: s.latest?.result.at ?? null,
      lastError: s.latest?.result.error ?? null,
    }))
  }

  /** Resolves when no run is in flight (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const running = [...this.#slots.values()].map((s) => s.inFlight).filter((p): p is Promise<void> => p !== null)
      if (running.length === 0) return
      await Promise.all(running)
    }
  }

  #run(slot: Slot): void {
    if (this.#stopped) return
    if (slot.inFlight !== null) {
      slot.overlaps++
      return
    }
    const rollout = this.#options.rollout()
    if (this.#options.onlyUnderWay !== false && !isUnderWay(rollout.phase as Phase)) return
    const { clock } = this.#options
    const abort = new AbortController()
    const timeoutMs = slot.probe.timeoutMs ?? slot.probe.intervalMs
    const timeout = clock.after(timeoutMs, () => abort.abort(new Error(`timed out after ${timeoutMs}ms`)))
    const startedAt = clock.now()
    const context: ProbeContext = { now: () => clock.now(), signal: abort.signal, rollout, servedRequests: this.#options.servedRequests }
    slot.abort = abort
    slot.runs++
    const finish = (value: unknown, error: string | null): void => {
      timeout.cancel()
      slot.abort = null
      slot.inFlight = null
      slot.lastDurationMs = clock.now() - startedAt
      if (error !== null) slot.failures++
      slot.latest = { result: { at: startedAt, value: error === null ? value : null, error }, generation: rollout.generation }
      this.#logChange(slot, error)
      if (slot.again && !this.#stopped) {
        slot.again = false
        this.#run(slot)
      }
    }
    slot.inFlight = (async () => {
      try {
        finish(await slot.probe.run(context), null)
      } catch (error) {
        const reason: unknown = abort.signal.aborted ? abort.signal.reason : error
        finish(null, reason instanceof Error ? reason.message : String(reason))
      }
    })()
  }

  /** One line when a probe starts failing and one when it recovers, not one per run. */
  #logChange(slot: Slot, error: string | null): void {
    const log = this.#options.log
    if (error !== null && !slot.failing) log?.warn({ probe: slot.probe.id, error }, `probe ${slot.probe.id} failed: ${error}`)
    if (error === null && slot.failing) log?.info({ probe: slot.probe.id }, `probe ${slot.probe.id} recovered`)
    slot.failing = error !== null
  }
}
