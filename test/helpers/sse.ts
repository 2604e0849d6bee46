/** A Server-Sent Events client for tests: reads an event stream over a real socket and parses it as the HTML standard's EventSource does. */
import { request, type IncomingHttpHeaders } from 'node:http'
import type { Test } from 'tap'

/** One dispatched message, a comment line, or a `retry:` field, in the order they arrived. */
export type SseItem =
  | { readonly kind: 'message'; readonly type: string; readonly data: string; readonly json: unknown }
  | { readonly kind: 'comment'; readonly text: string }
  | { readonly kind: 'retry'; readonly ms: number }

export interface SseStream {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** Everything received so far. */
  readonly items: readonly SseItem[]
  /** The next item after the ones already taken that matches; rejects if the stream ends first. */
  next(match?: (item: SseItem) => boolean, what?: string): Promise<SseItem>
  /** The next message of this type (its JSON). */
  nextMessage(type: string): Promise<unknown>
  /** Resolves when the server ends the stream (or the socket closes). */
  readonly ended: Promise<void>
  close(): void
}

export async function openStream(t: Test, url: string): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream' } }, (res) => {
      const items: SseItem[] = []
      let taken = 0
      let done = false
      const waiters: (() => void)[] = []
      const wake = (): void => {
        for (const w of waiters.splice(0)) w()
      }
      let buffer = ''
      let type = ''
      let data: string[] = []
      const line = (text: string): void => {
        if (text === '') {
          if (data.length > 0) {
            const joined = data.join('\n')
            let json: unknown = null
            try {
              json = JSON.parse(joined)
            } catch {
              json = null
            }
            items.push({ kind: 'message', type: type === '' ? 'message' : type, data: joined, json })
          }
          type = ''
          data = []
          return
        }
        if (text.startsWith(':')) {
          items.push({ kind: 'comment', text: text.slice(1).trim() })
          return
        }
        const colon = text.indexOf(':')
        const field = colon < 0 ? text : text.slice(0, colon)
        const value = colon < 0 ? '' : text.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') type = value
        else if (field === 'data') data.push(value)
        else if (field === 'retry' && /^[0-9]+$/.test(value)) items.push({ kind: 'retry', ms: Number(value) })
      }
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let at: number
        while ((at = buffer.indexOf('\n')) >= 0) {
          line(buffer.slice(0, at).replace(/\r$/, ''))
          buffer = buffer.slice(at + 1)
        }
        wake()
      })
      const ended = new Promise<void>((resolveEnd) => {
        const finish = (): void => {
          done = true
          wake()
          resolveEnd()
        }
        res.once('end', finish)
        res.once('close', finish)
        res.once('error', finish)
      })
      const stream: SseStream = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        items,
        async next(match = () => true, what = 'an item') {
          for (;;) {
            while (taken < items.length) {
              const item = items[taken++]!
              if (match(item)) return item
            }
            if (done) throw new Error(`the stream ended before ${what} (received ${JSON.stringify(items.slice(-5))})`)
            await new Promise<void>((w) => waiters.push(w))
          }
        },
        async nextMessage(messageType) {
          const item = await stream.next((i) => i.kind === 'message' && i.type === messageType, `an "${messageType}" message`)
          return item.kind === 'message' ? item.json : null
        },
        ended,
        close: () => req.destroy(),
      }
      t.teardown(() => req.destroy())
      resolve(stream)
    })
    req.once('error', reject)
    req.end()
  })
}
