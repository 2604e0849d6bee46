/**
 * listen.bodyTimeout (NGINX's client_body_timeout): a request body that goes
 * quiet is answered 408 CPX_ERR_CLIENT_BODY_TIMEOUT, its upstream request is
 * cancelled (the connection freed), and no side is charged: a slow client must
 * not hold an upstream connection for the 300 s of the whole-request timeout,
 * nor make a canary look bad. Time the body is not read because the upstream
 * holds it back is never counted against the client.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { authority, RawConnection, sample, scrape } from '../helpers/raw-http.js'

interface Upstream {
  readonly url: string
  /** Requests whose connection closed before their body ended (cancelled by the proxy). */
  cancelled: number
  /** Body bytes of each request that ended. */
  readonly completed: number[]
}

/** Reads each body (after `holdMs`, when set) and answers 200 with its length. */
async function upstream(t: Test, holdMs = 0): Promise<Upstream> {
  const state: Upstream = { url: '', cancelled: 0, completed: [] }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let bytes = 0
    let ended = false
    if (holdMs > 0) {
      req.pause()
      setTimeout(() => req.resume(), holdMs)
    }
    req.on('data', (chunk: Buffer) => (bytes += chunk.length))
    req.on('end', () => {
      ended = true
      state.completed.push(bytes)
      res.end(String(bytes))
    })
    req.socket.on('close', () => {
      if (!ended) state.cancelled++
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  ;(state as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return state
}

async function figures(adminUrl: string): Promise<Record<string, number>> {
  const text = await scrape(adminUrl)
  const out: Record<string, number> = { bodyTimeouts: sample(text, 'canary_proxy_client_body_timeouts_total') ?? -1 }
  for (const cls of ['2xx', '4xx', '5xx', 'error']) out[cls] = sample(text, 'canary_proxy_requests_total', { upstream: 'stable', status_class: cls }) ?? 0
  out.aborts = sample(text, 'canary_proxy_client_aborts_total', { upstream: 'stable' }) ?? 0
  out.internal = sample(text, 'canary_proxy_internal_errors_total') ?? 0
  return out
}

for (const framing of ['content-length', 'chunked'] as const) {
  t.test(`a ${framing} body that stalls gets a 408, the upstream request is cancelled, no side is charged`, async (t) => {
    const up = await upstream(t)
    const { proxyUrl, adminUrl } = await startApp(t, { listen: { bodyTimeout: '300ms' }, upstreams: { stable: up.url }, rollout: { autoStart: false } })
    const conn = await RawConnection.open(proxyUrl)
    t.teardown(() => conn.destroy())
    const head = `POST /upload HTTP/1.1\r\nHost: ${authority(proxyUrl)}\r\n`
    conn.write(framing === 'content-length' ? `${head}Content-Length: 1000\r\n\r\n${'a'.repeat(100)}` : `${head}Transfer-Encoding: chunked\r\n\r\n64\r\n${'a'.repeat(100)}\r\n`)
    const res = await conn.response(5_000)
    t.equal(res.status, 408)
    t.same(res.headers['x-canary-proxy-error'], ['CPX_ERR_CLIENT_BODY_TIMEOUT'])
    t.match(res.body.toString(), /the request body stalled: no data from the client for 300ms/)
    t.same(res.headers.connection, ['close'], 'the rest of the body will not be read: the connection closes')
    t.ok(await conn.closed(), 'closed by the proxy')
    // The upstream sees its request end unfinished: the proxy let go of the connection.
    for (let i = 0; i < 100 && up.cancelled === 0; i++) await sleep(20)
    t.equal(up.cancelled, 1, 'the upstream request was cancelled')
    t.same(up.completed, [], 'and never completed')
    t.same(await figures(adminUrl), { bodyTimeouts: 1, '2xx': 0, '4xx': 0, '5xx': 0, error: 0, aborts: 0, internal: 0 }, 'counted apart; nothing on the side')
    const next = await request(`${proxyUrl}/after`, { method: 'POST', body: 'fine' })
    t.equal(next.statusCode, 200, 'the next request works')
    t.equal(await next.body.text(), '4')
  })
}

t.test('a slow body that keeps coming is not cut, however long it takes in all', async (t) => {
  const up = await upstream(t)
  const { proxyUrl, adminUrl } = await startApp(t, { listen: { bodyTimeout: '600ms' }, upstreams: { stable: up.url }, rollout: { autoStart: false } })
  // 16 chunks 60 ms apart: about 1 s in all, well over the timeout, never quiet for long.
  const body = Readable.from(
    (async function* () {
      for (let i = 0; i < 16; i++) {
        yield Buffer.from('0123456789')
        await sleep(60)
      }
    })(),
  )
  const res = await request(`${proxyUrl}/slow`, { method: 'POST', body })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), '160')
  t.same(await figures(adminUrl), { bodyTimeouts: 0, '2xx': 1, '4xx': 0, '5xx': 0, error: 0, aborts: 0, internal: 0 })
})

t.test('a body the upstream holds back longer than the timeout is not the client stalling', async (t) => {
  // 16 MiB sent at once, more than the loopback buffers hold, while the upstream reads nothing for 1 s.
  const up = await upstream(t, 1_000)
  const { proxyUrl, adminUrl } = await startApp(t, { listen: { bodyTimeout: '300ms' }, upstreams: { stable: up.url }, rollout: { autoStart: false } })
  const size = 16 * 1024 * 1024
  const res = await request(`${proxyUrl}/big`, { method: 'POST', body: Buffer.alloc(size, 0x62) })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), String(size))
  t.same(await figures(adminUrl), { bodyTimeouts: 0, '2xx': 1, '4xx': 0, '5xx': 0, error: 0, aborts: 0, internal: 0 })
})
