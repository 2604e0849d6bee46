import { readFile } from 'node:fs/promises'
import t from 'tap'
import { configFromObject, loadConfigFile, parseConfigText } from '../../src/config/load.js'
import { renderIssue } from '../../src/config/issues.js'

const ok = 'upstreams:\n  stable: http://127.0.0.1:9001\n'
const lines = (text: string, env: Record<string, string> = {}): string[] => {
  const r = parseConfigText(text, env)
  return r.ok ? [] : r.error.map(renderIssue)
}

t.test('a minimal config gets the documented defaults', async (t) => {
  const r = parseConfigText(ok, {})
  t.ok(r.ok)
  if (!r.ok) return
  const c = r.value
  t.same(c.listen, { host: '0.0.0.0', port: 8080, drainTimeoutMs: 10_000, bodyTimeoutMs: 60_000, maxConnections: null, headersTimeoutMs: 20_000, requestTimeoutMs: 300_000, lingerTimeoutMs: 5000, workers: 1 })
  t.same([c.admin.host, c.admin.port, c.admin.tokens.size], ['127.0.0.1', 9901, 0])
  t.same(c.upstreams, { stable: 'http://127.0.0.1:9001', canary: null })
  t.same(c.routing, { stickyHeader: null, stickyCookie: null, overrideHeader: 'x-canary', overrideFrom: ['127.0.0.0/8', '::1/128'], connectTimeoutMs: 2000, responseTimeoutMs: 30_000, preserveHost: true, trustForwarded: false })
  t.same(c.rollout, {
    steps: [5, 25, 50, 100],
    stepDurationsMs: [30_000, 30_000, 30_000, 30_000],
    pauseSteps: [false, false, false, false],
    progressDeadlineMs: 600_000,
    onDeadline: 'pause',
    stepDurationMs: 30_000,
    bakeMs: 60_000,
    bakeStableShare: 0,
    autoStart: true,
  })
  t.same(c.analysis, { intervalMs: 1000, windowMs: 30_000, minRequests: 50, maxErrorRate: null, maxErrorRateIncrease: null, maxP99Ms: null, maxP99Ratio: null, minP99DeltaMs: 5, falseRollbackRate: 0.001, confidence: 0.999, resources: null, prometheus: null, checks: [] })
  t.same(c.webhooks, [])
  t.same(c.state, { file: 'data/state.json', redis: null, redisKeyPrefix: 'canary-proxy' })
  t.same(c.audit, { file: 'data/audit.jsonl' })
})

t.test('the shipped example config is valid and sets every check', async (t) => {
  const r = await loadConfigFile('config/canary-proxy.yaml', {})
  t.ok(r.ok, r.ok ? 'valid' : r.error.map(renderIssue).join('\n'))
  if (!r.ok) return
  t.equal(r.value.analysis.maxErrorRate, 0.01)
  t.equal(r.value.analysis.maxErrorRateIncrease, 0.005)
  t.equal(r.value.analysis.maxP99Ms, 500)
  t.equal(r.value.analysis.maxP99Ratio, 1.5)
  const text = await readFile('config/canary-proxy.yaml', 'utf8')
  for (const key of ['listen', 'admin', 'upstreams', 'routing', 'stickyHeader', 'stickyCookie', 'overrideHeader', 'overrideFrom', 'maxConnections', 'headersTimeout', 'requestTimeout', 'lingerTimeout', 'connectTimeout', 'responseTimeout', 'rollout', 'steps', 'stepDuration', 'bake', 'autoStart', 'analysis', 'interval', 'window', 'minRequests', 'maxErrorRate', 'maxErrorRateIncrease', 'maxP99', 'maxP99Ratio', 'minP99Delta', 'state', 'redis', 'audit']) {
    t.match(text, new RegExp(`\\b${key}:`), `documents ${key}`)
  }
})

t.test('bad configs: one line per problem, named by key path', async (t) => {
  const table: [string, string, string | RegExp][] = [
    ['step above 100', `${ok}rollout:\n  steps: [5, 250, 50]\n`, 'rollout.steps[1]: must be <= 100'],
    ['steps out of order', `${ok}rollout:\n  steps: [5, 50, 25]\n`, /^rollout\.steps\[2\]: must be greater than the step before it \(50\)/],
    ['step with 3 decimals', `${ok}rollout:\n  steps: [0.125, 50]\n`, /^rollout\.steps\[0\]: must have at most two decimals/],
    ['step of 0', `${ok}rollout:\n  steps: [0, 50]\n`, 'rollout.steps[0]: must be > 0'],
    ['empty steps', `${ok}rollout:\n  steps: []\n`, 'rollout.steps: must have at least 1 item'],
    ['bad duration', `${ok}analysis:\n  interval: 1 second\n`, 'analysis.interval: must be a duration such as 250ms, 30s or 2m (got "1 second")'],
    ['number as duration', `${ok}rollout:\n  bake: 60\n`, /^rollout\.bake: must be a duration/],
    ['unknown key with a suggestion', `${ok}rollout:\n  stepDurations: 1s\n`, /^rollout\.stepDurations: unknown key \(did you mean stepDuration\?\)/],
    ['unknown top-level key', `${ok}analyses: {}\n`, /^analyses: unknown key \(did you mean analysis\?\)/],
    ['missing stable', 'listen:\n  port: 8080\n', 'upstreams: is required'],
    ['missing stable inside upstreams', 'upstreams:\n  canary: http://127.0.0.1:9002\n', 'upstreams.stable: is required'],
    ['ftp upstream', 'upstreams:\n  stable: ftp://example.test\n', /^upstreams\.stable: must use http:\/\/ or https:\/\//],
    ['not a URL', 'upstreams:\n  stable: nope\n', /^upstreams\.stable: must be an http:\/\/ or https:\/\/ URL/],
    ['credentials in URL', 'upstreams:\n  stable: http://u:p@127.0.0.1:1\n', /^upstreams\.stable: must not contain a user name or password/],
    ['port out of range', `${ok}listen:\n  port: 70000\n`, 'listen.port: must be <= 65535'],
    ['port as text', `${ok}listen:\n  port: eighty\n`, 'listen.port: must be an integer (got "eighty")'],
    ['error rate above 1', `${ok}analysis:\n  maxErrorRate: 2\n`, 'analysis.maxErrorRate: must be <= 1'],
    ['ratio below 1', `${ok}analysis:\n  maxP99Ratio: 0.5\n`, 'analysis.maxP99Ratio: must be >= 1'],
    ['minRequests 0', `${ok}analysis:\n  minRequests: 0\n`, 'analysis.minRequests: must be >= 1'],
    ['window shorter than interval', `${ok}analysis:\n  interval: 5s\n  window: 1s\n`, /^analysis\.window: must be at least analysis\.interval/],
    ['bad header name', `${ok}routing:\n  stickyHeader: "x user"\n`, 'routing.stickyHeader: must be an HTTP header name such as x-user-id (got "x user")'],
    ['override source not a CIDR', `${ok}routing:\n  overrideFrom: [10.0.0.0/8, 10.0.0.0/33, "nope"]\n`, 'routing.overrideFrom[1]: must be a CIDR such as 10.0.0.0/8 or ::1/128, or one address (got "10.0.0.0/33")'],
    ['override source, second bad entry', `${ok}routing:\n  overrideFrom: ["::1/129", "nope"]\n`, 'routing.overrideFrom[1]: must be a CIDR such as 10.0.0.0/8 or ::1/128, or one address (got "nope")'],
    ['maxConnections 0', `${ok}listen:\n  maxConnections: 0\n`, 'listen.maxConnections: must be >= 1'],
    ['workers 0', `${ok}listen:\n  workers: 0\n`, 'listen.workers: must be a whole number of worker processes from 1 to 256, or "auto" (one per core) (got 0)'],
    ['workers as a word', `${ok}listen:\n  workers: many\n`, 'listen.workers: must be a whole number of worker processes from 1 to 256, or "auto" (one per core) (got "many")'],
    ['workers 1.5', `${ok}listen:\n  workers: 1.5\n`, 'listen.workers: must be a whole number of worker processes from 1 to 256, or "auto" (one per core) (got 1.5)'],
    ['headers timeout longer than the request timeout', `${ok}listen:\n  headersTimeout: 1m\n  requestTimeout: 30s\n`, 'listen.headersTimeout: must be at most listen.requestTimeout (30s)'],
    ['linger timeout 0', `${ok}listen:\n  lingerTimeout: 0s\n`, 'listen.lingerTimeout: must be greater than 0'],
    ['boolean as text', `${ok}rollout:\n  autoStart: maybe\n`, 'rollout.autoStart: must be true or false (got "maybe")'],
    ['admin on 0.0.0.0 without a token', `${ok}admin:\n  host: 0.0.0.0\n`, /^admin\.host: refusing to serve the admin API on non-loopback address 0\.0\.0\.0 without admin\.token/],
    ['same port twice', `${ok}listen:\n  port: 9000\nadmin:\n  port: 9000\n`, 'admin.port: must differ from listen.port (9000)'],
    ['log level', `${ok}log:\n  level: loud\n`, /^log\.level: must be one of: fatal, error, warn, info, debug, trace, silent/],
    ['section of the wrong type', `${ok}rollout: 5\n`, 'rollout: must be a mapping of keys (got 5)'],
    ['YAML syntax error', 'upstreams: [1\n', /^\(file\): YAML syntax error at line \d+, column \d+/],
    ['duplicate keys', `${ok}listen:\n  port: 1\n  port: 2\n`, /^\(file\): YAML syntax error.*unique/],
    ['empty file', '', 'upstreams: is required'],
    ['not a mapping', '- 1\n- 2\n', /^\(root\): must be a mapping of keys/],
  ]
  for (const [name, text, expected] of table) {
    const got = lines(text)
    t.ok(got.length > 0, `${name}: rejected`)
    t.ok(
      got.some((l) => (typeof expected === 'string' ? l === expected : expected.test(l))),
      `${name}: ${String(expected)} in ${JSON.stringify(got)}`,
    )
  }
})

t.test('listen.workers: a count, or auto for one per core', async (t) => {
  const { availableParallelism } = await import('node:os')
  const workers = (text: string): unknown => {
    const r = parseConfigText(`${ok}listen:\n  workers: ${text}\n`)
    return r.ok ? r.value.listen.workers : r.error
  }
  t.equal(workers('4'), 4)
  t.equal(workers('auto'), availableParallelism(), 'auto: the host cores this process may use')
  t.equal(workers('1'), 1, 'one: a single process, no cluster')
  t.same(lines(`${ok}listen:\n  workers: [2]\n`).length, 1, 'a bad value is one line, not one per branch')
})

t.test('every problem is reported in one run', async (t) => {
  const got = lines('upstreams:\n  stable: ftp://x\nrollout:\n  steps: [5, 500]\n  bake: soon\nadmin:\n  host: 0.0.0.0\n')
  t.same(got.map((l) => l.split(':')[0]).sort(), ['admin.host', 'rollout.bake', 'rollout.steps[1]', 'upstreams.stable'])
})

t.test('${ENV} substitution', async (t) => {
  const env = { PORT: '8181', TOKEN: '0123', STABLE: 'http://127.0.0.1:7000', FLAG: 'false', EMPTY: '' }
  const r = parseConfigText('listen:\n  port: ${PORT}\nadmin:\n  token: ${TOKEN}\nupstreams:\n  stable: ${STABLE}\n  canary: "${CANARY:-}"\nrollout:\n  autoStart: ${FLAG}\n  stepDuration: ${STEP:-2s}\n', env)
  t.ok(r.ok, r.ok ? '' : r.error.map(renderIssue).join('; '))
  if (!r.ok) return
  t.equal(r.value.listen.port, 8181, 'a whole unquoted reference reads as YAML would read the value')
  t.same([...r.value.admin.tokens.keys()], ['0123'], 'a token keeps its leading zero')
  t.equal(r.value.upstreams.stable, 'http://127.0.0.1:7000')
  t.equal(r.value.upstreams.canary, null, '${VAR:-} gives an empty default, and an empty canary means none')
  t.equal(r.value.rollout.autoStart, false)
  t.equal(r.value.rollout.stepDurationMs, 2000, 'default used when unset')
  t.same(lines('upstreams:\n  stable: http://a.test\nadmin:\n  token: "${MISSING_TOKEN}"\n'), [
    'admin.token: environment variable MISSING_TOKEN is not set (write ${MISSING_TOKEN:-} for an empty default)',
  ])
  t.same(lines('upstreams:\n  stable: "http://${HOST}:${PORTX}"\n', { HOST: 'h.test' }), [
    'upstreams.stable: environment variable PORTX is not set (write ${PORTX:-} for an empty default)',
  ])
  t.same(lines('rollout:\n  steps: [5, "${S2}"]\nupstreams:\n  stable: http://a.test\naudit:\n  file: ${AUDIT}\n'), [
    'rollout.steps[1]: environment variable S2 is not set (write ${S2:-} for an empty default)',
    'audit.file: environment variable AUDIT is not set (write ${AUDIT:-} for an empty default)',
  ], 'one line per unset variable, not a second one for the empty value it leaves')
  const injected = parseConfigText('upstreams:\n  stable: ${V}\n', { V: 'http://a.test\nadmin: {host: 0.0.0.0}' })
  t.notOk(injected.ok, 'a variable cannot inject YAML structure')
})

t.test('an empty admin.token means no token; named tokens map to actors', async (t) => {
  const r = configFromObject({ upstreams: { stable: 'http://a.test' }, admin: { token: '', tokens: { alice: 't1', bob: 't2' } } })
  t.ok(r.ok)
  if (r.ok) t.same([...r.value.admin.tokens], [['t1', 'alice'], ['t2', 'bob']])
  const s = configFromObject({ upstreams: { stable: 'http://a.test' }, admin: { token: 'abc', host: '0.0.0.0' } })
  t.ok(s.ok, 'a token allows a non-loopback admin address')
  if (s.ok) t.same([...s.value.admin.tokens], [['abc', 'admin']])
})

t.test('yaml nulls mean "not set": the default applies and an optional check stays off', async (t) => {
  const r = parseConfigText(`${ok}analysis:\n  maxP99:\n  window:\n`, {})
  t.ok(r.ok)
  if (r.ok) t.same([r.value.analysis.maxP99Ms, r.value.analysis.windowMs], [null, 30_000])
})

t.test('a missing file is one clear problem', async (t) => {
  const r = await loadConfigFile('/nonexistent/canary.yaml', {})
  t.notOk(r.ok)
  if (!r.ok) t.same(r.error.map(renderIssue), ['(file): /nonexistent/canary.yaml: file not found'])
})

t.test('rollout.steps takes weights or step objects {weight, duration?, pause?}; progressDeadline and onDeadline', async (t) => {
  const r = configFromObject({ upstreams: { stable: 'http://127.0.0.1:9001' }, rollout: { steps: [5, { weight: 25, duration: '2m' }, { weight: 50, pause: true }, 100], progressDeadline: '15m', onDeadline: 'rollback' } })
  if (!r.ok) throw new Error(JSON.stringify(r.error))
  t.same(r.value.rollout.steps, [5, 25, 50, 100])
  t.same(r.value.rollout.stepDurationsMs, [30_000, 120_000, 30_000, 30_000])
  t.same(r.value.rollout.pauseSteps, [false, false, true, false])
  t.equal(r.value.rollout.progressDeadlineMs, 900_000)
  t.equal(r.value.rollout.onDeadline, 'rollback')
  const table: [string, string, string[]][] = [
    ['a bad duration', '[5, {weight: 25, duration: soon}]', ['rollout.steps[1].duration: must be a duration such as 250ms, 30s or 2m (got "soon")']],
    ['no weight', '[{duration: 2m}]', ['rollout.steps[0].weight: is required (the canary weight of this step, 0 < weight <= 100)']],
    ['an unknown key', '[{weight: 20, wait: true}]', ['rollout.steps[0].wait: unknown key; expected one of: weight, duration, pause']],
    ['pause not a boolean', '[{weight: 20, pause: yes please}]', ['rollout.steps[0].pause: must be true or false (got "yes please")']],
    ['a weight over 100 in an object', '[{weight: 120}]', ['rollout.steps[0].weight: must be <= 100']],
    ['out of order across forms', '[{weight: 50}, 25]', ['rollout.steps[1]: must be greater than the step before it (50); steps go up in order']],
    ['neither', '[five]', ['rollout.steps[0]: must be a weight (a number, 0 < weight <= 100) or a step object {weight, duration?, pause?} (got "five")']],
  ]
  for (const [name, steps, expected] of table) t.same(lines(`${ok}rollout:\n  steps: ${steps}\n`), expected, name)
  t.match(lines(`${ok}rollout:\n  onDeadline: later\n`), [/^rollout\.onDeadline: /], 'onDeadline is pause or rollback')
})
