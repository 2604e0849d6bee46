/** A node:http upstream that misbehaves in one chosen way once it has read a request's whole body (the red team's failure kinds), and answers /ok normally. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Test } from 'tap'

export const FAULT_KINDS = [
  'reset-before-headers',
  'close-before-headers',
  'not-http',
  'headers-timeout',
  'reset-mid-body',
  'continue-then-200',
  '304-with-content-length',
  'header-too-large',
  'too-many-headers',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

export interface FaultyUpstream {
  readonly url: string
  /** Requests that reached the fault (not /ok), with the body bytes each had when the fault struck. */
  readonly faulted: { method: string; url: string; bodyBytes: number }[]
  /** Resets the connections held by 'reset-mid-body' (call it once the client has the response headers). */
  releaseMidBody(): void
}

/**
 * Every fault strikes after the request body has fully arrived: the case that
 * killed the proxy (issue 7, defect 1). `headers-timeout` never answers;
 * `reset-mid-body` sends the head and 100 of 1,000 body bytes, then waits for
 * releaseMidBody() so the reset lands after the client saw the head.
 */
export async function startFaultyUpstream(t: Test, kind: FaultKind): Promise<FaultyUpstream> {
  const held = new Set<Socket>()
  const faulted: { method: string; url: string; bodyBytes: number }[] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => (bytes += chunk.length))
    req.on('end', () => {
      if (req.url === '/ok') {
        res.end('ok')
        return
      }
      faulted.push({ method: req.method ?? '', url: req.url ?? '', bodyBytes: bytes })
      strike(kind, req.socket, res, held)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        for (const socket of held) socket.destroy()
        server.close(() => resolve())
      }),
  )
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    faulted,
    releaseMidBody() {
      for (const socket of held) if (!socket.destroyed) socket.resetAndDestroy()
      held.clear()
    },
  }
}

function strike(kind: FaultKind, socket: Socket, res: ServerResponse, held: Set<Socket>): void {
  switch (kind) {
    case 'reset-before-headers':
      socket.resetAndDestroy()
      return
    case 'close-before-headers':
      socket.end()
      return
    case 'not-http':
      socket.end('SSH-2.0-OpenSSH_9.6\r\n')
      return
    case 'headers-timeout':
      return
    case 'reset-mid-body':
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n' + 'x'.repeat(100))
      held.add(socket)
      return
    case 'continue-then-200':
      // Node writes the interim response at once; the final one follows in a later write.
      res.writeContinue()
      setTimeout(() => res.end('ok'), 5)
      return
    case '304-with-content-length':
      // RFC 9110 §8.6: a 304 may carry the Content-Length a 200 would have had.
      res.writeHead(304, { 'content-length': '1234', etag: '"v1"' })
      res.end()
      return
    case 'header-too-large':
      res.writeHead(200, { 'x-large': 'a'.repeat(100 * 1024) })
      res.end('ok')
      return
    case 'too-many-headers': {
      const headers: [string, string][] = []
      for (let i = 0; i < 3000; i++) headers.push([`x-header-${i}`, String(i)])
      res.writeHead(200, headers.flat())
      res.end('ok')
      return
    }
  }
}
