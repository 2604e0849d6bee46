/**
 * The rollout controller: timers and an effect interpreter around the pure
 * machine. It feeds the machine operator actions, gate verdicts and config
 * reloads through its Authority (which says when a transition counts: at
 * once in one process, once committed among replicas), and carries out what
 * the machine returns: publish a routing table, reset the windows, persist,
 * emit events. It holds no rollout policy.
 */
import type { Timer } from '../core/clock.js'
import { routingTable, type RoutingTable } from '../routing/table.js'
import { LocalAuthority, type Authority, type AuthorityHost } from './authority.js'
import { initialState, servedWeight, transition, type Accepted } from './machine.js'
import { isUnderWay, type Actor, type OperatorEvent, type RolloutSettings, type RolloutState } from './phase.js'
import { EarlyEvaluation } from './early-evaluation.js'
import type { ActResult, ControllerDeps, RolloutConfig } from './ports.js'

export type { ActResult, ControllerDeps, DataPlaneLink, RolloutConfig } from './ports.js'

/** Evaluations triggered by canary errors are at most this far apart. */
const MIN_EVALUATION_GAP_MS = 20

export class RolloutController {
  readonly #deps: ControllerDeps
  readonly authority: Authority
  #config: RolloutConfig
  #state: RolloutState
  #table: RoutingTable
  readonly #early: EarlyEvaluation
  /** What the authority drives: this controller's state and config, and the effect interpreter. */
  readonly #host: AuthorityHost
  #timers: Timer[] = []
  rollbacks = 0

  private constructor(deps: ControllerDeps, config: RolloutConfig) {
    this.#deps = deps
    this.#config = config
    // Until the authority has restored the stored state: everything to stable, as the data plane starts.
    this.#state = initialState(config.upstreams.stable, null, deps.clock.now())
    this.#table = routingTable(this.#state, config.routing, 1)
    this.authority = deps.authority ?? new LocalAuthority(deps.store, deps)
    const state = (): RolloutState => this.#state
    const current = (): RolloutConfig => this.#config
    this.#host = {
      get state() {
        return state()
      },
      get config() {
        return current()
      },
      apply: (result) => this.#apply(result),
    }
    this.#early = new EarlyEvaluation(deps.clock, MIN_EVALUATION_GAP_MS, () => this.evaluate())
    deps.link.onCanaryError(() => {
      if (isUnderWay(this.#state.phase)) this.#early.request()
    })
  }

  /** Restores the state through the authority (the stored one, reconciled with the config) and applies it. */
  static async create(deps: ControllerDeps, config: RolloutConfig): Promise<RolloutController> {
    const controller = new RolloutController(deps, config)
    await controller.authority.open(controller.#host)
    return controller
  }

  get state(): RolloutState {
    return this.#state
  }

  get settings(): RolloutSettings {
    return this.#config.settings
  }

  /** The local authority's writer (its failure count and health); the shared authority has none. */
  get persister(): { readonly failures: number; readonly healthy: boolean } {
    const authority = this.authority
    return { failures: authority.failures, healthy: authority.view().up }
  }

  /** Starts the analysis tick and the window rotation on the injected clock. */
  startTimers(): void {
    const { clock, analysis, link } = this.#deps
    this.#timers.push(clock.every(this.#config.intervalMs, () => this.#tick()))
    this.#timers.push(clock.every(analysis.slotMs, () => this.#collect()))
    link.startTimers?.()
  }

  stopTimers(): void {
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
    this.#early.cancel()
    this.#deps.link.stopTimers?.()
  }

  /** An operator action; resolves once the new state counts (durable). A persistence failure rejects. */
  async act(event: OperatorEvent, actor: Actor): Promise<ActResult> {
    const now = this.#deps.clock.now()
    const result = await this.authority.commit((s) => transition(s, event, now, this.#config.settings, actor, this.#deps.analysis.liveStable), 'operator')
    return result.ok ? { ok: true, state: this.#state } : result
  }

  /** Drains the data planes, runs the gate (where this process decides), and feeds the verdict to the machine. */
  evaluate(): void {
    const { clock, analysis, events } = this.#deps
    const now = clock.now()
    this.#early.ran(now)
    this.#collect()
    const s = this.#state
    if (!isUnderWay(s.phase) || !this.authority.decides) return
    const judged = analysis.evaluate({ now, phase: s.phase, weight: servedWeight(s, this.#config.settings), baseline: s.baseline ?? null })
    events.emit({ type: 'decision', decision: judged.decision, phase: s.phase, weight: s.weight })
    const verdict = { type: 'analysis', verdict: judged.decision } as const
    // A verdict's own save failure is retried on the tick (or the next verdict); nobody awaits it.
    this.authority.commit((state) => transition(state, verdict, now, this.#config.settings, 'auto', analysis.liveStable), 'analysis').catch(() => undefined)
  }

  /** A reloaded config (SIGHUP): new settings, routing and checks; the machine reconciles the upstreams. */
  async reload(config: RolloutConfig): Promise<void> {
    this.#config = config
    const now = this.#deps.clock.now()
    await this.authority.commit((s) => transition(s, { type: 'config', upstreams: config.upstreams }, now, config.settings), 'config')
  }

  /** Waits for the last state write, retrying one that failed, and closes the store. */
  async flush(): Promise<void> {
    await this.authority.flush()
  }

  /** Drains what the data planes recorded into the windows, so a read (status, scrape) sees every response so far. */
  collect(): void {
    this.#collect()
  }

  #tick(): void {
    this.authority.tick()
    this.evaluate()
  }

  #collect(): void {
    const { analysis, link, clock } = this.#deps
    link.collect(analysis, this.#table)
    analysis.advance(clock.now())
  }

  /** Carries out a transition's effects, in order; resolves once its state is durable (when it asked to be persisted). */
  async #apply(result: Accepted): Promise<void> {
    const { clock, analysis, link, events } = this.#deps
    const before = this.#state
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
          saved = this.authority.persist(this.#state)
          break
        case 'audit':
          events.emit({ type: 'transition', record: effect.record, generation: this.#state.generation, findings: this.#state.lastDecision?.findings ?? before.lastDecision?.findings ?? [] })
          break
      }
    }
    await saved
  }
}
