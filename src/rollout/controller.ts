/**
 * The rollout controller: timers and an effect interpreter around the pure
 * machine. It feeds the machine operator actions, gate verdicts and config
 * reloads, and carries out what the machine returns: publish a routing table,
 * reset the windows, persist, emit events. It holds no rollout policy.
 */
import type { Logger } from 'pino'
import type { Analysis } from '../analysis/analysis.js'
import type { Clock, Timer } from '../core/clock.js'
import type { EventFeed } from '../events/feed.js'
import { routingTable, type RoutingTable, type TableRouting } from '../routing/table.js'
import type { StateStore } from '../state/store.js'
import { restore, transition, type TransitionResult } from './machine.js'
import { isUnderWay, type Actor, type OperatorEvent, type RolloutEvent, type RolloutSettings, type RolloutState, type UpstreamsConfig } from './phase.js'
import { Persister } from './persister.js'

/** How the control plane reaches the data planes (this process's, or workers' over IPC). */
export interface DataPlaneLink {
  /** Every data plane routes by this table from now on. */
  publish(table: RoutingTable): void
  /** Feeds the analysis with what the data planes recorded for the table's backends since the last call. */
  collect(analysis: Analysis, table: RoutingTable): void
  /** `listener` is called (as a message, coalesced) after a canary error. */
  onCanaryError(listener: () => void): void
}

export interface RolloutConfig {
  readonly settings: RolloutSettings
  readonly upstreams: UpstreamsConfig
  readonly routing: TableRouting
  readonly intervalMs: number
}

export interface ControllerDeps {
  readonly clock: Clock
  readonly store: StateStore
  readonly analysis: Analysis
  readonly link: DataPlaneLink
  readonly events: EventFeed
  readonly log: Logger
}

export type ActResult = { readonly ok: true; readonly state: RolloutState } | { readonly ok: false; readonly conflict: string }

/** Evaluations triggered by canary errors are at most this far apart (each drains and merges both windows). */
const MIN_EVALUATION_GAP_MS = 20

export class RolloutController {
  readonly #deps: ControllerDeps
  readonly #persister: Persister
  #config: RolloutConfig
  #state: RolloutState
  #table: RoutingTable
  #timers: Timer[] = []
  #early: Timer | null = null
  #lastEvaluationAt = Number.NEGATIVE_INFINITY
  rollbacks = 0

  private constructor(deps: ControllerDeps, config: RolloutConfig, state: RolloutState, version: number) {
    this.#deps = deps
    this.#config = config
    this.#state = state
    this.#table = routingTable(state, config.routing, 1)
    this.#persister = new Persister(deps.store, version, deps)
    deps.link.onCanaryError(() => this.#onCanaryError())
  }

  /** Loads the stored state and lets the machine restore and reconcile it with the config. */
  static async create(deps: ControllerDeps, config: RolloutConfig): Promise<RolloutController> {
    const now = deps.clock.now()
    const loaded = await deps.store.load()
    if (loaded.kind === 'corrupt') deps.log.error({ store: deps.store.name, keptAs: loaded.keptAs }, `${loaded.problem}; starting safe: all traffic to stable, phase paused`)
    const restored = restore(loaded, config.upstreams, now, config.settings)
    const controller = new RolloutController(deps, config, restored.state, loaded.version)
    await controller.#apply(restored, restored.state)
    return controller
  }

  get state(): RolloutState {
    return this.#state
  }

  get settings(): RolloutSettings {
    return this.#config.settings
  }

  get table(): RoutingTable {
    return this.#table
  }

  get persistFailures(): number {
    return this.#persister.failures
  }

  get storeHealthy(): boolean {
    return this.#persister.healthy
  }

  /** Starts the analysis tick and the window rotation on the injected clock. */
  startTimers(): void {
    const { clock, analysis } = this.#deps
    this.#timers.push(clock.every(this.#config.intervalMs, () => this.#tick()))
    this.#timers.push(clock.every(analysis.slotMs, () => this.#collect()))
  }

  stopTimers(): void {
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
    this.#early?.cancel()
    this.#early = null
  }

  /** An operator action; resolves once the new state is durable. A persistence failure rejects (the change stays applied in memory). */
  async act(event: OperatorEvent, actor: Actor): Promise<ActResult> {
    const result = transition(this.#state, event, this.#deps.clock.now(), this.#config.settings, actor, this.#deps.analysis.liveStable)
    if (!result.ok) return result
    await this.#apply(result, this.#state)
    return { ok: true, state: this.#state }
  }

  /** Drains the data planes, runs the gate, and feeds the verdict to the machine. */
  evaluate(): void {
    const { clock, analysis, events } = this.#deps
    const now = clock.now()
    this.#lastEvaluationAt = now
    this.#collect()
    const s = this.#state
    if (!isUnderWay(s.phase)) return
    const judged = analysis.evaluate({ now, phase: s.phase, weight: s.weight, baseline: s.baseline ?? null })
    events.emit({ type: 'decision', decision: judged.decision, phase: s.phase, weight: s.weight })
    this.#feed({ type: 'analysis', verdict: judged.decision }, 'auto')
  }

  /** A reloaded config (SIGHUP): new settings, routing and checks; the machine reconciles the upstreams. */
  async reload(config: RolloutConfig): Promise<void> {
    const routingChanged = JSON.stringify(config.routing) !== JSON.stringify(this.#config.routing)
    this.#config = config
    const result = transition(this.#state, { type: 'config', upstreams: config.upstreams }, this.#deps.clock.now(), config.settings)
    if (!result.ok) return
    const effects = routingChanged && !result.effects.some((e) => e.type === 'publish') ? [...result.effects, { type: 'publish' } as const] : result.effects
    await this.#apply({ ...result, effects }, this.#state)
  }

  /** Waits for the last state write, retrying one that failed, and closes the store. */
  async flush(): Promise<void> {
    await this.#persister.retry().catch(() => undefined)
    await this.#deps.store.close()
  }

  /** Drains what the data planes recorded into the windows, so a read (status, scrape) sees every response so far. */
  collect(): void {
    this.#collect()
  }

  #tick(): void {
    if (this.#persister.dirty) void this.#persister.retry().catch(() => undefined)
    this.evaluate()
  }

  #collect(): void {
    const { analysis, link, clock } = this.#deps
    link.collect(analysis, this.#table)
    analysis.advance(clock.now())
  }

  #onCanaryError(): void {
    if (this.#early !== null || !isUnderWay(this.#state.phase)) return
    const { clock } = this.#deps
    const wait = Math.max(0, this.#lastEvaluationAt + MIN_EVALUATION_GAP_MS - clock.now())
    this.#early = clock.after(wait, () => {
      this.#early = null
      this.evaluate()
    })
  }

  #feed(event: RolloutEvent, actor: Actor): void {
    const result = transition(this.#state, event, this.#deps.clock.now(), this.#config.settings, actor, this.#deps.analysis.liveStable)
    // A verdict's own save failure is retried on the tick; nobody awaits it.
    this.#apply(result, this.#state).catch(() => undefined)
  }

  /** Carries out a transition's effects, in order; resolves once its state is durable (when it asked to be persisted). */
  async #apply(result: TransitionResult, before: RolloutState): Promise<void> {
    if (!result.ok) return
    const { clock, analysis, link, events } = this.#deps
    this.#state = result.state
    let saved: Promise<void> = Promise.resolve()
    for (const effect of result.effects) {
      switch (effect.type) {
        case 'resetWindows':
          // Results recorded under the previous table are drained first, so they cannot land in the new span.
          link.collect(analysis, this.#table)
          analysis.reset(clock.now())
          break
        case 'promoted':
          analysis.forgetStable()
          break
        case 'rolledBack':
          this.rollbacks++
          break
        case 'publish':
          this.#table = routingTable(this.#state, this.#config.routing, this.#table.version + 1)
          link.publish(this.#table)
          break
        case 'persist':
          saved = this.#persister.save(this.#state)
          break
        case 'audit':
          events.emit({ type: 'transition', record: effect.record, generation: this.#state.generation, findings: this.#state.lastDecision?.findings ?? before.lastDecision?.findings ?? [] })
          break
      }
    }
    await saved
  }
}
