import t from 'tap'
import { Redis } from 'ioredis'
import { createRedisBackend, type RedisBackend } from '../../src/state/redis-backend.js'
import type { StoredChange } from '../../src/state/store.js'
import { everyPhase } from '../conformance/state-store.js'
import { startRedisServer } from '../helpers/redis.js'

// A private redis-server: these tests stop, stall and restart it.
const server = await startRedisServer(t)
const backends: RedisBackend[] = []
t.teardown(async () => {
  for (const b of backends) await b.close()
})

let n = 0
function backend(replica: string, options: { commandTimeoutMs?: number; onUpChange?: (up: boolean) => void } = {}): RedisBackend {
  const b = createRedisBackend(
    { state: { redis: `${server.url}/3`, redisKeyPrefix: `failure-${n++}` }, analysis: { intervalMs: 100, windowMs: 1000 } },
    { replica, maxReconnectDelayMs: 200, ...options },
  )
  backends.push(b)
  return b
}

async function waitFor(what: string, done: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await done())) {
    if (Date.now() > until) throw new Error(`not within ${ms}ms: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const states = everyPhase()
const record = { at: Date.UTC(2026, 0, 1), actor: 'auto', action: 'advance', from: { phase: 'progressing' as const, weight: 5 }, to: { phase: 'progressing' as const, weight: 25 }, reason: null }

t.test('Redis down: every operation rejects at once (nothing queued), the backend reads down, and it comes back by itself', async (t) => {
  const changes: boolean[] = []
  const a = backend('replica-a', { onUpChange: (up) => changes.push(up) })
  await a.ready()
  t.equal(a.backendUp(), 1)
  t.same(await a.store.save(states[1]!, 0), { ok: true, version: 1 })
  const grant = await a.lease.acquire('replica-a')
  t.ok(grant !== null)

  await server.stop()
  await waitFor('backend down', () => a.backendUp() === 0)
  const notQueued = /Stream isn't writeable and enableOfflineQueue options is false|Connection is closed/
  const started = Date.now()
  await t.rejects(a.store.save(states[2]!, 1), notQueued, 'save')
  await t.rejects(a.store.load(), notQueued, 'load')
  await t.rejects(a.lease.renew(grant!), notQueued, 'lease renew')
  await t.rejects(a.lease.acquire('replica-a'), notQueued, 'lease acquire')
  await t.rejects(a.audit.append(record), notQueued, 'audit append')
  await t.rejects(a.audit.recent(), notQueued, 'audit recent')
  await t.rejects(a.windows.publish(1, { n: 1 }), notQueued, 'window publish')
  await t.rejects(a.windows.read(1, 2), notQueued, 'window read')
  t.comment(`8 operations rejected in ${Date.now() - started} ms with Redis down`)
  t.equal(a.audit.writeFailures, 1, 'the failed audit append is counted')

  await server.start()
  await waitFor('backend up again', () => a.backendUp() === 1)
  // Redis came back empty (no persistence): the scripts are loaded again on first use.
  t.same(await a.store.load(), { kind: 'empty', version: 0 })
  t.same(await a.store.save(states[2]!, 0), { ok: true, version: 1 }, 'the save script runs on the restarted server')
  t.ok((await a.lease.acquire('replica-a')) !== null, 'the lease script too')
  t.same(changes, [true, false, true], 'onUpChange: up, down, up')
})

t.test('a command in flight when the connection drops is rejected, not resent later', async (t) => {
  const a = backend('replica-a', { commandTimeoutMs: 10_000 })
  await a.ready()
  const pid = server.pid!
  process.kill(pid, 'SIGSTOP')
  const pending = a.store.save(states[1]!, 0)
  // Killing a stopped process needs no SIGCONT; the connection is reset.
  process.kill(pid, 'SIGKILL')
  await t.rejects(pending, /Connection is closed|MaxRetriesPerRequest|Reached the max retries/)
  await server.stop()
  await server.start()
  await waitFor('backend up again', () => a.backendUp() === 1)
  t.same(await a.store.load(), { kind: 'empty', version: 0 }, 'nothing was written behind the caller’s back')
})

t.test('a Redis that accepts connections but does not answer: commands time out and the backend reads down until one succeeds', async (t) => {
  const a = backend('replica-a', { commandTimeoutMs: 300 })
  await a.ready()
  const pid = server.pid!
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => {
    // A stopped server would never exit on the teardown's SIGTERM.
    if (server.pid === pid) process.kill(pid, 'SIGCONT')
  })
  await t.rejects(a.store.save(states[1]!, 0), /Command timed out/)
  t.equal(a.connection.client.status, 'ready', 'the socket is still open')
  t.equal(a.backendUp(), 0, 'but the backend reads down')
  process.kill(pid, 'SIGCONT')
  await waitFor('a command succeeds again', async () => (await a.store.load().then(() => true, () => false)) && a.backendUp() === 1)
  t.equal(a.backendUp(), 1)
})

t.test('a change saved while a replica’s subscriber was cut off is delivered once it is back', async (t) => {
  const a = backend('replica-a')
  const b = backend('replica-b')
  // Same prefix for both: b's config copies a's.
  const shared = createRedisBackend({ state: { redis: `${server.url}/3`, redisKeyPrefix: a.prefix }, analysis: { intervalMs: 100, windowMs: 1000 } }, { replica: 'replica-b2', maxReconnectDelayMs: 200 })
  backends.push(shared)
  await Promise.all([a.ready(), b.ready(), shared.ready()])
  const seen: StoredChange[] = []
  shared.store.watch((change) => seen.push(change))
  t.same(await a.store.save(states[1]!, 0), { ok: true, version: 1 })
  await waitFor('first change seen', () => seen.length === 1)
  const admin = new Redis(`${server.url}/3`)
  t.teardown(() => admin.disconnect())
  // Cut only the subscriber connection of replica-b2, then save at once: the
  // message is published while (or before) it reconnects.
  const clients = (await admin.client('LIST')) as string
  const id = /id=(\d+) [^\n]*name=canary-proxy:replica-b2:sub/.exec(clients)?.[1]
  t.ok(id !== undefined, 'found the subscriber connection')
  await admin.client('KILL', 'ID', id!)
  t.same(await a.store.save(states[2]!, 1), { ok: true, version: 2 })
  await waitFor('second change seen', () => seen.length >= 2)
  await new Promise((r) => setTimeout(r, 200))
  t.same(
    seen.map((c) => [c.version, c.state.phase]),
    [
      [1, 'progressing'],
      [2, 'paused'],
    ],
    'each change once, newest last',
  )
  t.equal(b.replica, 'replica-b')
})

t.test('after Redis lost its data, a replica takes the restarted revisions as new', async (t) => {
  const a = backend('replica-a')
  const shared = createRedisBackend({ state: { redis: `${server.url}/3`, redisKeyPrefix: a.prefix }, analysis: { intervalMs: 100, windowMs: 1000 } }, { replica: 'replica-b', maxReconnectDelayMs: 200 })
  backends.push(shared)
  await Promise.all([a.ready(), shared.ready()])
  const seen: StoredChange[] = []
  shared.store.watch((change) => seen.push(change))
  // A few rounds: which of b's two connections comes back first varies, and
  // the catch-up must not depend on it.
  for (let round = 0; round < 3; round++) {
    const before = seen.length
    for (let v = 0; v < 3; v++) t.same(await a.store.save(states[v + 1]!, v), { ok: true, version: v + 1 })
    await waitFor('three changes seen', () => seen.length === before + 3)
    await server.stop()
    await server.start()
    await waitFor('both up again', () => a.backendUp() === 1 && shared.backendUp() === 1)
    t.same(await a.store.save(states[5]!, 0), { ok: true, version: 1 }, 'the emptied store starts at version 1 again')
    await waitFor('the new version 1 seen', () => seen.length === before + 4)
    t.same(seen[before + 3], { state: states[5], version: 1 }, 'delivered, although 1 is below the 3 seen before')
    await server.stop()
    await server.start()
    await waitFor('both up again', () => a.backendUp() === 1 && shared.backendUp() === 1)
  }
})
