/**
 * The two Redis connections one replica holds (commands, and a subscriber for
 * the change feed), set up to fail fast: while Redis is unreachable every
 * command rejects at once or within `commandTimeoutMs`, nothing queues for
 * later, and the client reconnects by itself with a bounded backoff.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { systemClock, type Clock } from '../core/clock.js'
import { CanaryProxyError } from '../core/errors.js'
import { systemRandom, type Random } from '../core/random.js'
import { parseRedisUrl, redactRedisUrl } from './redis-url.js'

export interface RedisConnectionOptions {
  readonly url: string
  /** A sent command not answered within this rejects ("Command timed out"); default 1000. */
  readonly commandTimeoutMs?: number
  /** A connection attempt not established within this is dropped and retried; default 1000. */
  readonly connectTimeoutMs?: number
  /** Reconnection backoff doubles from 50ms up to this (plus up to 100ms of jitter); default 1000. */
  readonly maxReconnectDelayMs?: number
  /** Shown by CLIENT LIST, e.g. the replica's id. */
  readonly clientName?: string
  readonly clock?: Clock
  readonly random?: Random
  /** Connection errors, once per distinct message until the connection is up again (a down Redis would repeat one per retry). */
  readonly onError?: (error: Error) => void
  /** Called with the new reading whenever `up` changes. */
  readonly onUpChange?: (up: boolean) => void
}

/**
 * Why these ioredis options: `enableOfflineQueue: false` rejects a command
 * issued while disconnected at once, instead of holding it (and its caller)
 * until Redis is back; `maxRetriesPerRequest: 0` and
 * `autoResendUnfulfilledCommands: false` reject the commands in flight when the
 * connection drops, so a save the caller was told failed is never applied
 * later behind its back (it saves again, by compare-and-set); `commandTimeout`
 * bounds a command to a Redis that accepts connections but does not answer
 * (stopped, overloaded). Reconnection is ioredis's own, forever, with our
 * bounded backoff.
 */
export class RedisConnection {
  readonly client: Redis
  readonly subscriber: Redis
  /** The URL without its password, for logs. */
  readonly name: string
  readonly commandTimeoutMs: number
  readonly #clock: Clock
  readonly #onError: (error: Error) => void
  readonly #onUpChange: (up: boolean) => void
  #stalled = false
  /** A problem no reconnection can cure (the database the URL names does not exist): the connections are dropped for good. */
  #fatal: Error | null = null
  #lastUp = false
  #lastError: string | null = null
  #closed = false
  readonly #onFatal = new Set<(error: Error) => void>()

  constructor(options: RedisConnectionOptions) {
    const parsed = parseRedisUrl(options.url)
    if (!parsed.ok) throw new Error(`state.redis: ${parsed.problem}`)
    const target = parsed.target
    this.name = redactRedisUrl(options.url)
    this.commandTimeoutMs = options.commandTimeoutMs ?? 1000
    this.#clock = options.clock ?? systemClock
    this.#onError = options.onError ?? (() => {})
    this.#onUpChange = options.onUpChange ?? (() => {})
    const random = options.random ?? systemRandom
    const maxDelay = options.maxReconnectDelayMs ?? 1000
    const base = {
      host: target.host,
      port: target.port,
      db: target.db,
      ...(target.username === null ? {} : { username: target.username }),
      ...(target.password === null ? {} : { password: target.password }),
      ...(target.tls ? { tls: { servername: target.host } } : {}),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.commandTimeoutMs,
      connectTimeout: options.connectTimeoutMs ?? 1000,
      // Jitter spreads the replicas' reconnections when Redis comes back.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times - 1, 16), maxDelay) + Math.floor(random() * 100),
      // The subscriber manages its own subscription (RedisStateStore), in order: subscribe, then catch up.
      autoResubscribe: false,
      ...(options.clientName === undefined ? {} : { connectionName: options.clientName }),
    } satisfies RedisOptions
    this.client = new Redis(base)
    this.subscriber = new Redis({ ...base, ...(options.clientName === undefined ? {} : { connectionName: `${options.clientName}:sub` }) })
    for (const c of [this.client, this.subscriber]) {
      c.on('error', (error: Error) => {
        // ioredis reports a failed SELECT and carries on in database 0, where another rollout's keys may live: stop instead.
        if (this.#fatal === null && /DB index is out of range/i.test(error.message)) this.#fail(databaseMissing(target.db, this.name, error))
        this.#reportError(error)
      })
      c.on('ready', () => {
        this.#lastError = null
        this.#checkUp()
      })
      c.on('close', () => this.#checkUp())
    }
  }

  /** 1 when both connections are established and the last command did not time out (canary_proxy_state_backend_up). */
  get up(): boolean {
    return !this.#closed && !this.#stalled && this.#fatal === null && this.client.status === 'ready' && this.subscriber.status === 'ready'
  }

  /** Runs a command on the client, keeping `up` honest: a timeout marks the backend down until a command succeeds again. */
  async run<T>(command: (client: Redis) => Promise<T>): Promise<T> {
    if (this.#fatal !== null) throw this.#fatal
    try {
      const result = await command(this.client)
      if (this.#stalled) {
        this.#stalled = false
        this.#checkUp()
      }
      return result
    } catch (error) {
      if (isTimeout(error) && !this.#stalled) {
        this.#stalled = true
        this.#checkUp()
      }
      throw error
    }
  }

  /** Resolves once both connections are up; rejects after `timeoutMs`. The backend works without it (fail static); tests and start-up logs use it. */
  ready(timeoutMs = 5_000): Promise<void> {
    if (this.#fatal !== null) return Promise.reject(this.#fatal)
    if (this.up) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!this.up) return
        done()
        resolve()
      }
      const fatal = (error: Error) => {
        done()
        reject(error)
      }
      const timer = this.#clock.after(timeoutMs, () => {
        done()
        reject(new Error(`Redis at ${this.name} not reachable within ${timeoutMs}ms${this.#lastError === null ? '' : `: ${this.#lastError}`}`))
      })
      const done = () => {
        timer.cancel()
        this.client.off('ready', check)
        this.subscriber.off('ready', check)
        this.#onFatal.delete(fatal)
      }
      this.client.on('ready', check)
      this.subscriber.on('ready', check)
      this.#onFatal.add(fatal)
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all(
      [this.client, this.subscriber].map(async (c) => {
        // QUIT lets commands already sent finish; a connection that is not up has nothing to finish.
        if (c.status === 'ready') await c.quit().catch(() => c.disconnect())
        else c.disconnect()
      }),
    )
    this.#checkUp()
  }

  /** The error every command and `ready()` reject with once the target cannot be used (null while it can). */
  get fatal(): Error | null {
    return this.#fatal
  }

  #fail(error: Error): void {
    this.#fatal = error
    for (const c of [this.client, this.subscriber]) c.disconnect(false)
    this.#checkUp()
    for (const reject of [...this.#onFatal]) reject(error)
  }

  #reportError(error: Error): void {
    if (this.#closed || error.message === this.#lastError) return
    this.#lastError = error.message
    this.#onError(error)
  }

  #checkUp(): void {
    const up = this.up
    if (up === this.#lastUp) return
    this.#lastUp = up
    this.#onUpChange(up)
  }
}

/** A config problem found only once connected: the error names the key, as the config's own checks do. */
function databaseMissing(db: number, name: string, cause: Error): Error {
  const error = new CanaryProxyError('CPX_ERR_CONFIG_INVALID')
  error.message = `state.redis: database ${db} does not exist on ${name} (Redis answered "${cause.message}"); expected a database number below the server's \`databases\` setting (16 by default)`
  return error
}

/** ioredis gives its timeout no code: the message is all there is to match. */
function isTimeout(error: unknown): boolean {
  return (error as Error | null)?.message === 'Command timed out'
}

/** A Lua script on the client (EVALSHA, falling back to EVAL on a connection that has not seen it, e.g. after Redis restarted). */
export type RedisScript = (keys: readonly string[], args: readonly (string | number)[]) => Promise<unknown>

export function defineScript(connection: RedisConnection, name: string, keyCount: number, lua: string): RedisScript {
  connection.client.defineCommand(name, { numberOfKeys: keyCount, lua })
  return (keys, args) =>
    connection.run((client) => {
      const run = (client as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name]
      if (run === undefined) throw new Error(`script ${name} is not defined`)
      if (keys.length !== keyCount) throw new Error(`script ${name} takes ${keyCount} keys, got ${keys.length}`)
      return run.call(client, ...keys, ...args)
    })
}
