import t from 'tap'
import { decodeFromCompressedBase64, encodeIntoCompressedBase64 } from 'hdr-histogram-js'
import { Redis } from 'ioredis'
import { createRedisBackend, type RedisBackend } from '../../src/state/redis-backend.js'
import { newLatencyHistogram } from '../../src/stats/latency-histogram.js'
import { everyPhase } from '../conformance/state-store.js'
import { testRedis } from '../helpers/redis.js'

const redis = await testRedis(t)
const opened: RedisBackend<never>[] = []
t.teardown(async () => {
  for (const b of opened) await b.close()
})

/** `count` replicas sharing one prefix, each with its own connections, as separate pods would be. */
async function replicas<D>(count: number, options: { windowTtlMs?: number } = {}): Promise<RedisBackend<D>[]> {
  const prefix = redis.nextPrefix()
  const config = { state: { redis: redis.url, redisKeyPrefix: prefix }, analysis: { intervalMs: 100, windowMs: 1000 } }
  const out: RedisBackend<D>[] = []
  for (let i = 0; i < count; i++) {
    const backend = createRedisBackend<D>(config, { replica: `replica-${String.fromCharCode(97 + i)}`, ...options })
    opened.push(backend as RedisBackend<never>)
    await backend.ready()
    out.push(backend)
  }
  return out
}

const record = (i: number, action = 'advance') => ({
  at: Date.UTC(2026, 0, 1) + i,
  actor: 'auto',
  action,
  from: { phase: 'progressing' as const, weight: i },
  to: { phase: 'progressing' as const, weight: i + 1 },
  reason: i % 2 === 0 ? null : `step ${i}`,
})

t.test('the audit stream is one trail for every replica: any replica reads every replica’s events, newest last', async (t) => {
  const [a, b, c] = await replicas(3)
  await a!.audit.append(record(0, 'start'))
  await b!.audit.append(record(1, 'pause'))
  await c!.audit.append(record(2, 'resume'))
  await a!.audit.append(record(3, 'advance'))
  for (const reader of [a!, b!, c!]) {
    t.same(
      (await reader.audit.recent()).map((e) => e.action),
      ['start', 'pause', 'resume', 'advance'],
      `${reader.replica} sees all four`,
    )
  }
  const newest = await c!.audit.recent(2)
  t.same(newest, [
    { ...record(2, 'resume'), at: '2026-01-01T00:00:00.002Z' },
    { ...record(3, 'advance'), at: '2026-01-01T00:00:00.003Z' },
  ], 'recent(2): the two newest, as written (at in ISO 8601, as the file has it)')
  t.same(await a!.audit.recent(0), [])
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  const entries = await raw.xrange(`${a!.prefix}:audit`, '-', '+')
  t.same(
    entries.map(([, fields]) => fields[fields.indexOf('replica') + 1]),
    ['replica-a', 'replica-b', 'replica-c', 'replica-a'],
    'each entry names the replica that wrote it',
  )
  await raw.xadd(`${a!.prefix}:audit`, '*', 'event', 'not json')
  await raw.xadd(`${a!.prefix}:audit`, '*', 'other', 'field')
  t.same((await b!.audit.recent(3)).map((e) => e.action), ['advance'], 'entries that are not events are skipped')
})

t.test('the audit stream is capped near maxLength (MAXLEN ~)', async (t) => {
  const [a] = await replicas(1)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  // The factory's default cap is 10,000; approximate trimming removes whole
  // stream nodes (100 entries each by default), so check it on a small cap.
  const { RedisAuditTrail } = await import('../../src/state/redis-audit.js')
  const small = new RedisAuditTrail(a!.connection, { key: `${a!.prefix}:audit-small`, replica: 'replica-a', maxLength: 100 })
  for (let i = 0; i < 1000; i++) await small.append(record(i))
  const length = await raw.xlen(`${a!.prefix}:audit-small`)
  t.ok(length >= 100 && length < 300, `1,000 appended, ${length} kept`)
  t.equal((await small.recent(1))[0]?.to.weight, 1000, 'the newest is kept')
})

interface Delta {
  readonly requests: number
  readonly errors: number
  /** hdr-histogram-js encodeIntoCompressedBase64 of the slot's latencies (µs). */
  readonly latency: string
}

t.test('window deltas: the leader reads every replica’s slots and merges them into the whole traffic’s figures', async (t) => {
  const backends = await replicas<Delta>(3)
  const [a, b, c] = backends
  // Each replica measures its own share; the leader must see the sum.
  const whole = newLatencyHistogram()
  t.teardown(() => whole.destroy())
  let totalRequests = 0
  let totalErrors = 0
  const slots = [1000, 1001, 1002]
  for (const [r, backend] of backends.entries()) {
    for (const slot of slots) {
      const h = newLatencyHistogram()
      const requests = 10 * (r + 1) + (slot - 1000)
      for (let i = 0; i < requests; i++) {
        const us = 1_000 * (r + 1) + 37 * i
        h.recordValue(us)
        whole.recordValue(us)
      }
      const errors = r === 2 ? 3 : 0
      totalRequests += requests
      totalErrors += errors
      await backend.windows.publish(slot, { requests, errors, latency: encodeIntoCompressedBase64(h) })
      h.destroy()
    }
  }
  const read = await b!.windows.read(999, 1003)
  t.same(
    read.map((s) => [s.slot, s.deltas.map((d) => d.replica)]),
    slots.map((slot) => [slot, ['replica-a', 'replica-b', 'replica-c']]),
    'three slots, each with all three replicas (empty slots left out)',
  )
  const merged = newLatencyHistogram()
  t.teardown(() => merged.destroy())
  let requests = 0
  let errors = 0
  for (const slot of read) {
    for (const { delta } of slot.deltas) {
      requests += delta.requests
      errors += delta.errors
      const h = decodeFromCompressedBase64(delta.latency, 32, true)
      merged.add(h)
      h.destroy()
    }
  }
  t.same([requests, errors], [totalRequests, totalErrors], 'counts add up to the whole traffic')
  t.equal(merged.totalCount, whole.totalCount)
  for (const p of [50, 90, 99, 99.9]) t.equal(merged.getValueAtPercentile(p), whole.getValueAtPercentile(p), `p${p} of the merged deltas is the whole traffic's`)
  t.same(await a!.windows.replicas(), ['replica-a', 'replica-b', 'replica-c'])
  await c!.windows.publish(1002, { requests: 1, errors: 1, latency: '' })
  const replaced = await a!.windows.read(1002, 1002)
  t.same(replaced[0]?.deltas.find((d) => d.replica === 'replica-c')?.delta, { requests: 1, errors: 1, latency: '' }, 'publishing a slot again replaces that replica’s delta')
})

t.test('a replica that stops publishing ages out: of newer slots at once, of Redis after the ttl', async (t) => {
  const backends = await replicas<{ n: number }>(3, { windowTtlMs: 400 })
  const [a, b, c] = backends
  for (const slot of [1, 2]) for (const backend of backends) await backend.windows.publish(slot, { n: slot })
  // c goes away; a and b go on.
  for (const slot of [3, 4]) for (const backend of [a!, b!]) await backend.windows.publish(slot, { n: slot })
  const read = await a!.windows.read(1, 4)
  t.same(
    read.map((s) => s.deltas.map((d) => d.replica).join(',')),
    ['replica-a,replica-b,replica-c', 'replica-a,replica-b,replica-c', 'replica-a,replica-b', 'replica-a,replica-b'],
  )
  // Past the ttl with a and b still publishing, c's slots and c itself are gone from Redis.
  const until = Date.now() + 5_000
  let live = await a!.windows.replicas()
  while (live.includes('replica-c') && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100))
    for (const backend of [a!, b!]) await backend.windows.publish(5, { n: 5 })
    live = await a!.windows.replicas()
  }
  t.same(live, ['replica-a', 'replica-b'], 'c is no longer listed as live')
  // Slots 1..4 are no longer written: each expires ttl after its last write.
  const expired = Date.now() + 5_000
  let left = await a!.windows.read(1, 4)
  while (left.length > 0 && Date.now() < expired) {
    await new Promise((r) => setTimeout(r, 50))
    for (const backend of [a!, b!]) await backend.windows.publish(5, { n: 5 })
    left = await a!.windows.read(1, 4)
  }
  t.same(left, [], 'slots nobody refreshed expired with their ttl')
  t.same(
    (await a!.windows.read(5, 5))[0]?.deltas.map((d) => d.replica),
    ['replica-a', 'replica-b'],
    'the slot a and b go on writing is there',
  )
  t.equal(c!.windows.replica, 'replica-c')
})

t.test('window reads and writes check their arguments; an unreadable delta is skipped and reported', async (t) => {
  const errors: string[] = []
  const prefix = redis.nextPrefix()
  const backend = createRedisBackend<{ n: number }>(
    { state: { redis: redis.url, redisKeyPrefix: prefix }, analysis: { intervalMs: 100, windowMs: 1000 } },
    { replica: 'replica-a', onError: (e) => errors.push(e.message) },
  )
  opened.push(backend as RedisBackend<never>)
  await backend.ready()
  await t.rejects(backend.windows.publish(1.5, { n: 1 }), /slot must be a whole number/)
  await t.rejects(backend.windows.read(5, 4), /from <= to/)
  await t.rejects(backend.windows.read(0, 20_000), /at most 10,000 slots/)
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await backend.windows.publish(7, { n: 7 })
  await raw.hset(`${prefix}:win:7`, 'replica-x', '{broken')
  t.same(await backend.windows.read(7, 7), [{ slot: 7, deltas: [{ replica: 'replica-a', delta: { n: 7 } }] }])
  t.match(errors, [/window delta of replica-x for slot 7 cannot be parsed/])
})

t.test('the factory refuses a config without state.redis, and names the backend without its password', async (t) => {
  t.throws(() => createRedisBackend({ state: { redis: null, redisKeyPrefix: 'p' }, analysis: { intervalMs: 1000, windowMs: 30_000 } }), /state\.redis is not set/)
  const backend = createRedisBackend({ state: { redis: 'redis://:hunter2@127.0.0.1:1/0', redisKeyPrefix: 'p' }, analysis: { intervalMs: 1000, windowMs: 30_000 } }, { replica: 'r' })
  t.teardown(() => backend.close())
  t.equal(backend.store.name, 'redis://:***@127.0.0.1:1/0 p:state')
  t.equal(backend.audit.name, 'redis://:***@127.0.0.1:1/0 p:audit')
  t.equal(backend.lease.ttlMs, 3000, 'lease ttl: 3 intervals')
  t.equal(backend.windows.ttlMs, 32_000, 'window ttl: the window plus 2 intervals')
  t.equal(backend.backendUp(), 0, 'nothing listens on port 1: down, and nobody waited for it')
})

t.test('ready() gives up after its timeout when Redis cannot be reached, naming the address but not the password', async (t) => {
  const backend = createRedisBackend({ state: { redis: 'redis://:hunter2@127.0.0.1:1/0', redisKeyPrefix: 'p' }, analysis: { intervalMs: 1000, windowMs: 30_000 } }, { replica: 'r', connectTimeoutMs: 100 })
  t.teardown(() => backend.close())
  await t.rejects(backend.ready(300), /Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1\/0 not reachable within 300ms/)
  await t.rejects(backend.store.save(everyPhase()[0]!, 0), /Stream isn't writeable/, 'and operations reject at once meanwhile')
})
