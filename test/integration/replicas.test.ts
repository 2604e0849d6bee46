/**
 * Replicas sharing one rollout through Redis (issue 11): each replica is a
 * separate OS process of the built CLI (`serve`) over one real redis-server
 * on loopback; they share the state (compare-and-set), the leader lease, the
 * window deltas and the audit stream. Durations come from the config (100 ms
 * analysis intervals, a 600 ms lease); waits poll the admin API up to a
 * generous deadline, never a fixed sleep.
 */
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { admin } from '../helpers/app.js'
import { killChild, serve, tempDir, until, writeConfig, type Served } from '../helpers/cli.js'
import { parseExposition, select, value } from '../helpers/prom-text.js'
import { startRedisServer, testRedis } from '../helpers/redis.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

interface Status {
  phase: string
  weight: number
  generation: number
  reason: string | null
  stateBackend?: { kind: string; up: boolean; role: string; leader: string | null; replica: string | null; replicas?: number }
}

const status = async (r: Served): Promise<Status> => (await admin(r.adminUrl, 'GET', '/api/v1/status')).json as unknown as Status

interface Fleet {
  readonly replicas: Served[]
  /** Starts one more replica on the same config. */
  add(): Promise<Served>
}

/** `count` replicas of one config: its own key prefix, state only in Redis (each replica's state file is never written). */
async function fleet(t: Test, redisUrl: string, prefix: string, upstreams: { stable: string; canary: string }, extra: string, count: number): Promise<Fleet> {
  const dir = await tempDir()
  let n = 0
  const config = async (): Promise<string> => {
    const i = n++
    return writeConfig(
      dir,
      `replica-${i}.yaml`,
      `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${upstreams.stable}, canary: ${upstreams.canary} }
state: { file: ${join(dir, `state-${i}.json`)}, redis: ${redisUrl}, redisKeyPrefix: ${prefix} }
audit: { file: ${join(dir, `audit-${i}.jsonl`)} }
log: { level: info }
${extra}`,
    )
  }
  const replicas: Served[] = []
  const add = async (): Promise<Served> => {
    const served = await serve(t, await config(), { timeoutMs: 60_000 })
    replicas.push(served)
    return served
  }
  for (let i = 0; i < count; i++) await add()
  return { replicas, add }
}

/** Who answers the proxy's requests (the test upstreams name themselves in x-upstream). */
async function sides(agent: Agent, proxyUrl: string, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {}
  for (let i = 0; i < count; i++) {
    const res = await request(`${proxyUrl}/s`, { dispatcher: agent })
    await res.body.dump()
    const name = String(res.headers['x-upstream'] ?? res.statusCode)
    seen[name] = (seen[name] ?? 0) + 1
  }
  return seen
}

const leaderOf = async (replicas: readonly Served[]): Promise<Served | undefined> => {
  for (const r of replicas) if ((await status(r).catch(() => null))?.stateBackend?.role === 'leader') return r
  return undefined
}

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

/** Traffic to every live replica until stopped, a few requests at a time (loopback, bounded by the test). */
function steadyTraffic(t: Test, targets: () => readonly Served[]): { stop(): Promise<void> } {
  const agent = new Agent({ connections: 4 })
  let running = true
  const loop = (async () => {
    while (running) {
      await Promise.all(targets().map((r) => request(`${r.proxyUrl}/t`, { dispatcher: agent }).then((res) => res.body.dump(), () => undefined)))
    }
  })()
  let stopped: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      running = false
      await loop
      await agent.close()
    })())
  t.teardown(stop)
  return { stop }
}

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
