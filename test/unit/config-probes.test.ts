import t from 'tap'
import { renderIssue } from '../../src/config/issues.js'
import { parseConfigText } from '../../src/config/load.js'

const ok = 'upstreams:\n  stable: http://127.0.0.1:9001\n'
const lines = (text: string): string[] => {
  const r = parseConfigText(ok + text, {})
  return r.ok ? [] : r.error.map(renderIssue)
}

t.test('resources, prometheus, checks and webhooks resolve with their defaults', async (t) => {
  const r = parseConfigText(
    `${ok}analysis:\n  resources:\n    maxMemory: 1Gi\n    maxCpuPerRequestRatio: 1.5\n  prometheus:\n    url: http://127.0.0.1:9090/\n    headers: { authorization: "Bearer x" }\n  checks:\n    - name: throttling\n      query: 'sum(rate(x{pod=~"{{canary_pod}}"}[{{interval}}]))'\n      max: 0.1\nwebhooks:\n  - name: chat\n    type: event\n    url: https://hooks.example.test/T/B/X\n    format: slack\n  - name: load-test\n    type: pre-rollout\n    url: http://127.0.0.1:8081/pre\n    metadata: { cmd: hey }\n`,
    {},
  )
  t.ok(r.ok, r.ok ? '' : r.error.map(renderIssue).join('\n'))
  if (!r.ok) return
  t.same(r.value.analysis.resources, {
    intervalMs: 5000,
    timeoutMs: 2000,
    endpoints: { stable: ['{{stable_url}}/metrics'], canary: ['{{canary_url}}/metrics'] },
    maxCpuPerRequestRatio: 1.5,
    minCpuExcess: 0.01,
    minRequests: 20,
    maxMemoryRatio: null,
    maxMemoryBytes: 1024 ** 3,
    maxMemoryGrowthPerMinuteBytes: null,
    growthWindowMs: 60_000,
    consecutive: 3,
  })
  t.same(r.value.analysis.prometheus, { url: 'http://127.0.0.1:9090', timeoutMs: 5000, headers: { authorization: 'Bearer x' }, pods: { stable: null, canary: null } })
  t.same(r.value.analysis.checks, [{ name: 'throttling', query: 'sum(rate(x{pod=~"{{canary_pod}}"}[{{interval}}]))', min: null, max: 0.1, intervalMs: 15_000, consecutive: 2 }])
  t.match(r.value.webhooks, [
    { name: 'chat', type: 'event', format: 'slack', timeoutMs: 10_000, retries: 3, backoffMs: 1000, maxBackoffMs: 30_000, maxQueue: 100, headers: {}, metadata: {} },
    { name: 'load-test', type: 'pre-rollout', format: 'json', metadata: { cmd: 'hey' } },
  ])
})

t.test('bad keys: one line each, named by key path', async (t) => {
  const table: [string, string, string | RegExp][] = [
    ['webhook type', 'webhooks:\n  - { name: a, type: pre-rolout, url: "http://h.test" }\n', 'webhooks[0].type: must be one of: pre-rollout, step, confirm-promotion, post-rollout, rollback, event (got "pre-rolout")'],
    ['webhook name', 'webhooks:\n  - { name: "a b", type: event, url: "http://h.test" }\n', /^webhooks\[0\]\.name: must be a name of letters, digits/],
    ['duplicate webhook', 'webhooks:\n  - { name: a, type: event, url: "http://h.test" }\n  - { name: a, type: step, url: "http://h.test" }\n', 'webhooks[1].name: must be unique: webhooks[0] is also named a'],
    ['credentials in a webhook URL, not echoed', 'webhooks:\n  - { name: a, type: event, url: "http://u:SECRET@h.test" }\n', 'webhooks[0].url: must not contain a user name or password (send credentials in headers, which are never logged)'],
    ['webhook URL scheme', 'webhooks:\n  - { name: a, type: event, url: "ftp://h.test" }\n', 'webhooks[0].url: must use http:// or https://, not ftp://'],
    ['webhook not a URL', 'webhooks:\n  - { name: a, type: event, url: "nope" }\n', 'webhooks[0].url: must be an http:// or https:// URL'],
    ['slack gate', 'webhooks:\n  - { name: a, type: confirm-promotion, url: "http://h.test", format: slack }\n', /^webhooks\[0\]\.format: slack is for notifications/],
    ['backoff order', 'webhooks:\n  - { name: a, type: event, url: "http://h.test", backoff: 5s, maxBackoff: 1s }\n', 'webhooks[0].maxBackoff: must be at least backoff (5s)'],
    ['zero timeout', 'webhooks:\n  - { name: a, type: event, url: "http://h.test", timeout: 0s }\n', 'webhooks[0].timeout: must be greater than 0'],
    ['size', 'analysis:\n  resources:\n    maxMemory: 1GB\n', /^analysis\.resources\.maxMemory: must be a size such as 512Mi or 1Gi/],
    ['zero size', 'analysis:\n  resources:\n    maxMemory: "0"\n', 'analysis.resources.maxMemory: must be greater than 0'],
    ['no resource check', 'analysis:\n  resources:\n    interval: 5s\n', /^analysis\.resources: sets no check/],
    ['timeout over interval', 'analysis:\n  resources:\n    interval: 1s\n    timeout: 2s\n    maxMemory: 1Gi\n', 'analysis.resources.timeout: must be at most analysis.resources.interval (1s)'],
    ['zero interval', 'analysis:\n  resources:\n    interval: 0s\n    timeout: 0s\n    maxMemory: 1Gi\n', 'analysis.resources.interval: must be greater than 0'],
    ['growth window', 'analysis:\n  resources:\n    interval: 5s\n    maxMemoryGrowthPerMinute: 10Mi\n    growthWindow: 20s\n', 'analysis.resources.growthWindow: must hold at least 8 samples at analysis.resources.interval (5s): at least 40s'],
    ['endpoint variable', 'analysis:\n  resources:\n    maxMemory: 1Gi\n    canary: ["{{canary_pod}}/metrics"]\n', /^analysis\.resources\.canary\[0\]: unknown variable \{\{canary_pod\}\}; expected one of: \{\{stable_url\}\}/],
    ['endpoint URL', 'analysis:\n  resources:\n    maxMemory: 1Gi\n    stable: ["tcp://x:1"]\n', 'analysis.resources.stable[0]: must use http:// or https://, not tcp:// (got "tcp://x:1")'],
    ['empty endpoint list', 'analysis:\n  resources:\n    maxMemory: 1Gi\n    stable: []\n', 'analysis.resources.stable: must have at least 1 item'],
    ['checks without prometheus', 'analysis:\n  checks:\n    - { name: a, query: up, max: 1 }\n', 'analysis.checks: needs analysis.prometheus.url: the server the queries are sent to'],
    ['check without bounds', 'analysis:\n  prometheus: { url: "http://p.test" }\n  checks:\n    - { name: a, query: up }\n', 'analysis.checks[0]: sets no bound: add min, max or both'],
    ['check bounds order', 'analysis:\n  prometheus: { url: "http://p.test" }\n  checks:\n    - { name: a, query: up, min: 2, max: 1 }\n', 'analysis.checks[0].min: must be at most max (1)'],
    ['check variable', 'analysis:\n  prometheus: { url: "http://p.test" }\n  checks:\n    - { name: a, query: "up{x=\\"{{canary}}\\"}", max: 1 }\n', /^analysis\.checks\[0\]\.query: unknown variable \{\{canary\}\}; expected one of: /],
    ['duplicate check', 'analysis:\n  prometheus: { url: "http://p.test" }\n  checks:\n    - { name: a, query: up, max: 1 }\n    - { name: a, query: up, max: 1 }\n', 'analysis.checks[1].name: must be unique: analysis.checks[0] is also named a'],
    ['check interval', 'analysis:\n  prometheus: { url: "http://p.test" }\n  checks:\n    - { name: a, query: up, max: 1, interval: 0ms }\n', 'analysis.checks[0].interval: must be greater than 0'],
    ['prometheus query in URL', 'analysis:\n  prometheus: { url: "http://p.test/?x=1" }\n', 'analysis.prometheus.url: must not contain a query or fragment (got "http://p.test/?x=1")'],
    ['prometheus timeout', 'analysis:\n  prometheus: { url: "http://p.test", timeout: 0s }\n', 'analysis.prometheus.timeout: must be greater than 0'],
    ['unknown key', 'analysis:\n  resources:\n    maxMemroy: 1Gi\n    maxMemory: 1Gi\n', /^analysis\.resources\.maxMemroy: unknown key \(did you mean maxMemory\?\)/],
  ]
  for (const [name, text, expected] of table) {
    const got = lines(text)
    if (typeof expected === 'string') t.ok(got.includes(expected), `${name}: ${got.join(' | ')}`)
    else t.ok(got.some((l) => expected.test(l)), `${name}: ${got.join(' | ')}`)
  }
  t.notOk(lines('webhooks:\n  - { name: a, type: event, url: "http://u:SECRET@h.test" }\n').join('\n').includes('SECRET'), 'a bad webhook URL is not echoed')
})
