/** The admin plane: probes, /metrics, the JSON API that drives rollouts, and the dashboard, on their own listener. */
import swagger from '@fastify/swagger'
import fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { ErrorBodySchema, EventsViewSchema, StatusViewSchema, type EventView, type StatusView } from '../api/wire.js'
import { expectedKeyword } from '../core/schema-errors.js'
import { CanaryProxyError, isErrorCode, messageOf, statusOf, type ErrorCode } from '../core/errors.js'
import { isLoopbackHost, upstreamUrlProblem, weightProblem } from '../core/domain.js'
import type { OperatorEvent } from '../rollout/phase.js'
import { TokenAuth } from './auth.js'
import { dashboardHtml } from './dashboard.js'
import { bodySchemas, describeValidation } from './schemas.js'
import { streamRoutes, type StreamOptions } from './stream.js'

export type Readiness = 'starting' | 'ready' | 'draining'

/** What the admin plane may do with the rollout: read its status, and hand an operator action to the machine. */
export interface RolloutControl {
  status(): StatusView
  /** Resolves once the change is durable; rejects when it is applied but could not be saved. */
  act(event: OperatorEvent, actor: string): Promise<{ readonly ok: true; readonly status: StatusView } | { readonly ok: false; readonly conflict: string }>
  /** The recent audit events, oldest first (from a shared store: a promise, rejected with a coded error when it cannot be read). */
  events(): readonly EventView[] | Promise<readonly EventView[]>
  /** What the stream replays at connect (read synchronously): the recent events this process knows (among replicas, every replica's as relayed so far); defaults to events() when that is a list. */
  localEvents?(): readonly EventView[]
}

export interface AdminDeps {
  readonly control: RolloutControl
  /** GET /metrics: a registry, or anything that formats like one (the sum of listen.workers' registries). */
  readonly registry: Pick<Registry, 'contentType' | 'metrics'>
  readonly tokens: ReadonlyMap<string, string>
  readonly readiness: () => Readiness
  readonly log: Logger
  /** GET /api/v1/stream: the feed to follow, the analysis interval, the clock (its status and events are the control's). */
  readonly stream: Pick<StreamOptions, 'subscribe' | 'intervalMs' | 'clock'> & Partial<Pick<StreamOptions, 'limits'>>
}

export async function createAdminServer(deps: AdminDeps): Promise<FastifyInstance> {
  const { control, registry, readiness } = deps
  const auth = new TokenAuth(deps.tokens)
  const app = fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // Fastify's defaults coerce "50" into 50 and silently drop unknown fields;
    // the admin API must refuse both with a 400 naming the field.
    ajv: {
      // allErrors: an unknown field is reported even when a required one is also missing.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: true, verbose: true },
      plugins: [expectedKeyword],
    },
    return503OnClosing: false,
  })
  // The OpenAPI document is generated from the schemas the routes validate and serialise with (GET /api/v1/openapi.json).
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'canary-proxy admin API', version: API_VERSION, description: 'Drives the rollout: status, events, the live stream, weight and rollout actions (README "Admin API").' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'admin.token / admin.tokens; required for every change when set' } } },
    },
  })

  // Any content type is read as JSON: `curl -d '{"weight":5}'` sends
  // application/x-www-form-urlencoded, and an operator should not need -H.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    const text = String(body)
    // An empty body is no fields at all, like no body: see the preValidation hook.
    if (text.trim() === '') return done(null, {})
    try {
      done(null, JSON.parse(text))
    } catch (error) {
      done(new CanaryProxyError('CPX_ERR_ADMIN_BAD_INPUT', { detail: `body: malformed JSON (${(error as Error).message})` }), undefined)
    }
  })

  app.setErrorHandler((error: Error & { validation?: unknown; statusCode?: number; code?: string }, _request, reply) => {
    if (Array.isArray(error.validation)) {
      const { field, message } = describeValidation(error.validation)
      return sendError(reply, 'CPX_ERR_ADMIN_BAD_INPUT', message, field)
    }
    // Classified by code, never by class: the error may come from any copy of our modules.
    if (typeof error.code === 'string' && isErrorCode(error.code)) return sendError(reply, error.code, error.message, (error as { field?: unknown }).field as string | undefined)
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 'CPX_ERR_ADMIN_PAYLOAD_TOO_LARGE', messageOf('CPX_ERR_ADMIN_PAYLOAD_TOO_LARGE', { limit: '64 KiB' }))
    // Any other client error fastify detects (bad content length, …) keeps its status and message under our code.
    if (typeof error.statusCode === 'number' && error.statusCode < 500) return reply.code(error.statusCode).send({ error: error.message, code: 'CPX_ERR_ADMIN_BAD_INPUT' })
    deps.log.error({ err: error }, 'admin request failed')
    return sendError(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', `internal error: ${error.message}`)
  })

  app.setNotFoundHandler((request, reply) => {
    // A read-only path asked with another method gets 405 and the method to use, as the mutations do.
    const path = request.url.split('?', 1)[0] ?? ''
    if (READ_ONLY_PATHS.has(path)) {
      return sendError(reply.header('allow', 'GET, HEAD'), 'CPX_ERR_ADMIN_METHOD_NOT_ALLOWED', messageOf('CPX_ERR_ADMIN_METHOD_NOT_ALLOWED', { method: request.method, use: `GET ${path}` }))
    }
    return sendError(reply, 'CPX_ERR_ADMIN_NOT_FOUND', messageOf('CPX_ERR_ADMIN_NOT_FOUND', { method: request.method, url: request.url }))
  })

  const probe = (description: string) => ({ schema: { description, response: { 200: ProbeBodySchema, 503: ProbeBodySchema } } })
  app.get('/healthz', { schema: { description: 'Liveness: 200 while the process runs.', response: { 200: ProbeBodySchema } } }, async () => ({ status: 'ok' }))
  app.get('/readyz', probe('Readiness: 200 while ready to proxy, 503 while starting or draining.'), async (_request, reply) => {
    const state = readiness()
    return reply.code(state === 'ready' ? 200 : 503).send({ status: state })
  })
  app.get('/metrics', { schema: { description: 'Prometheus text exposition (README "Metrics").', produces: ['text/plain'] } }, async (_request, reply) => {
    const text = await registry.metrics()
    return reply.type(registry.contentType).send(text)
  })
  app.get('/api/v1/status', { schema: { description: 'The rollout as it stands.', response: { 200: StatusViewSchema } } }, async () => control.status())
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  // Every admin answer: never sniffed as another type, never framed (clickjacking of the dashboard's buttons).
  app.addHook('onSend', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('content-security-policy', "frame-ancestors 'none'")
    reply.header('referrer-policy', 'no-referrer')
  })
  app.get(
    '/api/v1/events',
    {
      schema: {
        description: 'The recent audit events, oldest first (503 with state.redis while Redis cannot be reached).',
        querystring: { type: 'object', properties: { limit: { type: 'string', description: 'only the last N events (a whole number, 1 or more)' } } },
        response: { 200: EventsViewSchema, 400: ErrorBodySchema, 503: ErrorBodySchema },
      },
    },
    async (request) => {
    const events = await control.events()
    const raw = (request.query as Record<string, unknown>).limit
    if (raw === undefined) return { events }
    const limit = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN
    if (!(limit >= 1)) throw new BadField('limit', `must be a whole number of events, 1 or more (got ${JSON.stringify(raw)})`)
    return { events: events.slice(-limit) }
    },
  )
  void app.register(streamRoutes, { ...deps.stream, status: () => control.status(), recentEvents: () => control.localEvents?.() ?? listed(control.events()) })
  const page = dashboardHtml()
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page))

  /** Every mutating call: auth first (401/403), then body validation (400), then the machine (409 when refused). */
  const mutation = (method: 'PUT' | 'POST', url: string, schema: object, description: string, toAction: (body: Record<string, unknown>) => OperatorEvent): void => {
    const refused = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 409: ErrorBodySchema, 503: ErrorBodySchema }
    app.route({
      method,
      url,
      schema: { description, body: schema, security: [{ bearer: [] }], response: { 200: StatusViewSchema, ...refused } },
      // No body at all (`curl -X POST .../pause`, the CLI's pause/resume/promote)
      // means no fields: validate it as {}, so `weight` is named as required
      // and the bodiless calls work. A JSON `null` body stays null and is refused.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {}
      },
      onRequest: async (request, reply) => {
        // Once draining, the state is being flushed for the last time: a change now could be lost.
        if (readiness() === 'draining') return sendError(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', 'canary-proxy is shutting down; send the change to the next instance')
        const crossSite = crossSiteProblem(request.headers, auth.required)
        if (crossSite !== null) return sendError(reply, 'CPX_ERR_ADMIN_CROSS_SITE', messageOf('CPX_ERR_ADMIN_CROSS_SITE', { detail: crossSite }))
        const result = auth.check(request.headers.authorization)
        if (!result.ok) {
          if (result.status === 401) reply.header('www-authenticate', 'Bearer realm="canary-proxy"')
          return sendError(reply, result.status === 401 ? 'CPX_ERR_ADMIN_UNAUTHORIZED' : 'CPX_ERR_ADMIN_FORBIDDEN', messageOf(result.status === 401 ? 'CPX_ERR_ADMIN_UNAUTHORIZED' : 'CPX_ERR_ADMIN_FORBIDDEN'))
        }
        actors.set(request, result.actor)
        return undefined
      },
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const action = toAction((request.body ?? {}) as Record<string, unknown>)
        let result
        try {
          result = await control.act(action, actors.get(request) ?? 'admin')
        } catch (error) {
          // A shared state that cannot be reached refuses the change (nothing applied) and says so; a state file that cannot be written keeps it applied.
          if ((error as { code?: unknown }).code === 'CPX_ERR_ADMIN_UNAVAILABLE') return sendError(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', (error as Error).message)
          return sendError(reply, 'CPX_ERR_ADMIN_UNAVAILABLE', `the change is applied but the state could not be saved, so it would not survive a restart: ${(error as Error).message}`)
        }
        if (!result.ok) return sendError(reply, 'CPX_ERR_ADMIN_CONFLICT', result.conflict)
        return reply.code(200).send(result.status)
      },
    })
    // A mutation sent with another method gets 405 and the method to use, not 404.
    app.route({
      method: ['GET', 'HEAD', 'DELETE', 'PATCH', method === 'PUT' ? 'POST' : 'PUT'],
      url,
      schema: { hide: true },
      handler: async (request, reply) =>
        sendError(reply.header('allow', method), 'CPX_ERR_ADMIN_METHOD_NOT_ALLOWED', messageOf('CPX_ERR_ADMIN_METHOD_NOT_ALLOWED', { method: request.method, use: `${method} ${url}` })),
    })
  }
  const actors = new WeakMap<FastifyRequest, string>()

  mutation('PUT', '/api/v1/weight', bodySchemas.weight, 'Sets the canary weight (0..100, at most two decimals); the phase becomes paused.', (body) => {
    const problem = weightProblem(body.weight)
    if (problem !== null) throw new BadField('weight', problem)
    return { type: 'setWeight', weight: Number(body.weight) }
  })
  mutation('POST', '/api/v1/rollout/start', bodySchemas.start, 'Starts a rollout of the configured canary, or of the one given.', (body) => {
    const canary = typeof body.canary === 'string' ? body.canary : null
    const problem = canary === null ? null : upstreamUrlProblem(canary)
    if (problem !== null) throw new BadField('canary', `${problem} (got ${JSON.stringify(canary)})`)
    return { type: 'start', canary }
  })
  mutation('POST', '/api/v1/rollout/pause', bodySchemas.pause, 'Pauses a progressing or baking rollout where it is (checks keep running).', () => ({ type: 'pause' }))
  mutation('POST', '/api/v1/rollout/resume', bodySchemas.resume, 'Resumes a paused rollout.', () => ({ type: 'resume' }))
  mutation('POST', '/api/v1/rollout/promote', bodySchemas.promote, 'Promotes the canary at once: it becomes the stable.', () => ({ type: 'promote' }))
  mutation('POST', '/api/v1/rollout/abort', bodySchemas.abort, 'Aborts the rollout: weight 0, phase aborted.', (body) => ({ type: 'abort', reason: typeof body.reason === 'string' ? body.reason : null }))
  return app
}

/** Bad input found after schema validation (a check JSON schema cannot express), naming its field like a schema error. */
class BadField extends CanaryProxyError {
  readonly field: string

  constructor(field: string, what: string) {
    super('CPX_ERR_ADMIN_BAD_INPUT', { detail: `${field}: ${what}` })
    this.field = field
  }
}

/**
 * A browser lets any page POST a text/plain body to loopback without asking
 * first, so without this a page the operator merely visits could abort or
 * promote a rollout. Browsers name the page's origin (Origin, Sec-Fetch-Site);
 * command-line clients send neither. DNS rebinding makes a foreign page
 * same-origin with a name the attacker controls, so without a token (a
 * loopback-only admin) the Host must also be a loopback name. With a token a
 * browser cannot add the Authorization header cross-site without a CORS
 * preflight, which this API never grants.
 */
export function crossSiteProblem(headers: FastifyRequest['headers'], tokenRequired: boolean): string | null {
  const site = headers['sec-fetch-site']
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site is ${site}`
  const host = headers.host ?? ''
  const origin = headers.origin
  if (typeof origin === 'string') {
    let originHost: string
    try {
      originHost = new URL(origin).host
    } catch {
      return `Origin ${origin} is not a URL`
    }
    if (originHost !== host) return `Origin ${origin} is not this admin API (${host})`
  }
  if (!tokenRequired && !isLoopbackHost(host)) return `Host ${host} is not a loopback name; without admin.token the admin API only answers to localhost, 127.0.0.1 or [::1]`
  return null
}

/** The admin plane's GET paths: another method there is a 405, not a 404. */
const READ_ONLY_PATHS = new Set(['/', '/healthz', '/readyz', '/metrics', '/api/v1/status', '/api/v1/events', '/api/v1/stream', '/api/v1/openapi.json'])

/** The version of the admin API the OpenAPI document describes (the /api/v1 paths). */
const API_VERSION = '1.0.0'

const ProbeBodySchema = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'], additionalProperties: false } as const

function sendError(reply: FastifyReply, code: ErrorCode, message: string, field?: string): FastifyReply {
  return reply.code(statusOf(code)).send(field === undefined ? { error: message, code } : { error: message, code, field })
}

/** A list as it is; a shared trail (a promise) has nothing to replay synchronously. */
function listed(events: readonly EventView[] | Promise<readonly EventView[]>): readonly EventView[] {
  return Array.isArray(events) ? events : []
}
