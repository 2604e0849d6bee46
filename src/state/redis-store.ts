/**
 * The rollout state in Redis, shared by every replica: one hash per rollout,
 * written only by a Lua script that compares the revision, checks the fence
 * and announces the change on a channel in one atomic step, so the replicas
 * see every change in the order it was made.
 */
import { randomUUID } from 'node:crypto'
import { systemClock, type Clock } from '../core/clock.js'
import type { RolloutState } from '../rollout/phase.js'
import { decodeState, encodeState } from './codec.js'
import { defineScript, type RedisConnection, type RedisScript } from './redis-connection.js'
import type { LoadResult, SaveResult, StateStore, StoredChange } from './store.js'

/**
 * Keys, under the prefix P (`state.redisKeyPrefix`):
 *
 *     P:state              hash  revision (compare-and-set), fence (highest lease token that wrote),
 *                                doc (the codec's document, as the state file holds it; its own revision
 *                                and fence are informative, the hash's fields decide), keptAs (see below),
 *                                epoch (a random id given when revision 1 is written: revisions are
 *                                compared within one epoch, so a Redis that lost its data is noticed)
 *     P:state:changes      channel  "change <origin> <revision> <epoch>\n<doc>" per save; "reset <origin>" when the hash was set aside
 *     P:state:corrupt:…    string   an unreadable document (or the whole unreadable key), kept for the operator
 *     P:lease:token        the lease's fencing-token counter (redis-lease.ts): a save fenced below it is refused too
 *
 * The revision lives beside the document, not inside it, so a corrupt document
 * keeps its revision: the next save must still expect it, and a replica that
 * holds an older one still conflicts (no version ever comes round again).
 */
export function stateKeys(prefix: string) {
  return {
    state: `${prefix}:state`,
    channel: `${prefix}:state:changes`,
    corrupt: (stamp: string) => `${prefix}:state:corrupt:${stamp}`,
    leaseToken: `${prefix}:lease:token`,
  }
}

// KEYS: state, lease token. ARGV: expected revision, fence ('' for none), document, channel, origin,
// a fresh epoch (used when the store was empty).
// Fenced before conflict: a stale leader is told it is stale even when its version is right.
const SAVE = `
local function num(v) if v then return tonumber(v) end return nil end
local kind = redis.call('TYPE', KEYS[1])['ok']
local revision, fence, epoch = 0, nil, nil
if kind == 'hash' then
  local meta = redis.call('HMGET', KEYS[1], 'revision', 'fence', 'epoch')
  revision = num(meta[1]) or 0
  fence = num(meta[2])
  if meta[3] then epoch = meta[3] end
elseif kind ~= 'none' then
  return {'conflict', 0}
end
local token = num(ARGV[2])
if token then
  local newest = num(redis.call('GET', KEYS[2]))
  if (fence and token < fence) or (newest and token < newest) then return {'fenced', revision} end
end
if revision ~= tonumber(ARGV[1]) then return {'conflict', revision} end
local saved = string.format('%d', revision + 1)
if revision == 0 or not epoch then epoch = ARGV[6] end
redis.call('HSET', KEYS[1], 'revision', saved, 'doc', ARGV[3], 'epoch', epoch)
if token then redis.call('HSET', KEYS[1], 'fence', string.format('%d', token)) end
redis.call('HDEL', KEYS[1], 'keptAs')
redis.call('PUBLISH', ARGV[4], 'change ' .. ARGV[5] .. ' ' .. saved .. ' ' .. epoch .. '\\n' .. ARGV[3])
return {'ok', revision + 1, epoch}
`

// KEYS: state, corrupt copy. ARGV: revision and document as read. Sets the
// document aside only if it is still the one read (a save may have replaced it).
const KEEP_DOCUMENT = `
local meta = redis.call('HMGET', KEYS[1], 'revision', 'doc')
if meta[1] ~= ARGV[1] or meta[2] ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[1], 'doc')
redis.call('HSET', KEYS[1], 'keptAs', KEYS[2])
return 1
`

// KEYS: state, corrupt copy. ARGV: channel, origin. The key is not a hash with a
// revision (another program wrote it): all of it is renamed aside, the store
// starts again at revision 0, and watchers are told to forget the revisions they knew.
const KEEP_KEY = `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then return 0 end
if kind == 'hash' then
  local r = redis.call('HGET', KEYS[1], 'revision')
  if r and string.match(r, '^[1-9]%d*$') then return 0 end
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[1], 'reset ' .. ARGV[2])
return 1
`

export interface RedisStateStoreOptions {
  readonly prefix: string
  /** This instance's id in change messages (its own are not reported to it); default a random UUID. */
  readonly origin?: string
  readonly clock?: Pick<Clock, 'now'>
  /** A watch listener threw, or a change could not be read; the store goes on. */
  readonly onError?: (error: Error) => void
}

type Read =
  | { readonly kind: 'wrongtype' }
  | { readonly kind: 'fields'; readonly revision: string | null; readonly doc: string | null; readonly keptAs: string | null; readonly epoch: string | null }

/** A revision as this instance knows it: revisions compare only within one epoch. */
interface Known {
  readonly epoch: string | null
  readonly revision: number
}

const REVISION = /^[1-9]\d*$/

export class RedisStateStore implements StateStore {
  readonly name: string
  readonly origin: string
  readonly #connection: RedisConnection
  readonly #keys: ReturnType<typeof stateKeys>
  readonly #clock: Pick<Clock, 'now'>
  readonly #onError: (error: Error) => void
  readonly #save: RedisScript
  readonly #keepDocument: RedisScript
  readonly #keepKey: RedisScript
  readonly #listeners = new Set<(change: StoredChange) => void>()
  /** The newest revision this instance knows of (loaded, saved or delivered); null before any, or after a reset. */
  #known: Known | null = null
  #subscriptions = 0
  #subscribed: Promise<void>
  #markSubscribed: () => void = () => {}
  #closed = false
  /** A (re)subscription happened and the state has not been read since: see #tryCatchUp. */
  #catchUpNeeded = false
  /** Messages that arrived while the catch-up read was out: handled after it, so none is judged against a stale revision. */
  #held: string[] | null = null
  readonly #onReady = () => void this.#subscribe()
  readonly #onClientReady = () => this.#tryCatchUp()
  readonly #onMessage = (channel: string, message: string) => this.#receive(channel, message)

  constructor(connection: RedisConnection, options: RedisStateStoreOptions) {
    this.#connection = connection
    this.#keys = stateKeys(options.prefix)
    this.name = `${connection.name} ${this.#keys.state}`
    this.origin = options.origin ?? randomUUID()
    this.#clock = options.clock ?? systemClock
    this.#onError = options.onError ?? (() => {})
    this.#save = defineScript(connection, 'cpxStateSave', 2, SAVE)
    this.#keepDocument = defineScript(connection, 'cpxStateKeepDocument', 2, KEEP_DOCUMENT)
    this.#keepKey = defineScript(connection, 'cpxStateKeepKey', 2, KEEP_KEY)
    this.#subscribed = new Promise((resolve) => (this.#markSubscribed = resolve))
    connection.subscriber.on('ready', this.#onReady)
    connection.subscriber.on('message', this.#onMessage)
    connection.client.on('ready', this.#onClientReady)
    if (connection.subscriber.status === 'ready') void this.#subscribe()
  }

  /** Resolves once the change feed is subscribed (changes saved by others from then on are seen). */
  subscribed(): Promise<void> {
    return this.#subscribed
  }

  async load(): Promise<LoadResult> {
    // A document set aside concurrently by another replica, or replaced by a
    // save, is read again; more than a few rounds means something else writes the key.
    for (let round = 0; round < 5; round++) {
      const read = await this.#read()
      const foreign = read.kind === 'wrongtype' || (read.revision === null ? read.doc !== null || read.keptAs !== null : !REVISION.test(read.revision))
      if (foreign) {
        const problem =
          read.kind === 'wrongtype'
            ? 'is not a hash (written by another program?)'
            : read.revision === null
              ? 'has no revision'
              : `has revision ${JSON.stringify(read.revision)}, not a whole number >= 1`
        const keptAs = this.#keys.corrupt(this.#stamp('key'))
        if ((await this.#keepKey([this.#keys.state, keptAs], [this.#keys.channel, this.origin])) === 1) {
          this.#known = null
          return { kind: 'corrupt', problem: `${this.name} ${problem}`, keptAs, version: 0 }
        }
        continue
      }
      if (read.revision === null) {
        // Nothing stored.
        this.#known = null
        return { kind: 'empty', version: 0 }
      }
      const version = Number(read.revision)
      this.#noteKnown(read.epoch, version)
      if (read.doc === null) {
        const problem =
          read.keptAs === null ? `${this.name} has revision ${version} but no document` : `${this.name} held an unreadable state, kept as ${read.keptAs}; nothing was saved since`
        return { kind: 'corrupt', problem, keptAs: read.keptAs, version }
      }
      const decoded = decodeState(read.doc)
      if (decoded.ok) return { kind: 'loaded', state: decoded.stored.state, version }
      const keptAs = this.#keys.corrupt(this.#stamp(`r${version}`))
      if ((await this.#keepDocument([this.#keys.state, keptAs], [read.revision, read.doc])) === 1) {
        return { kind: 'corrupt', problem: `${this.name}: ${decoded.problem}`, keptAs, version }
      }
    }
    throw new Error(`${this.name} changed under every read; another program is writing it`)
  }

  async save(state: RolloutState, expected: number, fence: number | null = null): Promise<SaveResult> {
    const doc = encodeState(state, expected + 1, fence)
    const args = [expected, fence ?? '', doc, this.#keys.channel, this.origin, randomUUID()]
    const [outcome, version, epoch] = (await this.#save([this.#keys.state, this.#keys.leaseToken], args)) as [string, number, string | undefined]
    if (outcome === 'ok') {
      this.#noteKnown(epoch ?? null, version)
      return { ok: true, version }
    }
    return { ok: false, reason: outcome === 'fenced' ? 'fenced' : 'conflict', version }
  }

  watch(listener: (change: StoredChange) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Stops the feed; the connection belongs to whoever made it (createRedisBackend closes it). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#listeners.clear()
    const sub = this.#connection.subscriber
    sub.off('ready', this.#onReady)
    sub.off('message', this.#onMessage)
    this.#connection.client.off('ready', this.#onClientReady)
    if (sub.status === 'ready') await sub.unsubscribe(this.#keys.channel).catch(() => undefined)
  }

  async #read(): Promise<Read> {
    try {
      const [revision, doc, keptAs, epoch] = await this.#connection.run((c) => c.hmget(this.#keys.state, 'revision', 'doc', 'keptAs', 'epoch'))
      return { kind: 'fields', revision: revision ?? null, doc: doc ?? null, keptAs: keptAs ?? null, epoch: epoch ?? null }
    } catch (error) {
      if ((error as Error).message.startsWith('WRONGTYPE')) return { kind: 'wrongtype' }
      throw error
    }
  }

  /**
   * On every (re)connection of the subscriber: subscribe, and once that is
   * confirmed, read the state, so a change made while this replica was cut off
   * (its message lost with the connection) is still delivered, newest last.
   */
  async #subscribe(): Promise<void> {
    if (this.#closed) return
    try {
      await this.#connection.subscriber.subscribe(this.#keys.channel)
    } catch (error) {
      this.#onError(error as Error)
      return
    }
    this.#subscriptions++
    this.#markSubscribed()
    if (this.#subscriptions > 1) {
      this.#catchUpNeeded = true
      this.#tryCatchUp()
    }
  }

  /**
   * Reads the state once after a resubscription, as soon as the command
   * connection can (it may come back after the subscriber); a read that fails
   * is tried again when the command connection is ready again or the next
   * message arrives, so a lost change is never left behind.
   */
  #tryCatchUp(): void {
    if (!this.#catchUpNeeded || this.#held !== null || this.#closed || this.#connection.client.status !== 'ready') return
    this.#catchUpNeeded = false
    this.#held = []
    this.#catchUp()
      .catch((error: unknown) => {
        this.#catchUpNeeded = true
        this.#onError(error as Error)
      })
      .finally(() => {
        const held = this.#held ?? []
        this.#held = null
        for (const message of held) this.#handle(message)
      })
  }

  /**
   * Another epoch than the one known, or nothing stored at all, means Redis
   * lost its data (restarted without persistence, failed over to an empty
   * replica, flushed): the revisions start again, and what is there now is
   * delivered as the newest whatever its revision.
   */
  async #catchUp(): Promise<void> {
    const read = await this.#read()
    if (read.kind !== 'fields' || (read.revision !== null && !REVISION.test(read.revision))) return
    if (read.revision === null) {
      this.#known = null
      return
    }
    const version = Number(read.revision)
    if (this.#isKnown(read.epoch, version) || read.doc === null) return
    const decoded = decodeState(read.doc)
    if (decoded.ok) this.#deliver(read.epoch, { state: decoded.stored.state, version })
  }

  #receive(channel: string, message: string): void {
    if (channel !== this.#keys.channel || this.#closed) return
    if (this.#held !== null) {
      this.#held.push(message)
      return
    }
    this.#tryCatchUp()
    // #tryCatchUp may have started a read: then this message waits for it too.
    const held = this.#held as string[] | null
    if (held !== null) held.push(message)
    else this.#handle(message)
  }

  #handle(message: string): void {
    if (this.#closed) return
    const newline = message.indexOf('\n')
    const [kind, origin, revision, epoch] = (newline === -1 ? message : message.slice(0, newline)).split(' ')
    if (origin === this.origin) return
    if (kind === 'reset') {
      this.#known = null
      return
    }
    if (kind !== 'change' || revision === undefined || !REVISION.test(revision) || newline === -1) return
    const version = Number(revision)
    // Already known: loaded or saved on top of here before the message arrived.
    if (this.#isKnown(epoch ?? null, version)) return
    const decoded = decodeState(message.slice(newline + 1))
    if (!decoded.ok) {
      this.#onError(new Error(`${this.name}: change ${version} from ${origin ?? '?'} cannot be read: ${decoded.problem}`))
      return
    }
    this.#deliver(epoch ?? null, { state: decoded.stored.state, version })
  }

  #deliver(epoch: string | null, change: StoredChange): void {
    this.#known = { epoch, revision: change.version }
    for (const listener of this.#listeners) {
      try {
        listener(change)
      } catch (error) {
        this.#onError(error as Error)
      }
    }
  }

  #isKnown(epoch: string | null, revision: number): boolean {
    return this.#known !== null && this.#known.epoch === epoch && revision <= this.#known.revision
  }

  #noteKnown(epoch: string | null, revision: number): void {
    if (!this.#isKnown(epoch, revision)) this.#known = { epoch, revision }
  }

  #stamp(what: string): string {
    return `${new Date(this.#clock.now()).toISOString()}:${what}:${this.origin.slice(0, 8)}`
  }
}
