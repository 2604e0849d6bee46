/** Sticky routing by header and by cookie: same key, same side; a user on canary stays there as the weight grows, and lowering it sends back exactly the users above it. */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

type Side = 'stable' | 'canary'

const USERS = Array.from({ length: 300 }, (_, i) => `user-${i + 1}`)

async function setWeight(t: Test, adminUrl: string, weight: number): Promise<void> {
  const res = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight })
  t.equal(res.status, 200, `weight ${weight}`)
}

/** The side each key lands on, one request per key (16 at a time). */
async function sides(proxyUrl: string, keys: readonly string[], headersFor: (key: string) => Record<string, string>): Promise<Map<string, Side>> {
  const out = new Map<string, Side>()
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < keys.length) {
      const key = keys[next++]!
      const res = await request(`${proxyUrl}/sticky`, { headers: headersFor(key) })
      const body = (await res.body.json()) as { upstream: Side }
      out.set(key, body.upstream)
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
  return out
}

function onCanary(map: Map<string, Side>): Set<string> {
  return new Set([...map].filter(([, side]) => side === 'canary').map(([key]) => key))
}

function isSubset(a: Set<string>, b: Set<string>): boolean {
  for (const x of a) if (!b.has(x)) return false
  return true
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && isSubset(a, b)
}

/** 5 sd binomial bound on how many of n keys a uniform hash puts below weight%. */
function withinBinomial(t: Test, count: number, n: number, weight: number, what: string): void {
  const p = weight / 100
  const tolerance = 5 * Math.sqrt(n * p * (1 - p))
  t.ok(Math.abs(count - n * p) <= tolerance, `${what}: ${count}/${n} on canary at ${weight}%, expected ${n * p} ± ${tolerance.toFixed(1)} (5 sd)`)
}

t.test('sticky header x-user-id: stable per key, monotonic as the weight grows, exact on the way back', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  // Configured in mixed case: header names are case-insensitive.
  const { proxyUrl, adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'X-User-Id' }, rollout: { autoStart: false } })
  const byHeader = (key: string): Record<string, string> => ({ 'x-user-id': key })
  const at = new Map<number, Set<string>>()

  for (const weight of [5, 25, 50, 100]) {
    await setWeight(t, adminUrl, weight)
    const first = await sides(proxyUrl, USERS, byHeader)
    at.set(weight, onCanary(first))
    if (weight === 50) {
      // Same key, same side, every time.
      const again = await sides(proxyUrl, USERS, byHeader)
      const moved = USERS.filter((u) => again.get(u) !== first.get(u))
      t.same(moved, [], 'second round at 50%: no user changed side')
    }
  }
  const set = (w: number): Set<string> => at.get(w)!
  t.ok(isSubset(set(5), set(25)), 'canary users at 5% are still on canary at 25%')
  t.ok(isSubset(set(25), set(50)), 'canary users at 25% are still on canary at 50%')
  t.equal(set(100).size, USERS.length, 'everyone is on canary at 100%')
  // Sequential keys ("user-1", "user-2", ...) must still spread evenly.
  withinBinomial(t, set(5).size, USERS.length, 5, 'sequential keys')
  withinBinomial(t, set(25).size, USERS.length, 25, 'sequential keys')
  withinBinomial(t, set(50).size, USERS.length, 50, 'sequential keys')

  // Lowering the weight sends back exactly the users whose bucket is now above it.
  for (const weight of [25, 5]) {
    await setWeight(t, adminUrl, weight)
    const now = onCanary(await sides(proxyUrl, USERS, byHeader))
    t.ok(sameSet(now, set(weight)), `back at ${weight}%: exactly the ${set(weight).size} users who were on canary at ${weight}% on the way up (got ${now.size})`)
  }
  await setWeight(t, adminUrl, 0)
  t.equal(onCanary(await sides(proxyUrl, USERS, byHeader)).size, 0, 'at 0% nobody is on canary')

  // The override beats the sticky key; no key (or an empty one) falls back to the weight.
  await setWeight(t, adminUrl, 100)
  const never = await sides(proxyUrl, USERS.slice(0, 20), (key) => ({ 'x-user-id': key, 'x-canary': 'never' }))
  t.same([...new Set(never.values())], ['stable'], 'x-canary: never wins over a sticky key at 100%')
  await setWeight(t, adminUrl, 0)
  const always = await sides(proxyUrl, USERS.slice(0, 20), (key) => ({ 'x-user-id': key, 'x-canary': 'always' }))
  t.same([...new Set(always.values())], ['canary'], 'x-canary: always wins over a sticky key at 0%')
  await setWeight(t, adminUrl, 100)
  const empty = await sides(proxyUrl, ['a', 'b', 'c'], () => ({ 'x-user-id': '' }))
  t.same([...new Set(empty.values())], ['canary'], 'an empty key is no key: the weight decides (100%)')
})

t.test('sticky cookie: same rule, same buckets as the header, and only the named cookie counts', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { proxyUrl, adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    routing: { stickyHeader: 'x-user-id', stickyCookie: 'canary_user' },
    rollout: { autoStart: false },
  })
  const users = USERS.slice(0, 200)
  const byCookie = (key: string): Record<string, string> => ({ cookie: `theme=dark; canary_user=${key}; lang=en` })
  const byHeader = (key: string): Record<string, string> => ({ 'x-user-id': key })

  await setWeight(t, adminUrl, 10)
  const c10 = onCanary(await sides(proxyUrl, users, byCookie))
  const again = onCanary(await sides(proxyUrl, users, byCookie))
  t.ok(sameSet(c10, again), 'same cookie, same side')
  withinBinomial(t, c10.size, users.length, 10, 'cookie keys')
  t.ok(sameSet(c10, onCanary(await sides(proxyUrl, users, byHeader))), 'a key gets the same side by cookie as by header')
  // The cookie first in the header, and alone.
  t.ok(sameSet(c10, onCanary(await sides(proxyUrl, users, (key) => ({ cookie: `canary_user=${key}` })))), 'cookie alone in the header')

  await setWeight(t, adminUrl, 40)
  const c40 = onCanary(await sides(proxyUrl, users, byCookie))
  t.ok(isSubset(c10, c40), 'cookie users on canary at 10% stay there at 40%')
  await setWeight(t, adminUrl, 10)
  t.ok(sameSet(onCanary(await sides(proxyUrl, users, byCookie)), c10), 'back at 10%: exactly the 10% set')

  // Pick one key on canary and one on stable at 10%, then try to confuse the cookie parser.
  const onC = [...c10][0]!
  const onS = users.find((u) => !c10.has(u))!
  const side = async (cookie: string, extra: Record<string, string> = {}): Promise<Side> => {
    const res = await request(`${proxyUrl}/`, { headers: { cookie, ...extra } })
    return ((await res.body.json()) as { upstream: Side }).upstream
  }
  t.equal(await side(`xcanary_user=${onC}; canary_user=${onS}`), 'stable', 'a cookie whose name merely ends with the configured name is ignored')
  t.equal(await side(`canary_userx=${onC}; canary_user=${onS}`), 'stable', 'a cookie whose name merely starts with the configured name is ignored')
  t.equal(await side(`a=canary_user=${onC}; canary_user=${onS}`), 'stable', 'the name inside another cookie value is ignored')
  t.equal(await side(`canary_user=${onC};canary_user2=x`), 'canary', 'no space after ;')
  t.equal(await side(`canary_user=${onS}`, { 'x-user-id': onC }), 'canary', 'the header key wins over the cookie when both are present')
})
