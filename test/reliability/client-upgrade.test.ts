/**
 * Issue 7, the upgrade path from the client's side: a refused upgrade streams
 * with backpressure (defect 4) and its socket is reclaimed however long the
 * client keeps its side open (defect 5); h2c anywhere in Upgrade is never
 * tunnelled (defect 11); a client that gives up on a pending handshake is a
 * client abort, not the upstream's error (defect 15).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startApp } from '../helpers/app.js'
import { authority, RawConnection, sample, scrape } from '../helpers/raw-http.js'

const WS_HEAD = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'

/** A TCP server for upstreams that misbehave at the byte level; counts connections and closes. */
async function tcpUpstream(t: Test, onConnection: (socket: Socket) => void): Promise<{ url: string; connections: number; closed: number }> {
  const state = { url: '', connections: 0, closed: 0 }
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    state.connections++
    sockets.add(socket)
    socket.on('error', () => undefined)
    socket.on('close', () => {
      state.closed++
      sockets.delete(socket)
    })
    onConnection(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return state
}

/** A client socket that keeps its side open after the proxy's FIN (allowHalfOpen), and collects what it reads. */
async function halfOpenClient(proxyUrl: string): Promise<{ socket: Socket; received: () => string; ended: Promise<void>; closed: Promise<void> }> {
  const { hostname, port } = new URL(proxyUrl)
  const socket = connect({ host: hostname, port: Number(port), allowHalfOpen: true })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.on('error', () => undefined)
  let text = ''
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')))
  const ended = new Promise<void>((resolve) => socket.once('end', resolve))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  return { socket, received: () => text, ended, closed }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

t.test('a refused upgrade with a large body is streamed with backpressure, and arrives whole', async (t) => {
  const BODY = 64 * 1024 * 1024
  const CHUNK = Buffer.alloc(64 * 1024, 0x61)
  /** Bytes the upstream has handed to its kernel: it writes only as fast as the proxy reads. */
  const sent = { bytes: 0 }
  const upstream = await tcpUpstream(t, (socket) => {
    socket.once('data', () => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${BODY}\r\ncontent-type: application/octet-stream\r\n\r\n`)
      let queued = 0
      const pump = (): void => {
        while (queued < BODY) {
          queued += CHUNK.length
          const ok = socket.write(CHUNK, () => (sent.bytes += CHUNK.length))
          if (!ok) {
            socket.once('drain', pump)
            return
          }
        }
      }
      pump()
    })
  })
  const { proxyUrl } = await startApp(t, { upstreams: { stable: upstream.url }, routing: { responseTimeout: '30s' } })
  const client = await halfOpenClient(proxyUrl)
  t.teardown(() => client.socket.destroy())
  client.socket.pause()
  let bytes = 0
  client.socket.removeAllListeners('data')
  client.socket.write(`GET /big HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n${WS_HEAD}\r\n`)

  // Wait until the upstream stops getting rid of bytes: the client reads nothing, so with backpressure it stalls.
  let last = -1
  let still = 0
  await until('the upstream to stall or finish', () => {
    if (sent.bytes === last) still++
    else still = 0
    last = sent.bytes
    return still >= 25 || sent.bytes >= BODY
  }, 60_000)
  const buffered = sent.bytes
  t.ok(buffered < BODY / 2, `the proxy stopped reading the upstream: ${(buffered / 1048576).toFixed(1)} MiB of 64 MiB left it while the client read nothing`)

  client.socket.on('data', (chunk: Buffer) => (bytes += chunk.length))
  client.socket.resume()
  await client.ended
  const head = 'HTTP/1.1 200 OK\r\n'.length
  t.ok(bytes > BODY + head, 'the client got the head and then the whole body once it read')
  t.equal(sent.bytes, BODY, 'and the upstream was read to the end')
})

t.test('after a refused upgrade the socket is reclaimed even if the client keeps its side open', async (t) => {
  const upstream = await tcpUpstream(t, (socket) => {
    socket.once('data', () => socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno'))
  })
  const { proxyUrl, app } = await startApp(t, { upstreams: { stable: upstream.url }, listen: { lingerTimeout: '300ms' } })
  const cases = [
    ['the upstream refused (403)', `GET /ws HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n${WS_HEAD}\r\n`, /^HTTP\/1\.1 403 /],
    ['the proxy refused (a bad Host)', `GET /ws HTTP/1.1\r\nHost: a b\r\n${WS_HEAD}\r\n`, /^HTTP\/1\.1 400 [\s\S]*x-canary-proxy-error: CPX_ERR_BAD_HOST/],
  ] as const
  for (const [name, raw, expected] of cases) {
    const client = await halfOpenClient(proxyUrl)
    t.teardown(() => client.socket.destroy())
    client.socket.write(raw)
    await client.ended
    t.match(client.received(), expected, `${name}: the reply, then the proxy's FIN`)
    // The client never ends its side; it keeps writing now and then. Once the
    // proxy has reclaimed the socket, a write is answered with a reset.
    let done = false
    void client.closed.then(() => (done = true))
    await until(`${name}: the proxy to reclaim the socket`, () => {
      if (!done) client.socket.write('x')
      return done
    })
    t.ok(done, `${name}: reclaimed after listen.lingerTimeout, not held for as long as the client likes`)
  }
  const connections = await new Promise<number>((resolve, reject) => app.dataPlane?.server.getConnections((error, n) => (error ? reject(error) : resolve(n))))
  t.equal(connections, 0, 'no client connection left open on the proxy')
})

/** An upstream HTTP server that accepts h2c (answers 101 and then records what arrives in the tunnel) and serves ordinary requests. */
async function h2cUpstream(t: Test): Promise<{ url: string; requests: { url: string; upgrade: string | undefined }[]; tunnelled: string[] }> {
  const state = { url: '', requests: [] as { url: string; upgrade: string | undefined }[], tunnelled: [] as string[] }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests.push({ url: req.url ?? '', upgrade: req.headers.upgrade })
    req.resume()
    req.on('end', () => res.end('plain'))
  })
  const upgraded = new Set<Socket>()
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgraded.add(socket)
    socket.on('error', () => undefined)
    socket.on('end', () => socket.destroy())
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')
    socket.on('data', (chunk: Buffer) => state.tunnelled.push(chunk.toString('latin1')))
    state.tunnelled.push(`upgrade ${req.url ?? ''}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of upgraded) socket.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return state
}

t.test('an h2c token anywhere in Upgrade is never tunnelled: the request is proxied as an ordinary one', async (t) => {
  for (const upgrade of ['h2c, websocket', 'websocket, h2c', 'WebSocket,H2C']) {
    await t.test(`Upgrade: ${upgrade}`, async (t) => {
      const upstream = await h2cUpstream(t)
      const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url } })
      const conn = await RawConnection.open(proxyUrl)
      t.teardown(() => conn.destroy())
      conn.write(
        `GET /first HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: ${upgrade}\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n` +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      )
      const first = await conn.response()
      t.equal(first.status, 200, 'the ordinary response, not a 101')
      t.equal(first.body.toString(), 'plain')
      // What the client sends next is a new request through the proxy, never bytes in a tunnel to one side.
      conn.write(`GET /second HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n\r\n`)
      t.equal((await conn.response()).status, 200)
      t.same(upstream.tunnelled, [], 'the upstream never switched protocols')
      t.same(upstream.requests, [
        { url: '/first', upgrade: undefined },
        { url: '/second', upgrade: undefined },
      ], 'both requests reached the upstream as requests, without Upgrade')
      t.equal(sample(await scrape(adminUrl), 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 2, 'and both were counted')
    })
  }

  await t.test('an upstream that switches to h2c when offered only websocket gets a 502, charged to it', async (t) => {
    const upstream = await h2cUpstream(t)
    const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url } })
    const conn = await RawConnection.open(proxyUrl)
    t.teardown(() => conn.destroy())
    conn.write(`GET /ws HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n${WS_HEAD}\r\n`)
    const res = await conn.response()
    t.equal(res.status, 502)
    t.equal(res.headers['x-canary-proxy-error']?.[0], 'CPX_ERR_UPSTREAM_BAD_RESPONSE')
    t.equal(sample(await scrape(adminUrl), 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }), 1)
  })
})

t.test('bytes a client sends before the 101 are kept and reach the upstream through the tunnel, in order', async (t) => {
  const early = Buffer.alloc(100 * 1024)
  for (let i = 0; i < early.length; i++) early[i] = i % 251
  let release: (() => void) | null = null
  const upstream = await tcpUpstream(t, (socket) => {
    socket.once('data', () => {
      // The 101 waits until the client's early bytes have reached the proxy.
      release = () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
        socket.pipe(socket)
      }
    })
  })
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url } })
  const client = await halfOpenClient(proxyUrl)
  t.teardown(() => client.socket.destroy())
  client.socket.write(`GET /ws HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n${WS_HEAD}\r\n`)
  await until('the handshake to reach the upstream', () => release !== null)
  // More than the 64 KiB the proxy buffers: the rest waits in the socket until the tunnel opens.
  await new Promise<void>((resolve) => client.socket.write(early, () => resolve()))
  await sleep(100)
  release!()
  const head = 'HTTP/1.1 101 Switching Protocols\r\n'
  await until('the echo of every early byte', () => client.received().length >= early.length + head.length)
  const text = client.received()
  t.ok(text.startsWith(head), 'the 101')
  const echoed = Buffer.from(text.slice(text.indexOf('\r\n\r\n') + 4), 'latin1')
  t.ok(echoed.equals(early), 'every early byte, in order, through the tunnel')
  t.equal(sample(await scrape(adminUrl), 'canary_proxy_requests_total', { upstream: 'stable', status_class: '1xx' }), 1)
})

t.test('a client that gives up on a pending WebSocket handshake is a client abort, not the upstream error', async (t) => {
  const upstream = await tcpUpstream(t, (socket) => socket.resume()) // accepts the handshake, never answers
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url }, routing: { responseTimeout: '1s' } })
  const client = await halfOpenClient(proxyUrl)
  t.teardown(() => client.socket.destroy())
  client.socket.write(`GET /ws HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n${WS_HEAD}\r\n`)
  await until('the handshake to reach the upstream', () => upstream.connections === 1)
  client.socket.end() // a FIN, not a reset: the client gives up
  const outcome = async (): Promise<{ aborts: number; errors: number }> => {
    const text = await scrape(adminUrl)
    return {
      aborts: sample(text, 'canary_proxy_client_aborts_total', { upstream: 'stable' }) ?? 0,
      errors: sample(text, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }) ?? 0,
    }
  }
  await until('an outcome to be recorded', async () => {
    const o = await outcome()
    return o.aborts + o.errors > 0
  })
  t.same(await outcome(), { aborts: 1, errors: 0 }, 'counted as a client abort only')
  // Cancelled, so no 504 can come later: today's main recorded the error after responseTimeout instead.
  await until('the upstream connection to be closed', () => upstream.closed === 1)
  t.equal(upstream.closed, 1, 'the pending upstream request was cancelled')
  t.same(await outcome(), { aborts: 1, errors: 0 }, 'and nothing else is recorded')
  await client.closed
  t.equal(client.received(), '', 'nothing was written to the client')
})
