/**
 * Failure modes of replicas sharing one rollout through Redis (issue 11),
 * each replica a separate OS process of the built CLI over a real
 * redis-server on loopback: the leader killed with kill -9 mid-rollout, and
 * Redis stopped and started again (fail static, then resume). Durations come
 * from the config (100 ms intervals, the default 1 s lease); waits poll the
 * admin API up to a generous deadline.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { admin } from '../helpers/app.js'
import { killChild, until, type Served } from '../helpers/cli.js'
import { parseExposition, value } from '../helpers/prom-text.js'
import { startRedisServer, testRedis } from '../helpers/redis.js'
import { fleet, leaderOf, status, steadyTraffic } from '../helpers/replicas.js'
import { startUpstream } from '../helpers/upstreams.js'

// Several CLI processes per test on a shared 2-core machine.
t.setTimeout(240_000)

t.test('the leader killed (kill -9) mid-rollout: the other replica takes over and the rollout goes on from the stored step', async (t) => {
  const redis = await testRedis(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { replicas } = await fleet(
    t,
    redis.url,
    redis.nextPrefix(),
    { stable: stable.url, canary: canary.url },
    `rollout: { steps: [10, 30, 60, 100], stepDuration: 800ms, bake: 800ms, autoStart: false }
analysis: { interval: 100ms, window: 3s, minRequests: 5, maxErrorRate: 0.5 }
`,
    2,
  )
  const leader = await until('a leader', () => leaderOf(replicas), 20_000)
  const survivor = replicas.find((r) => r !== leader) as Served
  const live = [leader, survivor]
  const load = steadyTraffic(t, () => live)
  t.equal((await admin(survivor.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200, 'started (on the follower)')
  // Kill the leader once the rollout has advanced at least once under it.
  const before = await until('the leader advanced to 30%', async () => {
    const s = await status(leader)
    return s.weight >= 30 ? s : undefined
  })
  killChild(leader.child, 'SIGKILL')
  await leader.child.exited
  live.splice(live.indexOf(leader), 1)
  const killedAt = Date.now()
  const weights: number[] = []
  const taken = await until('the survivor leads', async () => {
    const s = await status(survivor)
    weights.push(s.weight)
    return s.stateBackend?.role === 'leader' ? s : undefined
  })
  t.comment(`takeover ${Date.now() - killedAt} ms after the kill (lease TTL 1 s)`)
  t.ok(taken.weight >= before.weight, `the survivor goes on from the stored weight (${before.weight}% at the kill, ${taken.weight}% at the takeover)`)
  t.ok(
    weights.every((w) => w === before.weight || [30, 60, 100].includes(w)),
    `no weight outside the steps while it took over (${[...new Set(weights)].join(', ')})`,
  )
  const done = await until('the rollout succeeds under the new leader', async () => {
    const s = await status(survivor)
    return s.phase === 'succeeded' ? s : s.phase === 'rolled_back' || s.phase === 'aborted' ? s : undefined
  }, 30_000)
  t.equal(done.phase, 'succeeded', `succeeded: ${done.reason ?? ''}`)
  await load.stop()
  // The shared audit trail: each step entered once, in order, across both leaders (no transition lost or applied twice).
  const events = ((await admin(survivor.adminUrl, 'GET', '/api/v1/events')).json as { events: { action: string; from: { weight: number }; to: { weight: number; phase: string } }[] }).events
  const advances = events.filter((e) => e.action === 'advance').map((e) => `${e.from.weight}->${e.to.weight}`)
  t.same(advances, ['10->30', '30->60', '60->100'], `each step advanced once: ${advances.join(', ')}`)
  t.equal(events.filter((e) => e.action === 'succeed').length, 1, 'one succeed')
  killChild(survivor.child, 'SIGTERM')
})

t.test('Redis stopped: both replicas keep routing on the last weight, say so, and nothing progresses; Redis back: the rollout resumes', async (t) => {
  const server = await startRedisServer(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { replicas } = await fleet(
    t,
    server.url,
    'cpx-fail-static',
    { stable: stable.url, canary: canary.url },
    `rollout: { steps: [30, 60, 100], stepDuration: 1s, bake: 1s, autoStart: false }
analysis: { interval: 100ms, window: 3s, minRequests: 5, maxErrorRate: 0.5 }
`,
    2,
  )
  const [a, b] = replicas as [Served, Served]
  await until('a leader', () => leaderOf(replicas), 20_000)
  t.equal((await admin(a.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200, 'started at 30%')
  await until('B at 30%', async () => ((await status(b)).weight === 30 ? true : undefined))
  await server.stop()
  const metricsOf = async (r: Served) => parseExposition(await (await request(`${r.adminUrl}/metrics`)).body.text())
  await until('both say Redis is down', async () => {
    const all = await Promise.all(replicas.map(async (r) => value(await metricsOf(r), 'canary_proxy_state_backend_up')))
    return all.every((v) => v === 0) ? true : undefined
  })
  const down = await Promise.all(replicas.map(status))
  t.same(
    down.map((s) => [s.phase, s.weight, s.stateBackend?.up]),
    [
      ['progressing', 30, false],
      ['progressing', 30, false],
    ],
    'both still at 30%, and the status says the state backend is down',
  )
  for (const r of replicas) t.equal((await request(`${r.adminUrl}/readyz`)).statusCode, 200, '/readyz stays 200: routing works')
  const refused = await admin(b.adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })
  t.equal(refused.status, 503, 'an operator action is refused while the shared state cannot be reached')
  t.match(refused.json, { code: 'CPX_ERR_ADMIN_UNAVAILABLE', error: /cannot be reached.*nothing was changed/ })
  // Traffic passes the gate for more than two step durations: with Redis down nothing may move.
  const agent = new Agent({ connections: 2 })
  t.teardown(() => agent.close())
  const heldUntil = Date.now() + 2_500
  const seen: Record<string, number> = {}
  while (Date.now() < heldUntil) {
    for (const r of replicas) {
      const res = await request(`${r.proxyUrl}/d`, { dispatcher: agent })
      await res.body.dump()
      const name = String(res.headers['x-upstream'] ?? res.statusCode)
      seen[name] = (seen[name] ?? 0) + 1
    }
  }
  t.ok((seen.canary ?? 0) > 0 && (seen.stable ?? 0) > 0, `both replicas kept splitting the traffic (${JSON.stringify(seen)})`)
  t.same(
    (await Promise.all(replicas.map(status))).map((s) => [s.phase, s.weight]),
    [
      ['progressing', 30],
      ['progressing', 30],
    ],
    'nothing progressed on stale data',
  )
  // Back (empty: no persistence): the leader puts back the state every replica still routes by, and the rollout goes on from it.
  await server.start()
  const load = steadyTraffic(t, () => replicas)
  const resumed = await until('the rollout moves on after Redis is back', async () => {
    const all = await Promise.all(replicas.map(status))
    return all.every((s) => s.weight > 30 && s.stateBackend?.up === true) ? all : undefined
  }, 30_000)
  t.ok(resumed.every((s) => s.generation === down[0]?.generation), 'the same rollout, not a new one')
  await load.stop()
  for (const r of replicas) t.equal(value(await metricsOf(r), 'canary_proxy_state_backend_up'), 1, 'backend up again')
  for (const r of replicas) killChild(r.child, 'SIGTERM')
})
