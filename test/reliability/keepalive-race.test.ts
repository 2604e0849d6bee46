/**
 * The keep-alive race (issue 7, defect 8): an upstream closes a kept-alive
 * connection just as the proxy sends the next request on it. An idempotent
 * request without a body is sent once more on a new connection and the client
 * never sees the race; one outcome is recorded either way. A POST, or a
 * request with a body, is not retried: that failure is the upstream's 502.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { startApp } from '../helpers/app.js'
import { sample, scrape } from '../helpers/raw-http.js'

async function listen(t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function stableCounts(adminUrl: string): Promise<{ '2xx': number; error: number; retries: number }> {
  const text = await scrape(adminUrl)
  return {
    '2xx': sample(text, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }) ?? 0,
    error: sample(text, 'canary_proxy_requests_total', { upstream: 'stable', status_class: 'error' }) ?? 0,
    retries: sample(text, 'canary_proxy_upstream_retries_total', { upstream: 'stable' }) ?? 0,
  }
}

/**
 * The race lost every time: each connection answers its first request and
 * closes (FIN or RST) when the second one arrives, as if its idle timer had
 * fired just before.
 */
async function closesOnSecondRequest(t: Test, how: 'fin' | 'rst'): Promise<{ url: string; received: () => number }> {
  const perSocket = new WeakMap<Socket, number>()
  let received = 0
  const url = await listen(t, (req, res) => {
    received++
    const n = perSocket.get(req.socket) ?? 0
    perSocket.set(req.socket, n + 1)
    req.resume()
    req.on('end', () => {
      if (n === 0) res.end(`answered ${req.method ?? ''}`)
      else if (how === 'fin') req.socket.end()
      else req.socket.resetAndDestroy()
    })
  })
  return { url, received: () => received }
}

for (const how of ['fin', 'rst'] as const) {
  t.test(`a kept-alive connection closed (${how}) as the request arrives: idempotent requests without a body are retried once`, async (t) => {
    const upstream = await closesOnSecondRequest(t, how)
    const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url }, rollout: { autoStart: false } })
    const agent = new Agent()
    t.teardown(() => agent.close())
    const methods = ['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PUT'] as const
    const rounds = 4
    for (let i = 0; i < rounds; i++) {
      for (const method of methods) {
        const res = await request(`${proxyUrl}/r${i}`, { method, dispatcher: agent })
        t.equal(res.statusCode, 200, `${method} #${i}: answered`)
        t.equal(res.headers['x-canary-proxy-error'], undefined)
        const text = await res.body.text()
        if (method !== 'HEAD') t.equal(text, `answered ${method}`)
      }
    }
    const counts = await stableCounts(adminUrl)
    const total = rounds * methods.length
    t.equal(counts['2xx'], total, 'one outcome per request')
    t.equal(counts.error, 0, 'nothing charged to the side')
    t.ok(counts.retries > 0 && counts.retries < total, `some requests lost the race and were retried (${counts.retries})`)
    t.equal(upstream.received(), total + counts.retries, 'each retry is one more request upstream, no more')
  })
}

t.test('not retried: a POST, and any request with a body (its bytes are gone)', async (t) => {
  const upstream = await closesOnSecondRequest(t, 'fin')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: upstream.url }, rollout: { autoStart: false } })
  const agent = new Agent()
  t.teardown(() => agent.close())
  for (const [method, body] of [
    ['POST', null],
    ['PUT', 'a body'],
    ['DELETE', 'a body'],
  ] as const) {
    // The first request opens a connection that the second finds closing.
    const first = await request(`${proxyUrl}/warm`, { dispatcher: agent })
    t.equal(first.statusCode, 200)
    await first.body.text()
    const before = await stableCounts(adminUrl)
    const res = await request(`${proxyUrl}/once`, { method, body, dispatcher: agent })
    t.equal(res.statusCode, 502, `${method}${body === null ? '' : ' with a body'}: the upstream's failure`)
    t.equal(res.headers['x-canary-proxy-error'], 'CPX_ERR_UPSTREAM_RESET')
    await res.body.text()
    const after = await stableCounts(adminUrl)
    t.same({ error: after.error - before.error, retries: after.retries - before.retries }, { error: 1, retries: 0 }, 'charged once, not retried')
  }
})

t.test('an upstream that closes each connection 0-3 ms after its response: no client-visible error in 400 requests', async (t) => {
  let n = 0
  const url = await listen(t, (req, res) => {
    req.resume()
    req.on('end', () => {
      const socket = req.socket
      res.end('ok', () => setTimeout(() => socket.destroy(), n++ % 4))
    })
  })
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: url }, rollout: { autoStart: false } })
  const agent = new Agent()
  t.teardown(() => agent.close())
  const statuses = new Map<number, number>()
  const requests = 400
  for (let i = 0; i < requests; i++) {
    const res = await request(`${proxyUrl}/${i}`, { dispatcher: agent })
    await res.body.text()
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
  }
  t.same(Object.fromEntries(statuses), { 200: requests }, 'every request answered 200')
  const counts = await stableCounts(adminUrl)
  t.same([counts['2xx'], counts.error], [requests, 0], 'one 2xx outcome per request, no error charged')
})
