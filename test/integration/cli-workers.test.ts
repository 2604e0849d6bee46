/**
 * `serve` with listen.workers: 2, the built CLI as a child process: the
 * primary forks two workers that run its own command line, they proxy on
 * the one port, SIGHUP reaches the primary, SIGTERM drains every worker and
 * exits 0, and a primary killed outright leaves no worker behind.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { createServer } from 'node:net'
import { exitWithin, killChild, runCli, serve, tempDir, until, writeConfig } from '../helpers/cli.js'
import { parseExposition, value } from '../helpers/prom-text.js'
import { startUpstream } from '../helpers/upstreams.js'

t.setTimeout(90_000)

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function config(stableUrl: string, port = 0, extra: readonly string[] = []): Promise<string> {
  const dir = await tempDir()
  return writeConfig(
    dir,
    'workers.yaml',
    [
      `listen: { host: 127.0.0.1, port: ${port}, drainTimeout: 3s, workers: 2 }`,
      'admin: { host: 127.0.0.1, port: 0 }',
      `upstreams: { stable: "${stableUrl}" }`,
      `state: { file: "${dir}/state.json" }`,
      `audit: { file: "${dir}/audit.jsonl" }`,
      ...extra,
      '',
    ].join('\n'),
  )
}

t.test('two workers on one port; SIGHUP reloads; SIGTERM drains every worker and exits 0', async (t) => {
  const stable = await startUpstream(t, 'stable')
  // debug: each worker logs its drain, under its own id.
  const file = await config(stable.url, 0, ['log: { level: debug }'])
  const served = await serve(t, file)
  const listening = served.logLines().find((l) => typeof l.msg === 'string' && l.msg.includes('with 2 workers'))
  t.ok(listening, 'the listening line says how many workers')
  const pids = (listening?.pids ?? []) as number[]
  t.equal(pids.length, 2, 'and names their process ids')
  t.ok(pids.every(alive) && !pids.includes(served.child.pid), 'two worker processes besides the primary')

  const agent = new Agent({ connections: 6 })
  t.teardown(() => agent.close())
  const statuses = await Promise.all(Array.from({ length: 60 }, () => request(`${served.proxyUrl}/x`, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode))))
  t.same(new Set(statuses), new Set([200]), 'every request answered')
  const metrics = parseExposition(await (await request(`${served.adminUrl}/metrics`)).body.text())
  t.equal(value(metrics, 'canary_proxy_requests_total', { upstream: 'stable', status_class: '2xx' }), 60, 'the admin port sums the workers')
  t.equal(value(metrics, 'canary_proxy_workers'), 2)
  t.equal((await request(`${served.adminUrl}/readyz`)).statusCode, 200)

  process.kill(served.child.pid, 'SIGHUP')
  await served.child.waitForLine(/SIGHUP: .* reloaded/)
  t.ok(pids.every(alive), 'a reload keeps the workers')

  process.kill(served.child.pid, 'SIGTERM')
  const exit = await exitWithin(served.child, 20_000)
  t.equal(exit.code, 0, 'the primary exits 0 once every worker drained')
  t.ok(pids.every((pid) => !alive(pid)), 'no worker left running')
  const drains = served.logLines().filter((l) => l.msg === 'the primary asked: draining')
  t.same(drains.map((l) => l.worker).sort(), [1, 2], "each worker's lines carry its own worker id")
})

t.test('a primary killed outright leaves no worker behind', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const served = await serve(t, await config(stable.url))
  const pids = (served.logLines().find((l) => Array.isArray(l.pids))?.pids ?? []) as number[]
  t.equal(pids.length, 2)
  killChild(served.child, 'SIGKILL')
  await until('the workers to go', () => (pids.every((pid) => !alive(pid)) ? true : undefined), 15_000)
  t.pass('each worker drained and exited when its primary went away')
})

t.test('a port in use: the workers cannot listen, serve says so as for one process and exits 1', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => blocker.close(() => resolve())))
  const port = (blocker.address() as { port: number }).port
  const result = await runCli(t, ['serve', '--config', await config(stable.url, port)], { timeoutMs: 30_000 })
  t.equal(result.code, 1)
  t.match(result.stderr, `cannot listen on 127.0.0.1:${port}: address already in use (CPX_ERR_LISTEN)`)
})
