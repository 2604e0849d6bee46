/** Real upstream servers on loopback for tests: scripted status, latency and faults, and a count of what each received. */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net'
import type { Test } from 'tap'

export interface Received {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: string[]
  readonly bodyBytes: number
}

export interface Behaviour {
  status?: number
  delayMs?: number
  body?: string
}

export interface TestUpstream {
  readonly name: string
  readonly url: string
  readonly port: number
  readonly received: Received[]
  /** Changes what the next requests get (status, delay). */
  behave(behaviour: Behaviour | ((req: IncomingMessage, n: number) => Behaviour)): void
  close(): Promise<void>
}

/**
 * An HTTP upstream that answers JSON `{ upstream, method, url, headers, bodyBytes }`
 * (or `body` when scripted), after reading the whole request body.
 */
export async function startUpstream(t: Test, name: string, behaviour: Behaviour = {}): Promise<TestUpstream> {
  const received: Received[] = []
  let script: (req: IncomingMessage, n: number) => Behaviour = () => behaviour
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0
    req.on('data', (chunk: Buffer) => (bytes += chunk.length))
    req.on('end', () => {
      const n = received.length
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: bytes })
      const b = script(req, n)
      const send = (): void => {
        if (res.destroyed) return
        const body = b.body ?? JSON.stringify({ upstream: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes })
        res.writeHead(b.status ?? 200, { 'content-type': b.body === undefined ? 'application/json' : 'text/plain', 'content-length': Buffer.byteLength(body), 'x-upstream': name })
        res.end(body)
      }
      if (b.delayMs !== undefined && b.delayMs > 0) setTimeout(send, b.delayMs)
      else send()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const upstream: TestUpstream = {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    behave(next) {
      script = typeof next === 'function' ? next : () => next
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
  t.teardown(() => upstream.close())
  return upstream
}

/** A TCP server whose connections are handled by `onConnection` (reset, hang, garbage). */
export async function startRawServer(t: Test, onConnection: (socket: Socket) => void): Promise<{ url: string; port: number; connections: number }> {
  const sockets = new Set<Socket>()
  const state = { url: '', port: 0, connections: 0 }
  const server: TcpServer = createTcpServer((socket) => {
    state.connections++
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.on('close', () => sockets.delete(socket))
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.port = (server.address() as AddressInfo).port
  state.url = `http://127.0.0.1:${state.port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return state
}

/** A loopback port nobody listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
