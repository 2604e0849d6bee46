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
import { startRedisServer, testRedis } from '../helpers/redis.js'
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

/** Sends `count` requests to a replica's proxy port, a few at a time. */
async function traffic(agent: Agent, proxyUrl: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 5) {
    await Promise.all(Array.from({ length: Math.min(5, count - i) }, () => request(`${proxyUrl}/x`, { dispatcher: agent }).then((r) => r.body.dump())))
  }
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
  const { replicas } = await fleet(
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
  // The shared audit trail: both actions, whichever replica took them.
  const events = (await admin(a.adminUrl, 'GET', '/api/v1/events')).json as { events: { action: string }[] }
  t.same(
    events.events.map((e) => e.action).filter((x) => x === 'start' || x === 'set-weight'),
    ['start', 'set-weight'],
    'A lists the action taken on B',
  )
  for (const r of replicas) killChild(r.child, 'SIGTERM')
})
