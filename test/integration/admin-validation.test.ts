/** Admin API input validation: what PUT /api/v1/weight and POST /api/v1/rollout/* accept, and that every refusal is a 400 naming the field and changes nothing. */
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

type Json = Record<string, unknown>

async function appWithCanary(t: Test, overrides: Json = {}): Promise<{ adminUrl: string; proxyUrl: string; stableUrl: string; canaryUrl: string }> {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false }, analysis: { interval: '10m', window: '10m' }, ...overrides })
  return { adminUrl, proxyUrl, stableUrl: stable.url, canaryUrl: canary.url }
}

async function status(adminUrl: string): Promise<Json> {
  const res = await admin(adminUrl, 'GET', '/api/v1/status')
  if (res.status !== 200) throw new Error(`status answered ${res.status}`)
  return res.json
}

async function events(adminUrl: string): Promise<unknown[]> {
  return (await admin(adminUrl, 'GET', '/api/v1/events')).json.events as unknown[]
}

/** Sends a raw body with a given content type (or none). */
async function raw(adminUrl: string, method: 'PUT' | 'POST', path: string, body: string | null, contentType: string | null): Promise<{ status: number; json: Json }> {
  const headers: Record<string, string> = {}
  if (contentType !== null) headers['content-type'] = contentType
  const res = await request(`${adminUrl}${path}`, { method, headers, body })
  const text = await res.body.text()
  return { status: res.statusCode, json: text === '' ? {} : (JSON.parse(text) as Json) }
}

/** Asserts a 400 whose message starts with "<field>: " and that status and events are exactly as before. */
async function assertRefused(t: Test, adminUrl: string, res: { status: number; json: Json }, field: string, label: string): Promise<void> {
  t.equal(res.status, 400, `${label}: 400`)
  const message = res.json.error
  t.type(message, 'string', `${label}: error is a message`)
  t.match(String(message), new RegExp(`^${field.replace(/\./g, '\\.')}: \\S`), `${label}: message names ${field} ("${String(message)}")`)
}

t.test('PUT /api/v1/weight: valid weights give paused at exactly that weight', async (t) => {
  const { adminUrl } = await appWithCanary(t)
  for (const weight of [0, 5, 0.5, 33.33, 100, 0.01, 99.99, 12.3]) {
    const res = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight })
    t.equal(res.status, 200, `weight ${weight}: 200`)
    t.equal(res.json.phase, 'paused', `weight ${weight}: paused`)
    t.equal(res.json.weight, weight, `weight ${weight}: weight as sent`)
    t.same(await status(adminUrl), res.json, `weight ${weight}: the answer is the status`)
  }
})

t.test('PUT /api/v1/weight: every two-decimal weight is taken exactly, however JSON spells it', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { app } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const put = async (payload: string): Promise<{ status: number; json: Json }> => {
    const res = await app.admin.inject({ method: 'PUT', url: '/api/v1/weight', payload, headers: { 'content-type': 'application/json' } })
    return { status: res.statusCode, json: JSON.parse(res.body) as Json }
  }
  // A spread of hundredths (a full 0..100 sweep takes minutes: each call persists state),
  // including ones whose binary value is just off: 0.07, 0.29, 0.57, 1.13, 4.35, 33.33, 57.01.
  const hundredths = new Set<number>([7, 29, 57, 113, 115, 201, 435, 820, 995, 1640, 3280, 3333, 5701, 6410, 9999, 10000])
  for (let i = 0; i <= 10000; i += 97) hundredths.add(i)
  let wrong = 0
  for (const i of hundredths) {
    const weight = i / 100
    const res = await put(`{"weight":${String(weight)}}`)
    if (res.status !== 200 || res.json.weight !== weight) {
      wrong++
      t.fail(`weight ${weight}: ${res.status} ${JSON.stringify(res.json)}`)
    }
  }
  t.equal(wrong, 0, `${hundredths.size} two-decimal weights accepted as sent`)
  for (const [text, weight] of [
    ['1E1', 10],
    ['50.0', 50],
    ['5e-1', 0.5],
    ['-0', 0],
    ['12.50', 12.5],
  ] as const) {
    const res = await put(`{"weight":${text}}`)
    t.equal(res.status, 200, `${text}: 200`)
    t.equal(res.json.weight, weight, `${text} is ${weight}`)
  }
})

t.test('PUT /api/v1/weight: invalid input is a 400 naming the field, and nothing changes', async (t) => {
  const { adminUrl } = await appWithCanary(t)
  const set = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 25 })
  t.equal(set.status, 200)
  const before = await status(adminUrl)
  const eventsBefore = await events(adminUrl)

  const cases: { label: string; body: unknown; field: string }[] = [
    { label: 'weight missing', body: {}, field: 'weight' },
    { label: 'weight missing, other field', body: { percent: 5 }, field: 'percent' },
    { label: 'string "50"', body: { weight: '50' }, field: 'weight' },
    { label: 'null', body: { weight: null }, field: 'weight' },
    { label: 'true', body: { weight: true }, field: 'weight' },
    { label: 'false', body: { weight: false }, field: 'weight' },
    { label: 'array', body: { weight: [5] }, field: 'weight' },
    { label: 'object', body: { weight: { value: 5 } }, field: 'weight' },
    { label: '-1', body: { weight: -1 }, field: 'weight' },
    { label: '-0.01', body: { weight: -0.01 }, field: 'weight' },
    { label: '100.01', body: { weight: 100.01 }, field: 'weight' },
    { label: '101', body: { weight: 101 }, field: 'weight' },
    { label: '1e9', body: { weight: 1e9 }, field: 'weight' },
    { label: '12.345 (three decimals)', body: { weight: 12.345 }, field: 'weight' },
    { label: '0.001', body: { weight: 0.001 }, field: 'weight' },
    { label: '33.333', body: { weight: 33.333 }, field: 'weight' },
    { label: '5.00000000001 (within float noise of 5)', body: '{"weight": 5.00000000001}', field: 'weight' },
    { label: '99.99999999999', body: '{"weight": 99.99999999999}', field: 'weight' },
    { label: '1e-11', body: '{"weight": 1e-11}', field: 'weight' },
    { label: '1e-7', body: '{"weight": 1e-7}', field: 'weight' },
    { label: '"NaN"', body: { weight: 'NaN' }, field: 'weight' },
    { label: '"Infinity"', body: { weight: 'Infinity' }, field: 'weight' },
    { label: '"5%"', body: { weight: '5%' }, field: 'weight' },
    { label: '""', body: { weight: '' }, field: 'weight' },
    { label: 'unknown extra field', body: { weight: 5, force: true }, field: 'force' },
    { label: 'non-object body []', body: [], field: 'body' },
    { label: 'non-object body [5]', body: [{ weight: 5 }], field: 'body' },
    { label: 'non-object body 5', body: 5, field: 'body' },
    { label: 'non-object body "5"', body: '"5"', field: 'body' },
    { label: 'body null', body: 'null', field: 'body' },
    { label: 'malformed JSON', body: '{"weight": 5', field: 'body' },
    { label: 'malformed JSON (NaN literal)', body: '{"weight": NaN}', field: 'body' },
    { label: 'malformed JSON (trailing comma)', body: '{"weight": 5,}', field: 'body' },
    { label: 'JSON overflow to Infinity', body: '{"weight": 1e400}', field: 'weight' },
  ]
  for (const c of cases) {
    const res = await admin(adminUrl, 'PUT', '/api/v1/weight', c.body)
    await assertRefused(t, adminUrl, res, c.field, c.label)
    t.same(await status(adminUrl), before, `${c.label}: status unchanged`)
  }

  // Empty bodies: with and without a JSON content type.
  for (const [label, body, type] of [
    ['empty body, application/json', '', 'application/json'],
    ['whitespace body, application/json', '  \n', 'application/json'],
    ['no body, no content type', null, null],
  ] as const) {
    const res = await raw(adminUrl, 'PUT', '/api/v1/weight', body, type)
    await assertRefused(t, adminUrl, res, 'weight', label)
    t.same(await status(adminUrl), before, `${label}: status unchanged`)
  }
  t.same(await events(adminUrl), eventsBefore, 'no audit event for any refused call')
})

t.test('PUT /api/v1/weight: curl -d style bodies (form content type carrying JSON) are read as JSON', async (t) => {
  const { adminUrl } = await appWithCanary(t)
  const form = await raw(adminUrl, 'PUT', '/api/v1/weight', '{"weight":7.5}', 'application/x-www-form-urlencoded')
  t.equal(form.status, 200)
  t.equal(form.json.weight, 7.5)
  t.equal(form.json.phase, 'paused')
  const text = await raw(adminUrl, 'PUT', '/api/v1/weight', '{"weight":8}', 'text/plain')
  t.equal(text.status, 200)
  t.equal(text.json.weight, 8)
  const charset = await raw(adminUrl, 'PUT', '/api/v1/weight', '{"weight":9}', 'application/json; charset=utf-8')
  t.equal(charset.status, 200)
  t.equal(charset.json.weight, 9)
  const none = await raw(adminUrl, 'PUT', '/api/v1/weight', '{"weight":10}', null)
  t.equal(none.status, 200, 'no content type at all')
  t.equal(none.json.weight, 10)
  // A real form body is not JSON: 400 naming the body, and the weight stays.
  const realForm = await raw(adminUrl, 'PUT', '/api/v1/weight', 'weight=50', 'application/x-www-form-urlencoded')
  await assertRefused(t, adminUrl, realForm, 'body', 'form-encoded weight=50')
  t.equal((await status(adminUrl)).weight, 10)
})

t.test('POST /api/v1/rollout/start: the canary URL is checked, 400 naming canary', async (t) => {
  const { adminUrl } = await appWithCanary(t)
  const before = await status(adminUrl)
  const cases: { label: string; body: unknown; field: string }[] = [
    { label: 'not a URL', body: { canary: 'not a url' }, field: 'canary' },
    { label: 'host only', body: { canary: '127.0.0.1:9002' }, field: 'canary' },
    { label: 'ftp://', body: { canary: 'ftp://127.0.0.1:9002' }, field: 'canary' },
    { label: 'file://', body: { canary: 'file:///etc/passwd' }, field: 'canary' },
    { label: 'user:pass', body: { canary: 'http://user:pass@127.0.0.1:9002' }, field: 'canary' },
    { label: 'user only', body: { canary: 'http://user@127.0.0.1:9002' }, field: 'canary' },
    { label: 'query', body: { canary: 'http://127.0.0.1:9002/?a=1' }, field: 'canary' },
    { label: 'empty string', body: { canary: '' }, field: 'canary' },
    { label: 'number', body: { canary: 9002 }, field: 'canary' },
    { label: 'null', body: { canary: null }, field: 'canary' },
    { label: 'unknown field', body: { canary: 'http://127.0.0.1:9002', weight: 5 }, field: 'weight' },
    { label: 'misspelt field', body: { canry: 'http://127.0.0.1:9002' }, field: 'canry' },
    { label: 'array body', body: [], field: 'body' },
    { label: 'malformed JSON', body: '{"canary":', field: 'body' },
  ]
  for (const c of cases) {
    const res = await admin(adminUrl, 'POST', '/api/v1/rollout/start', c.body)
    await assertRefused(t, adminUrl, res, c.field, `start ${c.label}`)
    if (c.field === 'canary') t.equal(res.json.field, 'canary', `start ${c.label}: field property`)
    t.same(await status(adminUrl), before, `start ${c.label}: status unchanged`)
  }
  t.same(await events(adminUrl), [], 'no audit events')
})

t.test('pause, resume, promote and abort refuse unknown fields before anything else', async (t) => {
  const { adminUrl } = await appWithCanary(t)
  const started = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(started.status, 200)
  t.equal(started.json.phase, 'progressing')
  const before = await status(adminUrl)
  for (const action of ['pause', 'resume', 'promote', 'abort']) {
    const res = await admin(adminUrl, 'POST', `/api/v1/rollout/${action}`, { now: true })
    await assertRefused(t, adminUrl, res, 'now', `${action} with an unknown field`)
    const arr = await admin(adminUrl, 'POST', `/api/v1/rollout/${action}`, [])
    await assertRefused(t, adminUrl, arr, 'body', `${action} with an array body`)
    const bad = await admin(adminUrl, 'POST', `/api/v1/rollout/${action}`, '{')
    await assertRefused(t, adminUrl, bad, 'body', `${action} with malformed JSON`)
    t.same(await status(adminUrl), before, `${action}: status unchanged`)
  }
  const badReason = await admin(adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 5 })
  await assertRefused(t, adminUrl, badReason, 'reason', 'abort with a numeric reason')
  t.same(await status(adminUrl), before)

  // Bodies that are fine: none at all (curl -X POST), {} and an abort reason.
  const pause = await raw(adminUrl, 'POST', '/api/v1/rollout/pause', null, null)
  t.equal(pause.status, 200, 'pause with no body')
  t.equal(pause.json.phase, 'paused')
  const resume = await raw(adminUrl, 'POST', '/api/v1/rollout/resume', '', 'application/json')
  t.equal(resume.status, 200, 'resume with an empty JSON body')
  t.equal(resume.json.phase, 'progressing')
  const abort = await admin(adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 'checkout errors in the canary' })
  t.equal(abort.status, 200)
  t.equal(abort.json.phase, 'aborted')
  t.equal(abort.json.reason, 'checkout errors in the canary')
})
