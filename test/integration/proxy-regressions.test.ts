/** Regressions found by review of the data plane: each of these failed before its fix. */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import type { StatusView } from '../../src/api/wire.js'
import { admin, startApp } from '../helpers/app.js'
import { rawRequest } from '../helpers/raw-http.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startRawServer, startUpstream } from '../helpers/upstreams.js'

const status = async (adminUrl: string): Promise<StatusView> => (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as StatusView

t.test('late results from an aborted canary never reach the next canary\'s figures', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const slowBad = await startUpstream(t, 'bad', { status: 500, delayMs: 700 })
  const next = await startUpstream(t, 'next')
  const { proxyUrl, adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: slowBad.url },
    // A sticky key, not the override header: override requests never reach the figures at all.
    routing: { stickyHeader: 'x-user-id' },
    rollout: { autoStart: false, steps: [50, 100], stepDuration: '1m' },
    analysis: { minRequests: 5, maxErrorRate: 0.01 },
  })
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  const inFlight = Array.from({ length: 8 }, () => request(`${proxyUrl}/x`, { headers: { 'x-user-id': stickyKey('canary', 50) } }).then((r) => r.body.dump().then(() => r.statusCode)))
  // All eight reach the old canary (it records a request before its delay) before the abort routes new ones elsewhere.
  while (slowBad.received.length < 8) await sleep(10)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort', {})).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', { canary: next.url })).status, 200)
  t.same(await Promise.all(inFlight), new Array(8).fill(500), 'the old canary still answered its requests')
  await sleep(50)
  const s = await status(adminUrl)
  t.same([s.phase, s.canary?.url, s.canary?.requests, s.canary?.errors], ['progressing', next.url, 0, 0], 'the new canary starts clean and is not rolled back')
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /^canary_proxy_requests_total\{upstream="canary",status_class="5xx"\} 8$/m, 'the cumulative counters still have them')
})

t.test('an upstream reason phrase Node refuses still gets the client an answer at once', async (t) => {
  const upstream = await startRawServer(t, (socket) => {
    socket.once('data', () => socket.end('HTTP/1.1 200 O\x7fK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'))
  })
  const { proxyUrl } = await startApp(t, { upstreams: { stable: upstream.url }, routing: { responseTimeout: '5s' } })
  const started = Date.now()
  const res = await request(`${proxyUrl}/`)
  const body = await res.body.text()
  t.ok(Date.now() - started < 2000, 'no wait for a timeout')
  t.ok(res.statusCode === 200 ? body === 'ok' : res.statusCode === 502, `an answer: ${res.statusCode} ${body.trim()}`)
})

t.test('requests fastify would have answered itself are proxied', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  for (const [what, raw] of [
    ['a bad percent-encoding', 'GET /%zz?q=%2 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n'],
    ['an empty Content-Type', 'POST /form HTTP/1.1\r\nHost: a.example\r\nContent-Type:\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi'],
    ['an unusual Content-Type', 'POST /form HTTP/1.1\r\nHost: a.example\r\nContent-Type: application/json, text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi'],
  ] as const) {
    const before = stable.received.length
    const res = await rawRequest(proxyUrl, raw)
    t.equal(res.status, 200, `${what}: the upstream's answer`)
    t.equal(stable.received.length, before + 1, `${what}: reached the upstream`)
  }
  t.equal(stable.received.at(-3)?.url, '/%zz?q=%2', 'the target is forwarded as it came')
})

t.test('while draining, responses carry Connection: close so clients move on', async (t) => {
  const stable = await startUpstream(t, 'stable', { delayMs: 300 })
  const { app, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const pending = request(`${proxyUrl}/slow`)
  await sleep(100)
  const closing = app.close()
  const res = await pending
  await res.body.dump()
  t.equal(res.statusCode, 200, 'the request in flight finishes')
  t.equal(res.headers.connection, 'close')
  await closing
})

t.test('latency is the upstream\'s time to headers, not how slowly the client reads', async (t) => {
  const big = 'x'.repeat(4 * 1024 * 1024)
  const stable = await startUpstream(t, 'stable', { body: big })
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const res = await request(`${proxyUrl}/big`, { highWaterMark: 1024 })
  await sleep(600) // the client does not read for a while
  let bytes = 0
  for await (const chunk of res.body) bytes += (chunk as Buffer).length
  t.equal(bytes, big.length)
  await sleep(50)
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  const sum = Number(/^canary_proxy_request_duration_seconds_sum\{upstream="stable"\} (\S+)$/m.exec(metrics)?.[1])
  t.ok(sum > 0 && sum < 0.3, `recorded ${sum}s, not the 0.6s the client took`)
})
