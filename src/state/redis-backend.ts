/**
 * Everything a replica shares through Redis, made from the config in one
 * call: the state store, the leader lease, the audit stream and the window
 * deltas, over one pair of connections, with the `canary_proxy_state_backend_up`
 * reading. It never waits for Redis: a replica starts, and keeps routing, with
 * Redis down (fail static), and the connections come up by themselves.
 */
import { hostname } from 'node:os'
import type { Clock } from '../core/clock.js'
import type { Random } from '../core/random.js'
import { RedisAuditTrail } from './redis-audit.js'
import { RedisConnection } from './redis-connection.js'
import { RedisLease } from './redis-lease.js'
import { RedisStateStore } from './redis-store.js'
import { RedisWindows } from './redis-windows.js'

/** The parts of the config the backend reads (Config['state'] and two analysis figures). */
export interface RedisBackendConfig {
  readonly state: { readonly redis: string | null; readonly redisKeyPrefix: string }
  readonly analysis: { readonly intervalMs: number; readonly windowMs: number }
}

export interface RedisBackendOptions {
  /** This replica's id: lease holder, change origin, delta and audit author; unique per replica. Default host:pid (the pod name in Kubernetes). */
  readonly replica?: string
  /** Default max(3 intervals, 1s): the leader renews every interval, so two renewals may fail before another replica takes over. */
  readonly leaseTtlMs?: number
  /** Default the analysis window plus 2 intervals (a slot published late still counts). */
  readonly windowTtlMs?: number
  readonly commandTimeoutMs?: number
  readonly connectTimeoutMs?: number
  readonly maxReconnectDelayMs?: number
  readonly clock?: Clock
  readonly random?: Random
  /** Connection errors (deduplicated) and failures of the change feed. */
  readonly onError?: (error: Error) => void
  /** The backend-up reading changed (for a log line; the gauge reads `backendUp()` when scraped). */
  readonly onUpChange?: (up: boolean) => void
}

export interface RedisBackend<D = unknown> {
  readonly replica: string
  readonly prefix: string
  readonly connection: RedisConnection
  readonly store: RedisStateStore
  readonly lease: RedisLease
  readonly audit: RedisAuditTrail
  readonly windows: RedisWindows<D>
  /** canary_proxy_state_backend_up: 1 while both connections are up and commands are answered, else 0. */
  backendUp(): 0 | 1
  /** Resolves once connected and subscribed to the change feed; rejects after `timeoutMs`. Serving does not need it. */
  ready(timeoutMs?: number): Promise<void>
  /** Stops the change feed and closes the connections (commands already sent finish first). */
  close(): Promise<void>
}

export function createRedisBackend<D = unknown>(config: RedisBackendConfig, options: RedisBackendOptions = {}): RedisBackend<D> {
  const url = config.state.redis
  if (url === null) throw new Error('createRedisBackend: state.redis is not set')
  const prefix = config.state.redisKeyPrefix
  const replica = options.replica ?? `${hostname()}:${process.pid}`
  const { intervalMs, windowMs } = config.analysis
  const onError = options.onError ?? (() => {})
  const connection = new RedisConnection({
    url,
    clientName: `canary-proxy:${replica}`.replace(/\s/g, '_'),
    onError,
    ...pick(options, ['commandTimeoutMs', 'connectTimeoutMs', 'maxReconnectDelayMs', 'clock', 'random', 'onUpChange']),
  })
  const clock = options.clock === undefined ? {} : { clock: options.clock }
  const store = new RedisStateStore(connection, { prefix, origin: replica, onError, ...clock })
  const lease = new RedisLease(connection, { prefix, ttlMs: options.leaseTtlMs ?? Math.max(3 * intervalMs, 1000), ...clock })
  const audit = new RedisAuditTrail(connection, { key: `${prefix}:audit`, replica })
  const windows = new RedisWindows<D>(connection, { prefix, replica, ttlMs: options.windowTtlMs ?? windowMs + 2 * intervalMs, onError, ...clock })
  return {
    replica,
    prefix,
    connection,
    store,
    lease,
    audit,
    windows,
    backendUp: () => (connection.up ? 1 : 0),
    async ready(timeoutMs = 5_000) {
      await connection.ready(timeoutMs)
      await store.subscribed()
    },
    async close() {
      await store.close()
      await audit.close()
      await connection.close()
    },
  }
}

function pick<T extends object, K extends keyof T>(from: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key]
  return out
}
