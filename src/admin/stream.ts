/** GET /api/v1/stream: Server-Sent Events of the status (on every change and every analysis interval) and of each new audit event, bounded in streams and bytes. */
import type { ServerResponse } from 'node:http'
import type { FastifyPluginCallback, FastifyReply } from 'fastify'
import type { EventView, StatusView } from '../api/wire.js'
import type { Clock, Timer } from '../core/clock.js'
import { statusOf, type ErrorCode } from '../core/errors.js'
import type { ControlEvent } from '../events/feed.js'
import type { AuditEvent } from '../state/audit-log.js'

export interface StreamLimits {
  /** Streams open at once; one more is refused with 503 and Retry-After. */
  readonly maxStreams: number
  /** Bytes a stream may have waiting to be sent; a reader further behind is dropped, never buffered without limit. */
  readonly maxBufferedBytes: number
  /** A comment line this often, so proxies and idle timeouts do not cut a quiet stream. */
  readonly heartbeatMs: number
  /** The reconnection delay (`retry:`) an EventSource uses after the stream ends. */
  readonly retryMs: number
  /** Most events replayed at connect (`?events=N`). */
  readonly maxReplay: number
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxStreams: 32, maxBufferedBytes: 256 * 1024, heartbeatMs: 15_000, retryMs: 2_000, maxReplay: 1_000 }

export interface StreamOptions {
  /** The same view as GET /api/v1/status. */
  readonly status: () => StatusView
  /** The same list as GET /api/v1/events, oldest first. */
  readonly recentEvents: () => readonly (EventView | AuditEvent)[]
  /** The control plane's event feed (EventFeed.subscribe); returns the unsubscribe function. */
  readonly subscribe: (listener: (event: ControlEvent) => void) => () => void
  /** analysis.interval: a status goes out at least this often. */
  readonly intervalMs: number
  readonly clock: Clock
  readonly limits?: Partial<StreamLimits>
}

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  // The response never ends on its own; once it does (shutdown, a dropped
  // reader) the connection goes with it, so the admin server's close never
  // waits for a keep-alive timeout on a socket that carried a stream.
  connection: 'close',
  // nginx and similar buffer responses unless told not to: an event must not wait there.
  'x-accel-buffering': 'no',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/**
 * One frame per message, as the HTML standard's event-stream format reads it:
 * `event:` names the type, `data:` carries one line of JSON (JSON.stringify
 * never emits a raw newline), a blank line ends the message.
 */
function frame(type: 'status' | 'event', json: string): string {
  return `event: ${type}\ndata: ${json}\n\n`
}

/**
 * Every stream shares one subscription to the feed and one pair of timers,
 * held only while a stream is open. Each message is serialised once and
 * written to every stream.
 */
class StreamHub {
  readonly #options: StreamOptions
  readonly #limits: StreamLimits
  readonly #streams = new Set<ServerResponse>()
  readonly #onDrop: (remote: string | undefined, buffered: number) => void
  #unsubscribe: (() => void) | null = null
  #timers: Timer[] = []
  #statusQueued = false
  /** A status went out since the last interval tick: the tick has nothing to add. */
  #statusSinceTick = false
  closed = false

  constructor(options: StreamOptions, limits: StreamLimits, onDrop: (remote: string | undefined, buffered: number) => void) {
    this.#options = options
    this.#limits = limits
    this.#onDrop = onDrop
  }

  get size(): number {
    return this.#streams.size
  }

  add(res: ServerResponse, replay: number): void {
    this.#streams.add(res)
    res.once('close', () => this.#remove(res))
    if (this.#unsubscribe === null) this.#start()
    let opening = `retry: ${this.#limits.retryMs}\n: canary-proxy stream; events: status, event\n\n`
    if (replay > 0) for (const e of this.#options.recentEvents().slice(-replay)) opening += frame('event', JSON.stringify(e))
    opening += frame('status', JSON.stringify(this.#options.status()))
    this.#write(res, opening)
  }

  /** Ends every stream (their connections close with them) and lets go of the feed and the timers. */
  close(): void {
    this.closed = true
    for (const res of [...this.#streams]) {
      // A reader with bytes still waiting would hold the end back: it is cut instead.
      if (res.writableLength > 0) res.destroy()
      else res.end()
      this.#remove(res)
    }
    this.#stop()
  }

  #start(): void {
    const { clock, intervalMs } = this.#options
    this.#unsubscribe = this.#options.subscribe((event) => this.#onEvent(event))
    this.#timers = [
      clock.every(intervalMs, () => {
        if (!this.#statusSinceTick) this.#sendStatus()
        this.#statusSinceTick = false
      }),
      clock.every(this.#limits.heartbeatMs, () => this.#broadcast(': heartbeat\n\n')),
    ]
  }

  #stop(): void {
    this.#unsubscribe?.()
    this.#unsubscribe = null
    for (const timer of this.#timers) timer.cancel()
    this.#timers = []
  }

  #remove(res: ServerResponse): void {
    if (!this.#streams.delete(res)) return
    if (this.#streams.size === 0) this.#stop()
  }

  #onEvent(event: ControlEvent): void {
    switch (event.type) {
      case 'transition':
        // As AuditLog writes it and GET /api/v1/events serves it: the same JSON, `at` in ISO 8601.
        this.#broadcast(frame('event', JSON.stringify({ ...event.record, at: new Date(event.record.at).toISOString() })))
        this.#queueStatus()
        break
      case 'sharedEvent':
        // Another replica's transition or action (state.redis): the shared trail's own JSON.
        this.#broadcast(frame('event', JSON.stringify(event.event)))
        this.#queueStatus()
        break
      case 'decision':
      case 'configReload':
        this.#queueStatus()
        break
      case 'persistFailure':
        break
    }
  }

  /**
   * The feed speaks while the controller is mid-change: a decision is emitted
   * before the transition it leads to is applied. A microtask runs once the
   * controller's synchronous work is done, so the status sent is the one after
   * the change, and a decision and its transition give one status, not two.
   */
  #queueStatus(): void {
    if (this.#statusQueued) return
    this.#statusQueued = true
    queueMicrotask(() => {
      this.#statusQueued = false
      if (this.#streams.size > 0) this.#sendStatus()
    })
  }

  #sendStatus(): void {
    this.#statusSinceTick = true
    this.#broadcast(frame('status', JSON.stringify(this.#options.status())))
  }

  #broadcast(chunk: string): void {
    for (const res of [...this.#streams]) this.#write(res, chunk)
  }

  #write(res: ServerResponse, chunk: string): void {
    if (res.destroyed || res.writableEnded) {
      this.#remove(res)
      return
    }
    res.write(chunk)
    // writableLength counts what neither Node nor the kernel has taken yet: a
    // reader that stopped reading. It is dropped; it reconnects when it reads again.
    const buffered = res.writableLength
    if (buffered > this.#limits.maxBufferedBytes) {
      const remote = res.socket?.remoteAddress
      this.#remove(res)
      res.destroy()
      this.#onDrop(remote, buffered)
    }
  }
}

/** `?events=N`: replay the newest N audit events before the live ones (default 0). */
function replayCount(raw: unknown, max: number): number | string {
  if (raw === undefined) return 0
  if (typeof raw !== 'string' || !/^[0-9]+$/.test(raw)) return `events: must be a whole number of events to replay, 0 to ${max} (got ${JSON.stringify(raw)})`
  const n = Number(raw)
  return n <= max ? n : `events: must be at most ${max} (got ${raw})`
}

function refuse(reply: FastifyReply, code: ErrorCode, error: string, field?: string): FastifyReply {
  return reply.code(statusOf(code)).send(field === undefined ? { error, code } : { error, code, field })
}

/**
 * The route, as a fastify plugin. Read-only like the other GETs: no token.
 * On close (fastify's preClose, before the server stops accepting) every
 * stream is ended, so `admin.close()` does not wait on them.
 */
export const streamRoutes: FastifyPluginCallback<StreamOptions> = (app, options, done) => {
  const limits: StreamLimits = { ...DEFAULT_STREAM_LIMITS, ...options.limits }
  const hub = new StreamHub(options, limits, (remote, buffered) =>
    app.log.warn({ remote, buffered }, `dropped a /api/v1/stream reader with ${buffered} bytes unread (limit ${limits.maxBufferedBytes})`),
  )

  app.addHook('preClose', (hookDone) => {
    hub.close()
    hookDone()
  })

  const description = 'Server-Sent Events: a `status` event at once and every analysis interval, and every transition, decision and audit event as it happens (SPEC "stream"). `?events=N` replays the last N audit events first.'
  app.get('/api/v1/stream', { schema: { description, produces: ['text/event-stream'], querystring: { type: 'object', properties: { events: { type: 'string', description: 'replay this many recent events first' } } } } }, (request, reply) => {
    const replay = replayCount((request.query as Record<string, unknown>).events, limits.maxReplay)
    if (typeof replay === 'string') return refuse(reply, 'CPX_ERR_ADMIN_BAD_INPUT', replay, 'events')
    if (hub.closed) return refuse(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', 'canary-proxy is shutting down')
    if (hub.size >= limits.maxStreams) {
      reply.header('retry-after', String(Math.ceil(limits.retryMs / 1000)))
      return refuse(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', `too many open streams (${limits.maxStreams}); poll GET /api/v1/status or try again later`)
    }
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, HEADERS)
    if (request.method === 'HEAD') {
      res.end()
      return reply
    }
    // Small frames must leave at once, not wait for Nagle's algorithm.
    res.socket?.setNoDelay(true)
    hub.add(res, replay)
    return reply
  })
  done()
}
