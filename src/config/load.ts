/** Reads a config: YAML -> ${ENV} substitution -> schema with defaults -> semantic checks -> Config, or every problem found. */
import { readFile } from 'node:fs/promises'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { hasAtMostTwoDecimals, isLoopbackHost, upstreamUrlProblem } from '../core/domain.js'
import { parseDuration } from '../core/duration.js'
import { err, ok, type Result } from '../core/result.js'
import { substituteEnv } from './env.js'
import { keyPath, type ConfigIssue } from './issues.js'
import { ConfigSchema, type Config, type RawConfig } from './schema.js'

export type ConfigResult = Result<Config, readonly ConfigIssue[]>
type Env = Readonly<Record<string, string | undefined>>

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, verbose: true })
ajv.addKeyword({ keyword: 'x-expected', schemaType: 'string' })
const validateSchema = ajv.compile<RawConfig>(ConfigSchema)

export async function loadConfigFile(file: string, env: Env = process.env): Promise<ConfigResult> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(error)})`
    return err([{ path: '(file)', message: `${file}: ${why}` }])
  }
  return parseConfigText(text, env)
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
  const issues = valid ? [] : schemaIssues(validateSchema.errors ?? [])
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

const TYPE_WORDS: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a mapping of keys',
  array: 'a list',
}

function schemaIssues(errors: readonly ErrorObject[]): ConfigIssue[] {
  const seen = new Set<string>()
  const issues: ConfigIssue[] = []
  for (const e of errors) {
    const segments = pointerSegments(e.instancePath)
    let path = keyPath(segments)
    let message: string
    switch (e.keyword) {
      case 'required':
        path = keyPath([...segments, String(e.params.missingProperty)])
        message = 'is required'
        break
      case 'additionalProperties': {
        const key = String(e.params.additionalProperty)
        path = keyPath([...segments, key])
        const known = Object.keys((e.parentSchema?.properties ?? {}) as Record<string, unknown>)
        const near = closest(key, known)
        message = `unknown key${near ? ` (did you mean ${near}?)` : ''}; expected one of: ${known.join(', ')}`
        break
      }
      case 'type': {
        const expected = (e.parentSchema as Record<string, unknown> | undefined)?.['x-expected']
        message = `must be ${typeof expected === 'string' ? expected : (TYPE_WORDS[String(e.params.type)] ?? String(e.params.type))}${shown(e.data)}`
        break
      }
      case 'pattern': {
        const expected = (e.parentSchema as Record<string, unknown> | undefined)?.['x-expected']
        message = `must be ${typeof expected === 'string' ? expected : `a string matching ${String(e.params.pattern)}`}${shown(e.data)}`
        break
      }
      case 'enum':
        message = `must be one of: ${(e.params.allowedValues as unknown[]).join(', ')}${shown(e.data)}`
        break
      case 'minItems':
        message = `must have at least ${String(e.params.limit)} item${e.params.limit === 1 ? '' : 's'}`
        break
      case 'maxItems':
        message = `must have at most ${String(e.params.limit)} items${shownLength(e.data)}`
        break
      case 'minLength':
        message = 'must not be empty'
        break
      default:
        message = e.message ?? 'is not valid'
    }
    const line = `${path}: ${message}`
    if (!seen.has(line)) {
      seen.add(line)
      issues.push({ path, message })
    }
  }
  return issues
}

function shownLength(value: unknown): string {
  return Array.isArray(value) ? ` (got ${value.length})` : ''
}

function pointerSegments(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

function shown(value: unknown): string {
  // JSON has no spelling for them: YAML's .inf and .nan would read as "null".
  if (typeof value === 'number' && !Number.isFinite(value)) return ` (got ${value})`
  if (value === undefined || (typeof value === 'object' && value !== null)) return ''
  return ` (got ${JSON.stringify(value)})`
}

function closest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null
  let bestDistance = Infinity
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length] ?? 0
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
    steps.forEach((step: unknown, i) => {
      if (typeof step !== 'number') return
      if (!hasAtMostTwoDecimals(step)) issues.push({ path: `rollout.steps[${i}]`, message: `must have at most two decimals, as weights go in steps of 0.01 (got ${step})` })
      const before: unknown = steps[i - 1]
      // An out-of-range step is reported once, not again as out of order.
      if (typeof before === 'number' && before > 0 && before <= 100 && step > 0 && step <= 100 && step <= before) issues.push({ path: `rollout.steps[${i}]`, message: `must be greater than the step before it (${before}); steps go up in order` })
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
  const routing = section('routing')
  for (const key of ['connectTimeout', 'responseTimeout']) {
    if (ms(routing[key]) === 0) issues.push({ path: `routing.${key}`, message: 'must be greater than 0' })
  }

  const admin = section('admin')
  const tokens = admin.tokens
  const hasToken = (typeof admin.token === 'string' && admin.token !== '') || (tokens !== null && typeof tokens === 'object' && Object.keys(tokens).length > 0)
  if (!hasToken && typeof admin.host === 'string' && !isLoopbackHost(admin.host)) {
    issues.push({ path: 'admin.host', message: `refusing to serve the admin API on non-loopback address ${admin.host} without admin.token; set a token or listen on 127.0.0.1` })
  }
  if (typeof section('state').redis === 'string') {
    issues.push({ path: 'state.redis', message: 'shared state in Redis is not available in this version yet; remove it to keep the state in state.file' })
  }
  const listenPort = section('listen').port
  if (typeof listenPort === 'number' && listenPort !== 0 && listenPort === admin.port) {
    issues.push({ path: 'admin.port', message: `must differ from listen.port (${listenPort})` })
  }
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
    listen: { host: raw.listen.host, port: raw.listen.port, drainTimeoutMs: ms(raw.listen.drainTimeout) },
    admin: { host: raw.admin.host, port: raw.admin.port, tokens },
    upstreams: { stable: raw.upstreams.stable, canary: canary === undefined || canary === '' ? null : canary },
    routing: {
      stickyHeader: raw.routing.stickyHeader?.toLowerCase() ?? null,
      stickyCookie: raw.routing.stickyCookie ?? null,
      overrideHeader: raw.routing.overrideHeader === '' ? null : raw.routing.overrideHeader.toLowerCase(),
      connectTimeoutMs: ms(raw.routing.connectTimeout),
      responseTimeoutMs: ms(raw.routing.responseTimeout),
      preserveHost: raw.routing.preserveHost,
      trustForwarded: raw.routing.trustForwarded,
    },
    rollout: {
      steps: raw.rollout.steps,
      stepDurationMs: ms(raw.rollout.stepDuration),
      bakeMs: ms(raw.rollout.bake),
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
      confidence: a.confidence,
    },
    state: { file: raw.state.file, redis: raw.state.redis ?? null },
    audit: { file: raw.audit.file },
    log: { level: raw.log.level },
    metrics: { bucketsSeconds: Object.freeze([...raw.metrics.buckets]) },
  }
}
