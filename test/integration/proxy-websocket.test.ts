/** WebSocket pass-through: the handshake goes to the side chosen like any request, then frames flow both ways untouched. */
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { admin, startApp } from '../helpers/app.js'
import { RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { closedPort } from '../helpers/upstreams.js'

interface WsUpstream {
  readonly url: string
  /** Paths and selected headers of the handshakes this upstream accepted. */
  readonly handshakes: { url: string; forwardedFor: string | undefined }[]
}

/**
 * A WebSocket upstream: greets with "hello from <name>", echoes every message
 * as "<name>:<text>" (binary back as binary), closes with 4001 on "bye", and
 * refuses handshakes to /private with a 401.
 */
async function startWsUpstream(t: Test, name: string): Promise<WsUpstream> {
  const handshakes: WsUpstream['handshakes'] = []
  const server = createServer((_req, res) => res.writeHead(426).end())
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    if (req.url === '/private') {
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\nX-Upstream: ' + name + '\r\nConnection: close\r\n\r\nno way')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      handshakes.push({ url: req.url ?? '', forwardedFor: req.headers['x-forwarded-for'] as string | undefined })
      ws.send(`hello from ${name}`)
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (isBinary) ws.send(data, { binary: true })
        else if (data.toString() === 'bye') ws.close(4001, `${name} says bye`)
        else ws.send(`${name}:${data.toString()}`)
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, handshakes }
}

/** Opens a WebSocket through the proxy and collects its messages. */
async function open(t: Test, url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; next: () => Promise<string | Buffer> }> {
  const ws = new WebSocket(url, { headers })
  t.teardown(() => ws.terminate())
  const queue: (string | Buffer)[] = []
  let waiting: ((m: string | Buffer) => void) | null = null
  ws.on('message', (data: RawData, isBinary: boolean) => {
    const m = isBinary ? Buffer.from(data as Buffer) : data.toString()
    if (waiting !== null) {
      const w = waiting
      waiting = null
      w(m)
    } else queue.push(m)
  })
  await once(ws, 'open')
  return {
    ws,
    next: () => {
      const m = queue.shift()
      if (m !== undefined) return Promise.resolve(m)
      return new Promise((resolve) => (waiting = resolve))
    },
  }
}

const wsUrl = (proxyUrl: string, path = '/ws'): string => `${proxyUrl.replace(/^http/, 'ws')}${path}`

t.test('WebSocket echo through the proxy lands on the side chosen', async (t) => {
  const stable = await startWsUpstream(t, 'stable')
  const canary = await startWsUpstream(t, 'canary')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })

  await t.test('weight 0: stable', async (t) => {
    const { ws, next } = await open(t, wsUrl(proxyUrl, '/ws?room=1'))
    t.equal(await next(), 'hello from stable', 'server to client')
    ws.send('ping')
    t.equal(await next(), 'stable:ping', 'client to server and back')
    ws.close()
    await once(ws, 'close')
  })

  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200)

  await t.test('weight 100: canary; binary frames and close codes pass untouched', async (t) => {
    const { ws, next } = await open(t, wsUrl(proxyUrl))
    t.equal(await next(), 'hello from canary')
    ws.send('ping')
    t.equal(await next(), 'canary:ping')
    const blob = Buffer.alloc(256 * 1024)
    for (let i = 0; i < blob.length; i++) blob[i] = i % 251
    ws.send(blob)
    const back = await next()
    t.ok(Buffer.isBuffer(back) && back.equals(blob), '256 KiB binary frame echoed byte for byte')
    ws.send('bye')
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer]
    t.equal(code, 4001, "the upstream's close code")
    t.equal(reason.toString(), 'canary says bye')
  })

  await t.test('weight 100 + x-canary: never: stable', async (t) => {
    const { ws, next } = await open(t, wsUrl(proxyUrl), { 'x-canary': 'never' })
    t.equal(await next(), 'hello from stable')
    ws.send('ping')
    t.equal(await next(), 'stable:ping')
    ws.close()
    await once(ws, 'close')
  })

  t.same(
    stable.handshakes.map((h) => h.url),
    ['/ws?room=1', '/ws'],
    'stable saw its two handshakes, path and query intact',
  )
  t.same(
    canary.handshakes.map((h) => h.url),
    ['/ws'],
  )
  t.equal(stable.handshakes[0]?.forwardedFor, '127.0.0.1', 'X-Forwarded-For is set on the handshake')
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '1xx' }), 1, 'each handshake counted once as 1xx')
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '1xx' }), 1)
  t.equal(sample(metrics, 'canary_proxy_override_requests_total', { upstream: 'stable' }), 1, 'the x-canary: never handshake, counted apart')
  t.equal(sample(metrics, 'canary_proxy_internal_errors_total'), 0)
})

t.test('a refused handshake passes the upstream answer through', async (t) => {
  const stable = await startWsUpstream(t, 'stable')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const ws = new WebSocket(wsUrl(proxyUrl, '/private'))
  ws.on('error', () => undefined)
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage]
  t.equal(res.statusCode, 401)
  t.equal(res.headers['x-upstream'], 'stable')
  t.equal(res.headers['x-canary-proxy-error'], undefined, 'not a proxy error')
  res.resume()
  ws.terminate()
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '4xx' }), 1)
})

t.test('a handshake to an upstream that is down gets a 502 from the proxy', async (t) => {
  const port = await closedPort()
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: `http://127.0.0.1:${port}` } })
  const ws = new WebSocket(wsUrl(proxyUrl))
  ws.on('error', () => undefined)
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage]
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_CONNECT')
  res.resume()
  ws.terminate()
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }), 1)
})

t.test('an upgrade request with a garbage target is refused, not sent to /', async (t) => {
  const stable = await startWsUpstream(t, 'stable')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const conn = await RawConnection.open(proxyUrl)
  conn.write('GET * HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  const res = await conn.response()
  conn.destroy()
  t.equal(res.status, 400)
  t.equal(res.headers['x-canary-proxy-error']?.[0], 'CPX_ERR_BAD_REQUEST_TARGET')
  t.same(stable.handshakes, [], 'no upstream handshake')
})
