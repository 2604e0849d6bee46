/**
 * Replicas sharing one rollout through Redis (issue 11): each replica is a
 * separate OS process of the built CLI (`serve`) over one real redis-server
 * on loopback; they share the state (compare-and-set), the leader lease, the
 * window deltas and the audit stream. Durations come from the config (100 ms
 * analysis intervals); waits poll the admin API up to a generous deadline,
 * never a fixed sleep. Failures (leader killed, Redis down): replicas-failures.test.ts.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { admin } from '../helpers/app.js'
import { killChild, until, type Served } from '../helpers/cli.js'
import { parseExposition, select } from '../helpers/prom-text.js'
import { testRedis } from '../helpers/redis.js'
import { fleet, leaderOf, sides, status } from '../helpers/replicas.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

// Several CLI processes per test on a shared 2-core machine.
t.setTimeout(240_000)

t.test('two replicas share one rollout: a start on one is seen on the other at the same weight, and either acts on it', async (t) => {
  const redis = await testRedis(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { replicas, add } = await fleet(
    t,
    redis.url,
    redis.nextPrefix(),
    { stable: stable.url, canary: canary.url },
    `rollout: { steps: [20, 50, 100], stepDuration: 10m, bake: 10m, autoStart: false }
analysis: { interval: 100ms, window: 3s, minRequests: 1000, maxErrorRate: 0.5 }
`,
    2,
  )
  const [a, b] = replicas as [Served, Served]
  const leader = await until('a leader', () => leaderOf(replicas), 20_000)
  t.ok(leader, 'one replica leads')
  const started = await admin(a.adminUrl, 'POST', '/api/v1/rollout/start')
  t.equal(started.status, 200, 'start on replica A')
  t.same([started.json.phase, started.json.weight], ['progressing', 20], 'A answers with the shared status')
  const seen = await until('B at 20%', async () => {
    const s = await status(b)
    return s.phase === 'progressing' && s.weight === 20 ? s : undefined
  })
  t.equal(seen.generation, (started.json as { generation: number }).generation, 'the same rollout (generation) on B')
  t.equal(seen.stateBackend?.kind, 'redis', 'the status says where the state lives')
  const agent = new Agent({ connections: 2 })
  t.teardown(() => agent.close())
  // B routes by the shared weight: canary answers part of its traffic.
  const split = await until('B sends some traffic to the canary', async () => {
    const s = await sides(agent, b.proxyUrl, 60)
    return (s.canary ?? 0) > 0 ? s : undefined
  })
  t.ok((split.stable ?? 0) > (split.canary ?? 0), `B splits about 80/20 (${JSON.stringify(split)})`)

  // An operator action on B acts on the shared rollout; A takes it up.
  const weighted = await admin(b.adminUrl, 'PUT', '/api/v1/weight', { weight: 35 })
  t.equal(weighted.status, 200, 'set-weight on B')
  t.same([weighted.json.phase, weighted.json.weight], ['paused', 35])
  await until('A at 35% paused', async () => {
    const s = await status(a)
    return s.phase === 'paused' && s.weight === 35 ? true : undefined
  })
  // A replica started during the rollout joins at the current weight.
  const c = await add()
  t.same((({ phase, weight }) => [phase, weight])(await status(c)), ['paused', 35], 'a replica started mid-rollout routes at the shared weight from its start')
  // The shared audit trail: both actions, whichever replica took them.
  const events = (await admin(a.adminUrl, 'GET', '/api/v1/events')).json as { events: { action: string }[] }
  t.same(
    events.events.map((e) => e.action).filter((x) => x === 'start' || x === 'set-weight'),
    ['start', 'set-weight'],
    'A lists the action taken on B',
  )
  for (const r of replicas) killChild(r.child, 'SIGTERM')
})

t.test('a breach only the merged window shows (the canary traffic all on a follower) rolls back both replicas', async (t) => {
  const redis = await testRedis(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', { status: 500 })
  const { replicas } = await fleet(
    t,
    redis.url,
    redis.nextPrefix(),
    { stable: stable.url, canary: canary.url },
    `rollout: { steps: [50, 100], stepDuration: 10m, bake: 10m, autoStart: false }
analysis: { interval: 100ms, window: 5s, minRequests: 30, maxErrorRate: 0.1 }
routing: { stickyHeader: x-user }
`,
    2,
  )
  const leader = await until('a leader', () => leaderOf(replicas), 20_000)
  const follower = replicas.find((r) => r !== leader) as Served
  t.equal((await admin(leader.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200, 'rollout started at 50%')
  await until('the follower at 50%', async () => ((await status(follower)).weight === 50 ? true : undefined))
  const agent = new Agent({ connections: 2 })
  t.teardown(() => agent.close())
  // Every canary request goes through the follower: the leader's own window has none, so only the follower's published deltas can prove the breach.
  const toCanary = stickyKey('canary', 50)
  const toStable = stickyKey('stable', 50)
  await Promise.all([
    (async () => {
      for (let i = 0; i < 20; i++) await request(`${leader.proxyUrl}/l`, { dispatcher: agent, headers: { 'x-user': toStable } }).then((r) => r.body.dump())
    })(),
    (async () => {
      for (let i = 0; i < 20; i++) await request(`${follower.proxyUrl}/f`, { dispatcher: agent, headers: { 'x-user': toCanary } }).then((r) => r.body.dump())
    })(),
  ])
  const ended = await until('both rolled back', async () => {
    const all = await Promise.all(replicas.map(status))
    return all.every((s) => s.phase === 'rolled_back' && s.weight === 0) ? all : undefined
  })
  t.match(ended[0]?.reason, /maxErrorRate|error rate/, `the reason names the breach: ${ended[0]?.reason ?? ''}`)
  const leaderMetrics = parseExposition(await (await request(`${leader.adminUrl}/metrics`)).body.text())
  const canaryThroughLeader = select(leaderMetrics, 'canary_proxy_requests_total', { upstream: 'canary' }).reduce((sum, s) => sum + s.value, 0)
  t.equal(canaryThroughLeader, 0, "no canary request went through the leader's own proxy")
  const after = await request(`${follower.proxyUrl}/after`, { dispatcher: agent, headers: { 'x-user': toCanary } })
  t.equal(after.headers['x-upstream'], 'stable', "the follower routes the canary's users to stable again")
  await after.body.dump()
  for (const r of replicas) killChild(r.child, 'SIGTERM')
})
