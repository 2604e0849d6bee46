/**
 * A StateStore and a Lease in memory. Several instances over one MemoryBacking
 * behave like replicas sharing one Redis: compare-and-set, fencing, a change
 * feed and lease expiry, so tests and simulations exercise the real contract.
 */
import type { Clock } from '../core/clock.js'
import type { AuditRecord } from '../events/feed.js'
import type { RolloutState } from '../rollout/phase.js'
import type { Lease, LeaseGrant, LoadResult, SaveResult, StateStore, StoredChange } from './store.js'

/** What replicas share: the stored state, its version and fence, the lease, and who is watching. */
export class MemoryBacking {
  state: RolloutState | null = null
  version = 0
  fence: number | null = null
  lease: LeaseGrant | null = null
  lastToken = 0
  /** The audit records saves carried, oldest first (as a shared audit trail keeps them). */
  readonly audit: AuditRecord[] = []
  readonly watchers = new Set<{ owner: MemoryStateStore; listener: (change: StoredChange) => void }>()
}

export class MemoryStateStore implements StateStore {
  readonly name: string
  readonly backing: MemoryBacking
  /** When set, the next save rejects with this error (a full disk, Redis gone) and is cleared. */
  failNext: Error | null = null

  constructor(backing: MemoryBacking = new MemoryBacking(), name = 'memory') {
    this.backing = backing
    this.name = name
  }

  async load(): Promise<LoadResult> {
    const b = this.backing
    return b.state === null ? { kind: 'empty', version: 0 } : { kind: 'loaded', state: structuredClone(b.state), version: b.version }
  }

  async save(state: RolloutState, expected: number, fence: number | null = null, audit: readonly AuditRecord[] = []): Promise<SaveResult> {
    const failure = this.failNext
    if (failure !== null) {
      this.failNext = null
      throw failure
    }
    const b = this.backing
    if (fence !== null && ((b.fence !== null && fence < b.fence) || fence < b.lastToken)) return { ok: false, reason: 'fenced', version: b.version }
    if (b.version !== expected) return { ok: false, reason: 'conflict', version: b.version }
    b.state = structuredClone(state)
    b.version = expected + 1
    if (fence !== null) b.fence = fence
    b.audit.push(...audit)
    const change = { state: structuredClone(state), version: b.version }
    for (const watcher of b.watchers) if (watcher.owner !== this) watcher.listener(change)
    return { ok: true, version: b.version }
  }

  watch(listener: (change: StoredChange) => void): () => void {
    const entry = { owner: this, listener }
    this.backing.watchers.add(entry)
    return () => this.backing.watchers.delete(entry)
  }

  async close(): Promise<void> {
    for (const watcher of this.backing.watchers) if (watcher.owner === this) this.backing.watchers.delete(watcher)
  }
}

export class MemoryLease implements Lease {
  readonly ttlMs: number
  readonly #backing: MemoryBacking
  readonly #clock: Pick<Clock, 'now'>

  constructor(backing: MemoryBacking, clock: Pick<Clock, 'now'>, ttlMs: number) {
    this.#backing = backing
    this.#clock = clock
    this.ttlMs = ttlMs
  }

  async acquire(holder: string): Promise<LeaseGrant | null> {
    const b = this.#backing
    const now = this.#clock.now()
    if (b.lease !== null && b.lease.expiresAt > now && b.lease.holder !== holder) return null
    if (b.lease !== null && b.lease.expiresAt > now) return b.lease
    b.lease = { token: ++b.lastToken, holder, expiresAt: now + this.ttlMs }
    return b.lease
  }

  async renew(grant: LeaseGrant): Promise<LeaseGrant | null> {
    const b = this.#backing
    const now = this.#clock.now()
    if (b.lease === null || b.lease.token !== grant.token || b.lease.expiresAt <= now) return null
    b.lease = { ...grant, expiresAt: now + this.ttlMs }
    return b.lease
  }

  async release(grant: LeaseGrant): Promise<void> {
    const b = this.#backing
    if (b.lease !== null && b.lease.token === grant.token) b.lease = null
  }

  async holder(): Promise<string | null> {
    const b = this.#backing
    return b.lease !== null && b.lease.expiresAt > this.#clock.now() ? b.lease.holder : null
  }
}
