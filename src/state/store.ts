/**
 * StateStore: where the rollout state lives between runs and between
 * replicas. Versioned compare-and-set writes, a change feed, and (apart) a
 * Lease with a fencing token. One contract, several stores (file, memory,
 * Redis), one conformance suite (test/conformance/state-store.ts).
 */
import type { AuditRecord } from '../events/feed.js'
import type { RolloutState } from '../rollout/phase.js'

export type LoadResult =
  /** Nothing stored yet: save with expected version 0. */
  | { readonly kind: 'empty'; readonly version: 0 }
  | { readonly kind: 'loaded'; readonly state: RolloutState; readonly version: number }
  /**
   * Unreadable or unparsable: the bad copy was kept as `keptAs` (null when even
   * that failed) and the store is empty again (`version` is what the next save
   * must expect).
   */
  | { readonly kind: 'corrupt'; readonly problem: string; readonly keptAs: string | null; readonly version: number }

export type SaveResult =
  | { readonly ok: true; readonly version: number }
  /**
   * conflict: the stored version is no longer `expected` (someone else wrote);
   * fenced: a holder of a newer lease has written (this writer is a stale
   * leader). Nothing was written; `version` is the stored version now.
   */
  | { readonly ok: false; readonly reason: 'conflict' | 'fenced'; readonly version: number }

export interface StoredChange {
  readonly state: RolloutState
  readonly version: number
}

export interface StateStore {
  /** For logs: the file path, the Redis key. */
  readonly name: string
  load(): Promise<LoadResult>
  /**
   * Writes `state` as version expected + 1 if the stored version is still
   * `expected`; with a `fence` (a lease token), refused when a newer token has
   * written. Resolves once durable. Rejects on an I/O failure: then nothing is
   * known of the write, and the caller saves again with the same `expected`.
   * `audit`: the records of this transition, appended to a shared audit trail
   * in the same atomic step by stores that keep one (Redis), so a transition
   * is recorded exactly when it is stored; other stores ignore them.
   */
  save(state: RolloutState, expected: number, fence?: number | null, audit?: readonly AuditRecord[]): Promise<SaveResult>
  /**
   * Calls `listener` with each change saved through another instance of the
   * store (another replica), newest last; returns the unsubscribe function.
   * Stores that cannot see other writers (the file store) never call it.
   */
  watch(listener: (change: StoredChange) => void): () => void
  close(): Promise<void>
}

export interface LeaseGrant {
  /** Fencing token: larger for every new holder; the holder's writes carry it. */
  readonly token: number
  readonly holder: string
  /** Epoch ms by which the holder must renew. */
  readonly expiresAt: number
}

/** Leadership among replicas: at most one unexpired holder at a time. */
export interface Lease {
  readonly ttlMs: number
  /** Becomes the holder when nobody holds an unexpired lease; null when another does. */
  acquire(holder: string): Promise<LeaseGrant | null>
  /** Extends the grant; null when it was lost (expired and taken, or released). */
  renew(grant: LeaseGrant): Promise<LeaseGrant | null>
  release(grant: LeaseGrant): Promise<void>
  /** Who holds an unexpired lease now (null: nobody), for the status; optional. */
  holder?(): Promise<string | null>
}

/** The lease of a single process: always its own, token 1 (the file store needs no leader election). */
export class LocalLease implements Lease {
  readonly ttlMs = Number.POSITIVE_INFINITY

  async acquire(holder: string): Promise<LeaseGrant> {
    return { token: 1, holder, expiresAt: Number.POSITIVE_INFINITY }
  }

  async renew(grant: LeaseGrant): Promise<LeaseGrant> {
    return grant
  }

  async release(): Promise<void> {}
}
