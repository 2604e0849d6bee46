/**
 * The process lifecycle of a real `canary-proxy serve` child (SPEC "Lifecycle"):
 * on SIGTERM or SIGINT /readyz answers 503 at once, the listeners stop accepting,
 * a request in flight still completes, state is flushed, exit 0; a second signal
 * exits at once.
 */
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { admin } from '../helpers/app.js'
import { exitWithin, serve, tempDir, until, writeConfig, type Served } from '../helpers/cli.js'
import { startRawServer, startUpstream } from '../helpers/upstreams.js'

async function serveWith(t: Test, upstreams: { stable: string; canary?: string }, drainTimeout: string): Promise<{ served: Served; dir: string }> {
  const dir = await tempDir()
  const file = await writeConfig(
    dir,
    'config.yaml',
    `listen: { host: 127.0.0.1, port: 0, drainTimeout: ${drainTimeout} }
admin: { host: 127.0.0.1, port: 0 }
upstreams:
  stable: ${upstreams.stable}
${upstreams.canary === undefined ? '' : `  canary: ${upstreams.canary}\n`}rollout: { autoStart: false }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
log: { level: info }
`,
  )
  return { served: await serve(t, file), dir }
}

async function readyz(adminUrl: string): Promise<{ status: number; body: string }> {
  const res = await request(`${adminUrl}/readyz`, { headersTimeout: 5_000, bodyTimeout: 5_000 })
  return { status: res.statusCode, body: await res.body.text() }
}

/** Resolves with the outcome of one TCP connection attempt to `url`'s port. */
function tryConnect(url: string): Promise<'accepted' | 'refused' | string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) })
    socket.once('connect', () => {
      socket.destroy()
      resolve('accepted')
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' ? 'refused' : (error.code ?? error.message)))
  })
}

/** A request through the proxy that the upstream holds for a while; settles into a record the test can look at. */
function inFlight(t: Test, proxyUrl: string): { settled: () => boolean; result: Promise<{ status: number; body: string } | { error: string }> } {
  // Its own keep-alive connection, as a browser or a load balancer would hold.
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => agent.destroy())
  let settled = false
  const result = request(`${proxyUrl}/slow`, { dispatcher: agent, headersTimeout: 60_000, bodyTimeout: 60_000 })
    .then(async (res) => ({ status: res.statusCode, body: await res.body.text() }))
    .catch((error: unknown) => ({ error: String(error) }))
    .finally(() => (settled = true))
  return { settled: () => settled, result }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal}: not ready at once, no new connections, the request in flight completes, state flushed, exit 0`, async (t) => {
    // Long enough that "at once" and "still in flight" are far apart even on a busy machine.
    const slowMs = 2_500
    const stable = await startUpstream(t, 'stable', { delayMs: slowMs })
    const canary = await startUpstream(t, 'canary')
    const { served, dir } = await serveWith(t, { stable: stable.url, canary: canary.url }, '10s')

    const before = await readyz(served.adminUrl)
    t.equal(before.status, 200, '/readyz is 200 once listening')
    t.same(JSON.parse(before.body), { status: 'ready' })
    // A state change just before the signal, to find in the file afterwards.
    const set = await admin(served.adminUrl, 'PUT', '/api/v1/weight', { weight: 7 })
    t.equal(set.status, 200)
    canary.behave({ delayMs: slowMs })

    const slow = inFlight(t, served.proxyUrl)
    await until('the request to reach an upstream', () => (stable.received.length + canary.received.length >= 1 ? true : undefined), 10_000, 10)

    const signalledAt = Date.now()
    served.child.process.kill(signal)

    const draining = await until('/readyz to stop answering 200', async () => {
      const r = await readyz(served.adminUrl)
      return r.status === 200 ? undefined : r
    }, 5_000, 10)
    t.equal(draining.status, 503, '/readyz answers 503 while draining')
    t.same(JSON.parse(draining.body), { status: 'draining' })
    t.notOk(slow.settled(), 'the 503 came while the request was still in flight')

    const refused = await until('new connections to the proxy to be refused', async () => ((await tryConnect(served.proxyUrl)) === 'refused' ? true : undefined), 5_000, 20)
    t.ok(refused, 'a new connection to the data plane is refused')
    t.notOk(slow.settled(), 'the listener stopped while the request was still in flight')

    const outcome = await slow.result
    t.equal('status' in outcome ? outcome.status : outcome.error, 200, `the request in flight completed with 200 (${JSON.stringify(outcome)})`)
    if ('body' in outcome) t.match(JSON.parse(outcome.body), { url: '/slow' })

    const exit = await exitWithin(served.child, 20_000)
    t.equal(exit.code, 0, 'exit 0')
    t.equal(exit.signal, null, 'not killed by the signal')
    const elapsed = Date.now() - signalledAt
    t.ok(elapsed < 10_000, `exited within the 10 s drain timeout (${elapsed}ms after the signal)`)
    const logs = served.logLines().map((l) => String(l.msg))
    t.ok(logs.some((m) => m.startsWith(`${signal}: draining`)), 'logs the drain')
    t.ok(logs.includes('canary-proxy stopped'), 'logs the stop')
    t.notOk(logs.some((m) => /drain timeout .* reached/.test(m)), 'the request in flight finished by itself, the drain timeout did not cut it')

    const saved = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { version: number; state: { phase: string; weight: number } }
    t.equal(saved.version, 1)
    t.match(saved.state, { phase: 'paused', weight: 7 }, 'the state on disk is the last state')
  })
}

t.test('a second signal exits at once, without waiting for the drain', async (t) => {
  // An upstream that accepts and never answers (no timer to outlive the test).
  const stable = await startRawServer(t, () => undefined)
  const { served } = await serveWith(t, { stable: stable.url }, '60s')
  const slow = inFlight(t, served.proxyUrl)
  await until('the request to reach the upstream', () => (stable.connections >= 1 ? true : undefined), 10_000, 10)

  served.child.process.kill('SIGTERM')
  const draining = await until('/readyz to answer 503', async () => {
    const r = await readyz(served.adminUrl)
    return r.status === 503 ? r : undefined
  }, 5_000, 10)
  t.equal(draining.status, 503)
  t.notOk(served.child.hasExited(), 'still draining after the first signal')

  served.child.process.kill('SIGINT')
  const exit = await exitWithin(served.child, 15_000)
  t.ok(exit.ms < 15_000, `exited ${exit.ms}ms after the second signal, long before the 60 s drain`)
  t.equal(exit.code, 1, 'a forced exit is not a clean one')
  const outcome = await slow.result
  t.ok('error' in outcome, 'the request in flight was cut')
})

t.test('SIGTERM with nothing in flight exits 0 promptly', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { served } = await serveWith(t, { stable: stable.url }, '30s')
  // One finished keep-alive request: an idle connection must not hold the drain.
  const agent = new Agent({ keepAliveTimeout: 60_000 })
  t.teardown(() => agent.destroy())
  const res = await request(`${served.proxyUrl}/`, { dispatcher: agent })
  t.equal(res.statusCode, 200)
  await res.body.dump()

  served.child.process.kill('SIGTERM')
  const exit = await exitWithin(served.child, 25_000)
  t.equal(exit.code, 0)
  t.ok(exit.ms < 25_000, `exited after ${exit.ms}ms, before the 30 s drain timeout`)
  t.notOk(
    served.logLines().some((l) => /drain timeout .* reached/.test(String(l.msg))),
    'an idle keep-alive connection did not hold the drain until its timeout',
  )
})
