/** Upstream faults become 502/504 replies marked x-canary-proxy-error and counted as that side's errors; upstream 5xx pass through; client aborts are counted apart. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { RawConnection, sample, scrape } from '../helpers/raw-http.js'
import { closedPort, startRawServer, startUpstream } from '../helpers/upstreams.js'

type Side = 'stable' | 'canary'
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error'] as const

/** requests_total by status class for one side, and that side's client aborts. */
async function counts(adminUrl: string, side: Side): Promise<Record<string, number | undefined>> {
  const text = await scrape(adminUrl)
  const out: Record<string, number | undefined> = { aborts: sample(text, 'canary_proxy_client_aborts_total', { upstream: side }) }
  for (const cls of CLASSES) out[cls] = sample(text, 'canary_proxy_requests_total', { upstream: side, status_class: cls })
  return out
}

const only = (fields: Record<string, number>): Record<string, number> => ({ '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, error: 0, aborts: 0, ...fields })

/**
 * Starts the proxy with `faulty` as the given side (the other side is a
 * healthy upstream) at weight 0 or 100, so every request goes to that side,
 * and returns a GET. By weight, not the override header: requests routed by
 * the override header are counted apart from the side (issue 7, defect 2).
 */
async function proxyTo(t: Test, side: Side, faultyUrl: string, routing: Record<string, unknown> = {}) {
  const healthy = await startUpstream(t, 'healthy')
  const upstreams = side === 'stable' ? { stable: faultyUrl, canary: healthy.url } : { stable: healthy.url, canary: faultyUrl }
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams, routing, rollout: { autoStart: false } })
  if (side === 'canary') t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200, 'every request to canary')
  const get = async (path = '/fault') => {
    const res = await request(`${proxyUrl}${path}`)
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
  }
  return { proxyUrl, adminUrl, get, healthy }
}

for (const side of ['stable', 'canary'] as const) {
  t.test(`${side}: connection refused -> 502`, async (t) => {
    const port = await closedPort()
    const { adminUrl, get, healthy } = await proxyTo(t, side, `http://127.0.0.1:${port}`)
    const res = await get()
    t.equal(res.status, 502)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_CONNECT')
    t.match(res.headers['content-type'], /^text\/plain/)
    t.match(res.body, new RegExp(`${side} upstream`), `the body names the side: ${JSON.stringify(res.body)}`)
    t.ok(res.body.length < 300, 'a short body')
    t.equal(healthy.received.length, 0, 'no fallback to the other side')
    t.same(await counts(adminUrl, side), only({ error: 1 }))
  })

  t.test(`${side}: upstream resets the connection before responding -> 502`, async (t) => {
    const raw = await startRawServer(t, (socket: Socket) => socket.once('data', () => socket.resetAndDestroy()))
    const { adminUrl, get } = await proxyTo(t, side, raw.url)
    const res = await get()
    t.equal(res.status, 502)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_RESET')
    t.match(res.body, new RegExp(`${side} upstream`))
    t.same(await counts(adminUrl, side), only({ error: 1 }))
  })

  t.test(`${side}: upstream hangs (accepts, never answers) -> 504 after responseTimeout`, async (t) => {
    const raw = await startRawServer(t, (socket: Socket) => socket.resume())
    const { adminUrl, get } = await proxyTo(t, side, raw.url, { responseTimeout: '300ms' })
    const res = await get()
    t.equal(res.status, 504)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_TIMEOUT')
    t.match(res.body, new RegExp(`${side} upstream did not respond within 300ms`))
    t.same(await counts(adminUrl, side), only({ error: 1 }))
  })

  t.test(`${side}: an upstream 503 passes through as-is`, async (t) => {
    const down = await startUpstream(t, side, { status: 503, body: 'maintenance' })
    const { adminUrl, get } = await proxyTo(t, side, down.url)
    const res = await get()
    t.equal(res.status, 503)
    t.equal(res.body, 'maintenance')
    t.equal(res.headers['x-upstream'], side)
    t.equal(res.headers['x-canary-proxy-error'], undefined, 'not a proxy-generated reply')
    t.same(await counts(adminUrl, side), only({ '5xx': 1 }))
  })
}

t.test('closed before responding, garbage response, stall and reset mid-body', async (t) => {
  await t.test('FIN before any response -> 502', async (t) => {
    const raw = await startRawServer(t, (socket: Socket) => socket.once('data', () => socket.end()))
    const { adminUrl, get } = await proxyTo(t, 'stable', raw.url)
    const res = await get()
    t.equal(res.status, 502)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_RESET')
    t.same(await counts(adminUrl, 'stable'), only({ error: 1 }))
  })

  await t.test('not HTTP -> 502 bad response', async (t) => {
    const raw = await startRawServer(t, (socket: Socket) => socket.once('data', () => socket.end('SSH-2.0-OpenSSH_9.6\r\n')))
    const { adminUrl, get } = await proxyTo(t, 'stable', raw.url)
    const res = await get()
    t.equal(res.status, 502)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_BAD_RESPONSE')
    t.same(await counts(adminUrl, 'stable'), only({ error: 1 }))
  })

  for (const [name, after] of [
    ['stalls', (_s: Socket) => undefined],
    ['resets', (s: Socket) => setTimeout(() => s.resetAndDestroy(), 50)],
  ] as const) {
    await t.test(`headers sent, then the upstream ${name} mid-body -> the response is cut short and counted once, as an error`, async (t) => {
      const raw = await startRawServer(t, (socket: Socket) =>
        socket.once('data', () => {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n' + 'x'.repeat(100))
          after(socket)
        }),
      )
      const { proxyUrl, adminUrl } = await proxyTo(t, 'stable', raw.url, { responseTimeout: '300ms' })
      const res = await request(`${proxyUrl}/`)
      t.equal(res.statusCode, 200, 'the status was already on its way')
      await t.rejects(res.body.text(), 'the client sees the body end early, not a short "complete" body')
      t.same(await counts(adminUrl, 'stable'), only({ error: 1 }))
    })
  }
})

/** An upstream that answers after delayMs and records whether each request was cancelled from the proxy side before it answered. */
async function startSlowUpstream(t: Test, delayMs: number): Promise<{ url: string; requests: number; cancelled: number; bodyBytes: number[] }> {
  const state = { url: '', requests: 0, cancelled: 0, bodyBytes: [] as number[] }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.requests++
    let bytes = 0
    req.on('data', (c: Buffer) => (bytes += c.length))
    const timer = setTimeout(() => res.end('late'), delayMs)
    res.on('close', () => {
      state.bodyBytes.push(bytes)
      if (!res.writableFinished) {
        state.cancelled++
        clearTimeout(timer)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return state
}

for (const side of ['stable', 'canary'] as const) {
  t.test(`${side}: client abort while the upstream is thinking is a client abort, not an error`, async (t) => {
    const slow = await startSlowUpstream(t, 500)
    const { proxyUrl, adminUrl } = await proxyTo(t, side, slow.url)
    const conn = await RawConnection.open(proxyUrl)
    conn.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await sleep(50)
    conn.destroy()
    // Past the upstream's 500ms, so a late answer would have been recorded by now.
    await sleep(700)
    t.equal(slow.requests, 1)
    t.equal(slow.cancelled, 1, 'the upstream request was cancelled, not left running')
    t.same(await counts(adminUrl, side), only({ aborts: 1 }), 'counted only in client_aborts_total')
  })
}

t.test('client aborts mid-upload and mid-download are client aborts too', async (t) => {
  await t.test('upload', async (t) => {
    const slow = await startSlowUpstream(t, 500)
    const { proxyUrl, adminUrl } = await proxyTo(t, 'stable', slow.url)
    const conn = await RawConnection.open(proxyUrl)
    conn.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'u'.repeat(1000))
    await sleep(50)
    conn.destroy()
    await sleep(700)
    t.same(await counts(adminUrl, 'stable'), only({ aborts: 1 }))
    t.ok(slow.bodyBytes.every((n) => n < 100_000), `the upstream never saw a complete body (${slow.bodyBytes.join()})`)
  })

  await t.test('download', async (t) => {
    const raw = await startRawServer(t, (socket: Socket) =>
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n' + 'd'.repeat(65536))),
    )
    const { proxyUrl, adminUrl } = await proxyTo(t, 'stable', raw.url)
    const conn = await RawConnection.open(proxyUrl)
    conn.write('GET /download HTTP/1.1\r\nHost: x\r\n\r\n')
    await sleep(100)
    conn.destroy()
    await sleep(200)
    t.same(await counts(adminUrl, 'stable'), only({ aborts: 1 }))
  })
})
