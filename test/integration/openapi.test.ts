/** GET /api/v1/openapi.json: every admin route is described, from the schemas the routes validate with, and real answers validate against it. */
import { Ajv } from 'ajv'
import t from 'tap'
import { admin, startApp } from '../helpers/app.js'
import { startUpstream } from '../helpers/upstreams.js'

interface Operation {
  readonly responses: Record<string, { readonly content?: Record<string, { readonly schema: object }> }>
  readonly requestBody?: { readonly content: Record<string, { readonly schema: object }> }
  readonly security?: unknown[]
}
type Doc = { openapi: string; info: { title: string }; paths: Record<string, Record<string, Operation>> }

t.test('the OpenAPI document describes every admin route, and real answers validate against it', async (t) => {
  const [stable, canary] = await Promise.all([startUpstream(t, 'stable'), startUpstream(t, 'canary')])
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const res = await fetch(`${adminUrl}/api/v1/openapi.json`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /application\/json/)
  const doc = (await res.json()) as Doc
  t.match(doc.openapi, /^3\.1\./, 'OpenAPI 3.1')
  t.equal(doc.info.title, 'canary-proxy admin API')
  const routes = [
    ['get', '/healthz'],
    ['get', '/readyz'],
    ['get', '/metrics'],
    ['get', '/api/v1/status'],
    ['get', '/api/v1/events'],
    ['get', '/api/v1/stream'],
    ['put', '/api/v1/weight'],
    ['post', '/api/v1/rollout/start'],
    ['post', '/api/v1/rollout/pause'],
    ['post', '/api/v1/rollout/resume'],
    ['post', '/api/v1/rollout/promote'],
    ['post', '/api/v1/rollout/abort'],
  ] as const
  for (const [method, path] of routes) t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`)
  t.same(Object.keys(doc.paths).sort(), routes.map(([, p]) => p).sort(), 'and nothing else (the 405 answers are not routes of their own)')
  t.ok(doc.paths['/api/v1/weight']?.put?.requestBody, 'the weight body is described')
  t.same(doc.paths['/api/v1/rollout/abort']?.post?.security, [{ bearer: [] }], 'changes name the bearer token')

  const ajv = new Ajv({ strict: false, allErrors: true })
  const schemaOf = (path: string, method: string, status: string): object => {
    const schema = doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema
    if (schema === undefined) throw new Error(`${method} ${path} ${status}: no JSON schema in the document`)
    return schema
  }
  const check = (what: string, schema: object, body: unknown): void => {
    const validate = ajv.compile(schema)
    t.ok(validate(body), `${what} validates${validate.errors ? `: ${ajv.errorsText(validate.errors)}` : ''}`)
  }
  check('GET /api/v1/status (idle)', schemaOf('/api/v1/status', 'get', '200'), (await admin(adminUrl, 'GET', '/api/v1/status')).json)
  const started = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(started.status, 200)
  check('POST /api/v1/rollout/start', schemaOf('/api/v1/rollout/start', 'post', '200'), started.json)
  const refused = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(refused.status, 409)
  check('a 409', schemaOf('/api/v1/rollout/start', 'post', '409'), refused.json)
  const bad = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 'half' })
  t.equal(bad.status, 400)
  check('a 400', schemaOf('/api/v1/weight', 'put', '400'), bad.json)
  check('PUT /api/v1/weight', schemaOf('/api/v1/weight', 'put', '200'), (await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 30 })).json)
  check('GET /api/v1/events', schemaOf('/api/v1/events', 'get', '200'), (await admin(adminUrl, 'GET', '/api/v1/events')).json)
  check('GET /readyz', schemaOf('/readyz', 'get', '200'), (await admin(adminUrl, 'GET', '/readyz')).json)
  t.equal((await fetch(`${adminUrl}/api/v1/openapi.json`, { method: 'POST' })).status, 405, 'read-only like the other GET paths')
})
