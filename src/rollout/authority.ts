/**
 * Authority: who says what the rollout state is, and when a transition
 * counts. The local authority (one process, the state file) applies a
 * transition at once and saves it after, retrying a failed save; the shared
 * authority (replicas over Redis, rollout/shared-authority.ts) commits first
 * and applies only what was committed. The controller runs the machine and
 * the effects the same way under either.
 */
import type { Logger } from 'pino'
import type { StateBackendView } from '../api/wire.js'
import type { Clock } from '../core/clock.js'
import type { EventFeed } from '../events/feed.js'
import type { StateStore } from '../state/store.js'
import { restore, type Accepted, type TransitionResult } from './machine.js'
import { Persister } from './persister.js'
import type { RolloutConfig } from './ports.js'
import type { RolloutState } from './phase.js'

export type { StateBackendView } from '../api/wire.js'

/** What an authority drives: the controller's current state, its config, and its effect interpreter. */
export interface AuthorityHost {
  readonly state: RolloutState
  readonly config: RolloutConfig
  /** Takes the result's state and carries out its effects here (the persist effect through Authority.persist). */
  apply(result: Accepted): Promise<void>
}

/** Where a transition comes from: an operator (admin API), the gate, or the config (start-up, SIGHUP). */
export type Origin = 'operator' | 'analysis' | 'config'

export interface Authority {
  /** Loads the stored state, makes the start-up transition from it (restore, reconcile with the config) and applies it. */
  open(host: AuthorityHost): Promise<void>
  /** Whether this process evaluates the gate now (a single process always; a replica while it holds the lease). */
  readonly decides: boolean
  /**
   * Runs `decide` on the authoritative state and makes its result count:
   * applied here, and stored. Refusals are returned as they are; a store that
   * cannot be reached rejects (for the shared authority, with nothing applied).
   */
  commit(decide: (state: RolloutState) => TransitionResult, origin: Origin): Promise<TransitionResult>
  /** The persist effect of an applied transition; resolves once it is durable. */
  persist(state: RolloutState): Promise<void>
  /** Every analysis tick, before the evaluation: retries, lease renewal. */
  tick(): void
  /** Failed writes of the state so far (canary_proxy_state_persist_failures_total). */
  readonly failures: number
  /** The status's `stateBackend` (and canary_proxy_state_backend_up). */
  view(): StateBackendView
  /** Waits for the last write (retrying one that failed), gives up any lease, and closes the store. */
  flush(): Promise<void>
}

export interface LocalAuthorityDeps {
  readonly clock: Clock
  readonly events: EventFeed
  readonly log: Logger
  /** For the status: file or memory. */
  readonly kind?: string
}

/**
 * One process owns the state: a transition is applied in memory at once and
 * saved after it (compare-and-set against the version it last saw); a failed
 * save answers the operator with an error, stays applied, and is retried on
 * every tick and at flush until it lands.
 */
export class LocalAuthority implements Authority {
  readonly decides = true
  readonly #store: StateStore
  readonly #deps: LocalAuthorityDeps
  #persister: Persister | null = null
  #host: AuthorityHost | null = null

  constructor(store: StateStore, deps: LocalAuthorityDeps) {
    this.#store = store
    this.#deps = deps
  }

  get persister(): Persister {
    if (this.#persister === null) throw new Error('the authority is not open')
    return this.#persister
  }

  get failures(): number {
    return this.#persister?.failures ?? 0
  }

  async open(host: AuthorityHost): Promise<void> {
    const { clock, log } = this.#deps
    this.#host = host
    const loaded = await this.#store.load()
    if (loaded.kind === 'corrupt') log.error({ store: this.#store.name, keptAs: loaded.keptAs }, `${loaded.problem}; starting safe: all traffic to stable, phase paused`)
    this.#persister = new Persister(this.#store, loaded.version, this.#deps)
    const { upstreams, settings } = host.config
    await host.apply(restore(loaded, upstreams, clock.now(), settings))
  }

  async commit(decide: (state: RolloutState) => TransitionResult): Promise<TransitionResult> {
    const host = this.#host
    if (host === null) throw new Error('the authority is not open')
    const result = decide(host.state)
    if (result.ok) await host.apply(result)
    return result
  }

  persist(state: RolloutState): Promise<void> {
    return this.persister.save(state)
  }

  tick(): void {
    const persister = this.#persister
    if (persister !== null && persister.dirty) void persister.retry().catch(() => undefined)
  }

  view(): StateBackendView {
    return { kind: this.#deps.kind ?? 'file', up: this.#persister?.healthy ?? true, role: 'single', leader: null, replica: null }
  }

  async flush(): Promise<void> {
    await this.#persister?.retry().catch(() => undefined)
    await this.#store.close()
  }
}
