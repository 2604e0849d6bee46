/**
 * A live feed of the status for `status --watch`: the admin API's Server-Sent
 * Events (`GET /api/v1/stream`, a `status` event on every change and every
 * analysis interval) when the proxy has them, else polling `GET /api/v1/status`
 * every interval (a proxy from before the stream answers 404).
 */
import { createParser } from 'eventsource-parser'
import { setTimeout as sleep } from 'node:timers/promises'
import type { StatusView } from '../api/wire.js'
import { AdminError, type AdminClient, type EventStream } from './admin-client.js'

export type Source = 'stream' | 'poll'

export interface WatchHandlers {
  /** A status, as it came; called for every update (the caller decides what changed). */
  status(s: StatusView, source: Source): void
  /** The feed changed: the stream, or polling every interval; said once per change. */
  source(source: Source): void
  /** The proxy went away (or the stream broke) after it had answered; said once per outage, retried every interval. */
  trouble(message: string): void
}

/** Runs until `signal` aborts; rejects only when the admin API cannot be reached at the very start. */
export async function watchStatus(client: AdminClient, intervalMs: number, signal: AbortSignal, on: WatchHandlers): Promise<void> {
  let streaming = true
  let reached = false
  let troubled = false
  let current: Source | null = null
  const got = (s: StatusView, source: Source): void => {
    reached = true
    troubled = false
    if (current !== source) on.source(source)
    current = source
    on.status(s, source)
  }
  const trouble = (message: string): void => {
    if (!troubled) on.trouble(message)
    troubled = true
  }
  while (!signal.aborted) {
    try {
      if (streaming) {
        const stream = await client.stream(signal)
        if (stream === null) {
          streaming = false
          continue
        }
        const ended = await readStatusEvents(stream, (s) => got(s, 'stream'))
        if (!signal.aborted) trouble(`the live stream ended (${ended}); reconnecting`)
      } else {
        got(await client.status(), 'poll')
      }
    } catch (error) {
      if (signal.aborted) return
      if (!(error instanceof AdminError)) throw error
      // The stream refused (a proxy in front that does not pass it, say) but the proxy answered: poll instead.
      if (streaming && error.status !== null) {
        streaming = false
        continue
      }
      if (!reached) throw error
      trouble(error.message)
    }
    await sleep(intervalMs, undefined, { signal }).catch(() => undefined)
  }
}

/** The proxy sends a status every analysis interval; a stream silent this long is stuck (a half-open connection), and is dropped. */
const SILENCE_MS = 60_000

/** Feeds the SSE body to the parser and hands on each `status` event; resolves with why the stream ended. */
async function readStatusEvents(stream: EventStream, onStatus: (s: StatusView) => void): Promise<string> {
  const pending: StatusView[] = []
  const parser = createParser({
    onEvent(event) {
      if (event.event !== 'status') return
      const s = statusOf(event.data)
      if (s !== null) pending.push(s)
    },
  })
  const decoder = new TextDecoder()
  const chunks = stream.body[Symbol.asyncIterator]()
  let silent = false
  for (;;) {
    let next: IteratorResult<Buffer>
    const timer = setTimeout(() => {
      silent = true
      stream.close()
    }, SILENCE_MS)
    try {
      next = await chunks.next()
    } catch (error) {
      if (silent) return `no event for ${SILENCE_MS / 1000}s`
      return (error as { code?: string }).code ?? (error as Error).message
    } finally {
      clearTimeout(timer)
    }
    if (next.done === true) return 'closed by the proxy'
    parser.feed(decoder.decode(next.value, { stream: true }))
    // Outside the read's try: a failure to render is a bug to report, not a lost stream.
    for (const s of pending.splice(0)) onStatus(s)
  }
}

/** The event's data is the StatusView (or an object holding it as `status`); anything else is skipped. */
function statusOf(data: string): StatusView | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return null
  }
  const isStatus = (v: unknown): v is StatusView => typeof v === 'object' && v !== null && typeof (v as { phase?: unknown }).phase === 'string'
  if (isStatus(parsed)) return parsed
  const inner = (parsed as { status?: unknown } | null)?.status
  return isStatus(inner) ? inner : null
}
