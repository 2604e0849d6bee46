/**
 * Issue 9 through the real app on a fake clock: a dead canary is rolled back
 * at low traffic (a fail needs no minRequests), a failing stable holds the
 * rollout and says so, a pause step waits for resume, and a step that cannot
 * finish meets the progress deadline.
 */
import t from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

interface Status {
  phase: string
  weight: number
  step: number | null
  lastDecision: { verdict: string; reason: string; findings: { check: string; verdict: string }[] } | null
}

const status = async (adminUrl: string): Promise<Status> => (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as Status

async function send(proxyUrl: string, key: string, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${proxyUrl}/`, { headers: { 'x-user-id': key } })
    await res.body.dump()
  }
}

t.test('a canary that fails every request is rolled back at 1 req/s, with minRequests 50 (SPEC defaults)', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', { status: 503 })
  const clock = new FakeClock()
  const { proxyUrl, adminUrl } = await startApp(
    t,
    { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'x-user-id' }, rollout: { steps: [5, 100], stepDuration: '1m' }, analysis: { interval: '1s', minRequests: 50, maxErrorRate: 0.01 } },
    { clock },
  )
  const key = stickyKey('canary', 5)
  let sent = 0
  while (sent < 30 && (await status(adminUrl)).phase === 'progressing') {
    await send(proxyUrl, key)
    sent++
    clock.advance(1000)
  }
  const s = await status(adminUrl)
  t.equal(s.phase, 'rolled_back', `rolled back after ${sent} failed requests, far below minRequests`)
  t.ok(sent <= 10, `within 10 requests (took ${sent})`)
  t.match(s.lastDecision?.reason ?? '', /maxErrorRate|error rate/)
})

t.test('a failing stable holds the rollout: "stable is unhealthy", no promotion against it', async (t) => {
  const stable = await startUpstream(t, 'stable')
  stable.behave((_req, n) => ({ status: n % 5 === 0 ? 500 : 200 }))
  const canary = await startUpstream(t, 'canary')
  const clock = new FakeClock()
  const { proxyUrl, adminUrl } = await startApp(
    t,
    { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'x-user-id' }, rollout: { steps: [50, 100], stepDuration: '2s', bake: '2s' }, analysis: { interval: '1s', minRequests: 20, maxErrorRate: 0.05 } },
    { clock },
  )
  const toStable = stickyKey('stable', 50)
  const toCanary = stickyKey('canary', 50)
  for (let second = 0; second < 8; second++) {
    await send(proxyUrl, toStable, 25)
    await send(proxyUrl, toCanary, 25)
    clock.advance(1000)
  }
  const s = await status(adminUrl)
  t.equal(s.phase, 'progressing', 'held at its step')
  t.equal(s.weight, 50)
  t.match(s.lastDecision?.reason ?? '', /stable is unhealthy/)
  t.ok(s.lastDecision?.findings.some((f) => f.check === 'stable.health' && f.verdict === 'insufficient'), 'the stable.health finding holds')
  const metrics = await (await request(`${adminUrl}/metrics`)).body.text()
  t.match(metrics, /canary_proxy_check_verdict\{check="stable.health",verdict="insufficient"\} 1/, 'and its metric says so')
})

t.test('a pause step waits for resume; a step that cannot finish meets progressDeadline', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const clock = new FakeClock()
  const { adminUrl } = await startApp(
    t,
    {
      upstreams: { stable: stable.url, canary: canary.url },
      rollout: { steps: [{ weight: 10, pause: true }, { weight: 50, duration: '5s' }, 100], stepDuration: '1s', progressDeadline: '4s', onDeadline: 'pause' },
      analysis: { interval: '1s', minRequests: 5, maxErrorRate: 0.05 },
    },
    { clock },
  )
  let s = await status(adminUrl)
  t.match(s, { phase: 'paused', weight: 10, step: 0 }, 'the first step is a pause step: paused at 10%')
  clock.advance(10_000)
  t.match(await status(adminUrl), { phase: 'paused', weight: 10 }, 'it waits, with no deadline while paused')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 200)
  t.match(await status(adminUrl), { phase: 'progressing', weight: 10 })
  // No traffic: no pass is possible, so the step cannot finish.
  for (let i = 0; i < 5; i++) clock.advance(1000)
  s = await status(adminUrl)
  t.match(s, { phase: 'paused', weight: 10 }, 'the progress deadline paused it where it was')
  const events = (await admin(adminUrl, 'GET', '/api/v1/events')).json as unknown as { reason: string }[] | { events: { reason: string }[] }
  const list = Array.isArray(events) ? events : events.events
  t.ok(list.some((e) => /progress deadline: step 1 \(10%\) did not finish within 4s/.test(e.reason)), 'the event says why')
})

t.test('rollout.bakeStableShare keeps that share on stable during the bake, and the canary takes all of it after', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const clock = new FakeClock()
  const { proxyUrl, adminUrl } = await startApp(
    t,
    { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'x-user-id' }, rollout: { steps: [100], bake: '3s', bakeStableShare: 10 }, analysis: { interval: '1s', minRequests: 5, maxErrorRate: 0.05 } },
    { clock },
  )
  const upstreamOf = async (key: string): Promise<string> => {
    const res = await request(`${proxyUrl}/`, { headers: { 'x-user-id': key } })
    await res.body.dump()
    return String(res.headers['x-upstream'])
  }
  t.match(await status(adminUrl), { phase: 'baking', weight: 100 })
  const kept = stickyKey('stable', 90)
  t.equal(await upstreamOf(kept), 'stable', 'a user in the top 10% of buckets stays on stable in the bake')
  t.equal(await upstreamOf(stickyKey('canary', 90)), 'canary')
  for (let i = 0; i < 4; i++) {
    await send(proxyUrl, stickyKey('canary', 90, `c${i}`), 5)
    await send(proxyUrl, kept, 2)
    clock.advance(1000)
  }
  t.equal((await status(adminUrl)).phase, 'succeeded')
  t.equal(await upstreamOf(kept), 'canary', 'the promoted canary is the stable now: everyone reaches it')
})
