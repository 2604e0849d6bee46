/** Admin API HTTP surface: probes, 405 with Allow on a mutation path, 404 JSON on unknown paths, error bodies as JSON. */
import t from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

type Json = Record<string, unknown>

async function call(base: string, method: string, path: string, body?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const res = await request(`${base}${path}`, { method: method as 'GET', ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) })
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
}

t.test('/healthz and /readyz', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { adminUrl, app } = await startApp(t, { upstreams: { stable: stable.url } })
  const health = await call(adminUrl, 'GET', '/healthz')
  t.equal(health.status, 200)
  const ready = await call(adminUrl, 'GET', '/readyz')
  t.equal(ready.status, 200, 'ready while listening')
  t.equal(app.readiness(), 'ready')
})

t.test('/readyz answers 503 at once while draining; /healthz stays 200', async (t) => {
  const stable = await startUpstream(t, 'stable')
  stable.behave({ delayMs: 400 })
  const { adminUrl, proxyUrl, app } = await startApp(t, { upstreams: { stable: stable.url } })
  // One request in flight keeps the drain going long enough to look.
  const inFlight = request(`${proxyUrl}/slow`).then(async (res) => {
    await res.body.dump()
    return res.statusCode
  })
  while (stable.received.length === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  const closing = app.close()
  const ready = await call(adminUrl, 'GET', '/readyz')
  t.equal(ready.status, 503, 'not ready while draining')
  t.equal((await call(adminUrl, 'GET', '/healthz')).status, 200, 'alive while draining')
  t.equal(await inFlight, 200, 'the request in flight finished')
  await closing
})

t.test('a mutation path with the wrong method: 405 with Allow', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const cases: [string, string, string][] = [
    ['GET', '/api/v1/weight', 'PUT'],
    ['POST', '/api/v1/weight', 'PUT'],
    ['DELETE', '/api/v1/weight', 'PUT'],
    ['PATCH', '/api/v1/weight', 'PUT'],
    ['GET', '/api/v1/rollout/start', 'POST'],
    ['PUT', '/api/v1/rollout/pause', 'POST'],
    ['DELETE', '/api/v1/rollout/abort', 'POST'],
    ['GET', '/api/v1/rollout/promote', 'POST'],
    ['GET', '/api/v1/rollout/resume', 'POST'],
  ]
  for (const [method, path, allow] of cases) {
    const res = await call(adminUrl, method, path, method === 'GET' || method === 'DELETE' ? undefined : '{"weight":5}')
    t.equal(res.status, 405, `${method} ${path} -> 405`)
    t.equal(res.headers.allow, allow, `${method} ${path}: Allow: ${allow}`)
    const json = JSON.parse(res.text) as Json
    t.type(json.error, 'string', `${method} ${path}: JSON error`)
  }
  const head = await call(adminUrl, 'HEAD', '/api/v1/weight')
  t.equal(head.status, 405, 'HEAD on a mutation path -> 405')
  t.equal(head.headers.allow, 'PUT')
})

t.test('read-only paths asked with another method: 405 with Allow', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  for (const [method, path] of [
    ['POST', '/api/v1/status'],
    ['PUT', '/api/v1/events'],
    ['DELETE', '/metrics'],
    ['POST', '/healthz'],
    ['POST', '/readyz'],
    ['POST', '/'],
  ] as const) {
    const res = await call(adminUrl, method, path, method === 'DELETE' ? undefined : '{}')
    t.equal(res.status, 405, `${method} ${path} -> 405`)
    t.equal(res.headers.allow, 'GET, HEAD')
    t.match(JSON.parse(res.text) as Json, { error: `${method} is not allowed here; use GET ${path}`, code: 'CPX_ERR_ADMIN_METHOD_NOT_ALLOWED' })
  }
  t.equal((await call(adminUrl, 'GET', '/api/v1/status')).status, 200, 'GET still works')
})

t.test('unknown paths: 404 JSON', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  for (const [method, path] of [
    ['GET', '/nope'],
    ['GET', '/api/v1/statu'],
    ['POST', '/api/v1/rollout/restart'],
    ['PUT', '/api/v2/weight'],
    ['GET', '/api/v1/status/extra'],
  ] as const) {
    const res = await call(adminUrl, method, path, method === 'GET' ? undefined : '{}')
    t.equal(res.status, 404, `${method} ${path} -> 404`)
    t.match(String(res.headers['content-type']), /^application\/json/, `${method} ${path}: JSON`)
    const json = JSON.parse(res.text) as Json
    t.type(json.error, 'string')
    t.equal(json.code, 'CPX_ERR_ADMIN_NOT_FOUND')
  }
})

t.test('every error answer is JSON with error and code', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const checks: [string, string, string | undefined, number][] = [
    ['PUT', '/api/v1/weight', '{"weight":-1}', 400],
    ['PUT', '/api/v1/weight', '{', 400],
    ['POST', '/api/v1/rollout/resume', '{}', 409],
    ['PUT', '/api/v1/weight', `{"weight":5,"pad":"${'x'.repeat(70 * 1024)}"}`, 413],
  ]
  for (const [method, path, body, status] of checks) {
    const res = await call(adminUrl, method, path, body)
    t.equal(res.status, status, `${method} ${path} -> ${status}`)
    t.match(String(res.headers['content-type']), /^application\/json/)
    const json = JSON.parse(res.text) as Json
    t.type(json.error, 'string')
    t.type(json.code, 'string')
  }
})
