/** Admin API authorization: bearer tokens on every mutating call (401/403), open reads, named tokens as audit actors, and the non-loopback refusal. */
import t from 'tap'
import { request } from 'undici'
import { configFromObject } from '../../src/config/load.js'
import { admin, startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

type Json = Record<string, unknown>

const MUTATIONS: { method: 'PUT' | 'POST'; path: string; body: unknown }[] = [
  { method: 'PUT', path: '/api/v1/weight', body: { weight: 5 } },
  { method: 'POST', path: '/api/v1/rollout/start', body: {} },
  { method: 'POST', path: '/api/v1/rollout/pause', body: {} },
  { method: 'POST', path: '/api/v1/rollout/resume', body: {} },
  { method: 'POST', path: '/api/v1/rollout/promote', body: {} },
  { method: 'POST', path: '/api/v1/rollout/abort', body: {} },
]

async function call(base: string, method: string, path: string, body: unknown, authorization?: string): Promise<{ status: number; headers: Record<string, unknown>; json: Json }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (authorization !== undefined) headers.authorization = authorization
  const res = await request(`${base}${path}`, { method: method as 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, json: text === '' ? {} : (JSON.parse(text) as Json) }
}

t.test('with admin.token: every mutation needs the bearer token (401 without, 403 wrong), reads need none', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, admin: { token: 'sekret' }, rollout: { autoStart: false } })
  const before = (await admin(adminUrl, 'GET', '/api/v1/status')).json

  for (const m of MUTATIONS) {
    const label = `${m.method} ${m.path}`
    const none = await call(adminUrl, m.method, m.path, m.body)
    t.equal(none.status, 401, `${label}: no Authorization -> 401`)
    t.match(String(none.headers['www-authenticate']), /^Bearer\b/, `${label}: 401 carries WWW-Authenticate: Bearer`)
    t.equal(none.json.code, 'CPX_ERR_ADMIN_UNAUTHORIZED')
    t.type(none.json.error, 'string')
    for (const [what, header, expected] of [
      ['empty bearer', 'Bearer ', 401],
      ['Basic scheme', `Basic ${Buffer.from('admin:sekret').toString('base64')}`, 401],
      ['token without scheme', 'sekret', 401],
      ['same-length wrong token', 'Bearer sekreT', 403],
      ['shorter wrong token', 'Bearer sek', 403],
      ['longer wrong token', 'Bearer sekret-and-more', 403],
      ['token with a prefix', 'Bearer xsekret', 403],
    ] as const) {
      const res = await call(adminUrl, m.method, m.path, m.body, header)
      t.equal(res.status, expected, `${label}: ${what} -> ${expected}`)
      t.equal(res.json.code, expected === 403 ? 'CPX_ERR_ADMIN_FORBIDDEN' : 'CPX_ERR_ADMIN_UNAUTHORIZED', `${label}: ${what}: code`)
    }
    // Authorization is checked before the body: an unauthenticated bad body is still a 401.
    t.equal((await call(adminUrl, m.method, m.path, '{not json')).status, 401, `${label}: malformed body without token -> 401, not 400`)
    t.equal((await call(adminUrl, m.method, m.path, '{not json', 'Bearer wrong!')).status, 403, `${label}: malformed body with a wrong token -> 403`)
  }
  t.same((await admin(adminUrl, 'GET', '/api/v1/status')).json, before, 'nothing changed without the right token')
  t.same((await admin(adminUrl, 'GET', '/api/v1/events')).json, { events: [] }, 'no audit events for refused calls')

  // Reads need no token.
  for (const path of ['/healthz', '/readyz', '/metrics', '/api/v1/status', '/api/v1/events', '/']) {
    const res = await request(`${adminUrl}${path}`)
    await res.body.dump()
    t.equal(res.statusCode, 200, `GET ${path} without a token`)
  }

  // The right token, with a case-insensitive scheme, works for each mutation.
  const token = 'Bearer sekret'
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 5 }, token)).status, 200, 'set-weight with the token')
  t.equal((await call(adminUrl, 'POST', '/api/v1/rollout/resume', {}, 'bearer sekret')).status, 200, 'resume (lower-case scheme)')
  t.equal((await call(adminUrl, 'POST', '/api/v1/rollout/pause', {}, token)).status, 200, 'pause')
  t.equal((await call(adminUrl, 'POST', '/api/v1/rollout/abort', {}, token)).status, 200, 'abort')
  t.equal((await call(adminUrl, 'POST', '/api/v1/rollout/start', {}, token)).status, 200, 'start')
  const promoted = await call(adminUrl, 'POST', '/api/v1/rollout/promote', {}, token)
  t.equal(promoted.status, 200, 'promote')
  t.equal(promoted.json.phase, 'succeeded')
  const actors = ((await admin(adminUrl, 'GET', '/api/v1/events')).json.events as Json[]).map((e) => e.actor)
  t.same(actors, ['admin', 'admin', 'admin', 'admin', 'admin', 'admin'], 'admin.token acts as "admin"')
  // A valid token does not skip validation.
  const bad = await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 'x' }, token)
  t.equal(bad.status, 400)
})

t.test('without a token, mutations need no Authorization header (and ignore one)', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const res = await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 5 })
  t.equal(res.status, 200)
  t.equal(res.json.weight, 5)
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 6 }, 'Bearer anything')).status, 200)
  t.equal((await call(adminUrl, 'POST', '/api/v1/rollout/abort', {})).status, 200)
})

t.test('named tokens (admin.tokens): each name is the audit actor; admin.token still works beside them', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    admin: { token: 'root-token', tokens: { alice: 't1', 'bob.ci': 't2-longer' } },
    rollout: { autoStart: false },
  })
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 5 }, 'Bearer t1')).status, 200)
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 6 }, 'Bearer t2-longer')).status, 200)
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 7 }, 'Bearer root-token')).status, 200)
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 8 }, 'Bearer t3')).status, 403, 'an unknown token')
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 8 }, 'Bearer alice')).status, 403, 'a token name is not a token')
  t.equal((await call(adminUrl, 'PUT', '/api/v1/weight', { weight: 8 })).status, 401)
  const events = (await admin(adminUrl, 'GET', '/api/v1/events')).json.events as Json[]
  t.same(
    events.map((e) => [e.actor, (e.to as Json).weight]),
    [
      ['alice', 5],
      ['bob.ci', 6],
      ['admin', 7],
    ],
  )
  t.match(String(events[0]!.reason), /alice/, 'the reason names the actor too')
})

t.test('the admin plane refuses a non-loopback address without a token', async (t) => {
  const base = { upstreams: { stable: 'http://127.0.0.1:9001' } }
  for (const host of ['0.0.0.0', '::', '10.1.2.3', '[::]']) {
    for (const extra of [{}, { token: '' }, { tokens: {} }]) {
      const result = configFromObject({ ...base, admin: { host, ...extra } })
      t.notOk(result.ok, `admin.host ${host} ${JSON.stringify(extra)} without a token is refused`)
      if (!result.ok) {
        const issue = result.error.find((i) => i.path === 'admin.host')
        t.ok(issue, `the issue is on admin.host (${result.error.map((i) => `${i.path}: ${i.message}`).join('; ')})`)
        t.match(issue?.message ?? '', /token/, 'and says a token is needed')
      }
    }
  }
  t.ok(configFromObject({ ...base, admin: { host: '0.0.0.0', token: 'sekret' } }).ok, '0.0.0.0 with a token is fine')
  t.ok(configFromObject({ ...base, admin: { host: '0.0.0.0', tokens: { alice: 't1' } } }).ok, '0.0.0.0 with a named token is fine')
  for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1']) t.ok(configFromObject({ ...base, admin: { host } }).ok, `${host} without a token is fine`)
})
