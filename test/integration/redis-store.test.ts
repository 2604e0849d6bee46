import t from 'tap'
import { Redis } from 'ioredis'
import { RedisConnection } from '../../src/state/redis-connection.js'
import { RedisLease } from '../../src/state/redis-lease.js'
import { encodeState } from '../../src/state/codec.js'
import { RedisStateStore } from '../../src/state/redis-store.js'
import { everyPhase, leaseConformance, stateStoreConformance } from '../conformance/state-store.js'
import type { StoredChange } from '../../src/state/store.js'
import { testRedis } from '../helpers/redis.js'

const redis = await testRedis(t)
const open: { close(): Promise<void> }[] = []
t.teardown(async () => {
  for (const c of open.reverse()) await c.close()
})

async function connection(): Promise<RedisConnection> {
  const c = new RedisConnection({ url: redis.url })
  open.push(c)
  await c.ready()
  return c
}

/** Two replicas' stores over one prefix, each on its own connections, with the change feed subscribed. */
async function replicas(prefix = redis.nextPrefix()): Promise<{ a: RedisStateStore; b: RedisStateStore; raw: Redis; prefix: string }> {
  const [ca, cb] = [await connection(), await connection()]
  const a = new RedisStateStore(ca, { prefix, origin: 'replica-a' })
  const b = new RedisStateStore(cb, { prefix, origin: 'replica-b' })
  open.push(a, b)
  await Promise.all([a.subscribed(), b.subscribed()])
  return { a, b, raw: ca.client, prefix }
}

stateStoreConformance(t, 'redis store', async () => {
  const { a, b, raw, prefix } = await replicas()
  return { a, b, watches: true, corrupt: async () => void (await raw.hset(`${prefix}:state`, 'doc', '{"version": 1, "state": ')) }
})

leaseConformance(t, 'redis lease', async () => {
  const prefix = redis.nextPrefix()
  const a = new RedisLease(await connection(), { prefix, ttlMs: 300 })
  const b = new RedisLease(await connection(), { prefix, ttlMs: 300 })
  // The key expires by Redis's own clock: wait it out.
  return { a, b, advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) }
})

t.test('a corrupt document is kept under another key, and every replica reads the store as corrupt until a save', async (t) => {
  const { a, b, raw, prefix } = await replicas()
  const [first, second] = everyPhase()
  t.same(await a.save(first!, 0), { ok: true, version: 1 })
  t.same(await a.save(second!, 1), { ok: true, version: 2 })
  await raw.hset(`${prefix}:state`, 'doc', 'not json')
  const loaded = await a.load()
  t.equal(loaded.kind, 'corrupt')
  if (loaded.kind !== 'corrupt') return
  t.equal(loaded.version, 2, 'the revision survives the document: the next save expects 2')
  t.match(loaded.problem, /cannot parse/)
  t.ok(loaded.keptAs !== null && loaded.keptAs.startsWith(`${prefix}:state:corrupt:`), `kept as ${loaded.keptAs}`)
  t.equal(await raw.get(loaded.keptAs!), 'not json', 'the bad copy is kept as it was')
  const again = await b.load()
  t.same(again, { kind: 'corrupt', problem: again.kind === 'corrupt' ? again.problem : '', keptAs: loaded.keptAs, version: 2 }, 'another replica is told the same, naming the kept copy')
  t.same(await b.save(first!, 1), { ok: false, reason: 'conflict', version: 2 }, 'a replica still on version 1 conflicts: no version comes round again')
  t.same(await b.save(first!, 2), { ok: true, version: 3 })
  t.same(await a.load(), { kind: 'loaded', state: first, version: 3 })
})

t.test('a key another program overwrote with a different type is renamed aside and the store starts again', async (t) => {
  const { a, b, raw, prefix } = await replicas()
  t.same(await a.save(everyPhase()[1]!, 0, 4), { ok: true, version: 1 })
  await raw.del(`${prefix}:state`)
  await raw.set(`${prefix}:state`, 'hello')
  t.same(await b.save(everyPhase()[2]!, 1), { ok: false, reason: 'conflict', version: 0 }, 'a save on the foreign key is refused, not written over it')
  const loaded = await b.load()
  t.equal(loaded.kind, 'corrupt')
  if (loaded.kind !== 'corrupt') return
  t.equal(loaded.version, 0)
  t.match(loaded.problem, /is not a hash/)
  t.equal(await raw.get(loaded.keptAs!), 'hello')
  t.same(await a.load(), { kind: 'empty', version: 0 })
  t.same(await b.save(everyPhase()[2]!, 0), { ok: true, version: 1 })
})

t.test('a save fenced below the newest lease token is refused even before that holder wrote', async (t) => {
  const prefix = redis.nextPrefix()
  const { a } = await replicas(prefix)
  const lease = new RedisLease(await connection(), { prefix, ttlMs: 200 })
  const old = await lease.acquire('replica-a')
  t.same(await a.save(everyPhase()[1]!, 0, old!.token), { ok: true, version: 1 })
  await new Promise((r) => setTimeout(r, 250))
  const next = await lease.acquire('replica-b')
  t.ok(next !== null && next.token > old!.token)
  t.same(await a.save(everyPhase()[2]!, 1, old!.token), { ok: false, reason: 'fenced', version: 1 }, 'the old leader is fenced as soon as a new lease exists')
  t.same(await a.save(everyPhase()[2]!, 1, next!.token), { ok: true, version: 2 })
})

t.test('a lost token counter never hands out a token below a fence that wrote', async (t) => {
  const prefix = redis.nextPrefix()
  const { a, raw } = await replicas(prefix)
  t.same(await a.save(everyPhase()[1]!, 0, 41), { ok: true, version: 1 })
  const lease = new RedisLease(await connection(), { prefix, ttlMs: 1_000 })
  const grant = await lease.acquire('replica-a')
  t.equal(grant?.token, 42, 'above the fence 41 that wrote the state')
  t.equal(await raw.get(`${prefix}:lease:token`), '42', 'and the counter goes on from there')
})

t.test('watch delivers a burst of changes from two writers in revision order, each once', async (t) => {
  const prefix = redis.nextPrefix()
  const { a, b } = await replicas(prefix)
  const c = new RedisStateStore(await connection(), { prefix, origin: 'replica-c' })
  open.push(c)
  await c.subscribed()
  const seen: StoredChange[] = []
  c.watch((change) => seen.push(change))
  const states = everyPhase()
  const outcomes: boolean[] = []
  for (let i = 0; i < 40; i++) outcomes.push((await (i % 2 === 0 ? a : b).save(states[i % states.length]!, i)).ok)
  t.ok(outcomes.every(Boolean), 'a and b take turns, each on top of the other')
  const until = Date.now() + 5_000
  while (seen.length < 40 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  t.same(
    seen.map((s) => s.version),
    Array.from({ length: 40 }, (_, i) => i + 1),
  )
})

t.test('the change feed: a listener that throws is isolated, an unreadable message is reported and skipped, a reset forgets the revisions', async (t) => {
  const prefix = redis.nextPrefix()
  const errors: string[] = []
  const { a, raw } = await replicas(prefix)
  const c = new RedisStateStore(await connection(), { prefix, origin: 'replica-c', onError: (e) => errors.push(e.message) })
  open.push(c)
  await c.subscribed()
  const seen: number[] = []
  c.watch(() => {
    throw new Error('listener bug')
  })
  c.watch((change) => seen.push(change.version))
  await a.save(everyPhase()[1]!, 0)
  await a.save(everyPhase()[2]!, 1)
  const channel = `${prefix}:state:changes`
  await raw.publish(channel, 'change replica-x 3\nnot json')
  await raw.publish(channel, 'something else entirely')
  // A reset (another replica set the key aside): revision 1 counts as new again.
  await raw.publish(channel, 'reset replica-x')
  await raw.publish(channel, `change replica-x 1\n${encodeState(everyPhase()[3]!, 1, null)}`)
  const until = Date.now() + 5_000
  while (seen.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  t.same(seen, [1, 2, 1], 'the other listener got every readable change')
  t.equal(errors.filter((e) => e === 'listener bug').length, 3, 'each throw reported')
  t.ok(errors.some((e) => /change 3 from replica-x cannot be read/.test(e)), 'the unreadable change reported')
})

t.test('a state deleted under live replicas starts a new epoch: watchers take its revision 1 as new', async (t) => {
  const { a, b, raw, prefix } = await replicas()
  const seen: StoredChange[] = []
  b.watch((change) => seen.push(change))
  const states = everyPhase()
  for (let v = 0; v < 3; v++) await a.save(states[v]!, v)
  const waitSeen = async (n: number) => {
    const until = Date.now() + 5_000
    while (seen.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  }
  await waitSeen(3)
  const epoch = await raw.hget(`${prefix}:state`, 'epoch')
  t.ok(epoch !== null && epoch.length > 0, 'revision 1 was given an epoch')
  await raw.del(`${prefix}:state`)
  t.same(await a.save(states[5]!, 0), { ok: true, version: 1 })
  await waitSeen(4)
  t.same(
    seen.map((c) => c.version),
    [1, 2, 3, 1],
    'the new revision 1 is delivered, not taken for the old one',
  )
  const fresh = await raw.hget(`${prefix}:state`, 'epoch')
  t.ok(fresh !== null && fresh !== epoch, 'under a new epoch')
  t.same(await a.save(states[6]!, 1), { ok: true, version: 2 })
  t.equal(await raw.hget(`${prefix}:state`, 'epoch'), fresh, 'which later saves keep')
})
