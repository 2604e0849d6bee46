/** Reads a config: YAML -> ${ENV} substitution -> schema with defaults -> semantic checks -> Config, or every problem found. */
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { Ajv } from 'ajv'
import { parseDocument } from 'yaml'
import { parseBytes } from '../core/bytes.js'
import { hasAtMostTwoDecimals, isLoopbackHost, upstreamUrlProblem, weightProblem } from '../core/domain.js'
import { parseDuration } from '../core/duration.js'
import { expectedKeyword, schemaProblems } from '../core/schema-errors.js'
import { err, ok, type Result } from '../core/result.js'
import { parseSourceRule } from '../routing/source-rule.js'
import { redisUrlProblem } from '../state/redis-url.js'
import { ENDPOINT_VARIABLES, QUERY_VARIABLES, renderTemplate, templateValues, unknownVariables } from '../probes/template.js'
import { substituteEnv } from './env.js'
import type { ConfigIssue } from './issues.js'
import { ConfigSchema, GATE_WEBHOOK_TYPES, type Config, type ExternalChecksConfig, type RawConfig, type WebhookConfig } from './schema.js'

/** analysis.falseRollbackRate when neither it nor its deprecated alias analysis.confidence is set. */
export const DEFAULT_FALSE_ROLLBACK_RATE = 0.001

/** The keys a step object takes. */
const STEP_KEYS = ['weight', 'duration', 'pause']

/** A step's weight, or null (with the problem recorded) when it is not one: 0 < weight <= 100, at most two decimals. */
function stepWeight(weight: unknown, path: string, issues: ConfigIssue[]): number | null {
  if (typeof weight !== 'number' || !Number.isFinite(weight)) {
    issues.push({ path, message: `must be a number, 0 < weight <= 100 (got ${JSON.stringify(weight)})` })
    return null
  }
  // The words of the schema's own range errors, as the SPEC quotes them (`rollout.steps[1]: must be <= 100`).
  const problem = weight > 100 ? "must be <= 100" : weight <= 0 ? "must be > 0" : hasAtMostTwoDecimals(weight) ? null : weightProblem(weight, { positive: true })
  if (problem !== null) {
    issues.push({ path, message: problem })
    return null
  }
  return weight
}

export type ConfigResult = Result<Config, readonly ConfigIssue[]>
type Env = Readonly<Record<string, string | undefined>>

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, verbose: true })
expectedKeyword(ajv)
const validateSchema = ajv.compile<RawConfig>(ConfigSchema)

export async function loadConfigFile(file: string, env: Env = process.env): Promise<ConfigResult> {
  const text = await readConfigFile(file)
  return text.ok ? parseConfigText(text.value, env) : text
}

/** The config file's text (what listen.workers' workers parse the same), or why it cannot be read. */
export async function readConfigFile(file: string): Promise<Result<string, readonly ConfigIssue[]>> {
  try {
    return ok(await readFile(file, 'utf8'))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(error)})`
    return err([{ path: '(file)', message: `${file}: ${why}` }])
  }
}

export function parseConfigText(text: string, env: Env = process.env): ConfigResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    return err(
      // The first few are enough: one syntax error tends to cascade into many.
      doc.errors.slice(0, 3).map((e) => {
        const at = e.linePos?.[0]
        const what = (e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
        return { path: '(file)', message: `YAML syntax error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${what}` }
      }),
    )
  }
  const envIssues = substituteEnv(doc, env)
  const data: unknown = doc.toJS() ?? {}
  const result = configFromObject(data)
  // An unset variable leaves an empty value behind; its own line says so, so
  // the schema's complaint about the same key ("must not be empty") is dropped.
  const reported = new Set(envIssues.map((i) => i.path))
  if (envIssues.length > 0) return err([...envIssues, ...(result.ok ? [] : result.error.filter((i) => !reported.has(i.path)))])
  return result
}

/** Validates an already-parsed config object (the YAML's data, or one built in code by the demo and tests). */
export function configFromObject(input: unknown): ConfigResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return err([{ path: '(root)', message: 'must be a mapping of keys (the config file is empty or not a YAML mapping)' }])
  }
  const data = coerceToStrings(ConfigSchema, withoutNulls(structuredClone(input))) as Record<string, unknown>
  const valid = validateSchema(data)
  const issues: ConfigIssue[] = valid ? [] : schemaProblems(validateSchema.errors ?? [])
  // Semantic checks run even when the schema failed, so one run reports every
  // problem; a path already reported by the schema is not reported twice.
  const reported = new Set(issues.map((i) => i.path))
  for (const issue of semanticIssues(data)) if (!reported.has(issue.path)) issues.push(issue)
  if (!valid || issues.length > 0) return err(issues)
  return ok(resolve(data as RawConfig))
}

/**
 * YAML reads `token: 12345` as a number; where the schema wants text, a number
 * or boolean is the text the user wrote. Only that direction is coerced (ajv's
 * coerceTypes would also turn `port: true` into 1).
 */
function coerceToStrings(schema: unknown, value: unknown): unknown {
  const s = schema as { type?: string; properties?: Record<string, unknown>; items?: unknown; patternProperties?: Record<string, unknown> }
  if (s.type === 'string' && (typeof value === 'number' || typeof value === 'boolean')) return String(value)
  if (s.type === 'object' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const out = value as Record<string, unknown>
    const patternSchema = s.patternProperties === undefined ? undefined : Object.values(s.patternProperties)[0]
    for (const key of Object.keys(out)) {
      const child = s.properties?.[key] ?? patternSchema
      if (child !== undefined) out[key] = coerceToStrings(child, out[key])
    }
    return out
  }
  if (s.type === 'array' && Array.isArray(value)) return value.map((v) => coerceToStrings(s.items, v))
  return value
}

/** `key:` with nothing after it means "not set", so its default applies (and an optional check stays off). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v)
    return out
  }
  return value
}

/**
 * Checks a schema cannot express: URLs, step order, cross-field rules. It reads
 * data the schema may have refused, so every field is type-guarded; defaults
 * are already filled in wherever the schema could apply them.
 */
function semanticIssues(data: Record<string, unknown>): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const section = (name: string): Record<string, unknown> => {
    const value = data[name]
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {}
  }
  const upstreams = section('upstreams')
  for (const side of ['stable', 'canary'] as const) {
    const value = upstreams[side]
    if (typeof value !== 'string' || value === '' && side === 'canary') continue
    const problem = upstreamUrlProblem(value)
    if (problem !== null) issues.push({ path: `upstreams.${side}`, message: `${problem} (got ${JSON.stringify(value)})` })
  }

  const steps = section('rollout').steps
  if (Array.isArray(steps)) {
    const weights = steps.map((step: unknown, i): number | null => {
      const path = `rollout.steps[${i}]`
      let weight: unknown = step
      if (typeof step === 'object' && step !== null && !Array.isArray(step)) {
        const fields = step as Record<string, unknown>
        for (const key of Object.keys(fields)) {
          if (!STEP_KEYS.includes(key)) issues.push({ path: `${path}.${key}`, message: `unknown key; expected one of: ${STEP_KEYS.join(', ')}` })
        }
        weight = fields.weight
        if (weight === undefined) {
          issues.push({ path: `${path}.weight`, message: 'is required (the canary weight of this step, 0 < weight <= 100)' })
          return null
        }
        const duration = fields.duration
        if (duration !== undefined && (typeof duration !== 'string' || parseDuration(duration) === null)) {
          issues.push({ path: `${path}.duration`, message: `must be a duration such as 250ms, 30s or 2m (got ${JSON.stringify(duration)})` })
        } else if (duration !== undefined && parseDuration(duration) === 0) {
          issues.push({ path: `${path}.duration`, message: 'must be greater than 0' })
        }
        if (fields.pause !== undefined && typeof fields.pause !== 'boolean') issues.push({ path: `${path}.pause`, message: `must be true or false (got ${JSON.stringify(fields.pause)})` })
        return stepWeight(weight, `${path}.weight`, issues)
      }
      if (typeof step !== 'number') {
        issues.push({ path, message: `must be a weight (a number, 0 < weight <= 100) or a step object {weight, duration?, pause?} (got ${JSON.stringify(step)})` })
        return null
      }
      return stepWeight(weight, path, issues)
    })
    weights.forEach((weight, i) => {
      const before = weights[i - 1]
      // An out-of-range step is reported once, not again as out of order.
      if (weight !== null && before !== null && before !== undefined && weight <= before) {
        issues.push({ path: `rollout.steps[${i}]`, message: `must be greater than the step before it (${before}); steps go up in order` })
      }
    })
  }

  const buckets = section('metrics').buckets
  if (Array.isArray(buckets)) {
    buckets.forEach((bound: unknown, i) => {
      if (typeof bound !== 'number' || bound <= 0 || !Number.isFinite(bound)) return
      const before: unknown = buckets[i - 1]
      if (typeof before === 'number' && before > 0 && Number.isFinite(before) && bound <= before) {
        issues.push({ path: `metrics.buckets[${i}]`, message: `must be greater than the bucket before it (${before}); buckets go up in order (got ${bound})` })
      }
    })
  }

  const ms = (value: unknown): number | null => (typeof value === 'string' ? parseDuration(value) : null)
  const analysis = section('analysis')
  const interval = ms(analysis.interval)
  const window = ms(analysis.window)
  if (interval === 0) issues.push({ path: 'analysis.interval', message: 'must be greater than 0' })
  if (window === 0) issues.push({ path: 'analysis.window', message: 'must be greater than 0' })
  else if (window !== null && interval !== null && window < interval) issues.push({ path: 'analysis.window', message: `must be at least analysis.interval (${String(analysis.interval)})` })
  if (typeof analysis.confidence === 'number' && typeof analysis.falseRollbackRate === 'number') {
    issues.push({ path: 'analysis.confidence', message: 'is the deprecated alias of analysis.falseRollbackRate (read as 1 - confidence); set only analysis.falseRollbackRate' })
  }
  const routing = section('routing')
  for (const key of ['connectTimeout', 'responseTimeout']) {
    if (ms(routing[key]) === 0) issues.push({ path: `routing.${key}`, message: 'must be greater than 0' })
  }
  const overrideFrom = routing.overrideFrom
  if (Array.isArray(overrideFrom)) {
    overrideFrom.forEach((rule: unknown, i) => {
      if (typeof rule === 'string' && parseSourceRule(rule) === null) {
        issues.push({ path: `routing.overrideFrom[${i}]`, message: `must be a CIDR such as 10.0.0.0/8 or ::1/128, or one address (got ${JSON.stringify(rule)})` })
      }
    })
  }
  const listen = section('listen')
  for (const key of ['headersTimeout', 'requestTimeout', 'lingerTimeout']) {
    if (ms(listen[key]) === 0) issues.push({ path: `listen.${key}`, message: 'must be greater than 0' })
  }
  const headersTimeout = ms(listen.headersTimeout)
  const requestTimeout = ms(listen.requestTimeout)
  if (headersTimeout !== null && requestTimeout !== null && requestTimeout > 0 && headersTimeout > requestTimeout) {
    issues.push({ path: 'listen.headersTimeout', message: `must be at most listen.requestTimeout (${String(listen.requestTimeout)})` })
  }
  if (ms(section('listen').bodyTimeout) === 0) issues.push({ path: 'listen.bodyTimeout', message: 'must be greater than 0' })

  const admin = section('admin')
  const tokens = admin.tokens
  const hasToken = (typeof admin.token === 'string' && admin.token !== '') || (tokens !== null && typeof tokens === 'object' && Object.keys(tokens).length > 0)
  if (!hasToken && typeof admin.host === 'string' && !isLoopbackHost(admin.host)) {
    issues.push({ path: 'admin.host', message: `refusing to serve the admin API on non-loopback address ${admin.host} without admin.token; set a token or listen on 127.0.0.1` })
  }
  const redis = section('state').redis
  if (typeof redis === 'string' && redis !== '') {
    const problem = redisUrlProblem(redis)
    if (problem !== null) issues.push({ path: 'state.redis', message: problem })
  }
  const listenPort = section('listen').port
  if (typeof listenPort === 'number' && listenPort !== 0 && listenPort === admin.port) {
    issues.push({ path: 'admin.port', message: `must differ from listen.port (${listenPort})` })
  }
  issues.push(...externalCheckIssues(analysis), ...webhookIssues(data.webhooks))
  return issues
}

const record = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {})
const durationMs = (value: unknown): number | null => (typeof value === 'string' ? parseDuration(value) : null)

/** A URL that names where to send or fetch something (not an upstream): http(s), a host, no credentials in it. */
function endpointUrlProblem(value: string, allowQuery: boolean): string | null {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return 'must be an http:// or https:// URL'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must use http:// or https://, not ${url.protocol}//`
  if (url.username !== '' || url.password !== '') return 'must not contain a user name or password (send credentials in headers, which are never logged)'
  if (!allowQuery && (url.search !== '' || url.hash !== '')) return 'must not contain a query or fragment'
  return null
}

/** `analysis.resources`, `analysis.prometheus`, `analysis.checks`: what the schema cannot say. */
function externalCheckIssues(analysis: Record<string, unknown>): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  // Example values stand in for the upstreams when the templates are tried.
  const example = templateValues({ stableUrl: 'http://stable.test:9001', canaryUrl: 'http://canary.test:9002' }, { stable: 'stable-.*', canary: 'canary-.*' }, 1000)
  if (analysis.resources !== undefined) {
    const r = record(analysis.resources)
    const interval = durationMs(r.interval)
    const timeout = durationMs(r.timeout)
    if (interval === 0) issues.push({ path: 'analysis.resources.interval', message: 'must be greater than 0' })
    if (timeout === 0) issues.push({ path: 'analysis.resources.timeout', message: 'must be greater than 0' })
    else if (timeout !== null && interval !== null && interval > 0 && timeout > interval) issues.push({ path: 'analysis.resources.timeout', message: `must be at most analysis.resources.interval (${String(r.interval)})` })
    if (!['maxCpuPerRequestRatio', 'maxMemoryRatio', 'maxMemory', 'maxMemoryGrowthPerMinute'].some((k) => r[k] !== undefined)) {
      issues.push({ path: 'analysis.resources', message: 'sets no check: add at least one of maxCpuPerRequestRatio, maxMemoryRatio, maxMemory, maxMemoryGrowthPerMinute' })
    }
    for (const key of ['maxMemory', 'maxMemoryGrowthPerMinute']) {
      if (typeof r[key] === 'string' && parseBytes(r[key]) === 0) issues.push({ path: `analysis.resources.${key}`, message: 'must be greater than 0' })
    }
    const window = durationMs(r.growthWindow)
    if (r.maxMemoryGrowthPerMinute !== undefined && window !== null && interval !== null && interval > 0 && window < interval * 8) {
      issues.push({ path: 'analysis.resources.growthWindow', message: `must hold at least 8 samples at analysis.resources.interval (${String(r.interval)}): at least ${(interval * 8) / 1000}s` })
    }
    for (const side of ['stable', 'canary'] as const) {
      const list = r[side]
      if (!Array.isArray(list)) continue
      list.forEach((entry: unknown, i) => {
        if (typeof entry !== 'string') return
        const path = `analysis.resources.${side}[${i}]`
        const unknown = unknownVariables(entry, ENDPOINT_VARIABLES)
        if (unknown.length > 0) {
          issues.push({ path, message: `unknown variable {{${unknown.join('}}, {{')}}}; expected one of: ${ENDPOINT_VARIABLES.map((v) => `{{${v}}}`).join(', ')}` })
          return
        }
        const rendered = renderTemplate(entry, example)
        const problem = rendered.ok ? endpointUrlProblem(rendered.value, true) : rendered.error
        if (problem !== null) issues.push({ path, message: `${problem} (got ${JSON.stringify(entry)})` })
      })
    }
  }
  const prometheus = record(analysis.prometheus)
  if (typeof prometheus.url === 'string') {
    const problem = endpointUrlProblem(prometheus.url, false)
    if (problem !== null) issues.push({ path: 'analysis.prometheus.url', message: `${problem} (got ${JSON.stringify(prometheus.url)})` })
  }
  if (durationMs(prometheus.timeout) === 0) issues.push({ path: 'analysis.prometheus.timeout', message: 'must be greater than 0' })
  const checks = analysis.checks
  if (Array.isArray(checks)) {
    if (checks.length > 0 && analysis.prometheus === undefined) issues.push({ path: 'analysis.checks', message: 'needs analysis.prometheus.url: the server the queries are sent to' })
    const seen = new Map<string, number>()
    checks.forEach((entry: unknown, i) => {
      const c = record(entry)
      const path = `analysis.checks[${i}]`
      if (typeof c.name === 'string') {
        const before = seen.get(c.name)
        if (before !== undefined) issues.push({ path: `${path}.name`, message: `must be unique: analysis.checks[${before}] is also named ${c.name}` })
        else seen.set(c.name, i)
      }
      if (c.min === undefined && c.max === undefined) issues.push({ path, message: 'sets no bound: add min, max or both' })
      if (typeof c.min === 'number' && typeof c.max === 'number' && c.min > c.max) issues.push({ path: `${path}.min`, message: `must be at most max (${c.max})` })
      if (durationMs(c.interval) === 0) issues.push({ path: `${path}.interval`, message: 'must be greater than 0' })
      if (typeof c.query === 'string') {
        const unknown = unknownVariables(c.query, QUERY_VARIABLES)
        if (unknown.length > 0) issues.push({ path: `${path}.query`, message: `unknown variable {{${unknown.join('}}, {{')}}}; expected one of: ${QUERY_VARIABLES.map((v) => `{{${v}}}`).join(', ')}` })
      }
    })
  }
  return issues
}

function webhookIssues(webhooks: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  if (!Array.isArray(webhooks)) return issues
  const seen = new Map<string, number>()
  webhooks.forEach((entry: unknown, i) => {
    const w = record(entry)
    const path = `webhooks[${i}]`
    if (typeof w.name === 'string') {
      const before = seen.get(w.name)
      if (before !== undefined) issues.push({ path: `${path}.name`, message: `must be unique: webhooks[${before}] is also named ${w.name}` })
      else seen.set(w.name, i)
    }
    if (typeof w.url === 'string') {
      const problem = endpointUrlProblem(w.url, true)
      // The URL may hold a secret (a Slack hook's path, a token in the query): never echo it.
      if (problem !== null) issues.push({ path: `${path}.url`, message: problem })
    }
    if (w.format === 'slack' && (GATE_WEBHOOK_TYPES as readonly unknown[]).includes(w.type)) {
      issues.push({ path: `${path}.format`, message: `slack is for notifications (post-rollout, rollback, event); a ${String(w.type)} gate needs an answer, not a chat message` })
    }
    for (const key of ['timeout', 'backoff', 'maxBackoff']) if (durationMs(w[key]) === 0) issues.push({ path: `${path}.${key}`, message: 'must be greater than 0' })
    const backoff = durationMs(w.backoff)
    const maxBackoff = durationMs(w.maxBackoff)
    if (backoff !== null && maxBackoff !== null && maxBackoff > 0 && maxBackoff < backoff) issues.push({ path: `${path}.maxBackoff`, message: `must be at least backoff (${String(w.backoff)})` })
  })
  return issues
}

function resolve(raw: RawConfig): Config {
  const ms = (text: string): number => parseDuration(text) ?? 0
  const tokens = new Map<string, string>()
  if (raw.admin.token !== '') tokens.set(raw.admin.token, 'admin')
  for (const [name, token] of Object.entries(raw.admin.tokens ?? {})) tokens.set(token, name)
  const canary = raw.upstreams.canary
  const a = raw.analysis
  return {
    listen: {
      host: raw.listen.host,
      port: raw.listen.port,
      drainTimeoutMs: ms(raw.listen.drainTimeout),
      bodyTimeoutMs: ms(raw.listen.bodyTimeout),
      maxConnections: raw.listen.maxConnections ?? null,
      headersTimeoutMs: ms(raw.listen.headersTimeout),
      requestTimeoutMs: ms(raw.listen.requestTimeout),
      lingerTimeoutMs: ms(raw.listen.lingerTimeout),
      workers: raw.listen.workers === 'auto' ? availableParallelism() : raw.listen.workers,
    },
    admin: { host: raw.admin.host, port: raw.admin.port, tokens },
    upstreams: { stable: raw.upstreams.stable, canary: canary === undefined || canary === '' ? null : canary },
    routing: {
      stickyHeader: raw.routing.stickyHeader?.toLowerCase() ?? null,
      stickyCookie: raw.routing.stickyCookie ?? null,
      overrideHeader: raw.routing.overrideHeader === '' ? null : raw.routing.overrideHeader.toLowerCase(),
      overrideFrom: raw.routing.overrideFrom,
      connectTimeoutMs: ms(raw.routing.connectTimeout),
      responseTimeoutMs: ms(raw.routing.responseTimeout),
      preserveHost: raw.routing.preserveHost,
      trustForwarded: raw.routing.trustForwarded,
    },
    rollout: {
      steps: raw.rollout.steps.map((step) => (typeof step === 'number' ? step : step.weight)),
      stepDurationsMs: raw.rollout.steps.map((step) => (typeof step === 'object' && step.duration !== undefined ? ms(step.duration) : ms(raw.rollout.stepDuration))),
      pauseSteps: raw.rollout.steps.map((step) => typeof step === 'object' && step.pause === true),
      progressDeadlineMs: ms(raw.rollout.progressDeadline),
      onDeadline: raw.rollout.onDeadline,
      stepDurationMs: ms(raw.rollout.stepDuration),
      bakeMs: ms(raw.rollout.bake),
      bakeStableShare: raw.rollout.bakeStableShare,
      autoStart: raw.rollout.autoStart,
    },
    analysis: {
      intervalMs: ms(a.interval),
      windowMs: ms(a.window),
      minRequests: a.minRequests,
      maxErrorRate: a.maxErrorRate ?? null,
      maxErrorRateIncrease: a.maxErrorRateIncrease ?? null,
      maxP99Ms: a.maxP99 === undefined ? null : ms(a.maxP99),
      maxP99Ratio: a.maxP99Ratio ?? null,
      minP99DeltaMs: ms(a.minP99Delta),
      falseRollbackRate: a.falseRollbackRate ?? (a.confidence === undefined ? DEFAULT_FALSE_ROLLBACK_RATE : 1 - a.confidence),
      confidence: a.confidence ?? 1 - (a.falseRollbackRate ?? DEFAULT_FALSE_ROLLBACK_RATE),
      ...resolveExternalChecks(raw, ms),
    },
    webhooks: raw.webhooks.map(
      (w): WebhookConfig => ({
        name: w.name,
        type: w.type,
        url: w.url,
        timeoutMs: ms(w.timeout),
        retries: w.retries,
        backoffMs: ms(w.backoff),
        maxBackoffMs: ms(w.maxBackoff),
        headers: w.headers ?? {},
        metadata: w.metadata ?? {},
        format: w.format,
        maxQueue: w.maxQueue,
      }),
    ),
    state: { file: raw.state.file, redis: raw.state.redis ?? null, redisKeyPrefix: raw.state.redisKeyPrefix },
    audit: { file: raw.audit.file },
    log: { level: raw.log.level },
    metrics: { bucketsSeconds: Object.freeze([...raw.metrics.buckets]) },
  }
}

function resolveExternalChecks(raw: RawConfig, ms: (text: string) => number): ExternalChecksConfig {
  const r = raw.analysis.resources
  const p = raw.analysis.prometheus
  const size = (text: string | undefined): number | null => (text === undefined ? null : parseBytes(text))
  return {
    resources:
      r === undefined
        ? null
        : {
            intervalMs: ms(r.interval),
            timeoutMs: ms(r.timeout),
            endpoints: { stable: r.stable, canary: r.canary },
            maxCpuPerRequestRatio: r.maxCpuPerRequestRatio ?? null,
            minCpuExcess: r.minCpuExcess,
            minRequests: r.minRequests,
            maxMemoryRatio: r.maxMemoryRatio ?? null,
            maxMemoryBytes: size(r.maxMemory),
            maxMemoryGrowthPerMinuteBytes: size(r.maxMemoryGrowthPerMinute),
            growthWindowMs: ms(r.growthWindow),
            consecutive: r.consecutive,
          },
    prometheus: p === undefined ? null : { url: p.url.replace(/\/+$/, ''), timeoutMs: ms(p.timeout), headers: p.headers ?? {}, pods: { stable: p.pods?.stable ?? null, canary: p.pods?.canary ?? null } },
    checks: raw.analysis.checks.map((c) => ({ name: c.name, query: c.query, min: c.min ?? null, max: c.max ?? null, intervalMs: ms(c.interval), consecutive: c.consecutive })),
  }
}
