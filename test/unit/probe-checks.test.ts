// The probe-fed checks as pure functions of plain probe results: what proves
// a breach, what passes, what holds.
import t from 'tap'
import type { Check } from '../../src/analysis/check.js'
import type { ProbeResult, ProbeResults, ProbeRollout } from '../../src/analysis/probe.js'
import type { CustomCheckConfig, PrometheusConfig, ResourcesConfig, WebhookConfig } from '../../src/config/schema.js'
import { formatBytes, parseBytes } from '../../src/core/bytes.js'
import { describeFailure } from '../../src/probes/http.js'
import { customCheck, type QueryHistory } from '../../src/probes/prometheus.js'
import { resourceChecks } from '../../src/probes/resource-checks.js'
import type { ResourceSample, ResourceSeries } from '../../src/probes/resources.js'
import { displayEndpoint } from '../../src/probes/resources.js'
import { promqlDuration, promqlString, renderTemplate, templateValues, unknownVariables, QUERY_VARIABLES } from '../../src/probes/template.js'
import { fitTrend, slopeBounds } from '../../src/probes/trend.js'
import { WebhookCounters } from '../../src/webhooks/counters.js'
import { gateCheck, gateDue } from '../../src/webhooks/gates.js'
import { takesTransition } from '../../src/webhooks/notifier.js'
import { eventPayload, slackText } from '../../src/webhooks/payload.js'
import { redactUrl, scrub, secretsOf } from '../../src/webhooks/redact.js'
import { probeGateInput } from '../helpers/probe-wiring.js'

const MiB = 1024 * 1024
const T0 = 1_800_000_000_000
const ROLLOUT: ProbeRollout = { phase: 'progressing', weight: 50, step: 1, stableUrl: 'http://s.test', canaryUrl: 'http://c.test', generation: 1 }

const settings = (over: Partial<ResourcesConfig> = {}): ResourcesConfig & { confidence: number } => ({
  intervalMs: 1000,
  timeoutMs: 500,
  endpoints: { stable: ['{{stable_url}}/metrics'], canary: ['{{canary_url}}/metrics'] },
  maxCpuPerRequestRatio: 1.5,
  minCpuExcess: 0.01,
  minRequests: 20,
  maxMemoryRatio: 1.5,
  maxMemoryBytes: 500 * MiB,
  maxMemoryGrowthPerMinuteBytes: 10 * MiB,
  growthWindowMs: 10_000,
  consecutive: 3,
  confidence: 0.999,
  ...over,
})

/** One side's series: per second, CPU seconds and requests added, and resident memory, for each of its instances. */
function series(side: 'stable' | 'canary', steps: readonly { cpu: number; requests: number; rss: number | number[] }[], options: { start?: number; error?: number } = {}): ResourceSeries {
  const samples: ResourceSample[] = []
  let cpu = 0
  let served = 0
  steps.forEach((s, i) => {
    cpu += s.cpu
    served += s.requests
    const rss = Array.isArray(s.rss) ? s.rss : [s.rss]
    samples.push({
      at: (options.start ?? T0) + i * 1000,
      served,
      instances: rss.map((r, k) => ({ endpoint: `http://${side}-${k}.test/metrics`, cpuSeconds: options.error === i ? null : cpu / rss.length, rssBytes: options.error === i ? null : r, startTime: 1, error: options.error === i ? 'HTTP 503' : null })),
    })
  })
  return { side, intervalMs: 1000, samples }
}

function probes(map: Record<string, ResourceSeries | QueryHistory | null>, at?: number): ProbeResults {
  return {
    latest: <T>(id: string): ProbeResult<T> | null => {
      const value = map[id]
      if (value === undefined) return null
      const last = value === null ? T0 : 'samples' in value ? (value.samples.at(-1)?.at ?? T0) : 'outcomes' in value ? (value.outcomes.at(-1)?.at ?? T0) : T0
      return { at: at ?? last, value: value as T | null, error: value === null ? 'boom' : null }
    },
  }
}

const checkOf = (checks: Check[], id: string): Check => checks.find((c) => c.id === id)!
const evaluate = (check: Check, map: Record<string, ResourceSeries | QueryHistory | null>, now: number, at?: number) => check.evaluate(probeGateInput(now, ROLLOUT, probes(map, at)))
const flat = (n: number, step: { cpu: number; requests: number; rss: number | number[] }) => Array.from({ length: n }, () => step)

t.test('maxMemory: a spike holds, three samples in a row over the limit fail with the values, under it passes', async (t) => {
  const check = checkOf(resourceChecks(settings()), 'resources.maxMemory')
  const stable = series('stable', flat(6, { cpu: 0.01, requests: 10, rss: 100 * MiB }))
  const spike = series('canary', [...flat(4, { cpu: 0.01, requests: 10, rss: 100 * MiB }), { cpu: 0.01, requests: 10, rss: 600 * MiB }, { cpu: 0.01, requests: 10, rss: 100 * MiB }])
  const now = T0 + 5000
  t.equal(evaluate(check, { 'resources.stable': stable, 'resources.canary': spike }, now).verdict, 'pass', 'one spike, then back: passes')
  const rising = series('canary', [...flat(3, { cpu: 0.01, requests: 10, rss: 100 * MiB }), { cpu: 0.01, requests: 10, rss: 510 * MiB }, { cpu: 0.01, requests: 10, rss: 520 * MiB }])
  const two = evaluate(check, { 'resources.canary': rising }, T0 + 4000)
  t.match(two, { verdict: 'insufficient', observed: 520 * MiB, threshold: 500 * MiB, reason: /> max 500 MiB in 2 of the 3 consecutive samples a breach needs/ })
  const three = series('canary', [...rising.samples.map(() => ({ cpu: 0.01, requests: 10, rss: 0 })).slice(0, 0), ...[100, 100, 100, 510, 520, 530].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB }))])
  const fail = evaluate(check, { 'resources.canary': three }, T0 + 5000)
  t.match(fail, { verdict: 'fail', observed: 530 * MiB, threshold: 500 * MiB, n: 3 })
  t.equal(fail.reason, 'canary instance http://canary-0.test/metrics resident memory 530 MiB > max 500 MiB in 3 consecutive samples (510 MiB, 520 MiB, 530 MiB, every 1s)')
  t.match(evaluate(check, { 'resources.canary': three }, T0 + 8000), { verdict: 'insufficient', reason: /the last canary scrape is 3s old \(stale\)/ }, 'stale: holds, never fails')
  t.match(evaluate(check, {}, now), { verdict: 'insufficient', reason: 'no canary scrape yet' })
  t.match(evaluate(check, { 'resources.canary': null }, T0), { verdict: 'insufficient', reason: 'canary scrape failed: boom' })
  const broken = series('canary', flat(4, { cpu: 0.01, requests: 10, rss: 900 * MiB }), { error: 3 })
  t.match(evaluate(check, { 'resources.canary': broken }, T0 + 3000), { verdict: 'insufficient', reason: 'canary http://canary-0.test/metrics: HTTP 503' }, 'an instance that failed its scrape holds')
  const two_instances = series('canary', flat(3, { cpu: 0.02, requests: 10, rss: [100 * MiB, 200 * MiB] }))
  t.match(evaluate(check, { 'resources.canary': two_instances }, T0 + 2000), { verdict: 'pass', observed: 200 * MiB, reason: /at most 200 MiB per instance over 2 instances/ })
})

t.test('maxMemoryRatio: canary mean per instance over stable mean, three in a row', async (t) => {
  const check = checkOf(resourceChecks(settings()), 'resources.maxMemoryRatio')
  const stable = series('stable', flat(5, { cpu: 0.01, requests: 10, rss: 100 * MiB }))
  const canary = series('canary', [100, 100, 160, 170, 180].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB })))
  const fail = evaluate(check, { 'resources.stable': stable, 'resources.canary': canary }, T0 + 4000)
  t.match(fail, { verdict: 'fail', threshold: 1.5, n: 3, reason: "canary resident memory 180 MiB = 1.80x stable's 100 MiB (mean per instance) > max 1.50x in 3 consecutive samples (samples 1.60x, 1.70x, 1.80x)" })
  t.ok(Math.abs(fail.observed! - 1.8) < 1e-9)
  const partly = series('canary', [100, 100, 100, 170, 180].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB })))
  t.match(evaluate(check, { 'resources.stable': stable, 'resources.canary': partly }, T0 + 4000), { verdict: 'insufficient', reason: /in 2 of the 3/ })
  const fine = series('canary', flat(5, { cpu: 0.01, requests: 10, rss: 120 * MiB }))
  t.match(evaluate(check, { 'resources.stable': stable, 'resources.canary': fine }, T0 + 4000), { verdict: 'pass', reason: /1\.20x stable's .* <= max 1\.50x/ })
  const late = series('stable', flat(5, { cpu: 0.01, requests: 10, rss: 100 * MiB }), { start: T0 - 10_000 })
  t.match(evaluate(check, { 'resources.stable': late, 'resources.canary': fine }, T0 + 4000, T0 + 4000), { verdict: 'insufficient', reason: /no stable sample taken within one interval/ })
  t.match(evaluate(check, { 'resources.canary': fine }, T0 + 4000), { verdict: 'insufficient', reason: 'no stable scrape yet' })
})

t.test('maxCpuPerRequestRatio: three disjoint intervals over the ratio and the excess floor fail; idle work at a low weight passes; a baseline at 100%', async (t) => {
  const check = checkOf(resourceChecks(settings()), 'resources.maxCpuPerRequestRatio')
  // Stable: 2 ms per request at 100 rps.
  const stable = series('stable', flat(5, { cpu: 0.2, requests: 100, rss: 100 * MiB }))
  const twice = series('canary', flat(5, { cpu: 0.4, requests: 100, rss: 100 * MiB }))
  const fail = evaluate(check, { 'resources.stable': stable, 'resources.canary': twice }, T0 + 4000)
  t.match(fail, { verdict: 'fail', threshold: 1.5, n: 300 })
  t.equal(fail.reason, "canary CPU 4.00 ms per request = 2.00x stable's 2.00 ms > max 1.50x in 3 consecutive samples (samples 2.00x, 2.00x, 2.00x over 3s, 300 canary requests); 0.100 cores per instance above what the ratio allows")
  // A 5% canary: 5 requests a second at the same 2 ms, plus 8 ms/s of idle work both sides have.
  const lowStable = series('stable', flat(5, { cpu: 0.008 + 95 * 0.002, requests: 95, rss: 100 * MiB }))
  const lowCanary = series('canary', flat(5, { cpu: 0.008 + 5 * 0.002, requests: 5, rss: 100 * MiB }))
  const idle = evaluate(check, { 'resources.stable': lowStable, 'resources.canary': lowCanary }, T0 + 4000, T0 + 4000)
  t.equal(idle.verdict, 'insufficient', 'too few canary requests over three samples: holds')
  const lowSettings = checkOf(resourceChecks(settings({ minRequests: 10 })), 'resources.maxCpuPerRequestRatio')
  const passed = evaluate(lowSettings, { 'resources.stable': lowStable, 'resources.canary': lowCanary }, T0 + 4000)
  t.equal(passed.verdict, 'pass', 'the ratio looks 3.5x, but the excess is idle work')
  t.match(passed.reason, /above max 1\.50x by only 0\.00\d cores per instance \(minCpuExcess 0\.01\): idle work/)
  // 2 of 3 intervals over: holds.
  const partly = series('canary', [0.2, 0.2, 0.4, 0.4].map((cpu) => ({ cpu, requests: 100, rss: 100 * MiB })))
  t.match(evaluate(check, { 'resources.stable': stable, 'resources.canary': partly }, T0 + 3000), { verdict: 'insufficient', reason: /in 2 of the 3 consecutive samples a breach needs/ })
  // At 100% stable serves nothing: its figure from before the canary span is the baseline.
  const before = series('stable', [...flat(6, { cpu: 0.2, requests: 100, rss: 100 * MiB }), ...flat(5, { cpu: 0.001, requests: 0, rss: 100 * MiB })])
  const full = series('canary', flat(5, { cpu: 0.9, requests: 200, rss: 100 * MiB }), { start: T0 + 6000 })
  const baseline = evaluate(check, { 'resources.stable': before, 'resources.canary': full }, T0 + 10_000)
  t.match(baseline, { verdict: 'fail', reason: /2\.25x stable's 2\.00 ms \(stable's baseline of .*, over \d+ requests: it serves too little now\)/ })
  const noBaseline = series('stable', flat(5, { cpu: 0.001, requests: 0, rss: 100 * MiB }))
  t.match(evaluate(check, { 'resources.stable': noBaseline, 'resources.canary': twice }, T0 + 4000), { verdict: 'insufficient', reason: /stable served 0 requests over the span and has no earlier figure/ })
  // A restarted instance (its counter went back) cannot be compared across the restart.
  const restarted: ResourceSeries = { ...twice, samples: twice.samples.map((s, i) => (i === 4 ? { ...s, instances: s.instances.map((x) => ({ ...x, cpuSeconds: 0.01, startTime: 2 })) } : s)) }
  t.match(evaluate(check, { 'resources.stable': stable, 'resources.canary': restarted }, T0 + 4000), { verdict: 'insufficient', reason: 'canary http://canary-0.test/metrics restarted' })
  t.match(evaluate(check, { 'resources.stable': stable, 'resources.canary': series('canary', flat(2, { cpu: 0.2, requests: 100, rss: 1 })) }, T0 + 1000), { verdict: 'insufficient', reason: 'collecting: 2 canary samples, the CPU check needs 4' })
  const stableDown = series('stable', flat(5, { cpu: 0.2, requests: 100, rss: 1 }), { error: 3 })
  t.match(evaluate(check, { 'resources.stable': stableDown, 'resources.canary': twice }, T0 + 4000), { verdict: 'insufficient', reason: 'stable http://stable-0.test/metrics: HTTP 503' })
})

t.test('maxMemoryGrowthPerMinute: a steady leak fails with its slope; a flat or saw-tooth memory does not', async (t) => {
  const check = checkOf(resourceChecks(settings()), 'resources.maxMemoryGrowthPerMinute')
  const jitter = [0, 3, -2, 1, -3, 2, 0, -1, 3, -2, 1]
  const leak = series('canary', jitter.map((j, i) => ({ cpu: 0.01, requests: 10, rss: (100 + i * 1 + j * 0.1) * MiB })))
  const fail = evaluate(check, { 'resources.canary': leak }, T0 + 10_000)
  t.equal(fail.verdict, 'fail', fail.reason)
  t.match(fail.reason, /^canary instance http:\/\/canary-0\.test\/metrics memory grows 5\d\.\d MiB\/min \(99\.9% bounds .* over 11 samples in 10s, now 1\d\d MiB > max 10 MiB\/min$/)
  const still = series('canary', jitter.map((j) => ({ cpu: 0.01, requests: 10, rss: (100 + j * 0.05) * MiB })))
  t.match(evaluate(check, { 'resources.canary': still }, T0 + 10_000), { verdict: 'pass', reason: /<= max 10 MiB\/min/ })
  // One tooth of a collector's saw-tooth: up 2 MiB a second, then down at the end. The slope is high, the last third is not above the first.
  const tooth = series('canary', [100, 102, 104, 106, 108, 110, 112, 114, 116, 100, 101].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB })))
  t.not(evaluate(check, { 'resources.canary': tooth }, T0 + 10_000).verdict, 'fail', 'a saw-tooth is not a leak')
  // A fresh process warming up: 3 MiB a second for five seconds, then flat. Proven growth overall, but not a leak.
  const warmup = series('canary', [100, 103, 106, 109, 112, 115, 115.2, 114.9, 115.1, 115, 115.2].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB })))
  const warm = evaluate(check, { 'resources.canary': warmup }, T0 + 10_000)
  t.not(warm.verdict, 'fail', `a warm-up ramp that flattens is not a leak: ${warm.reason}`)
  const short = series('canary', flat(4, { cpu: 0.01, requests: 10, rss: 100 * MiB }))
  t.match(evaluate(check, { 'resources.canary': short }, T0 + 3000), { verdict: 'insufficient', reason: /^collecting: 4 samples/ })
  const noisy = series('canary', [100, 130, 90, 140, 95, 150, 100, 160, 90, 150, 110].map((m) => ({ cpu: 0.01, requests: 10, rss: m * MiB })))
  t.match(evaluate(check, { 'resources.canary': noisy }, T0 + 10_000), { verdict: 'insufficient', reason: /not proven (above|below) max/ })
})

t.test('custom checks: bounds, consecutive results, and results that hold', async (t) => {
  const server: PrometheusConfig = { url: 'http://p.test', timeoutMs: 500, headers: {}, pods: { stable: null, canary: null } }
  const config: CustomCheckConfig = { name: 'errors', query: 'sum(x)', min: 0.5, max: 2, intervalMs: 1000, consecutive: 2 }
  const check = customCheck(config, server)
  const history = (...values: (number | null)[]): QueryHistory => ({ query: 'sum(x)', outcomes: values.map((value, i) => ({ at: T0 + i * 1000, value, note: value === null ? 'no data (the query returned no series)' : null })) })
  const at = (h: QueryHistory) => T0 + (h.outcomes.length - 1) * 1000
  const ev = (h: QueryHistory) => check.evaluate(probeGateInput(at(h), ROLLOUT, probes({ 'checks.errors': h })))
  t.match(ev(history(1, 3, 4)), { verdict: 'fail', observed: 4, threshold: 2, n: 2, reason: 'checks.errors: 4 > max 2 in 2 consecutive results (3, 4, every 1s) of sum(x)' })
  t.match(ev(history(1, 0.1, 0.2)), { verdict: 'fail', threshold: 0.5, reason: /0\.2 < min 0\.5 in 2 consecutive results/ })
  t.match(ev(history(1, 1, 3)), { verdict: 'insufficient', observed: 3, reason: /3 > max 2 in 1 of the 2 consecutive results a breach needs/ })
  t.match(ev(history(3, null, 3)), { verdict: 'insufficient', reason: /in 1 of the 2/ }, 'a missing result breaks the run')
  t.match(ev(history(1)), { verdict: 'pass', observed: 1, reason: 'checks.errors: 1 within min 0.5, max 2' })
  t.match(ev(history(3, null)), { verdict: 'insufficient', reason: 'checks.errors: no data (the query returned no series), from sum(x)' })
  t.match(check.evaluate(probeGateInput(T0 + 60_000, ROLLOUT, probes({ 'checks.errors': history(5, 5) }))), { verdict: 'insufficient', reason: /stale/ })
  t.match(check.evaluate(probeGateInput(T0, ROLLOUT, probes({}))), { verdict: 'insufficient', reason: 'checks.errors: no result yet' })
  t.match(check.evaluate(probeGateInput(T0, ROLLOUT, probes({ 'checks.errors': null }))), { verdict: 'insufficient', reason: 'checks.errors: the query failed: boom' })
})

t.test('gate checks: due rules per type; never fail', async (t) => {
  const hook = (type: WebhookConfig['type']): WebhookConfig => ({ name: 'g', type, url: 'http://h.test/x', timeoutMs: 1000, retries: 0, backoffMs: 100, maxBackoffMs: 100, headers: {}, metadata: {}, format: 'json', maxQueue: 1 })
  t.same(
    (['pre-rollout', 'step', 'confirm-promotion'] as const).map((type) => [gateDue(type, 'progressing', 0), gateDue(type, 'progressing', 25), gateDue(type, 'baking', 100), gateDue(type, 'paused', 25), gateDue(type, 'rolled_back', 0), gateDue(type, 'idle', 0)]),
    [
      [true, false, false, false, false, false],
      [false, true, true, true, false, false],
      [false, false, true, false, false, false],
    ],
  )
  const step = gateCheck(hook('step'))
  const at = (weight: number, state: 'waiting' | 'passed') => probes({ 'webhook.g': { type: 'step', state, phase: 'progressing', weight, attempts: 1, lastStatus: 500, lastProblem: 'HTTP 500', nextAttemptAt: T0 + 400 } as never })
  t.match(step.evaluate(probeGateInput(T0, { ...ROLLOUT, weight: 25 }, at(25, 'passed'))), { verdict: 'pass', reason: 'webhook g (step): answered 2xx at 25%' })
  t.match(step.evaluate(probeGateInput(T0, { ...ROLLOUT, weight: 50 }, at(25, 'passed'))), { verdict: 'insufficient', reason: 'webhook g (step): holding: not asked yet at 50%' })
  t.match(step.evaluate(probeGateInput(T0, { ...ROLLOUT, weight: 25 }, at(25, 'waiting'))), { verdict: 'insufficient', reason: 'webhook g (step): holding until it answers 2xx (HTTP 500 after 1 try, next try in 400ms)' })
  t.match(step.evaluate(probeGateInput(T0, { ...ROLLOUT, weight: 0 }, probes({}))), { verdict: 'pass', reason: /not due/ })
  t.match(step.evaluate(probeGateInput(T0, { ...ROLLOUT, weight: 25 }, probes({}))), { verdict: 'insufficient', reason: /not asked yet/ })
  t.throws(() => gateCheck(hook('event')), /not a gate/)
})

t.test('templates, sizes, trends, redaction, payloads and the transition rules', async (t) => {
  t.same([parseBytes('1Gi'), parseBytes('512Mi'), parseBytes('1.5K'), parseBytes('100'), parseBytes('1Gb'), parseBytes('Mi')], [1024 ** 3, 512 * MiB, 1500, 100, null, null])
  t.same([formatBytes(1024 ** 3), formatBytes(220 * MiB), formatBytes(1.5 * MiB), formatBytes(500), formatBytes(-5 * MiB), formatBytes(2048)], ['1 GiB', '220 MiB', '1.5 MiB', '500 B', '-5 MiB', '2 KiB'])

  const values = templateValues({ stableUrl: 'http://web-stable.prod.svc:8080/', canaryUrl: 'http://10.0.0.7:8080' }, { stable: null, canary: null }, 15_000)
  t.same(renderTemplate('{{stable_url}}|{{ stable_host }}|{{stable_hostname}}|{{stable_pod}}|{{interval}}', values), { ok: true, value: 'http://web-stable.prod.svc:8080|web-stable.prod.svc:8080|web-stable.prod.svc|web-stable-.*|15s' })
  const pod = renderTemplate('x{pod=~"{{canary_pod}}"}', values)
  t.match(pod, { ok: false, error: /{{canary_pod}} has no value: the canary upstream's host 10\.0\.0\.7 names no pods: set analysis\.prometheus\.pods\.canary/ })
  t.same(renderTemplate('{{canary_pod}}', templateValues({ stableUrl: 'http://s.test', canaryUrl: 'http://c.test' }, { stable: null, canary: 'web-canary-[a-z0-9]+' })), { ok: true, value: 'web-canary-[a-z0-9]+' })
  t.match(renderTemplate('{{canary_url}}', templateValues({ stableUrl: 'http://s.test', canaryUrl: null })), { ok: false, error: /there is no canary upstream yet/ })
  t.match(renderTemplate('{{nope}}', values), { ok: false, error: '{{nope}} is not a known variable' })
  t.same(unknownVariables('{{a}} {{stable_url}} {{a}} {{b}}', QUERY_VARIABLES), ['a', 'b'])
  t.equal(promqlString('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
  t.same([promqlDuration(15_000), promqlDuration(120_000), promqlDuration(1500)], ['15s', '2m', '1500ms'])
  t.equal(renderTemplate('{x="{{stable_pod}}"}', templateValues({ stableUrl: 'http://a"b.test', canaryUrl: null }, { stable: 'x"y\\d', canary: null }), promqlString).ok, true)

  const trend = fitTrend([0, 1, 2, 3], [1, 3, 5, 7])
  t.same([trend.slope, trend.standardError, trend.n], [2, 0, 4])
  t.same(slopeBounds(fitTrend([0], [1]), 0.99), { lower: Number.NEGATIVE_INFINITY, upper: Number.POSITIVE_INFINITY })
  t.equal(fitTrend([1, 1, 1], [1, 2, 3]).standardError, Number.POSITIVE_INFINITY)
  t.equal(fitTrend([0, 1], [0, 2]).slope, 2)

  t.equal(redactUrl('https://hooks.slack.test/services/T1/B2/XYZ?x=1'), 'https://hooks.slack.test/…')
  t.equal(redactUrl('http://127.0.0.1:8081/'), 'http://127.0.0.1:8081/')
  t.equal(redactUrl('nope'), '(not a URL)')
  t.equal(displayEndpoint('http://a.test:9/metrics?token=s'), 'http://a.test:9/metrics')
  t.equal(displayEndpoint('::'), '(not a URL)')
  const secrets = secretsOf({ url: 'https://h.test/services/T1SECRET/B2SECRET?token=QQQQ', headers: { authorization: 'Bearer TOKEN123' } })
  t.equal(scrub('x https://h.test/services/T1SECRET/B2SECRET?token=QQQQ y /services/T1SECRET z QQQQ Bearer TOKEN123 TOKEN123', secrets), 'x [redacted] y /[redacted]/[redacted] z [redacted] [redacted] [redacted]', 'every path segment of 6 or more characters counts as secret: too much hidden beats too little')

  t.equal(describeFailure({ code: 'ECONNREFUSED' }), 'connection refused (ECONNREFUSED)')
  t.equal(describeFailure({ code: 'EWHATEVER' }), 'EWHATEVER')
  t.equal(describeFailure({ name: 'TypeError' }), 'TypeError')
  t.equal(describeFailure(42), 'failed')
  const aborted = new AbortController()
  aborted.abort('plain')
  t.equal(describeFailure(new Error('x'), aborted.signal), 'aborted')

  const counters = new WebhookCounters(['a'])
  counters.add('b', 'timeout')
  t.equal(counters.values().length, 10, 'every result of every webhook is a series')
  t.equal(counters.get('b', 'timeout'), 1)
  t.equal(counters.get('c', 'success'), 0)

  const end = { phase: 'rolled_back' }
  const during = { phase: 'progressing' }
  t.same(
    (['event', 'post-rollout', 'rollback', 'step'] as const).map((type) => [takesTransition(type, during, during), takesTransition(type, during, end), takesTransition(type, during, { phase: 'succeeded' }), takesTransition(type, end, end)]),
    [
      [true, true, true, true],
      [false, true, true, false],
      [false, true, false, false],
      [false, false, false, false],
    ],
  )
  const hook: WebhookConfig = { name: 'chat', type: 'event', url: 'http://h.test', timeoutMs: 1, retries: 0, backoffMs: 1, maxBackoffMs: 1, headers: {}, metadata: {}, format: 'slack', maxQueue: 1 }
  const record = { at: T0, actor: 'auto', action: 'rollback', from: { phase: 'progressing' as const, weight: 25 }, to: { phase: 'rolled_back' as const, weight: 0 }, reason: 'canary error rate 12%' }
  const failed = [{ check: 'resources.maxMemory', verdict: 'fail' as const, observed: 1, threshold: 1, n: 3, reason: 'canary memory 2 GiB > max 1 GiB' }]
  t.equal(slackText(eventPayload(hook, record, 3, failed, { stable: 'http://s.test', canary: 'http://c.test' })), 'canary-proxy rollback: progressing 25% -> rolled_back 0% (canary http://c.test) — canary memory 2 GiB > max 1 GiB')
  t.equal(slackText(eventPayload(hook, { ...record, action: 'config', to: record.from, reason: null }, 3, [], { stable: 'http://s.test', canary: null })), 'canary-proxy config: progressing at 25%')
})
