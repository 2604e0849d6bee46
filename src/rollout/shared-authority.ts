/**
 * SharedAuthority: the rollout state of replicas sharing one store (Redis).
 * Every replica routes by the stored state and takes up each change another
 * one commits (the store's change feed); one replica at a time holds the
 * lease and evaluates the gate; every transition is committed first
 * (compare-and-set; the leader's writes fenced by its lease token) and
 * applied only once stored, so nothing progresses or rolls back that is not
 * in the shared state, and a stale leader's writes are refused.
 *
 *     every tick       not leader -> lease.acquire -> granted: load, take up the stored state, decide from then on
 *                      leader     -> lease.renew   -> null: step down at once; rejected: lead until grant.expiresAt
 *     leader verdict   save(next, version, token)  -> ok: apply | fenced: step down | conflict: reload | rejected: nothing
 *     operator/config  load -> machine -> save(next, version)  (conflict: again, a few times; unreachable: reject, nothing applied)
 *     change feed      adopt(current, stored): publish the table, reset the windows when the weight or backends changed
 */
import type { Logger } from 'pino'
import { CanaryProxyError } from '../core/errors.js'
import type { Clock } from '../core/clock.js'
import type { EventFeed } from '../events/feed.js'
import type { Lease, LeaseGrant, LoadResult, StateStore, StoredChange } from '../state/store.js'
import type { Authority, AuthorityHost, Origin, StateBackendView } from './authority.js'
import { adopt, restore, transition, type Accepted, type TransitionResult } from './machine.js'
import type { AuditRecord, RolloutState } from './phase.js'

export interface SharedAuthorityDeps {
  readonly store: StateStore
  readonly lease: Lease
  /** This replica's id: lease holder, change origin (unique per replica). */
  readonly replica: string
  readonly clock: Clock
  readonly events: EventFeed
  readonly log: Logger
  /** For the status (default redis). */
  readonly kind?: string
  /** Whether the store is reachable now (Redis: both connections up). */
  readonly up: () => boolean
  /** Resolves once the store is reachable, rejects after `timeoutMs`; awaited once at start-up, which goes on without it. */
  readonly ready?: (timeoutMs: number) => Promise<void>
  /** How long start-up waits for the store before it serves without it (default 2000 ms). */
  readonly readyTimeoutMs?: number
}

/** Compare-and-set rounds an operator action or a config reconciliation gets before it gives up (each a load and a save). */
const COMMIT_ROUNDS = 5

export class SharedAuthority implements Authority {
  readonly #deps: SharedAuthorityDeps
  #host: AuthorityHost | null = null
  /** The stored version this replica's state corresponds to (loaded, saved or delivered). */
  #version = 0
  /** The state has been read from the store at least once (false while it was unreachable since start-up). */
  #joined = false
  #grant: LeaseGrant | null = null
  /** The holder has taken up the stored state after acquiring the lease: only then does it decide. */
  #leading = false
  #leader: string | null = null
  /** The verdict in the stored state's lastDecision: a leader shares a new verdict, not every new figure. */
  #storedVerdict: string | null = null
  /** A config reconciliation that could not be committed (store unreachable): tried again on the tick. */
  #configPending = false
  #queue: Promise<unknown> = Promise.resolve()
  #queued = 0
  #ticking = false
  #deliveries = 0
  #lastDelivery: StoredChange | null = null
  #unwatch: () => void = () => {}
  #closed = false
  #lastError: string | null = null
  /** The first read at start-up failed (the store was unreachable): this replica knows no state of the rollout. */
  #startedBlind = false
  /** When such a replica first found the store empty (Redis back without its data). */
  #emptySince: number | null = null
  failures = 0

  constructor(deps: SharedAuthorityDeps) {
    this.#deps = deps
  }

  get decides(): boolean {
    const grant = this.#grant
    return this.#leading && this.#joined && grant !== null && this.#deps.clock.now() < grant.expiresAt
  }

  async open(host: AuthorityHost): Promise<void> {
    const { store, log } = this.#deps
    this.#host = host
    this.#unwatch = store.watch((change) => this.#onChange(change))
    try {
      await this.#deps.ready?.(this.#deps.readyTimeoutMs ?? 2000)
      await this.#serial(() => this.#join())
    } catch (error) {
      // A store that can never be used as configured (state.redis names a database the server lacks) is a config error: nothing starts.
      if ((error as { code?: unknown }).code === 'CPX_ERR_CONFIG_INVALID') {
        this.#unwatch()
        throw error
      }
      // Fail static: serve on what is known (at start-up: everything to stable) and join on a later tick.
      this.#startedBlind = true
      log.error({ err: error, store: store.name }, `the shared state (${store.name}) is unreachable at start-up; routing everything to stable until it can be read`)
    }
  }

  commit(decide: (state: RolloutState) => TransitionResult, origin: Origin): Promise<TransitionResult> {
    if (origin === 'analysis') return this.#commitVerdict(decide)
    return this.#serial(async () => {
      try {
        if (!this.#joined) await this.#join()
        if (!this.#joined) throw new Error('this replica has not read the shared rollout yet (the store came back empty: waiting for a replica that knew it to put it back)')
        return await this.#commitShared(decide, null)
      } catch (error) {
        if (origin !== 'config') throw unavailable(this.#deps.store.name, error)
        // The config's routing rules are this replica's own: they apply now; its upstreams are reconciled with the shared state once it can be reached.
        this.#configPending = true
        this.#deps.log.warn({ err: error }, 'the reloaded config is applied to routing; its upstreams are reconciled with the shared state once it can be reached')
        const host = this.#hostOrThrow()
        await host.apply({ ok: true, state: host.state, effects: [{ type: 'publish' }] })
        return { ok: true, state: host.state, effects: [] }
      }
    })
  }

  /** Already stored: a transition is applied here only after it was committed. */
  persist(): Promise<void> {
    return Promise.resolve()
  }

  tick(): void {
    if (this.#ticking || this.#closed) return
    this.#ticking = true
    this.#leaseTick()
      .catch((error: unknown) => this.#noteError(error))
      .finally(() => {
        this.#ticking = false
      })
  }

  view(): StateBackendView {
    return { kind: this.#deps.kind ?? 'redis', up: this.#deps.up(), role: this.decides ? 'leader' : 'follower', leader: this.#leader, replica: this.#deps.replica }
  }

  async flush(): Promise<void> {
    this.#closed = true
    await this.#queue.catch(() => undefined)
    const grant = this.#grant
    this.#grant = null
    this.#leading = false
    // Handing the lease back lets another replica lead at once rather than after the lease's TTL.
    if (grant !== null) await this.#deps.lease.release(grant).catch(() => undefined)
    this.#unwatch()
    await this.#deps.store.close()
  }

  /** The first read of the stored state: take it up (and reconcile it with this replica's config), or create it from the config. */
  async #join(): Promise<void> {
    const { store, log, clock } = this.#deps
    const host = this.#hostOrThrow()
    const result = await this.#commitShared((base, loaded) => {
      const { upstreams, settings } = host.config
      if (loaded.kind === 'loaded') return transition(base, { type: 'config', upstreams }, clock.now(), settings)
      if (loaded.kind === 'empty' && this.#startedBlind) {
        // Started while the store was unreachable, and now it is back empty (Redis lost its data): the replicas that
        // knew the rollout put it back (the first to lead does, see #reload). Seeding the config's state at once would
        // wipe their rollout; this replica seeds only if the store stays empty for a lease TTL, and leads only once joined.
        this.#emptySince ??= clock.now()
        if (clock.now() - this.#emptySince < this.#deps.lease.ttlMs) return { ok: false, conflict: 'waiting for a replica that knew the rollout to put it back' }
      }
      if (loaded.kind === 'corrupt') log.error({ store: store.name, keptAs: loaded.keptAs }, `${loaded.problem}; starting safe: all traffic to stable, phase paused`)
      return restore(loaded, upstreams, clock.now(), settings)
    }, null)
    if (result.ok) this.#joined = true
  }

  /**
   * load -> machine -> save by compare-and-set, again on a conflict. The
   * stored state is taken up here first, so the effects of the transition are
   * those from what this replica routes by; a store found empty or corrupt
   * after this replica knew a state (Redis lost its data) is given that state back.
   */
  async #commitShared(decide: (base: RolloutState, loaded: LoadResult) => TransitionResult, fence: number | null): Promise<TransitionResult> {
    const { store } = this.#deps
    const host = this.#hostOrThrow()
    for (let round = 0; round < COMMIT_ROUNDS; round++) {
      const loaded = await store.load()
      if (loaded.kind === 'loaded') await this.#take(loaded.state, loaded.version)
      const result = decide(host.state, this.#joined && loaded.kind !== 'loaded' ? { kind: 'loaded', state: host.state, version: loaded.version } : loaded)
      if (!result.ok) return result
      if (!persists(result) && loaded.kind === 'loaded') {
        await host.apply(result)
        return result
      }
      const before = this.#deliveries
      const saved = await store.save(result.state, loaded.version, fence, auditOf(result))
      if (saved.ok) {
        await this.#committed(saved.version, result, before)
        return result
      }
      if (saved.reason === 'fenced') {
        this.#stepDown('a replica holding a newer lease has written the state')
        return { ok: false, conflict: 'another replica leads the rollout now' }
      }
    }
    throw new CanaryProxyError('CPX_ERR_ADMIN_UNAVAILABLE', { detail: `the shared state changed under ${COMMIT_ROUNDS} attempts in a row; nothing was changed, try again` })
  }

  /** The leader's verdict: committed (fenced) when it moves the rollout or changes the shared verdict, else kept here. */
  #commitVerdict(decide: (state: RolloutState) => TransitionResult): Promise<TransitionResult> {
    const host = this.#hostOrThrow()
    const skipped: TransitionResult = { ok: true, state: host.state, effects: [] }
    // An operator's action or a reconciliation is under way: the next tick decides on its outcome.
    if (!this.decides || this.#queued > 0) return Promise.resolve(skipped)
    return this.#serial(async () => {
      const grant = this.#grant
      if (!this.decides || grant === null) return skipped
      const result = decide(host.state)
      if (!result.ok) return result
      if (!persists(result) && verdictOf(result.state) === this.#storedVerdict) {
        await host.apply(result)
        return result
      }
      const before = this.#deliveries
      let saved
      try {
        saved = await this.#deps.store.save(result.state, this.#version, grant.token, auditOf(result))
      } catch (error) {
        // Nothing is applied: the rollout holds where it is stored, and the next tick decides again.
        this.#failed(error)
        return skipped
      }
      if (saved.ok) {
        await this.#committed(saved.version, result, before)
        return result
      }
      if (saved.reason === 'fenced') {
        this.#stepDown('a replica holding a newer lease has written the state')
        return skipped
      }
      // Someone else wrote (an operator on another replica; Redis lost its data): take the stored state up, decide again next tick.
      await this.#reload(grant)
      return skipped
    })
  }

  async #committed(version: number, result: Accepted, deliveriesBefore: number): Promise<void> {
    const host = this.#hostOrThrow()
    this.#version = version
    this.#storedVerdict = verdictOf(result.state)
    this.#lastError = null
    await host.apply(result)
    // A newer change (another replica's, saved right after this one) can be delivered before this save's own reply.
    const newer = this.#lastDelivery
    if (this.#deliveries !== deliveriesBefore && newer !== null && newer.version > version) await this.#take(newer.state, newer.version)
  }

  /** Takes up a stored state: this replica routes by it from now on. */
  async #take(state: RolloutState, version: number): Promise<void> {
    const host = this.#hostOrThrow()
    this.#version = version
    this.#storedVerdict = verdictOf(state)
    await host.apply(adopt(host.state, state))
  }

  #onChange(change: StoredChange): void {
    if (this.#closed) return
    this.#deliveries++
    this.#lastDelivery = change
    if (!this.#joined) {
      // As good as a first read; the config is reconciled with it on the next tick.
      this.#joined = true
      this.#configPending = true
    }
    this.#take(change.state, change.version).catch((error: unknown) => this.#noteError(error))
  }

  async #leaseTick(): Promise<void> {
    const { lease, replica, clock, log } = this.#deps
    const grant = this.#grant
    if (grant !== null && clock.now() >= grant.expiresAt) this.#stepDown('the lease could not be renewed before it expired (the shared state is unreachable)')
    if (!this.#joined) await this.#serial(() => this.#join())
    // A replica that knows no state neither decides nor holds the lease another replica needs to put the state back.
    if (!this.#joined) return
    if (this.#configPending) {
      this.#configPending = false
      const host = this.#hostOrThrow()
      await this.#serial(() => this.#commitShared((base) => transition(base, { type: 'config', upstreams: host.config.upstreams }, clock.now(), host.config.settings), null)).catch((error: unknown) => {
        this.#configPending = true
        throw error
      })
    }
    const held = this.#grant
    if (held === null) {
      const granted = await lease.acquire(replica)
      if (granted === null) {
        this.#leader = (await lease.holder?.()) ?? null
        return
      }
      this.#grant = granted
      this.#leader = replica
      await this.#serial(() => this.#reload(granted))
      if (this.#grant === granted) {
        this.#leading = true
        log.info({ replica, leaseToken: granted.token }, `${replica} leads the rollout (lease token ${granted.token})`)
      }
      return
    }
    // A rejected renewal (store unreachable) leaves the grant as it was: this replica leads until it expires, not after.
    const renewed = await lease.renew(held)
    if (this.#grant !== held) return
    if (renewed === null) this.#stepDown('the lease was lost (it expired and another replica holds it)')
    else this.#grant = renewed
  }

  /** Reads the stored state again and takes it up; a leader finding it gone (Redis lost its data) puts back the state every replica still routes by, rather than start over. */
  async #reload(grant: LeaseGrant): Promise<void> {
    const { store, log } = this.#deps
    const host = this.#hostOrThrow()
    const loaded = await store.load()
    if (loaded.kind === 'loaded') {
      await this.#take(loaded.state, loaded.version)
      return
    }
    if (!this.#joined) {
      await this.#join()
      return
    }
    const saved = await store.save(host.state, loaded.version, grant.token)
    if (saved.ok) {
      this.#version = saved.version
      this.#storedVerdict = verdictOf(host.state)
      log.warn({ store: store.name, phase: host.state.phase, weight: host.state.weight }, `the shared state was ${loaded.kind === 'empty' ? 'gone' : 'unreadable'}; saved the one this replica last knew (${host.state.phase} at ${host.state.weight}%)`)
    } else if (saved.reason === 'fenced') {
      this.#stepDown('a replica holding a newer lease has written the state')
    }
  }

  #stepDown(why: string): void {
    if (this.#grant === null && !this.#leading) return
    this.#deps.log.warn({ replica: this.#deps.replica }, `${this.#deps.replica} no longer leads the rollout: ${why}`)
    this.#grant = null
    this.#leading = false
    this.#leader = null
  }

  #failed(error: unknown): void {
    const { events, clock, store, log } = this.#deps
    this.failures++
    events.emit({ type: 'persistFailure', at: clock.now(), store: store.name, error: (error as Error).message })
    log.error({ err: error }, `cannot save the rollout state to ${store.name}; nothing was applied, the next tick decides again`)
  }

  /** Store errors on the tick, once per distinct message (a down Redis would repeat one per tick). */
  #noteError(error: unknown): void {
    const message = (error as Error).message
    if (message === this.#lastError) return
    this.#lastError = message
    this.#deps.log.warn({ err: error }, `the shared state (${this.#deps.store.name}) cannot be reached: ${message}; routing on the last state known`)
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    this.#queued++
    const result = this.#queue.then(run)
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    )
    void this.#queue.then(() => this.#queued--)
    return result
  }

  #hostOrThrow(): AuthorityHost {
    if (this.#host === null) throw new Error('the authority is not open')
    return this.#host
  }
}

function persists(result: Accepted): boolean {
  return result.effects.some((e) => e.type === 'persist')
}

function auditOf(result: Accepted): AuditRecord[] {
  return result.effects.flatMap((e) => (e.type === 'audit' ? [e.record] : []))
}

function verdictOf(state: RolloutState): string | null {
  return state.lastDecision?.verdict ?? null
}

function unavailable(store: string, error: unknown): Error {
  if ((error as { code?: unknown }).code === 'CPX_ERR_ADMIN_UNAVAILABLE') return error as Error
  return new CanaryProxyError('CPX_ERR_ADMIN_UNAVAILABLE', { detail: `the shared rollout state (${store}) cannot be reached: ${(error as Error).message}; nothing was changed` })
}
