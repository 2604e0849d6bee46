import t from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

t.test('method, path, query, headers and body pass through to stable', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { proxyUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const res = await request(`${proxyUrl}/a/b?x=1&y=%20z`, { method: 'POST', headers: { 'x-custom': 'hello', 'content-type': 'text/plain' }, body: 'twelve bytes' })
  t.equal(res.statusCode, 200)
  const body = (await res.body.json()) as { upstream: string; method: string; url: string; headers: Record<string, string>; bodyBytes: number }
  t.equal(body.upstream, 'stable')
  t.equal(body.method, 'POST')
  t.equal(body.url, '/a/b?x=1&y=%20z')
  t.equal(body.headers['x-custom'], 'hello')
  t.equal(body.bodyBytes, 12)
  t.equal(body.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(body.headers['x-forwarded-proto'], 'http')
  t.match(body.headers['x-forwarded-host'], /^127\.0\.0\.1:\d+$/)
})

t.test('status reports both sides after traffic', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const set = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })
  t.equal(set.status, 200)
  t.equal(set.json.phase, 'paused')
  for (let i = 0; i < 40; i++) await (await request(`${proxyUrl}/`)).body.dump()
  const status = await admin(adminUrl, 'GET', '/api/v1/status')
  const s = status.json as { stable: { requests: number }; canary: { requests: number } }
  t.equal(s.stable.requests + s.canary.requests, 40)
  t.ok(s.canary.requests > 5 && s.stable.requests > 5, `both sides served (${s.stable.requests}/${s.canary.requests})`)
  t.equal(stable.received.length, s.stable.requests)
  t.equal(canary.received.length, s.canary.requests)
})
