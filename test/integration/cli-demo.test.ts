/**
 * `canary-proxy demo` (a whole rollout with its own upstreams and traffic, on
 * the ports asked for) and the usage text: help, version, unknown commands.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { admin } from '../helpers/app.js'
import { REPO, exitWithin, freePort, runCli, spawnCli, until } from '../helpers/cli.js'

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

t.test('demo --duration: prints the URLs and progress, runs a rollout on the given ports, ends by itself with exit 0', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const proxyUrl = `http://127.0.0.1:${port}`
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const demo = spawnCli(t, ['demo', '--port', String(port), '--admin-port', String(adminPort), '--duration', '8s'])
  await demo.waitForLine(/^\s+admin\s+http:/)
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
  const progress = out.split('\n').filter((l) => /^\s*\d+s\s+(idle|progressing|paused|baking|succeeded|rolled_back|aborted)\s+[\d.]+%/.test(l))
  t.ok(progress.length >= 3, `progress lines (${progress.length})`)
  t.match(out, />> start: idle 0% -> progressing 5%/, 'the start event')
  t.match(out, /^demo over: phase \w+/m, 'a closing line')
  await t.rejects(fetch(`${adminUrl}/healthz`), 'the admin port is released')
})

t.test('demo --faulty: the canary starts failing and the rollout is rolled back', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()]
  const adminUrl = `http://127.0.0.1:${adminPort}`
  const demo = spawnCli(t, ['demo', '--faulty', '--port', String(port), '--admin-port', String(adminPort), '--duration', '28s'])
  await demo.waitForLine(/--faulty/)
  const rolledBack = await until(
    'the faulty demo to roll back',
    async () => {
      const s = await status(adminUrl)
      return s.phase === 'rolled_back' ? s : undefined
    },
    25_000,
    250,
  )
  t.equal(rolledBack.weight, 0, 'weight 0 after the rollback')
  await demo.waitForLine(/>> rollback: |rolled_back/, 5_000)
  t.match(demo.stdoutText(), />> advance: progressing 5% -> progressing 25%/, 'the canary passed the first step')
  t.match(demo.stdoutText(), />> rollback: progressing (25|50)% -> rolled_back 0%/, 'and failed mid-rollout, past the first step')
  // Ctrl-C ends it early, as a person would.
  demo.process.kill('SIGINT')
  const exit = await exitWithin(demo, 15_000)
  t.equal(exit.code, 0)
  t.match(demo.stdoutText(), /^demo over: phase rolled_back \(.+\)$/m, 'ends saying why')
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

t.test('help, version, unknown commands and options', async (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }
  const [help, dashHelp, commandHelp, version, unknown, badOption, badPort] = await Promise.all([
    runCli(t, ['help']),
    runCli(t, ['--help']),
    runCli(t, ['status', '--help']),
    runCli(t, ['--version']),
    runCli(t, ['deploy']),
    runCli(t, ['status', '--bogus']),
    runCli(t, ['demo', '--port', 'http']),
  ])
  t.equal(help.code, 0)
  t.match(help.stdout, /^Usage: canary-proxy <command> \[options\]/m)
  // Every command of the SPEC is in the usage.
  for (const command of ['serve', 'validate', 'status', 'start', 'set-weight', 'pause', 'resume', 'promote', 'abort', 'wait', 'demo']) {
    t.match(help.stdout, new RegExp(`^\\s+(\\S+ \\| )*${command}\\b`, 'm'), `usage lists ${command}`)
  }
  for (const option of ['--admin URL', '--token T', '--json', '--config FILE', '--canary URL', '--timeout', '--faulty', '--port N', '--admin-port N']) {
    t.match(help.stdout, option, `usage mentions ${option}`)
  }
  for (const env of ['CANARY_PROXY_CONFIG', 'CANARY_PROXY_ADMIN', 'CANARY_PROXY_ADMIN_TOKEN']) t.match(help.stdout, env)
  t.equal(dashHelp.code, 0)
  t.equal(dashHelp.stdout, help.stdout)
  t.equal(commandHelp.code, 0)
  t.match(commandHelp.stdout, /^Usage: canary-proxy/m)
  t.equal(version.code, 0)
  t.equal(version.stdout.trim(), pkg.version)

  t.not(unknown.code, 0, 'an unknown command fails')
  t.equal(unknown.stdout, '')
  t.match(unknown.stderr, /unknown command "deploy"/)
  t.match(unknown.stderr, /^Usage: canary-proxy <command> \[options\]/m, 'and prints the usage')
  t.not(badOption.code, 0, 'an unknown option fails')
  t.match(badOption.stderr, /status: .*--bogus/)
  t.not(badPort.code, 0)
  t.match(badPort.stderr, /--port must be a port number 0\.\.65535 \(got "http"\)/)
})
