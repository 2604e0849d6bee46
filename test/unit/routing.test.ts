import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { pickSide } from '../../src/routing/pick-side.js'
import { compileSnapshot, type UpstreamTarget } from '../../src/routing/snapshot.js'
import { OverrideStats, type OverrideStatsPair } from '../../src/stats/override-stats.js'
import { cookieValue, stickyBucket } from '../../src/routing/sticky-bucket.js'

const target = (side: 'stable' | 'canary'): UpstreamTarget => ({ side, url: `http://${side}`, host: side, basePath: '', dispatcher: null as never, stats: null as never })
const stable = target('stable')
const canary = target('canary')
const overrideStats: OverrideStatsPair = { stable: new OverrideStats('stable'), canary: new OverrideStats('canary') }
const LOOPBACK = ['127.0.0.0/8', '::1/128']
const snapshot = (weight: number, over: Partial<Parameters<typeof compileSnapshot>[0]> = {}) =>
  compileSnapshot(
    { stable, canary, weight, overrideHeader: 'x-canary', overrideFrom: LOOPBACK, overrideStats, stickyHeader: 'x-user-id', stickyCookie: 'canary_user', responseTimeoutMs: 1000, preserveHost: true, trustForwarded: false, ...over },
    1,
  )
const local = { remoteAddress: '127.0.0.1' }

t.test('sticky buckets are stable, in range and spread evenly', async (t) => {
  t.equal(stickyBucket('user-42'), stickyBucket('user-42'))
  const counts = new Array<number>(10).fill(0)
  let outOfRange = 0
  for (let i = 0; i < 100_000; i++) {
    const b = stickyBucket(`user-${i}`)
    if (!(Number.isInteger(b) && b >= 0 && b < 10_000)) outOfRange++
    counts[Math.floor(b / 1000)]!++
  }
  t.equal(outOfRange, 0, 'every bucket is an integer in 0..9999')
  // 10,000 expected per decile; 5 sigma of a binomial(100000, 0.1) is ~475.
  for (const c of counts) t.ok(Math.abs(c - 10_000) < 475, `decile count ${c}`)
})

t.test('cookie values', async (t) => {
  t.equal(cookieValue('a=1; canary_user=abc; b=2', 'canary_user'), 'abc')
  t.equal(cookieValue('canary_user=abc', 'canary_user'), 'abc')
  t.equal(cookieValue('xcanary_user=abc', 'canary_user'), null, 'a longer name is another cookie')
  t.equal(cookieValue('canary_user_x=1; canary_user=z', 'canary_user'), 'z')
  t.equal(cookieValue('canary_user=', 'canary_user'), null)
  t.equal(cookieValue('canary_user="abc"', 'canary_user'), 'abc', 'a quoted value is the same key')
  t.equal(cookieValue(undefined, 'canary_user'), null)
})

t.test('override header first, then sticky header, then cookie, then random', async (t) => {
  const never = () => {
    throw new Error('random must not be consulted')
  }
  const s = snapshot(5)
  t.equal(pickSide(s, { 'x-canary': 'always' }, never, local), s.overrideCanary)
  t.equal(pickSide(snapshot(100), { 'x-canary': 'never' }, never, local).stats, overrideStats.stable)
  const key = 'user-7'
  const onCanaryAt = (stickyBucket(key) + 1) / 100
  const h: IncomingHttpHeaders = { 'x-user-id': key }
  t.equal(pickSide(snapshot(onCanaryAt), h, never), canary)
  t.equal(pickSide(snapshot(onCanaryAt - 0.01), h, never), stable)
  t.equal(pickSide(snapshot(onCanaryAt), { cookie: `canary_user=${key}` }, never), canary, 'cookie keys hash the same way')
  t.equal(pickSide(snapshot(30), {}, () => 0.2999), canary)
  t.equal(pickSide(snapshot(30), {}, () => 0.3), stable)
  t.equal(pickSide(snapshot(0), {}, never), stable)
  t.equal(pickSide(snapshot(100), {}, never), canary)
})

t.test('users only ever move stable -> canary as the weight grows', async (t) => {
  const weights = [0.5, 5, 25, 50, 100]
  let previous = new Set<string>()
  for (const w of weights) {
    const s = snapshot(w)
    const onCanary = new Set<string>()
    for (let i = 0; i < 2000; i++) if (pickSide(s, { 'x-user-id': `u${i}` }, Math.random) === canary) onCanary.add(`u${i}`)
    for (const u of previous) if (!onCanary.has(u)) t.fail(`${u} left canary at ${w}%`)
    t.ok(Math.abs(onCanary.size / 2000 - w / 100) < 0.05, `${onCanary.size} of 2000 users at ${w}%`)
    previous = onCanary
  }
})

t.test('no canary: everything to stable, weight forced to 0', async (t) => {
  const s = compileSnapshot(
    { stable, canary: null, weight: 50, overrideHeader: 'x-canary', overrideFrom: LOOPBACK, overrideStats, stickyHeader: null, stickyCookie: null, responseTimeoutMs: 1, preserveHost: true, trustForwarded: false },
    2,
  )
  t.equal(s.weight, 0)
  t.equal(pickSide(s, { 'x-canary': 'always' }, Math.random, local), stable)
  t.ok(Object.isFrozen(s), 'published snapshots are frozen')
  t.equal(snapshot(33.33).canaryThreshold, 3333)
})

t.test('an obeyed override routes to the override targets: same upstream, override counters', async (t) => {
  const never = () => {
    throw new Error('random must not be consulted')
  }
  const s = snapshot(5)
  const always = pickSide(s, { 'x-canary': 'always' }, never, local)
  t.same([always.side, always.url, always.dispatcher], [canary.side, canary.url, canary.dispatcher], 'the canary upstream')
  t.equal(always.stats, overrideStats.canary, 'recording into the override counter, not the side stats')
  t.ok(Object.isFrozen(always))
  const neverSide = pickSide(s, { 'x-canary': 'never' }, never, local)
  t.same([neverSide.url, neverSide.stats], [stable.url, overrideStats.stable])
  t.equal(pickSide(s, { 'x-canary': 'sometimes' }, () => 0.99, local), stable, 'another value is no override')
})

t.test('the override header is obeyed only from routing.overrideFrom', async (t) => {
  const s = snapshot(0)
  const from = (remoteAddress: string | undefined, headers: Record<string, string> = {}, over: Partial<Parameters<typeof compileSnapshot>[0]> = {}) =>
    pickSide(snapshot(0, over), { 'x-canary': 'always', ...headers }, () => 0.5, { remoteAddress }).stats === overrideStats.canary
  t.ok(from('127.0.0.1'), 'IPv4 loopback (default)')
  t.ok(from('127.8.9.10'), 'anywhere in 127.0.0.0/8')
  t.ok(from('::1'), 'IPv6 loopback (default)')
  t.ok(from('::ffff:127.0.0.1'), 'an IPv4-mapped peer of a dual-stack listener')
  t.notOk(from('10.1.2.3'), 'another address: ignored')
  t.notOk(from(undefined), 'no peer address: ignored')
  t.notOk(pickSide(s, { 'x-canary': 'always' }, () => 0.5).stats === overrideStats.canary, 'no peer given: ignored')
  const lan = { overrideFrom: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] }
  t.ok(from('10.1.2.3', {}, lan))
  t.ok(from('2001:db8::9', {}, lan))
  t.ok(from('192.0.2.7', {}, lan), 'a bare address is a /32')
  t.notOk(from('192.0.2.8', {}, lan))
  t.notOk(from('127.0.0.1', {}, lan), 'loopback is not in this list')
  t.notOk(from('10.1.2.3', {}, { overrideFrom: [] }), 'an empty list: nobody')
  t.notOk(from('10.1.2.3', { 'x-forwarded-for': '127.0.0.1' }, {}), 'X-Forwarded-For is not read without trustForwarded')
  const behindLb = { overrideFrom: ['192.0.2.0/24'], trustForwarded: true }
  t.ok(from('10.0.0.1', { 'x-forwarded-for': '203.0.113.5, 192.0.2.44' }, behindLb), 'trustForwarded: the last entry, the one the balancer appended')
  t.notOk(from('10.0.0.1', { 'x-forwarded-for': '192.0.2.44, 203.0.113.5' }, behindLb), 'a forged earlier entry does not count')
  t.ok(from('10.0.0.1', { 'x-forwarded-for': '203.0.113.5,192.0.2.44:5151' }, behindLb), 'address:port as some balancers append it')
  t.ok(from('10.0.0.1', { 'x-forwarded-for': '[2001:db8::1]:80' }, { overrideFrom: ['2001:db8::/32'], trustForwarded: true }), '[v6]:port')
  t.notOk(from('10.0.0.1', { 'x-forwarded-for': 'garbage' }, behindLb), 'not an address: ignored')
  t.ok(from('192.0.2.1', {}, behindLb), 'no X-Forwarded-For: the peer, as NGINX realip does')
})
