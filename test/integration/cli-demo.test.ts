/**
 * `canary-proxy demo` on the ports asked for, stopped by --duration: the URLs,
 * live progress, traffic to both sides, a closing summary; a port in use;
 * colour on a terminal only. A whole healthy rollout to the end:
 * cli-demo-success.test.ts; the faulty demo and --keep: cli-demo-faulty.test.ts.
 */
import { createServer } from 'node:net'
import t from 'tap'
import { admin } from '../helpers/app.js'
import { ANSI, exitWithin, freePort, linesWiderThan, runCli, runInTty, spawnCli, until } from '../helpers/cli.js'

interface Status {
  phase: string
  weight: number
  stable: { requests: number }
  canary: { requests: number } | null
}

async function status(adminUrl: string): Promise<Status> {
  const r = await admin(adminUrl, 'GET', '/api/v1/status')
  if (r.status !== 200) throw new Error(`status ${r.status}`)
  return r.json as unknown as Status
}

const PROGRESS = /^\s*\d+s\s+(idle|progressing|paused|baking|succeeded|rolled_back|aborted)\s+[\d.]+%/

t.test('demo --duration: prints the URLs and progress, runs a rollout on the given ports, ends by itself with exit 0', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const proxyUrl = `http://127.0.0.1:${port}`
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const demo = spawnCli(t, ['demo', '--port', String(port), '--admin-port', String(adminPort), '--duration', '8s'])
  await demo.waitForLine(/^\s+admin\s+http:/, 60_000)
  t.match(demo.stdoutText(), new RegExp(`^\\s+proxy\\s+${proxyUrl}`, 'm'), 'the proxy URL')
  t.match(demo.stdoutText(), new RegExp(`^\\s+admin\\s+${adminUrl}`, 'm'), 'the admin URL')

  const progressing = await until(
    'the demo rollout to take canary traffic',
    async () => {
      const s = await status(adminUrl)
      return s.phase === 'progressing' && s.weight > 0 && (s.canary?.requests ?? 0) > 0 ? s : undefined
    },
    15_000,
    200,
  )
  t.ok(progressing.stable.requests > 0, `traffic flows to both sides (${progressing.stable.requests} / ${progressing.canary?.requests})`)
  const proxied = await fetch(`${proxyUrl}/hello`)
  t.equal(proxied.status < 600, true, 'the proxy answers on the port asked for')
  await proxied.text()

  const exit = await exitWithin(demo, 30_000)
  t.equal(exit.code, 0, `exit 0 (stderr: ${demo.stderrText()})`)
  const out = demo.stdoutText()
  const progress = out.split('\n').filter((l) => PROGRESS.test(l))
  t.ok(progress.length >= 3, `progress lines (${progress.length})`)
  t.match(out, />> start: idle 0% -> progressing 5%/, 'the start event')
  t.match(out, /^demo over: phase \w+/m, 'a closing line')
  t.match(out, /^\s+what happened\s+stopped by --duration after \d+s, before the rollout ended/m, 'says it was cut short')
  await t.rejects(fetch(`${adminUrl}/healthz`), 'the admin port is released')
})

t.test('demo: a port already in use is a clear error, exit 1', async (t) => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const taken = (server.address() as { port: number }).port
  const r = await runCli(t, ['demo', '--port', String(taken), '--admin-port', String(await freePort()), '--duration', '5s'])
  t.equal(r.code, 1)
  t.match(r.stderr, /address already in use \(try --port N --admin-port N\)/)
})

t.test('demo on a terminal: coloured, unless NO_COLOR', async (t) => {
  const ports = [await freePort(), await freePort(), await freePort(), await freePort()]
  const args = (i: number): string[] => ['demo', '--port', String(ports[i]), '--admin-port', String(ports[i + 1]), '--duration', '3s']
  const [coloured, plain] = await Promise.all([runInTty(t, args(0)), runInTty(t, args(2), { env: { NO_COLOR: '1' } })])
  t.match(coloured.stdout, /demo over: phase/, coloured.stdout)
  t.match(coloured.stdout, ANSI, 'colour on a terminal')
  t.same(linesWiderThan(coloured.stdout, 100), [], 'colour codes aside, every line fits 100 columns')
  t.match(plain.stdout, /demo over: phase/, plain.stdout)
  t.notMatch(plain.stdout, ANSI, 'NO_COLOR: none')
})
