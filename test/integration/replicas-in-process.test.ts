/**
 * Replicas sharing one rollout through a real redis-server, as two apps in
 * this process (buildApp, distinct replica ids, the real clock): the same
 * paths as the CLI replicas of replicas.test.ts, where coverage can see them
 * (the shared authority, the replica link, the app's Redis wiring), plus a
 * graceful handover (close releases the lease) and Redis stopped and back.
 * Waits poll up to a generous deadline; durations come from the config.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { buildApp, type App } from '../../src/app.js'
import { createLogger } from '../../src/log.js'
import { admin, testConfig } from '../helpers/app.js'
import { until } from '../helpers/cli.js'
import { parseExposition, value } from '../helpers/prom-text.js'
import { openStream } from '../helpers/sse.js'
import { startRedisServer } from '../helpers/redis.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

t.setTimeout(240_000)

interface Replica {
  readonly app: App
  readonly proxyUrl: string
  readonly adminUrl: string
  readonly id: string
}

async function replica(t: Test, id: string, overrides: Record<string, unknown>): Promise<Replica> {
  const { config } = await testConfig(t, overrides)
  const app = await buildApp({ config, log: createLogger('silent'), replica: id })
  const { proxyUrl, adminUrl } = await app.listen()
  // close() is idempotent: a test that closed the app itself is not closed twice.
  t.teardown(() => app.close())
  return { app, proxyUrl, adminUrl, id }
}

t.test('two in-process replicas: shared start and actions, an aggregate-only breach, a graceful handover, Redis down and back', async (t) => {
  const server = await startRedisServer(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const overrides = {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [50, 100], stepDuration: '1s', bake: '1s', autoStart: false },
    analysis: { interval: '100ms', window: '3s', minRequests: 5, maxErrorRate: 0.2 },
    routing: { stickyHeader: 'x-user' },
    state: { redis: server.url, redisKeyPrefix: 'cpx-in-process' },
  }
  const a = await replica(t, 'replica-a', overrides)
  const b = await replica(t, 'replica-b', overrides)
  const both = [a, b]
  const leader = await until('a leader', () => both.find((r) => r.app.status().stateBackend?.role === 'leader'), 20_000)
  const follower = both.find((r) => r !== leader) as Replica
  const named = await until('the follower names the leader', () => (follower.app.status().stateBackend?.leader === leader.id ? follower.app.status().stateBackend : undefined))
  t.match(named, { kind: 'redis', up: true, role: 'follower', leader: leader.id, replica: follower.id }, 'the follower names the leader')

  // A start on the follower is the shared rollout's.
  const started = await admin(follower.adminUrl, 'POST', '/api/v1/rollout/start')
  t.equal(started.status, 200)
  await until('the leader at 50%', () => (leader.app.status().weight === 50 ? true : undefined))
  // The follower's event stream shows the leader's action as it happens (the shared trail, relayed).
  const followerStream = await openStream(t, `${follower.adminUrl}/api/v1/stream`)
  await followerStream.nextMessage('status')
  const paused = await admin(leader.adminUrl, 'POST', '/api/v1/rollout/pause')
  t.same([paused.status, paused.json.phase], [200, 'paused'])
  const relayed = (await followerStream.next((i) => i.kind === 'message' && i.type === 'event', 'the pause event')) as { json: { action: string } }
  t.equal(relayed.json.action, 'pause', "the leader's pause on the follower's stream")
  followerStream.close()
  await until('the follower paused', () => (follower.app.status().phase === 'paused' ? true : undefined))
  t.equal((await admin(follower.adminUrl, 'POST', '/api/v1/rollout/resume')).status, 200, 'resumed on the follower')
  const replay = await openStream(t, `${follower.adminUrl}/api/v1/stream?events=10`)
  await replay.nextMessage('status')
  const replayed = replay.items.flatMap((i) => (i.kind === 'message' && i.type === 'event' ? [(i.json as { action: string }).action] : []))
  t.same(replayed.filter((x) => ['start', 'pause', 'resume'].includes(x)), ['start', 'pause', 'resume'], "the follower's replay holds every replica's events")
  replay.close()
  const events = (await admin(leader.adminUrl, 'GET', '/api/v1/events?limit=10')).json as { events: { action: string }[] }
  t.same(
    events.events.map((e) => e.action).filter((x) => ['start', 'pause', 'resume'].includes(x)),
    ['start', 'pause', 'resume'],
    'the shared audit trail has every action, whichever replica took it',
  )

  // The canary fails, and all its traffic goes through the follower: only the merged window shows it.
  canary.behave({ status: 500 })
  const agent = new Agent({ connections: 2 })
  t.teardown(() => agent.close())
  const toCanary = stickyKey('canary', 50)
  for (let i = 0; i < 10; i++) await request(`${follower.proxyUrl}/f`, { dispatcher: agent, headers: { 'x-user': toCanary } }).then((r) => r.body.dump())
  await until('both rolled back', () => (both.every((r) => r.app.status().phase === 'rolled_back') ? true : undefined))
  t.equal(leader.app.backends.sides.canary.outcomes, 0, "no canary request went through the leader's own proxy")
  canary.behave({ status: 200 })

  // A new rollout, then the leader shuts down: it hands the lease back, the other leads at once and goes on.
  t.equal((await admin(leader.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200, 'a second rollout')
  await until('the follower at 50% again', () => (follower.app.status().phase === 'progressing' ? true : undefined))
  await leader.app.close()
  const next = await until('the other leads', () => (follower.app.status().stateBackend?.role === 'leader' ? follower.app.status() : undefined))
  t.same([next.phase, next.weight], ['progressing', 50], 'it goes on from the stored step')

  // Redis stopped: routing goes on at 50%, nothing moves, the status and the gauge say so, actions are refused.
  await server.stop()
  await until('backend down', () => (follower.app.status().stateBackend?.up === false ? true : undefined))
  const metrics = parseExposition(await (await request(`${follower.adminUrl}/metrics`)).body.text())
  t.equal(value(metrics, 'canary_proxy_state_backend_up'), 0, 'canary_proxy_state_backend_up 0')
  t.equal((await request(`${follower.adminUrl}/readyz`)).statusCode, 200, '/readyz 200')
  const refused = await admin(follower.adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 'test' })
  t.match([refused.status, refused.json.code], [503, 'CPX_ERR_ADMIN_UNAVAILABLE'], 'an action is refused, nothing changed')
  t.equal((await admin(follower.adminUrl, 'GET', '/api/v1/events')).status, 503, 'the shared audit trail cannot be read')
  const held = Date.now() + 2_500
  while (Date.now() < held) await request(`${follower.proxyUrl}/d`, { dispatcher: agent }).then((r) => r.body.dump())
  t.same([follower.app.status().phase, follower.app.status().weight], ['progressing', 50], 'nothing progressed on stale data')

  // Back, empty: the leader puts back the state it routes by, and the rollout moves on.
  await server.start()
  let running = true
  const load = (async () => {
    while (running) await request(`${follower.proxyUrl}/u`, { dispatcher: agent }).then((r) => r.body.dump(), () => undefined)
  })()
  t.teardown(async () => {
    running = false
    await load
  })
  // Both connections come back on their own backoff: the client may lead (and write) before the subscriber is ready.
  const up = await until('backend up again', () => (follower.app.status().stateBackend?.up === true ? true : undefined), 30_000)
  t.ok(up, 'backend up again')
  const resumed = await until('the rollout moves on', () => (follower.app.status().weight === 100 || follower.app.status().phase === 'succeeded' ? follower.app.status() : undefined), 30_000)
  running = false
  await load
  t.equal(resumed.generation, next.generation, 'the same rollout')
})

t.test('a replica started while Redis was down does not wipe the rollout when Redis comes back empty', async (t) => {
  const server = await startRedisServer(t)
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const overrides = {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [35, 100], stepDuration: '60s', autoStart: false },
    analysis: { interval: '100ms', window: '3s', minRequests: 5, maxErrorRate: 0.2 },
    state: { redis: server.url, redisKeyPrefix: 'cpx-blind' },
  }
  const a = await replica(t, 'blind-a', overrides)
  const b = await replica(t, 'blind-b', overrides)
  t.equal((await admin(a.adminUrl, 'POST', '/api/v1/rollout/start')).status, 200)
  t.equal((await admin(a.adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  await until('both paused at 35%', () => ([a, b].every((r) => r.app.status().phase === 'paused' && r.app.status().weight === 35) ? true : undefined))
  const generation = a.app.status().generation

  await server.stop()
  await until('backend down', () => ([a, b].every((r) => r.app.status().stateBackend?.up === false) ? true : undefined))
  // Started now, it cannot read the rollout: it routes everything to stable.
  const c = await replica(t, 'blind-c', overrides)
  t.same([c.app.status().phase, c.app.status().weight], ['idle', 0], 'the blind replica starts safe')
  t.match((await admin(c.adminUrl, 'POST', '/api/v1/rollout/start')).status, 503, 'and takes no action while it knows nothing')

  await server.start()
  const all = [a, b, c]
  const joined = await until(
    'every replica on the paused rollout',
    () => (all.every((r) => r.app.status().phase === 'paused' && r.app.status().weight === 35 && r.app.status().stateBackend?.up === true) ? c.app.status() : undefined),
    30_000,
  )
  t.equal(joined.generation, generation, 'the same rollout, put back by a replica that knew it')
  t.not(joined.stateBackend?.leader, 'blind-c', 'the blind replica did not lead')
})
