/**
 * The leader lease in Redis: a key set with NX and a TTL in milliseconds,
 * renewed by its holder, holding a fencing token from an INCR counter. Each
 * step is one Lua script, so a token is handed out only with the lease and
 * only the holder of that very grant can renew or release it.
 */
import { systemClock, type Clock } from '../core/clock.js'
import { defineScript, type RedisConnection, type RedisScript } from './redis-connection.js'
import { stateKeys } from './redis-store.js'
import type { Lease, LeaseGrant } from './store.js'

/**
 * Keys, under the prefix P:
 *
 *     P:lease         string "<token> <holder>", PX ttl: the current grant; gone when it expires or is released
 *     P:lease:token   integer: the last token handed out (the state store refuses saves fenced below it)
 */
export function leaseKeys(prefix: string) {
  return { lease: `${prefix}:lease`, token: `${prefix}:lease:token`, state: stateKeys(prefix).state }
}

// KEYS: lease, token counter, state. ARGV: holder, ttl ms. Returns {token, ms left} or false.
// The holder already holding it gets its own grant back (not extended: that is renew's job).
// A new token is above the counter and above every fence that wrote the state,
// so a counter lost to eviction or a restart without persistence cannot hand
// out a token that an older leader's writes would outrank.
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current then
  local token, holder = string.match(current, '^(%d+) (.*)$')
  if holder == ARGV[1] then return {tonumber(token), redis.call('PTTL', KEYS[1])} end
  return false
end
local token = redis.call('INCR', KEYS[2])
if redis.call('TYPE', KEYS[3])['ok'] == 'hash' then
  local fence = tonumber(redis.call('HGET', KEYS[3], 'fence') or '')
  if fence and token <= fence then
    token = fence + 1
    redis.call('SET', KEYS[2], string.format('%d', token))
  end
end
redis.call('SET', KEYS[1], string.format('%d', token) .. ' ' .. ARGV[1], 'NX', 'PX', ARGV[2])
return {token, tonumber(ARGV[2])}
`

// KEYS: lease. ARGV: the grant's value, ttl ms. 1 when extended; 0 when the grant is no longer the lease.
const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`

// KEYS: lease. ARGV: the grant's value. Deletes the lease only if it is still this grant.
const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`

export interface RedisLeaseOptions {
  readonly prefix: string
  readonly ttlMs: number
  readonly clock?: Pick<Clock, 'now'>
}

/**
 * `expiresAt` is reckoned from the moment the request was sent, by this
 * process's clock: the key expires in Redis no earlier than that, so a holder
 * that stops acting as leader at `expiresAt` has stopped before anyone else
 * can acquire. Holder names must differ between replicas (e.g. host:pid).
 * A call that rejects (Redis unreachable) says nothing of the lease: the
 * holder keeps its last grant's `expiresAt` as the limit.
 */
export class RedisLease implements Lease {
  readonly ttlMs: number
  readonly #keys: ReturnType<typeof leaseKeys>
  readonly #clock: Pick<Clock, 'now'>
  readonly #acquire: RedisScript
  readonly #renew: RedisScript
  readonly #release: RedisScript

  constructor(connection: RedisConnection, options: RedisLeaseOptions) {
    if (!(Number.isInteger(options.ttlMs) && options.ttlMs > 0)) throw new Error(`lease ttl must be a whole number of ms > 0 (got ${options.ttlMs})`)
    this.ttlMs = options.ttlMs
    this.#keys = leaseKeys(options.prefix)
    this.#clock = options.clock ?? systemClock
    this.#acquire = defineScript(connection, 'cpxLeaseAcquire', 3, ACQUIRE)
    this.#renew = defineScript(connection, 'cpxLeaseRenew', 1, RENEW)
    this.#release = defineScript(connection, 'cpxLeaseRelease', 1, RELEASE)
  }

  async acquire(holder: string): Promise<LeaseGrant | null> {
    if (holder === '' || /\s/.test(holder)) throw new Error(`lease holder must be a non-empty name without spaces (got ${JSON.stringify(holder)})`)
    const sent = this.#clock.now()
    const reply = (await this.#acquire([this.#keys.lease, this.#keys.token, this.#keys.state], [holder, this.ttlMs])) as [number, number] | null
    if (reply === null) return null
    const [token, left] = reply
    return { token, holder, expiresAt: sent + Math.max(0, left) }
  }

  async renew(grant: LeaseGrant): Promise<LeaseGrant | null> {
    const sent = this.#clock.now()
    const renewed = await this.#renew([this.#keys.lease], [value(grant), this.ttlMs])
    return renewed === 1 ? { ...grant, expiresAt: sent + this.ttlMs } : null
  }

  async release(grant: LeaseGrant): Promise<void> {
    await this.#release([this.#keys.lease], [value(grant)])
  }
}

function value(grant: LeaseGrant): string {
  return `${grant.token} ${grant.holder}`
}
