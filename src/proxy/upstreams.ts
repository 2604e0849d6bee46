/** Keep-alive undici pools, one per upstream origin, cached apart from weights so a weight change keeps its connections; and the connector every upstream connection goes through. */
import type { EventEmitter } from 'node:events'
import { Socket } from 'node:net'
import { buildConnector, Client, Pool, type Dispatcher } from 'undici'

export interface PoolOptions {
  readonly connectTimeoutMs: number
  /**
   * An error no request could take: a client-level 'error' (undici emits one
   * when a request handler throws). Always a proxy bug; without a listener it
   * would kill the process, so it is handed here to be logged and counted.
   */
  readonly onError?: (error: Error) => void
}

/**
 * Marks an error raised while a connection to the upstream was being opened
 * (the connector's callback), so classifyFailure can tell the proxy's own
 * failures there (EMFILE, …) from the upstream's (ECONNREFUSED, …).
 */
export const CONNECT_PHASE = Symbol('canary-proxy.connectPhase')

/** The number of connector callbacks running now: undici writes the first request on a new connection inside it (see Exchange#onRequestStart). */
let connecting = 0

/** True while undici is handing a request to a connection that has just been opened, false for one taken from the keep-alive cache. */
export function onNewConnection(): boolean {
  return connecting > 0
}

const AWAITING_HEAD = Symbol('canary-proxy.awaitingHead')
type UpstreamSocket = Socket & { [AWAITING_HEAD]?: boolean }
const socketRead = Socket.prototype.read
const socketWrite = Socket.prototype.write
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')

/**
 * undici refuses a 100 (Continue) it did not ask for as a "bad response" and
 * closes the connection (client-h1 onHeadersComplete), but RFC 9110 §15.2
 * says a client MUST parse and may ignore any 1xx it did not expect, and the
 * proxy strips Expect, so an upstream that sends 100 anyway (Node's
 * writeContinue, some servlet containers on every POST) would be charged an
 * error for a good response. Each upstream socket's reads and writes are
 * watched: a string write that does not start with CR is a request head
 * (undici writes heads as latin1 strings and body bytes as Buffers, chunk
 * framing as strings starting "\r\n"), and the first bytes read after it
 * start that request's response. A 100 status line found there, or after
 * other interim responses, is rewritten in place to 199, an unregistered 1xx
 * that undici passes through as interim (the exchange skips every 1xx). Nothing is allocated; the cost is
 * one flag test per read and write.
 */
function watchedRead(this: UpstreamSocket, size?: number): Buffer | null {
  const chunk = socketRead.call(this, size) as Buffer | null
  if (chunk !== null && this[AWAITING_HEAD] === true) this[AWAITING_HEAD] = skipContinue(chunk)
  return chunk
}

function watchedWrite(this: UpstreamSocket, chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
  if (typeof chunk === 'string' && chunk.charCodeAt(0) !== 0x0d) this[AWAITING_HEAD] = true
  return (socketWrite as (this: Socket, ...args: unknown[]) => boolean).call(this, chunk, encoding, callback)
}

/**
 * Walks the interim (1xx) heads at the start of `chunk`, rewriting each 100
 * to 199; true when the chunk ends right after one, so the final head is
 * still to come. Other 1xx (103 Early Hints) undici passes on itself.
 */
export function skipContinue(chunk: Buffer): boolean {
  let at = 0
  for (;;) {
    const status = interimAt(chunk, at)
    if (status === 0) return false
    if (status === 100) {
      chunk[at + 10] = 0x39
      chunk[at + 11] = 0x39
    }
    const end = chunk.indexOf(HEAD_END, at + 12)
    // The interim head goes on in the next read: parsed as it is all the same.
    if (end === -1) return false
    at = end + 4
    if (at === chunk.length) return true
  }
}

/**
 * The status of an `HTTP/1.x 1dd` status line (followed by SP or CR) at
 * `at`, other than 101 (an upgrade: never interim); 0 for anything else. A
 * status line split within these 13 bytes is not recognised (and a 100 then
 * fails as it would without this).
 */
function interimAt(b: Buffer, at: number): number {
  if (
    b.length < at + 13 ||
    b[at] !== 0x48 ||
    b[at + 1] !== 0x54 ||
    b[at + 2] !== 0x54 ||
    b[at + 3] !== 0x50 ||
    b[at + 4] !== 0x2f ||
    b[at + 5] !== 0x31 ||
    b[at + 6] !== 0x2e ||
    b[at + 8] !== 0x20 ||
    b[at + 9] !== 0x31 ||
    (b[at + 12] !== 0x20 && b[at + 12] !== 0x0d)
  ) {
    return 0
  }
  const tens = b[at + 10]! - 0x30
  const ones = b[at + 11]! - 0x30
  if (tens < 0 || tens > 9 || ones < 0 || ones > 9) return 0
  const status = 100 + tens * 10 + ones
  return status === 101 ? 0 : status
}

/**
 * The connector of every pool: undici's own, plus the 1xx watch on each new
 * socket, the connect-phase mark on errors, and the `connecting` count that
 * tells an exchange its connection is new (a request written inside this
 * callback is on the connection it just opened).
 */
function upstreamConnector(connectTimeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: connectTimeoutMs })
  return (options, callback) => {
    try {
      connect(options, (error, socket) => {
        if (error !== null) {
          callback(markConnectPhase(error), null)
          return
        }
        const watched = socket as UpstreamSocket
        watched.read = watchedRead
        watched.write = watchedWrite as Socket['write']
        connecting++
        try {
          callback(null, socket)
        } finally {
          connecting--
        }
      })
    } catch (error) {
      // net.connect throws synchronously only on the proxy's own faults (an invalid option, no resources).
      callback(markConnectPhase(error as Error), null)
    }
  }
}

function markConnectPhase(error: Error): Error {
  if (typeof error === 'object' && error !== null) (error as Error & { [CONNECT_PHASE]?: true })[CONNECT_PHASE] = true
  return error
}

/** A Pool whose every connection goes through upstreamConnector, with an 'error' listener on each of its clients. */
export class UpstreamPool extends Pool {
  readonly #origin: string
  readonly #clientOptions: Client.Options
  readonly #onClientError: (error: Error) => void

  constructor(origin: string, options: PoolOptions) {
    const onClientError = (error: Error): void => options.onError?.(error)
    const clientOptions: Client.Options = {
      connect: upstreamConnector(options.connectTimeoutMs),
      // A request on a kept-alive socket the upstream has just closed fails
      // with "other side closed"; keep our idle timeout below the common
      // server default (Node: 5s) and honour the server's Keep-Alive hint.
      // The exchange retries the idempotent ones that lose this race.
      keepAliveTimeout: 4_000,
      keepAliveTimeoutThreshold: 1_000,
      pipelining: 1,
    }
    super(origin, {
      ...clientOptions,
      factory: (url: URL, opts: object) => listenForErrors(new Client(url, opts), onClientError),
    })
    this.#origin = origin
    this.#clientOptions = clientOptions
    this.#onClientError = onClientError
  }

  /**
   * Sends one request on a connection of its own, closed after it: the retry
   * of a request whose kept-alive connection closed under it, which must not
   * land on another connection of the same stale batch.
   */
  dispatchOnNewConnection(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const client = listenForErrors(new Client(this.#origin, this.#clientOptions), this.#onClientError)
    client.dispatch(options, handler)
    client.close().catch(this.#onClientError)
  }
}

/** undici's Dispatcher types list its events without 'error', which a Client does emit (util.errorRequest). */
function listenForErrors(client: Client, onError: (error: Error) => void): Client {
  ;(client as unknown as EventEmitter).on('error', onError)
  return client
}

export class UpstreamPools {
  readonly #pools = new Map<string, UpstreamPool>()
  readonly #options: PoolOptions

  constructor(options: PoolOptions) {
    this.#options = options
  }

  /** The pool for an upstream URL's origin, created on first use. */
  get(url: string): UpstreamPool {
    const origin = new URL(url).origin
    let pool = this.#pools.get(origin)
    if (pool === undefined) {
      pool = new UpstreamPool(origin, this.#options)
      this.#pools.set(origin, pool)
    }
    return pool
  }

  /** Closes the pools of origins no longer in use, after their requests in flight finish. */
  async retain(urls: Iterable<string>): Promise<void> {
    const keep = new Set<string>()
    for (const url of urls) keep.add(new URL(url).origin)
    const closing: Promise<void>[] = []
    for (const [origin, pool] of this.#pools) {
      if (!keep.has(origin)) {
        this.#pools.delete(origin)
        closing.push(pool.close())
      }
    }
    await Promise.all(closing)
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()]
    this.#pools.clear()
    await Promise.all(pools.map((p) => p.close()))
  }
}
