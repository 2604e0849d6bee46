/** The rollout controller: runs the gate on the analysis interval, feeds verdicts and operator actions to the machine, and applies the effects. */
import type { Logger } from 'pino'
import type { SideView, StatusView } from '../api/wire.js'
import type { Config } from '../config/schema.js'
import type { Clock, Timer } from '../core/clock.js'
import type { UpstreamPools } from '../proxy/upstreams.js'
import { compileSnapshot, SnapshotRef, type RoutingSnapshot, type SideName, type UpstreamTarget } from '../routing/snapshot.js'
import { newOverrideStats, type OverrideStatsPair } from '../stats/override-stats.js'
import { summarize, type SideStats, type SideSummary } from '../stats/side-stats.js'
import type { EventFeed } from '../events/feed.js'
import type { AuditLog } from '../state/audit-log.js'
import type { StateStore } from '../state/store.js'
import { evaluateGate, type CanaryFigures, type GateSettings, type StableFigures } from './gate.js'
import { initialState, stepIndexAtOrBelow, transition, type TransitionResult } from './machine.js'
import { isUnderWay, type Actor, type RolloutEvent, type RolloutSettings, type RolloutState } from './phase.js'

export interface ControllerDeps {
  readonly config: Config
  readonly clock: Clock
  readonly store: StateStore
  readonly audit: AuditLog
  readonly pools: UpstreamPools
  readonly stats: { readonly stable: SideStats; readonly canary: SideStats }
  /** Where requests routed by the override header record (never the gate's windows); a fresh pair when absent. */
  readonly override?: OverrideStatsPair
  readonly log: Logger
  /** Transitions, decisions and persistence failures are published here. */
  readonly events: EventFeed
}

export type { SideView, StatusView } from '../api/wire.js'

export type ActResult = { readonly ok: true; readonly status: StatusView } | { readonly ok: false; readonly conflict: string }

/** Evaluations triggered by canary errors are at most this far apart (they cost two window merges). */
const MIN_EVALUATION_GAP_MS = 20

export class RolloutController {
  readonly ref: SnapshotRef
  readonly settings: RolloutSettings
  readonly #deps: ControllerDeps
  readonly #gate: GateSettings
  #state: RolloutState
  #version = 0
  #baseline: StableFigures | null = null
  #timers: Timer[] = []
  #rollbacks = 0
  #persistFailures = 0
  #evaluationTimer: Timer | null = null
  #lastEvaluationAt = Number.NEGATIVE_INFINITY
  /** The last save failed: the state in memory is newer than the one on disk, and is saved again on every tick until it lands. */
  #dirty = false
  /** The store's version of the state last loaded or saved (compare-and-set). */
  #storeVersion = 0
  #figuresCache: { at: number; recorded: number; stable: SideSummary; canary: SideSummary } | null = null
  /** Bumped when a side's upstream changes (a new rollout's canary, a promotion); see UpstreamTarget.epoch. */
  readonly #epochs = { stable: 0, canary: 0 }
  readonly #override: OverrideStatsPair

  private constructor(deps: ControllerDeps, state: RolloutState) {
    this.#deps = deps
    this.#state = state
    this.#override = deps.override ?? newOverrideStats()
    const c = deps.config
    this.settings = { steps: c.rollout.steps, stepDurationMs: c.rollout.stepDurationMs, bakeMs: c.rollout.bakeMs }
    this.#gate = c.analysis
    this.ref = new SnapshotRef(this.#compile())
    const kept = state.baseline ?? null
    if (kept !== null) this.#baseline = { ...kept, baseline: true }
    deps.stats.canary.onError = () => this.#onCanaryError()
  }

  /**
   * Loads the persisted state and reconciles it with the config. A restart
   * resumes the same phase, step and weight with a fresh observation; it never
   * jumps to 0% or 100% by itself.
   */
  static async create(deps: ControllerDeps): Promise<RolloutController> {
    const { config, clock, store, log } = deps
    const now = clock.now()
    const loaded = await store.load()
    let state: RolloutState
    const notes: { action: string; reason: string }[] = []
    if (loaded.kind === 'corrupt') {
      state = { ...initialState(config.upstreams.stable, config.upstreams.canary, now), phase: 'paused', weight: 0, stepIndex: null }
      const kept = loaded.keptAs === null ? 'it could not be moved aside' : `kept as ${loaded.keptAs}`
      log.error({ stateFile: store.name, keptAs: loaded.keptAs }, `state file ${store.name} is unusable (${loaded.problem}); ${kept}; starting safe: all traffic to stable, phase paused`)
      notes.push({ action: 'recover', reason: `state file unusable (${loaded.problem}); ${kept}; started safe, paused at 0%` })
    } else if (loaded.kind === 'empty') {
      state = initialState(config.upstreams.stable, config.upstreams.canary, now)
    } else {
      state = resumeObservation(loaded.state, now, config.rollout.steps)
      if (config.upstreams.stable !== state.configStable) {
        notes.push({ action: 'config', reason: `stable upstream changed in the config: ${state.stableUrl} -> ${config.upstreams.stable}` })
        state = { ...state, stableUrl: config.upstreams.stable, configStable: config.upstreams.stable }
      }
      const configCanary = config.upstreams.canary
      if (configCanary !== null && configCanary !== state.configCanary) {
        notes.push({ action: 'config', reason: `new canary upstream in the config: ${configCanary}${isUnderWay(state.phase) ? ` (replaces the rollout of ${state.canaryUrl ?? ''})` : ''}` })
        state = { ...initialState(state.stableUrl, configCanary, now), generation: state.generation }
      }
    }
    const controller = new RolloutController(deps, state)
    controller.#storeVersion = loaded.version
    for (const note of notes) {
      void controller.#auditNote(note.action, note.reason, 'auto')
    }
    if (loaded.kind !== 'loaded' || notes.length > 0) await controller.#persist()
    // Idle with a canary known means its rollout never started (an ended one is not idle).
    if (config.rollout.autoStart && controller.#state.phase === 'idle' && controller.#state.canaryUrl !== null) {
      await controller.act({ type: 'start', canary: null }, 'auto')
    }
    return controller
  }

  get state(): RolloutState {
    return this.#state
  }

  get rollbacks(): number {
    return this.#rollbacks
  }

  get persistFailures(): number {
    return this.#persistFailures
  }

  /** Starts the analysis tick and the window rotation on the injected clock. */
  startTimers(): void {
    const { clock, config, stats } = this.#deps
    this.#timers.push(
      clock.every(config.analysis.intervalMs, () => {
        if (this.#dirty) void this.#persist().catch(() => undefined)
        this.evaluate()
      }),
    )
    this.#timers.push(
      clock.every(stats.stable.window.slotMs, () => {
        const now = clock.now()
        stats.stable.window.advance(now)
        stats.canary.window.advance(now)
      }),
    )
  }

  stopTimers(): void {
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
    this.#evaluationTimer?.cancel()
    this.#evaluationTimer = null
  }

  /** An operator action; resolves once the new state is durable. A persistence failure rejects (the change stays applied in memory). */
  async act(event: Exclude<RolloutEvent, { type: 'analysis' }>, actor: Actor): Promise<ActResult> {
    const result = transition(this.#state, event, this.#deps.clock.now(), this.settings, actor)
    if (!result.ok) return result
    await this.#apply(result)
    return { ok: true, status: this.status() }
  }

  /** Runs the gate on the current windows and feeds the verdict to the machine. */
  evaluate(): void {
    const { clock, stats } = this.#deps
    const now = clock.now()
    this.#lastEvaluationAt = now
    if (!isUnderWay(this.#state.phase)) return
    const window = stats.canary.window
    const c = window.read(now)
    const canary: CanaryFigures = {
      requests: c.requests,
      errors: c.errors,
      p99Us: p99(c.latency),
      latency: c.latency,
      slowestSlot: (us) => window.slowestSlot(us),
      slotMs: window.slotMs,
    }
    const s = stats.stable.window.read(now)
    let stable: StableFigures | null = this.#baseline
    // While stable takes live traffic its window is the reference, and it is
    // remembered; at 100% (and in the bake) the last one stands in for it.
    if (this.#state.weight < 100 && s.requests >= this.#gate.minRequests) {
      stable = { requests: s.requests, errors: s.errors, p99Us: p99(s.latency), baseline: false }
      this.#baseline = { ...stable, baseline: true }
    }
    const verdict = evaluateGate(canary, stable, this.#gate, now)
    this.#deps.events.emit({ type: 'decision', decision: verdict, phase: this.#state.phase, weight: this.#state.weight })
    void this.#apply(transition(this.#state, { type: 'analysis', verdict }, now, this.settings)).catch(() => undefined)
  }

  status(): StatusView {
    const s = this.#state
    const figures = this.figures()
    const side = (url: string, f: SideSummary): SideView => ({ url, requests: f.requests, errors: f.errors, errorRate: f.errorRate, p50Ms: f.p50Ms, p99Ms: f.p99Ms })
    const iso = (t: number): string => new Date(t).toISOString()
    let stepStartedAt: number | null = null
    let stepEndsAt: number | null = null
    if (s.phase === 'progressing') {
      stepStartedAt = s.stepStartedAt
      stepEndsAt = s.stepStartedAt + this.settings.stepDurationMs
    } else if (s.phase === 'baking') {
      stepStartedAt = s.bakeStartedAt
      stepEndsAt = s.bakeStartedAt + this.settings.bakeMs
    }
    const index = s.phase === 'progressing' || s.phase === 'paused' || s.phase === 'baking' ? s.stepIndex : null
    const step = index !== null && index >= 0 ? index : null
    return {
      phase: s.phase,
      weight: s.weight,
      step,
      steps: [...this.settings.steps],
      stable: side(s.stableUrl, figures.stable),
      canary: s.canaryUrl === null ? null : side(s.canaryUrl, figures.canary),
      lastDecision: s.lastDecision === null ? null : { at: iso(s.lastDecision.at), verdict: s.lastDecision.verdict, reason: s.lastDecision.reason, findings: [...s.lastDecision.findings] },
      reason: s.phase === 'succeeded' || s.phase === 'rolled_back' || s.phase === 'aborted' ? s.reason : null,
      stepStartedAt: stepStartedAt === null ? null : iso(stepStartedAt),
      stepEndsAt: stepEndsAt === null ? null : iso(stepEndsAt),
      generation: s.generation,
    }
  }

  /**
   * Window figures of both sides, cached while nothing new was recorded and
   * for at most 50ms: one scrape reads them for several metrics.
   */
  figures(): { stable: SideSummary; canary: SideSummary } {
    const now = this.#deps.clock.now()
    const { stats } = this.#deps
    const recorded = outcomes(stats.stable) + outcomes(stats.canary)
    const cached = this.#figuresCache
    if (cached !== null && cached.recorded === recorded && now - cached.at >= 0 && now - cached.at < 50) return cached
    const fresh = { at: now, recorded, stable: summarize(stats.stable.window.read(now)), canary: summarize(stats.canary.window.read(now)) }
    this.#figuresCache = fresh
    return fresh
  }

  /** Waits for pending state writes, and saves once more if the last save failed. */
  async flush(): Promise<void> {
    if (this.#dirty) await this.#persist().catch(() => undefined)
    await this.#deps.store.close()
  }

  #onCanaryError(): void {
    if (this.#evaluationTimer !== null || !isUnderWay(this.#state.phase)) return
    const { clock } = this.#deps
    const wait = Math.max(0, this.#lastEvaluationAt + MIN_EVALUATION_GAP_MS - clock.now())
    this.#evaluationTimer = clock.after(wait, () => {
      this.#evaluationTimer = null
      this.evaluate()
    })
  }

  async #apply(result: TransitionResult): Promise<void> {
    if (!result.ok) return
    const before = this.#state
    this.#state = result.state
    const { clock, stats, log, pools, audit } = this.#deps
    const now = clock.now()
    // Each weight of a rollout is observed afresh on both sides, so the two
    // windows always cover the same time span with steady shares of traffic.
    // Otherwise, as the weight grows, the canary's samples crowd into the
    // last seconds while stable's spread over the whole window, and anything
    // that slows both sides at once reads as a canary regression (measured
    // on the decision bench). Ending a rollout keeps the figures that ended it.
    if (isUnderWay(result.state.phase) && result.state.weight !== before.weight) {
      stats.stable.window.reset(now)
      stats.canary.window.reset(now)
      this.#figuresCache = null
    }
    // Reaching 100%: stable takes no more traffic, so its last figures become
    // the reference, saved with the state (a restart in the bake keeps them).
    if (isUnderWay(result.state.phase) && result.state.weight === 100 && before.weight !== 100) {
      const b = this.#baseline
      this.#state = { ...this.#state, baseline: b === null ? null : { requests: b.requests, errors: b.errors, p99Us: b.p99Us } }
    }
    let persisted: Promise<void> = Promise.resolve()
    for (const effect of result.effects) {
      switch (effect.type) {
        case 'resetCanaryFigures':
          stats.canary.epoch = ++this.#epochs.canary
          stats.canary.window.reset(now)
          this.#figuresCache = null
          break
        case 'promoted':
          stats.canary.epoch = ++this.#epochs.canary
          stats.stable.epoch = ++this.#epochs.stable
          stats.canary.window.reset(now)
          stats.stable.window.reset(now)
          this.#baseline = null
          this.#state = { ...this.#state, baseline: null }
          this.#figuresCache = null
          break
        case 'rolledBack':
          this.#rollbacks++
          break
        case 'publish':
          this.ref.publish(this.#compile())
          void pools.retain(this.#state.canaryUrl === null ? [this.#state.stableUrl] : [this.#state.stableUrl, this.#state.canaryUrl])
          break
        case 'persist':
          persisted = this.#persist()
          break
        case 'audit': {
          const r = effect.record
          const level = r.action === 'rollback' ? 'warn' : 'info'
          log[level]({ actor: r.actor, action: r.action, from: r.from, to: r.to }, `rollout ${r.action}: ${r.from.phase} ${r.from.weight}% -> ${r.to.phase} ${r.to.weight}%: ${r.reason ?? ''}`)
          audit.append(r).catch((error: unknown) => log.error({ err: error }, `cannot append to the audit log ${audit.file}`))
          this.#deps.events.emit({ type: 'transition', record: r, generation: this.#state.generation, findings: this.#state.lastDecision?.findings ?? [] })
          break
        }
      }
    }
    await persisted
  }

  #persist(): Promise<void> {
    const { store, log } = this.#deps
    this.#dirty = false
    return store.save(this.#state, this.#storeVersion).then(
      (result) => {
        if (result.ok) {
          this.#storeVersion = result.version
          return
        }
        // Another writer got there first: this process's state is the one that routes, so it is written over the stored one.
        this.#storeVersion = result.version
        this.#dirty = true
        log.warn({ stored: result.version }, `state in ${store.name} changed under this process (${result.reason}); saving again on the next tick`)
      },
      (error: unknown) => {
        this.#persistFailures++
        this.#dirty = true
        this.#deps.events.emit({ type: 'persistFailure', at: this.#deps.clock.now(), store: store.name, error: (error as Error).message })
        log.error({ err: error }, `cannot save the rollout state to ${store.name}; the change is applied and the save is retried on every analysis tick`)
        throw error
      },
    )
  }

  #auditNote(action: string, reason: string, actor: Actor): Promise<void> {
    const s = this.#state
    const at = this.#deps.clock.now()
    this.#deps.log.warn({ action }, reason)
    return this.#deps.audit.append({ at, actor, action, from: { phase: s.phase, weight: s.weight }, to: { phase: s.phase, weight: s.weight }, reason }).catch(() => undefined)
  }

  #compile(): RoutingSnapshot {
    const s = this.#state
    const routing = this.#deps.config.routing
    return compileSnapshot(
      {
        stable: this.#target('stable', s.stableUrl),
        canary: s.canaryUrl === null ? null : this.#target('canary', s.canaryUrl),
        weight: s.weight,
        overrideHeader: routing.overrideHeader,
        overrideFrom: routing.overrideFrom,
        overrideStats: this.#override,
        stickyHeader: routing.stickyHeader,
        stickyCookie: routing.stickyCookie,
        responseTimeoutMs: routing.responseTimeoutMs,
        preserveHost: routing.preserveHost,
        trustForwarded: routing.trustForwarded,
      },
      ++this.#version,
    )
  }

  #target(side: SideName, url: string): UpstreamTarget {
    const parsed = new URL(url)
    const basePath = parsed.pathname === '/' ? '' : parsed.pathname.replace(/\/+$/, '')
    return { side, url, host: parsed.host, basePath, dispatcher: this.#deps.pools.get(url), stats: this.#deps.stats[side], epoch: this.#epochs[side] }
  }
}

function outcomes(side: SideStats): number {
  let n = 0
  for (const count of side.byClass) n += count
  return n
}

function p99(histogram: CanaryFigures['latency']): number | null {
  return histogram.totalCount === 0 ? null : histogram.getValueAtPercentile(99)
}

/**
 * After a restart the current step (or bake) is observed afresh: its figures
 * were in memory. The step index is found again from the weight, in case
 * rollout.steps changed in the config meanwhile (-1: below the first step,
 * which is the next one).
 */
function resumeObservation(state: RolloutState, now: number, steps: readonly number[]): RolloutState {
  if (state.phase === 'progressing') return { ...state, stepStartedAt: now, stepIndex: stepIndexAtOrBelow(state.weight, steps) ?? -1 }
  if (state.phase === 'paused') return { ...state, stepIndex: stepIndexAtOrBelow(state.weight, steps) }
  if (state.phase === 'baking') return { ...state, bakeStartedAt: now, stepIndex: steps.at(-1) === 100 ? steps.length - 1 : null }
  return state
}
