/**
 * Window deltas over Redis: each replica publishes what it measured in each
 * closed window slot (an opaque JSON value: counts and encoded HDR
 * histograms), and the leader reads every live replica's deltas for a span of
 * slots to decide on the whole traffic. Keys expire, so a replica that stops
 * publishing ages out by itself.
 */
import { systemClock, type Clock } from '../core/clock.js'
import type { RedisConnection } from './redis-connection.js'

/**
 * Keys, under the prefix P:
 *
 *     P:win:<slot>      hash  replica id -> JSON delta for that slot; PEXPIRE ttl on every write
 *     P:win:replicas    sorted set  replica id, scored by the time (ms) of its last publish; PEXPIRE ttl
 *
 * A slot is the caller's number (e.g. floor(now / slotMs), the same on every
 * replica as their clocks agree). One hash per slot, not per replica and
 * slot, so reading a span is one HGETALL per slot whatever the replica count.
 */
export function windowKeys(prefix: string) {
  return { slot: (slot: number) => `${prefix}:win:${slot}`, replicas: `${prefix}:win:replicas` }
}

export interface ReplicaDelta<D> {
  readonly replica: string
  readonly delta: D
}

export interface SlotDeltas<D> {
  readonly slot: number
  /** By replica id, in id order. */
  readonly deltas: readonly ReplicaDelta<D>[]
}

export interface RedisWindowsOptions {
  readonly prefix: string
  /** This replica's id (unique among the replicas, e.g. host:pid). */
  readonly replica: string
  /** How long a published slot stays readable: at least the analysis window plus a slot or two of lateness. */
  readonly ttlMs: number
  /** For the replicas' last-publish times only; the slot numbers are the caller's. */
  readonly clock?: Pick<Clock, 'now'>
  /** Called for a delta that cannot be parsed (skipped); the read goes on. */
  readonly onError?: (error: Error) => void
}

export class RedisWindows<D> {
  readonly replica: string
  readonly ttlMs: number
  readonly #connection: RedisConnection
  readonly #keys: ReturnType<typeof windowKeys>
  readonly #clock: Pick<Clock, 'now'>
  readonly #onError: (error: Error) => void

  constructor(connection: RedisConnection, options: RedisWindowsOptions) {
    if (!(Number.isInteger(options.ttlMs) && options.ttlMs > 0)) throw new Error(`window delta ttl must be a whole number of ms > 0 (got ${options.ttlMs})`)
    this.#connection = connection
    this.#keys = windowKeys(options.prefix)
    this.replica = options.replica
    this.ttlMs = options.ttlMs
    this.#clock = options.clock ?? systemClock
    this.#onError = options.onError ?? (() => {})
  }

  /**
   * Publishes this replica's delta for `slot` (replacing any it published for
   * that slot before), in one round trip. A replica publishes every slot, an
   * empty one too, so "no delta" means "not there" rather than "no traffic".
   */
  async publish(slot: number, delta: D): Promise<void> {
    if (!Number.isSafeInteger(slot)) throw new Error(`slot must be a whole number (got ${slot})`)
    const key = this.#keys.slot(slot)
    const now = this.#clock.now()
    await this.#connection.run((c) =>
      c
        .multi()
        .hset(key, this.replica, JSON.stringify(delta))
        .pexpire(key, this.ttlMs)
        .zadd(this.#keys.replicas, now, this.replica)
        .zremrangebyscore(this.#keys.replicas, '-inf', `(${now - this.ttlMs}`)
        .pexpire(this.#keys.replicas, this.ttlMs)
        .exec()
        .then(execResult),
    )
  }

  /** Every replica's deltas for slots `from`..`to` (inclusive), oldest slot first; slots nobody published are left out. */
  async read(from: number, to: number): Promise<SlotDeltas<D>[]> {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || to < from) throw new Error(`slots must be whole numbers, from <= to (got ${from}..${to})`)
    if (to - from >= 10_000) throw new Error(`at most 10,000 slots per read (got ${to - from + 1})`)
    const slots = Array.from({ length: to - from + 1 }, (_, i) => from + i)
    const replies = await this.#connection.run((c) => {
      const pipeline = c.pipeline()
      for (const slot of slots) pipeline.hgetall(this.#keys.slot(slot))
      return pipeline.exec().then(execResult)
    })
    const out: SlotDeltas<D>[] = []
    slots.forEach((slot, i) => {
      const hash = (replies[i] ?? {}) as Record<string, string>
      const deltas: ReplicaDelta<D>[] = []
      for (const replica of Object.keys(hash).sort()) {
        try {
          deltas.push({ replica, delta: JSON.parse(hash[replica]!) as D })
        } catch (error) {
          this.#onError(new Error(`window delta of ${replica} for slot ${slot} cannot be parsed: ${(error as Error).message}`))
        }
      }
      if (deltas.length > 0) out.push({ slot, deltas })
    })
    return out
  }

  /** The replicas that published within the last ttl, by this replica's clock, in id order. */
  async replicas(): Promise<string[]> {
    const since = this.#clock.now() - this.ttlMs
    const ids = await this.#connection.run((c) => c.zrangebyscore(this.#keys.replicas, since, '+inf'))
    return ids.sort()
  }
}

/** MULTI/pipeline results: the first command error rejects the whole call; else the replies. */
function execResult(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new Error('Redis transaction aborted')
  const failed = results.find(([error]) => error !== null)
  if (failed !== undefined) throw failed[0]
  return results.map(([, reply]) => reply)
}
