/**
 * listen.workers in process: the test process is the primary (buildApp with
 * `workers`), and forks real worker processes (test/helpers/worker-entry.ts,
 * which runs what `serve` runs in a worker) that share the proxy's socket.
 * Real upstreams on loopback, the real clock, short durations from the
 * config; waits poll up to a deadline.
 */
import cluster from 'node:cluster'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { buildApp, type App } from '../../src/app.js'
import { configFromObject } from '../../src/config/load.js'
import { createLogger } from '../../src/log.js'
import { admin, merge, type ConfigInput } from '../helpers/app.js'
import { until } from '../helpers/cli.js'
import { parseExposition, select, value } from '../helpers/prom-text.js'
import { startUpstream } from '../helpers/upstreams.js'

t.setTimeout(120_000)

const ENTRY = fileURLToPath(new URL('../helpers/worker-entry.ts', import.meta.url))

async function primary(t: Test, overrides: ConfigInput): Promise<{ app: App; proxyUrl: string; adminUrl: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'canary-proxy-workers-'))
  const input = merge(
    {
      listen: { host: '127.0.0.1', port: 0, drainTimeout: '3s', workers: 2 },
      admin: { host: '127.0.0.1', port: 0 },
      state: { file: join(dir, 'state.json') },
      audit: { file: join(dir, 'audit.jsonl') },
      log: { level: 'silent' },
    },
    overrides,
  )
  const parsed = configFromObject(input)
  if (!parsed.ok) throw new Error(parsed.error.map((i) => `${i.path}: ${i.message}`).join('; '))
  // JSON is YAML: the workers parse the very text the primary was given.
  const app = await buildApp({ config: parsed.value, log: createLogger('silent'), workers: { exec: ENTRY, configText: JSON.stringify(input) } })
  // close() is idempotent: a test that closed the app itself is not closed twice.
  t.teardown(() => app.close())
  const { proxyUrl, adminUrl } = await app.listen()
  return { app, proxyUrl, adminUrl }
}

const requestsTotal = (text: string): number => select(parseExposition(text), 'canary_proxy_requests_total').reduce((sum, s) => sum + s.value, 0)
const scrape = async (adminUrl: string): Promise<string> => (await request(`${adminUrl}/metrics`)).body.text()

t.test('two workers proxy by the primary table; the primary decides on their merged deltas; /metrics sums them; a dead worker is replaced', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { app, proxyUrl, adminUrl } = await primary(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [50], stepDuration: '60s', autoStart: false },
    // A window long enough that nothing sent here ages out of it on a slow machine.
    analysis: { interval: '100ms', window: '60s', minRequests: 5, maxErrorRate: 0.2 },
  })
  const pool = app.workers
  if (pool === null) throw new Error('no worker pool')
  t.equal(app.dataPlane, null, 'the primary has no proxy listener of its own')
  t.equal(pool.listening, 2, 'two workers accepting')
  t.equal(new Set(pool.pids).size, 2, 'two worker processes')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start')).status, 200)
  t.equal(app.status().weight, 50)

  // Several connections: the primary's cluster hands them to the workers in turn.
  const agent = new Agent({ connections: 8, pipelining: 0 })
  t.teardown(() => agent.close())
  const sent = 200
  const statuses = await Promise.all(Array.from({ length: sent }, () => request(`${proxyUrl}/a`, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode))))
  t.same(new Set(statuses), new Set([200]), 'every request answered')
  const perWorker = await pool.metrics()
  t.equal(perWorker.length, 2, 'each worker answers the scrape')
  const counts = perWorker.map((m) => (m.find((x) => x.name === 'canary_proxy_requests_total')?.values ?? []).reduce((sum, v) => sum + v.value, 0))
  t.ok(counts.every((n) => n > 0), `both workers proxied (${counts.join(' + ')})`)
  t.equal(counts[0]! + counts[1]!, sent, 'and between them, every request once')
  t.equal(stable.received.length + canary.received.length, sent)
  t.ok(canary.received.length > 0 && stable.received.length > 0, 'both sides served at 50%')

  const text = await scrape(adminUrl)
  const metrics = parseExposition(text)
  t.equal(requestsTotal(text), sent, '/metrics: canary_proxy_requests_total summed over the workers')
  t.equal(value(metrics, 'canary_proxy_canary_weight'), 50, "the primary's gauges beside them")
  t.equal(value(metrics, 'canary_proxy_workers'), 2)
  t.equal(select(metrics, 'canary_proxy_canary_weight').length, 1, 'a gauge only the primary has appears once')
  const inWindow = await until('every delta in the merged window', () => {
    const s = app.status()
    return (s.stable.requestsTotal ?? 0) + (s.canary?.requestsTotal ?? 0) === sent && s.stable.requests + (s.canary?.requests ?? 0) === sent ? s : undefined
  })
  t.equal(inWindow.canary?.requests, canary.received.length, "the window holds the canary's requests of both workers")

  // A worker killed: the other goes on, a new one takes its place, the summed counter does not go down.
  const [victim] = pool.pids
  process.kill(victim!, 'SIGKILL')
  await until('a replacement', () => (pool.restarts === 1 && pool.listening === 2 ? true : undefined), 20_000)
  t.notOk(pool.pids.includes(victim!), 'the dead worker is gone from the pool')
  const more = await Promise.all(Array.from({ length: 40 }, () => request(`${proxyUrl}/b`, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode))))
  t.same(new Set(more), new Set([200]), 'requests keep being answered')
  const after = await scrape(adminUrl)
  t.ok(requestsTotal(after) >= sent + 40 - 0, `the summed counter kept the dead worker's requests (${requestsTotal(after)})`)
  t.equal(value(parseExposition(after), 'canary_proxy_worker_restarts_total'), 1)

  // The canary fails in both workers: the primary's gate rolls it back.
  canary.behave({ status: 500 })
  let running = true
  const load = (async () => {
    while (running) await request(`${proxyUrl}/c`, { dispatcher: agent }).then((r) => r.body.dump(), () => undefined)
  })()
  const rolledBack = await until('rolled back', () => (app.status().phase === 'rolled_back' ? app.status() : undefined), 20_000)
  running = false
  await load
  t.equal(rolledBack.weight, 0, 'weight 0')
  const canaryBefore = canary.received.length
  await Promise.all(Array.from({ length: 20 }, () => request(`${proxyUrl}/d`, { dispatcher: agent }).then((r) => r.body.dump())))
  t.equal(canary.received.length, canaryBefore, 'every worker took up the table: nothing reaches the canary')
})

t.test('a replacement that dies before it is listening is replaced in turn: the pool never shrinks for good', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { app, proxyUrl, adminUrl } = await primary(t, { upstreams: { stable: stable.url }, listen: { workers: 2 } })
  const pool = app.workers
  if (pool === null) throw new Error('no worker pool')
  const [victim, survivor] = pool.pids
  // This process is the primary: the victim's first replacement is killed as soon as it is forked, long before it listens.
  // (The survivor keeps the shared socket, so port 0 stays the port the pool reports.)
  let killedAtBirth = 0
  const onFork = (worker: { process: { kill: (signal: string) => boolean } }): void => {
    if (killedAtBirth > 0) return
    killedAtBirth++
    worker.process.kill('SIGKILL')
  }
  cluster.on('fork', onFork)
  t.teardown(() => void cluster.off('fork', onFork))
  process.kill(victim!, 'SIGKILL')
  await until('the replacement killed at birth', () => (killedAtBirth === 1 ? true : undefined), 20_000)
  await until('two workers listening again', () => (pool.listening === 2 ? true : undefined), 30_000)
  t.equal(pool.pids.length, 2)
  t.ok(pool.pids.includes(survivor!) && !pool.pids.includes(victim!), 'the survivor and a new worker')
  const agent = new Agent({ connections: 4 })
  t.teardown(() => agent.close())
  const statuses = await Promise.all(Array.from({ length: 20 }, () => request(`${proxyUrl}/x`, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode))))
  t.same(new Set(statuses), new Set([200]), 'every request answered')
  t.equal(value(parseExposition(await scrape(adminUrl)), 'canary_proxy_worker_restarts_total'), 2, 'one death after listening, one while booting')
})

t.test('close drains every worker: a request in flight is answered, then the workers exit', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { app, proxyUrl } = await primary(t, { upstreams: { stable: stable.url }, listen: { workers: 2 } })
  const pool = app.workers
  if (pool === null) throw new Error('no worker pool')
  const pids = pool.pids
  stable.behave({ delayMs: 600 })
  const inFlight = request(`${proxyUrl}/slow`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
  await until('the upstream has the request', () => (stable.received.length === 1 ? true : undefined))
  await app.close()
  const answered = await inFlight
  t.equal(answered.status, 200, 'the request in flight was answered')
  t.equal(pool.listening, 0)
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} exited`)
  await t.rejects(request(`${proxyUrl}/after`), 'nothing accepts any more')
})
