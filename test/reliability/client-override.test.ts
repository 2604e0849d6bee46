/**
 * Issue 7, defect 2: requests routed by the override header never steer the
 * gate. They are counted apart (canary_proxy_override_requests_total), and the
 * header is obeyed only from routing.overrideFrom (loopback by default).
 */
import t from 'tap'
import { Agent, request } from 'undici'
import type { StatusView } from '../../src/api/wire.js'
import { admin, startApp, type ConfigInput } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { sample, scrape } from '../helpers/raw-http.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream, type TestUpstream } from '../helpers/upstreams.js'

const agent = new Agent({ connections: 16 })
t.teardown(() => agent.close())

/** n GETs of `path`, 25 at a time; the statuses in order. */
async function send(proxyUrl: string, n: number, path: string, headers: Record<string, string> = {}): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i += 25) {
    const batch = Array.from({ length: Math.min(25, n - i) }, async () => {
      const res = await request(`${proxyUrl}${path}`, { dispatcher: agent, headers })
      await res.body.dump()
      return res.statusCode
    })
    statuses.push(...(await Promise.all(batch)))
  }
  return statuses
}

const statusOf = async (adminUrl: string): Promise<StatusView> => (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as StatusView

const rollout = (stable: TestUpstream, canary: TestUpstream): ConfigInput => ({
  upstreams: { stable: stable.url, canary: canary.url },
  routing: { stickyHeader: 'x-user-id' },
  rollout: { steps: [20, 100], stepDuration: '10s', bake: '10s', autoStart: true },
  analysis: { interval: '1s', window: '60s', minRequests: 20, maxErrorRate: 0.05, maxErrorRateIncrease: 0.05 },
})

t.test('500 x-canary: always GETs to a healthy path do not push a canary that fails every real request forward', async (t) => {
  const clock = new FakeClock()
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  canary.behave((req) => ({ status: req.url === '/health' ? 200 : 500 }))
  const { proxyUrl, adminUrl } = await startApp(t, rollout(stable, canary), { clock })
  t.same((await statusOf(adminUrl)).weight, 20, 'the rollout began at 20%')

  t.same(await send(proxyUrl, 500, '/health', { 'x-canary': 'always' }), Array(500).fill(200), 'all 500 reached the canary')
  t.equal(canary.received.length, 500)
  // Past the step and the bake: on today's main the 500 passes took the canary to 100% and then to succeeded.
  clock.advance(10_000)
  clock.advance(10_000)
  clock.advance(1_000)
  let s = await statusOf(adminUrl)
  t.same([s.phase, s.weight, s.step], ['progressing', 20, 0], 'the step holds')
  t.same([s.canary?.requests, s.stable.requests], [0, 0], 'no override request is in either window')
  t.match(s.lastDecision?.reason, /0 of 20 canary requests/, 'too little traffic, and it says so')

  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_override_requests_total', { upstream: 'canary' }), 500, 'counted apart')
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '2xx' }), 0, 'not in requests_total')
  t.equal(sample(metrics, 'canary_proxy_request_duration_seconds_count', { upstream: 'canary' }), 0, 'nor in the duration histogram')

  // Real traffic still reaches the gate: 20 canary requests, all failing, roll it back.
  t.same(await send(proxyUrl, 20, '/api', { 'x-user-id': stickyKey('canary', 20) }), Array(20).fill(500))
  clock.advance(1_000)
  s = await statusOf(adminUrl)
  t.equal(s.phase, 'rolled_back', 'the failing canary is rolled back on its real requests')
})

t.test('60 override requests to a path failing on both sides do not roll back a healthy canary', async (t) => {
  const clock = new FakeClock()
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const script = (req: { url?: string | undefined }) => ({ status: req.url === '/broken' ? 500 : 200 })
  stable.behave(script)
  canary.behave(script)
  const { proxyUrl, adminUrl } = await startApp(t, rollout(stable, canary), { clock })

  t.same(await send(proxyUrl, 60, '/broken', { 'x-canary': 'always' }), Array(60).fill(500))
  t.same(await send(proxyUrl, 10, '/broken', { 'x-canary': 'never' }), Array(10).fill(500), 'never: the same, on stable')
  // The early evaluation a canary error schedules, and a tick.
  clock.advance(1_000)
  let s = await statusOf(adminUrl)
  t.same([s.phase, s.weight], ['progressing', 20], 'not rolled back')
  t.same([s.canary?.errors, s.canary?.requests, s.stable.requests], [0, 0, 0], 'no override error in either window')
  const metrics = await scrape(adminUrl)
  t.equal(sample(metrics, 'canary_proxy_override_requests_total', { upstream: 'canary' }), 60)
  t.equal(sample(metrics, 'canary_proxy_override_requests_total', { upstream: 'stable' }), 10)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '5xx' }), 0)
  t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '5xx' }), 0)
  t.equal(sample(metrics, 'canary_proxy_window_error_ratio', { upstream: 'canary' }), 0)

  // Healthy real traffic on both sides: the canary goes on to the next step.
  await send(proxyUrl, 25, '/api', { 'x-user-id': stickyKey('canary', 20) })
  await send(proxyUrl, 25, '/api', { 'x-user-id': stickyKey('stable', 20) })
  clock.advance(10_000)
  s = await statusOf(adminUrl)
  t.same([s.phase, s.weight], ['baking', 100], 'the healthy canary advanced')
})

t.test('the override header is obeyed only from routing.overrideFrom', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  /** Which upstream answered a GET with these headers; the canary weight is 0, so only an obeyed override reaches canary. */
  const answeredBy = async (proxyUrl: string, headers: Record<string, string>): Promise<string> => {
    const res = await request(`${proxyUrl}/who`, { headers })
    await res.body.dump()
    return String(res.headers['x-upstream'])
  }
  const at0 = (routing: Record<string, unknown>): ConfigInput => ({ upstreams: { stable: stable.url, canary: canary.url }, routing, rollout: { autoStart: false } })

  await t.test('default: this host only (the tests connect from 127.0.0.1)', async (t) => {
    const { proxyUrl, adminUrl } = await startApp(t, at0({}))
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always' }), 'canary')
    t.equal(sample(await scrape(adminUrl), 'canary_proxy_override_requests_total', { upstream: 'canary' }), 1)
  })

  await t.test('from outside the list: routed as if the header were absent, and counted as a normal request', async (t) => {
    const { proxyUrl, adminUrl } = await startApp(t, at0({ overrideFrom: ['192.0.2.0/24'] }))
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always' }), 'stable')
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always', 'x-forwarded-for': '192.0.2.10' }), 'stable', 'X-Forwarded-For is not believed without trustForwarded')
    const metrics = await scrape(adminUrl)
    t.equal(sample(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 2)
    t.equal(sample(metrics, 'canary_proxy_override_requests_total', { upstream: 'canary' }), 0)
  })

  await t.test('an empty list: nobody', async (t) => {
    const { proxyUrl } = await startApp(t, at0({ overrideFrom: [] }))
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always' }), 'stable')
  })

  await t.test('trustForwarded: the address the load balancer appended, last in X-Forwarded-For', async (t) => {
    const { proxyUrl } = await startApp(t, at0({ overrideFrom: ['192.0.2.0/24'], trustForwarded: true }))
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always', 'x-forwarded-for': '198.51.100.7, 192.0.2.10' }), 'canary', 'the appended address is in the list')
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always', 'x-forwarded-for': '192.0.2.10, 198.51.100.7' }), 'stable', 'a client-written first entry does not count')
    t.equal(await answeredBy(proxyUrl, { 'x-canary': 'always' }), 'stable', 'no X-Forwarded-For: the peer, 127.0.0.1, is not in the list')
  })
})
