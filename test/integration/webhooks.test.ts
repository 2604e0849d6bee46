// Webhooks against real receivers on loopback (2xx, 500, one that hangs, one
// that is gone): notifications fed by the real app's event feed, gates run by
// a real ProbeRunner, and no secret of a webhook in any log line, finding or
// file.
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { collectDefaultMetrics, Registry } from 'prom-client'
import t, { type Test } from 'tap'
import type { Finding } from '../../src/analysis/finding.js'
import type { ProbeRollout } from '../../src/analysis/probe.js'
import { configFromObject } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { systemClock } from '../../src/core/clock.js'
import { EventFeed } from '../../src/events/feed.js'
import { createLogger } from '../../src/log.js'
import { buildExternalChecks } from '../../src/probes/external-checks.js'
import { ProbeRunner } from '../../src/probes/runner.js'
import { admin, startApp } from '../helpers/app.js'
import { probeGateInput, rolloutFrom } from '../helpers/probe-wiring.js'
import { closedPort, startUpstream } from '../helpers/upstreams.js'

interface Call {
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Record<string, unknown>
}
type Answer = { status: number; body?: string } | 'hang'

/** A webhook receiver: answers each call as `answer(n)` says (n from 0) and keeps what it received. */
async function receiver(t: Test, answer: (n: number, call: Call) => Answer = () => ({ status: 200 })): Promise<{ url: string; calls: Call[] }> {
  const calls: Call[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res: ServerResponse) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString('utf8')))
    req.on('end', () => {
      const call: Call = { url: req.url ?? '', headers: req.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) }
      const a = answer(calls.length, call)
      calls.push(call)
      if (a === 'hang') return
      res.writeHead(a.status, { 'content-type': 'text/plain' }).end(a.body ?? '')
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls }
}

function config(extra: Record<string, unknown>): Config {
  const r = configFromObject({ upstreams: { stable: 'http://127.0.0.1:9001' }, ...extra })
  if (!r.ok) throw new Error(r.error.map((i) => `${i.path}: ${i.message}`).join('; '))
  return r.value
}

/** A pino logger writing into an array, at debug. */
function capturedLog(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'))
      done()
    },
  })
  return { lines, log: createLogger('debug', sink) }
}

async function until(what: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  for (let waited = 0; waited < timeoutMs && !(await what()); waited += 20) await sleep(20)
  return what()
}

t.test('notifications from the real app: every transition to event hooks (JSON and slack), the end to post-rollout, the abort to rollback', async (t) => {
  const json = await receiver(t)
  const slack = await receiver(t)
  const post = await receiver(t)
  const rollback = await receiver(t)
  const [stable, canary] = await Promise.all([startUpstream(t, 'stable'), startUpstream(t, 'canary')])
  const webhooks = [
    { name: 'feed', type: 'event', url: `${json.url}/events`, metadata: { team: 'payments' } },
    { name: 'chat', type: 'event', url: `${slack.url}/chat`, format: 'slack' },
    { name: 'after', type: 'post-rollout', url: post.url },
    { name: 'undo', type: 'rollback', url: rollback.url },
  ]
  const running = await startApp(t, { upstreams: { stable: stable.url }, rollout: { steps: [10, 50], stepDuration: '10m' }, webhooks })
  // The app's own notifier: the control plane builds it from the config's webhooks.
  const external = running.app.external

  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/rollout/start', { canary: canary.url })).status, 200)
  t.equal((await admin(running.adminUrl, 'PUT', '/api/v1/weight', { weight: 30 })).status, 200)
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/rollout/abort')).status, 200)
  await external.notifier.idle()

  const actions = json.calls.map((c) => c.body.action)
  t.same(actions, ['start', 'set-weight', 'abort'], 'every transition, in order')
  const abort = json.calls[2]!.body
  t.match(abort, { name: 'feed', type: 'event', action: 'abort', actor: 'admin', phase: 'aborted', weight: 0, from: { phase: 'paused', weight: 30 }, generation: 1, stable: stable.url, canary: canary.url, metadata: { team: 'payments' } })
  t.ok(Array.isArray(abort.findings), 'findings are sent')
  t.ok(typeof abort.reason === 'string' || abort.reason === null, 'reason is sent')
  t.match(abort.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'at is ISO 8601')
  t.equal(json.calls[0]!.headers['content-type'], 'application/json')
  t.same(
    slack.calls.map((c) => Object.keys(c.body)),
    [['text'], ['text'], ['text']],
    'slack format sends {text} only',
  )
  t.match(slack.calls[2]!.body.text, /^canary-proxy abort: paused 30% -> aborted 0% \(canary http:\/\/127\.0\.0\.1:\d+\)/)
  t.same(
    post.calls.map((c) => [c.body.action, c.body.phase]),
    [['abort', 'aborted']],
    'post-rollout: the end only',
  )
  t.same(
    rollback.calls.map((c) => c.body.phase),
    ['aborted'],
    'rollback: the drop to 0 only',
  )
  t.same(
    external.counters.values().filter((v) => v.value > 0),
    [
      { labels: { webhook: 'feed', result: 'success' }, value: 3 },
      { labels: { webhook: 'chat', result: 'success' }, value: 3 },
      { labels: { webhook: 'after', result: 'success' }, value: 1 },
      { labels: { webhook: 'undo', result: 'success' }, value: 1 },
    ],
  )
  const scraped = await (await fetch(`${running.adminUrl}/metrics`)).text()
  t.match(scraped, /canary_proxy_webhook_calls_total\{webhook="feed",result="success"\} 3/, 'the counts reach /metrics')
  t.match(scraped, /canary_proxy_webhook_calls_total\{webhook="undo",result="dropped"\} 0/, 'every series starts at 0')
})

t.test('a failing receiver is retried with backoff; one that hangs times out and delays only its own queue; one that is gone is counted; a full queue drops the oldest', async (t) => {
  const flaky = await receiver(t, (n) => (n < 2 ? { status: 500, body: 'not yet' } : { status: 204 }))
  const hang = await receiver(t, () => 'hang')
  const quick = await receiver(t)
  const gone = `http://127.0.0.1:${await closedPort()}/hook`
  const { lines, log } = capturedLog()
  const external = buildExternalChecks(
    config({
      webhooks: [
        { name: 'flaky', type: 'event', url: flaky.url, backoff: '50ms', retries: 3 },
        { name: 'hang', type: 'event', url: hang.url, timeout: '300ms', backoff: '50ms', retries: 1, maxQueue: 2 },
        { name: 'quick', type: 'event', url: quick.url },
        { name: 'gone', type: 'event', url: gone, backoff: '50ms', retries: 1 },
      ],
    }),
    { clock: systemClock, log },
  )
  t.teardown(() => external.close())
  const feed = new EventFeed()
  external.notifier.attach(feed)
  const transition = (i: number) => ({
    type: 'transition' as const,
    generation: 1,
    findings: [],
    record: { at: 1_800_000_000_000 + i, actor: 'auto', action: 'advance', from: { phase: 'progressing' as const, weight: i }, to: { phase: 'progressing' as const, weight: i + 1 }, reason: `step ${i}` },
  })
  for (let i = 0; i < 5; i++) feed.emit(transition(i))
  t.same([flaky.calls.length, quick.calls.length], [0, 0], 'emit returned before any delivery: the feed never waits for a receiver')

  await until(() => quick.calls.length === 5)
  t.equal(quick.calls.length, 5, 'the quick receiver got all five')
  t.ok((external.notifier.pending().hang ?? 0) > 0, 'while the hanging one still has its own queue')
  await external.notifier.idle()
  t.equal(flaky.calls.length, 7, 'flaky: 2 failures then 204 for the first, 204 for the other four')
  t.equal(external.counters.get('flaky', 'http_error'), 2)
  t.equal(external.counters.get('flaky', 'success'), 5)
  // hang: queue of 2 while the first is in flight: 5 events -> 3 sent (2 tries each, timed out), 2 dropped.
  t.equal(external.counters.get('hang', 'dropped'), 2, 'a full queue drops the oldest')
  t.equal(external.counters.get('hang', 'timeout'), 6, 'every try of the three sent timed out')
  t.same(
    hang.calls.map((c) => c.body.weight),
    [1, 1, 4, 4, 5, 5],
    'the oldest waiting ones were dropped, the newest kept',
  )
  t.equal(external.counters.get('gone', 'network_error'), 10, 'gone: 2 tries for each of 5')
  const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; webhook?: string })
  t.ok(
    warned.some((l) => l.level === 40 && l.webhook === 'hang' && /failed \(timed out after 300ms\)/.test(l.msg)),
    'a timeout is logged',
  )
  t.ok(
    warned.some((l) => l.level === 40 && l.webhook === 'gone' && /failed \(connection refused \(ECONNREFUSED\)\); given up after 2 tries/.test(l.msg)),
    'a receiver that is gone is logged, with the retries given up',
  )
  t.ok(
    warned.some((l) => l.level === 40 && l.webhook === 'flaky' && /failed \(HTTP 500: not yet\); retry in 50ms/.test(l.msg)),
    'a 500 is logged with its body and the next retry',
  )
})

/** A rollout the test moves by hand: gates read plain data, so any phase and weight can be set. */
function manualRollout(): { rollout: ProbeRollout; set(next: Partial<ProbeRollout>): void; get(): ProbeRollout } {
  const state = { value: { phase: 'progressing', weight: 0, step: null, stableUrl: 'http://127.0.0.1:9001', canaryUrl: 'http://127.0.0.1:9002', generation: 1 } as ProbeRollout }
  return {
    rollout: state.value,
    set(next) {
      state.value = { ...state.value, ...next }
    },
    get: () => state.value,
  }
}

t.test('gate webhooks hold until 2xx, at the right phase and weight, and never fail; a breach of another check during a confirm-promotion wait fails at the same evaluation (Flagger #1801)', async (t) => {
  let open = false
  const pre = await receiver(t, (n) => (n < 2 ? { status: 500, body: 'load test not ready' } : { status: 200 }))
  const step = await receiver(t)
  const confirm = await receiver(t, () => (open ? { status: 200 } : { status: 403, body: 'gate closed' }))
  const hang = await receiver(t, () => 'hang')
  const gone = `http://127.0.0.1:${await closedPort()}/`
  // Real process metrics of this test process, for a resource check that fails while the gate waits.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const exporter = createServer((_req, res) => void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text)))
  await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => exporter.close(() => resolve())))
  const exporterUrl = `http://127.0.0.1:${(exporter.address() as AddressInfo).port}/metrics`

  const cfg = config({
    analysis: { resources: { interval: '200ms', timeout: '150ms', stable: [exporterUrl], canary: [exporterUrl], maxMemory: '1Mi', consecutive: 3 } },
    webhooks: [
      { name: 'load-test', type: 'pre-rollout', url: pre.url, backoff: '50ms', maxBackoff: '100ms' },
      { name: 'drive', type: 'step', url: step.url, backoff: '50ms' },
      { name: 'approve', type: 'confirm-promotion', url: confirm.url, backoff: '50ms', maxBackoff: '100ms' },
      { name: 'slow', type: 'step', url: hang.url, timeout: '200ms', backoff: '50ms', maxBackoff: '100ms' },
      { name: 'missing', type: 'confirm-promotion', url: gone, backoff: '50ms', maxBackoff: '100ms' },
    ],
  })
  const rollout = manualRollout()
  const external = buildExternalChecks(cfg, { clock: systemClock })
  const runner = new ProbeRunner({ clock: systemClock, probes: external.probes, rollout: rollout.get, servedRequests: () => 0 })
  const feed = new EventFeed()
  runner.attach(feed)
  runner.start()
  t.teardown(async () => {
    await runner.stop()
    await external.close()
  })
  const evaluate = (): Map<string, Finding> => {
    const input = probeGateInput(Date.now(), rollout.get(), runner)
    return new Map(external.checks.map((c) => [c.id, c.evaluate(input)]))
  }
  const moved = (next: Partial<ProbeRollout>): void => {
    rollout.set(next)
    const r = rollout.get()
    feed.emit({ type: 'transition', generation: r.generation, findings: [], record: { at: Date.now(), actor: 'auto', action: 'advance', from: { phase: 'progressing', weight: 0 }, to: { phase: r.phase as never, weight: r.weight }, reason: null } })
  }

  // Weight 0, under way: pre-rollout is due; it holds through two 500s, then passes.
  await until(() => pre.calls.length >= 1)
  const holding = evaluate().get('webhook.load-test')!
  t.equal(holding.verdict, 'insufficient')
  t.match(holding.reason, /^webhook load-test \(pre-rollout\): holding/)
  t.same([evaluate().get('webhook.drive')!.verdict, evaluate().get('webhook.approve')!.verdict], ['pass', 'pass'], 'step and confirm-promotion are not due at weight 0')
  await until(() => evaluate().get('webhook.load-test')!.verdict === 'pass')
  t.equal(pre.calls.length, 3, '500, 500, then 200')
  t.match(pre.calls[0]!.body, { name: 'load-test', type: 'pre-rollout', phase: 'progressing', weight: 0, generation: 1 })
  t.equal(external.counters.get('load-test', 'http_error'), 2)
  await sleep(200)
  t.equal(pre.calls.length, 3, 'a passed gate is not asked again')

  // The first step: the step gate is asked at once (kicked by the transition), at this weight.
  moved({ weight: 10, step: 0 })
  await until(() => evaluate().get('webhook.drive')!.verdict === 'pass')
  t.match(step.calls[0]!.body, { type: 'step', weight: 10, step: 0 })
  t.equal(evaluate().get('webhook.load-test')!.verdict, 'pass', 'pre-rollout no longer applies past weight 0')
  moved({ weight: 50, step: 1 })
  t.equal(evaluate().get('webhook.drive')!.verdict, 'insufficient', 'a 2xx at 10% does not pass 50%')
  await until(() => evaluate().get('webhook.drive')!.verdict === 'pass')
  t.same(
    step.calls.map((c) => c.body.weight),
    [10, 50],
    'asked once per weight',
  )
  const slow = evaluate().get('webhook.slow')!
  t.equal(slow.verdict, 'insufficient', 'a gate that hangs holds')
  await until(() => /timed out after 200ms/.test(evaluate().get('webhook.slow')!.reason))
  t.match(evaluate().get('webhook.slow')!.reason, /holding until it answers 2xx \(timed out after 200ms after \d+ tr(y|ies)/)

  // The bake: confirm-promotion is closed (403) while the canary breaches maxMemory.
  const asked = confirm.calls.length
  moved({ phase: 'baking', weight: 100, step: 1 })
  await until(() => {
    const now = evaluate()
    return confirm.calls.length > asked && /403/.test(now.get('webhook.approve')!.reason) && /ECONNREFUSED/.test(now.get('webhook.missing')!.reason) && now.get('resources.maxMemory')!.verdict === 'fail'
  })
  const during = evaluate()
  t.equal(during.get('webhook.approve')!.verdict, 'insufficient', 'confirm-promotion holds')
  t.match(during.get('webhook.approve')!.reason, /holding until it answers 2xx \(HTTP 403: gate closed after \d+ tr/)
  t.equal(during.get('resources.maxMemory')!.verdict, 'fail', 'and, at the same evaluation, the breach fails: the gate rolls back on it')
  t.equal(during.get('webhook.missing')!.verdict, 'insufficient')
  t.match(during.get('webhook.missing')!.reason, /connection refused \(ECONNREFUSED\)/)
  t.notOk(
    [...during.values()].some((f) => f.check.startsWith('webhook.') && f.verdict === 'fail'),
    'no webhook ever fails',
  )
  open = true
  await until(() => evaluate().get('webhook.approve')!.verdict === 'pass')
  t.equal(evaluate().get('webhook.approve')!.verdict, 'pass', 'a 2xx opens the gate')
  t.ok(external.counters.get('approve', 'http_error') >= 1 && external.counters.get('approve', 'success') === 1)
})

t.test('secrets in webhook URLs and headers reach no log line, finding, result, metric label or audit file', async (t) => {
  const echo = (call: Call): Answer => ({ status: 500, body: `you sent ${call.url} with ${String(call.headers.authorization)}` })
  const hook = await receiver(t, (_n, call) => echo(call))
  const secrets = ['T0PATHSECRET', 'B0PATHSECRET', 'QUERYSECRET', 'HEADERSECRET42']
  const url = `${hook.url}/services/T0PATHSECRET/B0PATHSECRET?token=QUERYSECRET`
  const headers = { authorization: 'Bearer HEADERSECRET42' }
  const webhooks = [
    { name: 'chat', type: 'event', url, headers, retries: 1, backoff: '20ms' },
    { name: 'gate', type: 'step', url, headers, backoff: '50ms' },
  ]
  const [stable, canary] = await Promise.all([startUpstream(t, 'stable'), startUpstream(t, 'canary')])
  const running = await startApp(t, { upstreams: { stable: stable.url }, rollout: { steps: [10], stepDuration: '10m' }, webhooks })
  const { lines, log } = capturedLog()
  const external = buildExternalChecks(running.config, { clock: systemClock, log })
  external.notifier.attach(running.app.events)
  const runner = new ProbeRunner({ clock: systemClock, probes: external.probes, rollout: rolloutFrom(running.app), servedRequests: () => 0, log })
  runner.attach(running.app.events)
  runner.start()
  t.teardown(async () => {
    await runner.stop()
    await external.close()
  })
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/rollout/start', { canary: canary.url })).status, 200)
  await until(() => hook.calls.filter((c) => c.body.type === 'step').length >= 2 && external.counters.get('chat', 'http_error') >= 2)
  await external.notifier.idle()
  t.ok(hook.calls.some((c) => c.headers.authorization === 'Bearer HEADERSECRET42'), 'the receiver did get the secret header')
  const finding = external.checks.find((c) => c.id === 'webhook.gate')!.evaluate(probeGateInput(Date.now(), rolloutFrom(running.app)(), runner))
  t.equal(finding.verdict, 'insufficient')
  t.match(finding.reason, /HTTP 500: you sent \[redacted\]\?\[redacted\] with \[redacted\]/, 'the receiver echoed the secrets; the reason shows neither')
  const audit = await readFile(join(running.dir, 'audit.jsonl'), 'utf8')
  const everything = [...lines, JSON.stringify(finding), JSON.stringify(runner.latest('webhook.gate')), JSON.stringify(external.counters.values()), audit, JSON.stringify(runner.stats())].join('\n')
  t.ok(lines.length >= 3, 'failures were logged')
  for (const secret of secrets) t.notOk(everything.includes(secret), `${secret} is in none of them`)
  t.match(lines.join('\n'), /webhook chat \(event, http:\/\/127\.0\.0\.1:\d+\/…\) failed/, 'logs name the webhook by its name and host')
})

interface GateStatus {
  phase: string
  weight: number
  lastDecision: { reason: string; findings: { check: string; verdict: string; reason: string }[] } | null
}
const gateStatus = async (adminUrl: string): Promise<GateStatus> => (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as GateStatus

t.test('pre-rollout: the rollout waits at 0% until the gate answers 2xx, retried with backoff, then takes its first step', async (t) => {
  // The gate stays shut until the 0% has been seen: with a 50 ms backoff, two failures and the 2xx could all come
  // before the first status read on a loaded machine (the test then read 10%).
  let seenAtZero = false
  const gate = await receiver(t, (n) => (n < 2 || !seenAtZero ? { status: 500, body: 'migrations running' } : { status: 204 }))
  const [stable, canary] = await Promise.all([startUpstream(t, 'stable'), startUpstream(t, 'canary')])
  const running = await startApp(t, {
    upstreams: { stable: stable.url },
    rollout: { steps: [10, 100], stepDuration: '10m' },
    analysis: { interval: '100ms', minRequests: 5, maxErrorRate: 0.05 },
    webhooks: [{ name: 'ready', type: 'pre-rollout', url: gate.url, backoff: '50ms', maxBackoff: '100ms' }],
  })
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/rollout/start', { canary: canary.url })).status, 200)
  const first = await gateStatus(running.adminUrl)
  t.match(first, { phase: 'progressing', weight: 0 }, 'started at 0%: no user reaches the canary before the gate passes')
  seenAtZero = true
  t.ok(await until(() => gate.calls.length >= 3), 'asked again after each failure')
  t.ok(await until(async () => (await gateStatus(running.adminUrl)).weight === 10), 'the first step follows the 2xx')
  t.equal(gate.calls[0]?.body.type, 'pre-rollout')
})

t.test('a breach during a confirm-promotion wait rolls back (Flagger #1801 is the opposite)', async (t) => {
  const gate = await receiver(t, () => ({ status: 403, body: 'not approved' }))
  const [stable, canary] = await Promise.all([startUpstream(t, 'stable'), startUpstream(t, 'canary')])
  const running = await startApp(t, {
    upstreams: { stable: stable.url },
    rollout: { steps: [100], bake: '50ms' },
    analysis: { interval: '100ms', minRequests: 5, maxErrorRate: 0.05 },
    webhooks: [{ name: 'approve', type: 'confirm-promotion', url: gate.url, backoff: '50ms', maxBackoff: '100ms' }],
  })
  t.equal((await admin(running.adminUrl, 'POST', '/api/v1/rollout/start', { canary: canary.url })).status, 200)
  const send = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await (await fetch(`${running.proxyUrl}/`)).arrayBuffer()
  }
  await send(10)
  t.ok(await until(async () => (await gateStatus(running.adminUrl)).lastDecision?.findings.some((f) => f.check === 'webhook.approve' && /holding until it answers 2xx/.test(f.reason)) === true), 'the bake waits on the gate')
  t.equal((await gateStatus(running.adminUrl)).phase, 'baking', 'past the bake time, it still waits for the approval')
  canary.behave({ status: 503 })
  await send(10)
  t.ok(await until(async () => (await gateStatus(running.adminUrl)).phase === 'rolled_back'), 'the breach rolls back while the gate holds')
  t.match((await gateStatus(running.adminUrl)).lastDecision?.reason ?? '', /error rate/)
})
