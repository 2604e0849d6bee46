/** GET /metrics against the SPEC's Metrics table: every name, type and label, and the values known traffic must produce. */
import t from 'tap'
import type { Test } from 'tap'
import { Agent, request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { parseExposition, select, value, type Exposition } from '../helpers/prom-text.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream } from '../helpers/upstreams.js'

const PHASES = ['idle', 'progressing', 'paused', 'baking', 'succeeded', 'rolled_back', 'aborted']
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx', 'error']
const SIDES = ['stable', 'canary']

/** The SPEC's table: name -> type and label names. */
const SPEC_METRICS: Record<string, { type: string; labels: string[] }> = {
  canary_proxy_requests_total: { type: 'counter', labels: ['status_class', 'upstream'] },
  canary_proxy_request_duration_seconds: { type: 'histogram', labels: ['upstream'] },
  canary_proxy_canary_weight: { type: 'gauge', labels: [] },
  canary_proxy_rollout_phase: { type: 'gauge', labels: ['phase'] },
  canary_proxy_rollbacks_total: { type: 'counter', labels: [] },
  canary_proxy_client_aborts_total: { type: 'counter', labels: ['upstream'] },
  canary_proxy_window_error_ratio: { type: 'gauge', labels: ['upstream'] },
  canary_proxy_window_latency_seconds: { type: 'summary', labels: ['quantile', 'upstream'] },
}

async function scrape(adminUrl: string): Promise<{ exposition: Exposition; contentType: string }> {
  const res = await request(`${adminUrl}/metrics`)
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
  return { exposition: parseExposition(text), contentType: String(res.headers['content-type']) }
}

/**
 * One request to a chosen side by a sticky key (canary at any weight from 1,
 * stable at any weight up to 50): requests routed by the override header are
 * counted apart (canary_proxy_override_requests_total).
 */
const KEYS = { always: stickyKey('canary', 1), never: stickyKey('stable', 50) }
async function get(proxyUrl: string, path: string, side: 'always' | 'never', options: { signal?: AbortSignal; dispatcher?: Agent } = {}): Promise<{ status: number; upstream: string | undefined; proxyError: string | undefined }> {
  const res = await request(`${proxyUrl}${path}`, { headers: { 'x-user-id': KEYS[side] }, ...options })
  await res.body.dump()
  return { status: res.statusCode, upstream: res.headers['x-upstream'] as string | undefined, proxyError: res.headers['x-canary-proxy-error'] as string | undefined }
}

function checkSpecNames(t: Test, e: Exposition): void {
  for (const [name, spec] of Object.entries(SPEC_METRICS)) {
    t.equal(e.types.get(name), spec.type, `${name} is a ${spec.type}`)
    const samples = spec.type === 'histogram' ? select(e, `${name}_count`) : select(e, name)
    t.ok(samples.length > 0, `${name} has samples`)
    for (const s of samples) t.same(Object.keys(s.labels).sort(), spec.labels, `${s.name}${JSON.stringify(s.labels)}: labels ${spec.labels.join(', ') || '(none)'}`)
  }
}

t.test('known traffic gives the expected values for every SPEC metric', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  stable.behave((req) => (req.url === '/fail' ? { status: 503 } : req.url === '/missing' ? { status: 404 } : req.url === '/slow' ? { delayMs: 3000 } : { status: 200 }))
  canary.behave((req) => ({ status: req.url === '/fail' ? 503 : req.url === '/moved' ? 302 : 200, delayMs: 30 }))
  const clock = new FakeClock()
  const { adminUrl, proxyUrl } = await startApp(
    t,
    { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'x-user-id' }, rollout: { autoStart: false }, analysis: { minRequests: 1000, maxErrorRate: 0.5 } },
    { clock },
  )

  // Before any traffic: every series present, at zero.
  const empty = (await scrape(adminUrl)).exposition
  checkSpecNames(t, empty)
  for (const side of SIDES) {
    for (const cls of CLASSES) t.equal(value(empty, 'canary_proxy_requests_total', { upstream: side, status_class: cls }), 0, `no traffic: ${side} ${cls} = 0`)
    t.equal(value(empty, 'canary_proxy_request_duration_seconds_count', { upstream: side }), 0)
    t.equal(value(empty, 'canary_proxy_window_error_ratio', { upstream: side }), 0, `no traffic: ${side} error ratio 0`)
    t.ok(Number.isNaN(value(empty, 'canary_proxy_window_latency_seconds', { upstream: side, quantile: '0.5' })), `no traffic: ${side} p50 is NaN`)
  }
  t.equal(value(empty, 'canary_proxy_rollout_phase', { phase: 'idle' }), 1)

  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })).status, 200)
  for (let i = 0; i < 10; i++) t.equal((await get(proxyUrl, '/ok', 'never')).upstream, 'stable')
  for (let i = 0; i < 4; i++) t.equal((await get(proxyUrl, '/fail', 'never')).status, 503)
  for (let i = 0; i < 2; i++) t.equal((await get(proxyUrl, '/missing', 'never')).status, 404)
  for (let i = 0; i < 6; i++) t.equal((await get(proxyUrl, '/ok', 'always')).upstream, 'canary')
  for (let i = 0; i < 2; i++) t.equal((await get(proxyUrl, '/fail', 'always')).status, 503)
  t.equal((await get(proxyUrl, '/moved', 'always')).status, 302)
  // The canary goes away: connection refused, the proxy answers 502 itself.
  await canary.close()
  for (let i = 0; i < 3; i++) {
    const res = await get(proxyUrl, '/ok', 'always')
    t.equal(res.status, 502, 'canary down: 502')
    t.type(res.proxyError, 'string', 'generated by the proxy')
  }
  // A client that gives up on a slow stable request. Its own agent, destroyed
  // after: undici may open a spare connection after an abort, which would
  // hold the data plane's close until its connection timeout (the fake clock
  // never fires the drain deadline).
  const agent = new Agent()
  const controller = new AbortController()
  const before = stable.received.length
  const aborted = get(proxyUrl, '/slow', 'never', { signal: controller.signal, dispatcher: agent }).catch((error: unknown) => error)
  while (stable.received.length === before) await new Promise((resolve) => setTimeout(resolve, 5))
  controller.abort()
  t.type(await aborted, Error, 'the client aborted')
  await agent.destroy()
  let e = (await scrape(adminUrl)).exposition
  for (let i = 0; i < 100 && value(e, 'canary_proxy_client_aborts_total', { upstream: 'stable' }) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    e = (await scrape(adminUrl)).exposition
  }

  // Window figures are cached for 50ms of (fake) time: move past it.
  clock.advance(100)
  const { exposition, contentType } = await scrape(adminUrl)
  e = exposition
  t.match(contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text content type')
  checkSpecNames(t, e)

  // canary_proxy_requests_total{upstream,status_class}
  const expected: Record<string, Record<string, number>> = {
    stable: { '1xx': 0, '2xx': 10, '3xx': 0, '4xx': 2, '5xx': 4, error: 0 },
    canary: { '1xx': 0, '2xx': 6, '3xx': 1, '4xx': 0, '5xx': 2, error: 3 },
  }
  for (const side of SIDES) {
    for (const cls of CLASSES) {
      t.equal(value(e, 'canary_proxy_requests_total', { upstream: side, status_class: cls }), expected[side]![cls], `requests_total{upstream="${side}",status_class="${cls}"}`)
    }
  }
  t.equal(select(e, 'canary_proxy_requests_total').length, SIDES.length * CLASSES.length, 'one series per side and class')

  // canary_proxy_request_duration_seconds: cumulative buckets, +Inf = count = answered requests.
  const answered: Record<string, number> = { stable: 16, canary: 9 }
  for (const side of SIDES) {
    const buckets = select(e, 'canary_proxy_request_duration_seconds_bucket', { upstream: side })
    t.ok(buckets.length >= 5, `${side}: several buckets`)
    for (const b of buckets) t.same(Object.keys(b.labels).sort(), ['le', 'upstream'], `${side} bucket labels le, upstream`)
    const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le)))
    t.ok(bounds.every((x) => !Number.isNaN(x)), `${side}: every le is a number or +Inf`)
    t.same([...bounds].sort((a, b) => a - b), bounds, `${side}: buckets in increasing le order`)
    t.equal(bounds[bounds.length - 1], Number.POSITIVE_INFINITY, `${side}: last bucket is +Inf`)
    const counts = buckets.map((b) => b.value)
    t.ok(
      counts.every((c, i) => i === 0 || c >= counts[i - 1]!),
      `${side}: buckets are cumulative (${counts.join(' ')})`,
    )
    const count = value(e, 'canary_proxy_request_duration_seconds_count', { upstream: side })
    t.equal(count, answered[side], `${side}: _count equals the answered requests`)
    t.equal(counts[counts.length - 1], count, `${side}: +Inf bucket equals _count`)
    const sum = value(e, 'canary_proxy_request_duration_seconds_sum', { upstream: side })
    t.ok(sum > 0 && sum < count * 3, `${side}: _sum is plausible (${sum})`)
  }
  const canaryBucket = (le: string): number => value(e, 'canary_proxy_request_duration_seconds_bucket', { upstream: 'canary', le })
  t.equal(canaryBucket('0.025'), 0, 'canary answers took at least 30ms: none at or below 25ms')
  t.equal(canaryBucket('1'), 9, 'all 9 answered canary requests at or below 1s')
  t.ok(value(e, 'canary_proxy_request_duration_seconds_sum', { upstream: 'canary' }) >= 9 * 0.03, 'canary _sum >= 9 x 30ms')

  // Gauges and counters of the rollout.
  t.equal(value(e, 'canary_proxy_canary_weight'), 50)
  for (const phase of PHASES) t.equal(value(e, 'canary_proxy_rollout_phase', { phase }), phase === 'paused' ? 1 : 0, `rollout_phase{phase="${phase}"}`)
  t.equal(select(e, 'canary_proxy_rollout_phase').length, 7, 'all seven phases, nothing else')
  t.equal(value(e, 'canary_proxy_rollbacks_total'), 0)
  t.equal(value(e, 'canary_proxy_client_aborts_total', { upstream: 'stable' }), 1, 'the client that went away')
  t.equal(value(e, 'canary_proxy_client_aborts_total', { upstream: 'canary' }), 0)

  // Window figures: errors / requests, 5xx and no-response alike.
  t.equal(value(e, 'canary_proxy_window_error_ratio', { upstream: 'stable' }), 4 / 16, 'stable: 4 errors (503) in 16; a 404 is not an error')
  t.equal(value(e, 'canary_proxy_window_error_ratio', { upstream: 'canary' }), 5 / 12, 'canary: 2 x 503 + 3 x no response in 12')
  const q = (side: string, quantile: string): number => value(e, 'canary_proxy_window_latency_seconds', { upstream: side, quantile })
  t.same(select(e, 'canary_proxy_window_latency_seconds').map((s) => s.labels.quantile).sort(), ['0.5', '0.5', '0.9', '0.9', '0.99', '0.99', '0.999', '0.999'])
  t.ok(q('canary', '0.5') >= 0.029 && q('canary', '0.5') < 1, `canary p50 about 30ms (${q('canary', '0.5')})`)
  t.ok(q('canary', '0.99') >= q('canary', '0.5') && q('canary', '0.99') < 1, `canary p99 >= p50 (${q('canary', '0.99')})`)
  t.ok(q('stable', '0.5') > 0 && q('stable', '0.5') < q('canary', '0.5'), `stable p50 below canary's (${q('stable', '0.5')})`)

  // The same figures as the status API.
  const status = (await admin(adminUrl, 'GET', '/api/v1/status')).json as { stable: { requests: number; errors: number; p50Ms: number }; canary: { requests: number; errors: number; p50Ms: number } }
  t.same([status.stable.requests, status.stable.errors, status.canary.requests, status.canary.errors], [16, 4, 12, 5], 'status agrees')
  t.equal(q('canary', '0.5'), status.canary.p50Ms / 1000, 'window p50 in seconds = status p50Ms / 1000')

  // Standard process metrics.
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.ok(e.types.has(name), `standard metric ${name}`)
    t.ok(select(e, name).length > 0, `${name} has a sample`)
  }
  t.ok(value(e, 'process_cpu_seconds_total') > 0)
})

t.test('an automatic rollback increments canary_proxy_rollbacks_total; an abort does not', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', { status: 503 })
  const clock = new FakeClock()
  const { adminUrl, proxyUrl } = await startApp(
    t,
    {
      upstreams: { stable: stable.url, canary: canary.url },
      routing: { stickyHeader: 'x-user-id' },
      rollout: { autoStart: true, steps: [10, 100], stepDuration: '10s' },
      analysis: { interval: '1s', minRequests: 10, maxErrorRate: 0.01 },
    },
    { clock },
  )
  let e = (await scrape(adminUrl)).exposition
  t.equal(value(e, 'canary_proxy_rollout_phase', { phase: 'progressing' }), 1)
  t.equal(value(e, 'canary_proxy_canary_weight'), 10)
  t.equal(value(e, 'canary_proxy_rollbacks_total'), 0)

  for (let i = 0; i < 20; i++) t.equal((await get(proxyUrl, '/', 'always')).status, 503)
  clock.advance(1000)
  const s = (await admin(adminUrl, 'GET', '/api/v1/status')).json
  t.equal(s.phase, 'rolled_back', 'a canary answering 503 is rolled back')
  e = (await scrape(adminUrl)).exposition
  t.equal(value(e, 'canary_proxy_rollbacks_total'), 1, 'one rollback')
  t.equal(value(e, 'canary_proxy_canary_weight'), 0)
  for (const phase of PHASES) t.equal(value(e, 'canary_proxy_rollout_phase', { phase }), phase === 'rolled_back' ? 1 : 0, `after rollback: phase="${phase}"`)

  // Operator abort of a second rollout: not a rollback.
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort')).status, 200)
  e = (await scrape(adminUrl)).exposition
  t.equal(value(e, 'canary_proxy_rollbacks_total'), 1, 'abort is not counted as a rollback')
  t.equal(value(e, 'canary_proxy_rollout_phase', { phase: 'aborted' }), 1)

  // A third rollout fails again: the counter keeps counting.
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  for (let i = 0; i < 20; i++) await get(proxyUrl, '/', 'always')
  clock.advance(1000)
  e = (await scrape(adminUrl)).exposition
  t.equal(value(e, 'canary_proxy_rollbacks_total'), 2, 'second rollback')
  // Cumulative request counters never reset across rollouts.
  t.equal(value(e, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '5xx' }), 40)
})

t.test('two apps in one process keep separate registries', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const a = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, routing: { stickyHeader: 'x-user-id' }, rollout: { autoStart: false } })
  const b = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  t.equal((await admin(a.adminUrl, 'PUT', '/api/v1/weight', { weight: 20 })).status, 200)
  t.equal((await admin(b.adminUrl, 'PUT', '/api/v1/weight', { weight: 70 })).status, 200)
  t.equal((await admin(b.adminUrl, 'POST', '/api/v1/rollout/abort')).status, 200)
  for (let i = 0; i < 5; i++) await get(a.proxyUrl, '/', 'always')
  for (let i = 0; i < 3; i++) await get(a.proxyUrl, '/', 'never')
  const ea = (await scrape(a.adminUrl)).exposition
  const eb = (await scrape(b.adminUrl)).exposition
  t.equal(value(ea, 'canary_proxy_canary_weight'), 20)
  t.equal(value(eb, 'canary_proxy_canary_weight'), 0)
  t.equal(value(ea, 'canary_proxy_rollout_phase', { phase: 'paused' }), 1)
  t.equal(value(eb, 'canary_proxy_rollout_phase', { phase: 'aborted' }), 1)
  t.equal(value(ea, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '2xx' }), 5)
  t.equal(value(ea, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 3)
  t.equal(value(eb, 'canary_proxy_requests_total', { upstream: 'canary', status_class: '2xx' }), 0, 'b saw none of a\'s traffic')
  t.equal(value(eb, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 0)
  for (const e of [ea, eb]) {
    t.ok(e.types.has('process_cpu_seconds_total'), 'each registry has the process metrics')
    t.equal(select(e, 'canary_proxy_canary_weight').length, 1, 'one weight series per registry')
  }
  t.not(a.app.registry, b.app.registry)
})
