/**
 * The rollout controller: timers and an effect interpreter around the pure
 * machine. It feeds the machine operator actions, gate verdicts and config
 * reloads, and carries out what the machine returns: publish a routing table,
 * reset the windows, persist, emit events. It holds no rollout policy.
 */
import type { Timer } from '../core/clock.js'
import { routingTable, type RoutingTable } from '../routing/table.js'
import { restore, servedWeight, transition, type TransitionResult } from './machine.js'
import { isUnderWay, type Actor, type OperatorEvent, type RolloutEvent, type RolloutSettings, type RolloutState } from './phase.js'
import { EarlyEvaluation } from './early-evaluation.js'
import { Persister } from './persister.js'
import type { ActResult, ControllerDeps, RolloutConfig } from './ports.js'

export type { ActResult, ControllerDeps, DataPlaneLink, RolloutConfig } from './ports.js'

/** Evaluations triggered by canary errors are at most this far apart. */
const MIN_EVALUATION_GAP_MS = 20

export class RolloutController {
  readonly #deps: ControllerDeps
  /** The state's writer: its failure count and health are the persistence metrics. */
  readonly persister: Persister
  #config: RolloutConfig
  #state: RolloutState
  #table: RoutingTable
  readonly #early: EarlyEvaluation
  #timers: Timer[] = []
  rollbacks = 0

  private constructor(deps: ControllerDeps, config: RolloutConfig, state: RolloutState, version: number) {
    this.#deps = deps
    this.#config = config
    this.#state = state
    this.#table = routingTable({ ...state, weight: servedWeight(state, config.settings) }, config.routing, 1)
    this.persister = new Persister(deps.store, version, deps)
    this.#early = new EarlyEvaluation(deps.clock, MIN_EVALUATION_GAP_MS, () => this.evaluate())
    deps.link.onCanaryError(() => {
      if (isUnderWay(this.#state.phase)) this.#early.request()
    })
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

  /** Starts the analysis tick and the window rotation on the injected clock. */
  startTimers(): void {
    const { clock, analysis } = this.#deps
    this.#timers.push(clock.every(this.#config.intervalMs, () => this.#tick()))
    this.#timers.push(clock.every(analysis.slotMs, () => this.#collect()))
  }

  stopTimers(): void {
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
    this.#early.cancel()
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
    this.#early.ran(now)
    this.#collect()
    const s = this.#state
    if (!isUnderWay(s.phase)) return
    const judged = analysis.evaluate({ now, phase: s.phase, weight: servedWeight(s, this.#config.settings), baseline: s.baseline ?? null })
    events.emit({ type: 'decision', decision: judged.decision, phase: s.phase, weight: s.weight })
    this.#feed({ type: 'analysis', verdict: judged.decision }, 'auto')
  }

  /** A reloaded config (SIGHUP): new settings, routing and checks; the machine reconciles the upstreams. */
  async reload(config: RolloutConfig): Promise<void> {
    this.#config = config
    await this.#apply(transition(this.#state, { type: 'config', upstreams: config.upstreams }, this.#deps.clock.now(), config.settings), this.#state)
  }

  /** Waits for the last state write, retrying one that failed, and closes the store. */
  async flush(): Promise<void> {
    await this.persister.retry().catch(() => undefined)
    await this.#deps.store.close()
  }

  /** Drains what the data planes recorded into the windows, so a read (status, scrape) sees every response so far. */
  collect(): void {
    this.#collect()
  }

  #tick(): void {
    if (this.persister.dirty) void this.persister.retry().catch(() => undefined)
    this.evaluate()
  }

  #collect(): void {
    const { analysis, link, clock } = this.#deps
    link.collect(analysis, this.#table)
    analysis.advance(clock.now())
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
          this.#table = routingTable({ ...this.#state, weight: servedWeight(this.#state, this.#config.settings) }, this.#config.routing, this.#table.version + 1)
          link.publish(this.#table)
          break
        case 'persist':
          saved = this.persister.save(this.#state)
          break
        case 'audit':
          events.emit({ type: 'transition', record: effect.record, generation: this.#state.generation, findings: this.#state.lastDecision?.findings ?? before.lastDecision?.findings ?? [] })
          break
      }
    }
    await saved
  }
}
