/**
 * `canary-proxy wait` for CI pipelines: exit 0 when the rollout succeeds, 1 when
 * it is rolled back or aborted, 2 on --timeout; real rollouts in an in-process
 * app with short durations and traffic from the test.
 */
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { admin, startApp, type Running } from '../helpers/app.js'
import { runCli, spawnCli, exitWithin } from '../helpers/cli.js'
import { closedPort, startUpstream, type Behaviour } from '../helpers/upstreams.js'

/** Steps [50, 100], 300 ms each, 300 ms bake, a verdict every 100 ms once the canary has 10 requests. */
async function rolloutApp(t: Test, canaryBehaviour: Behaviour, stepDuration = '300ms'): Promise<Running> {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', canaryBehaviour)
  return startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { steps: [50, 100], stepDuration, bake: '300ms', autoStart: false },
    analysis: { interval: '100ms', window: '5s', minRequests: 10, maxErrorRate: 0.1 },
  })
}

/** Requests through the proxy, a few at a time, until the test ends. */
function traffic(t: Test, proxyUrl: string): void {
  const agent = new Agent({ connections: 8 })
  let running = true
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      try {
        const res = await request(`${proxyUrl}/load`, { dispatcher: agent })
        await res.body.dump()
      } catch {
        /* the app is closing */
      }
    }
  })
  t.teardown(async () => {
    running = false
    await Promise.all(loops)
    await agent.close()
  })
}

function waitArgs(app: Running, ...more: string[]): string[] {
  return ['wait', '--admin', app.adminUrl, '--interval', '100ms', ...more]
}

t.test('exit 0 when the rollout succeeds', async (t) => {
  const app = await rolloutApp(t, {})
  traffic(t, app.proxyUrl)
  const human = spawnCli(t, waitArgs(app, '--timeout', '60s'))
  const json = spawnCli(t, waitArgs(app, '--timeout', '60s', '--json'))
  // Both are waiting (polling an idle proxy) before the rollout starts.
  await human.waitForLine(/idle at 0%/)
  const started = await admin(app.adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(started.status, 200)

  const exit = await exitWithin(human, 60_000)
  t.equal(exit.code, 0, `exit 0 (stderr: ${human.stderrText()})`)
  t.match(human.stdoutText(), /^rollout succeeded: /m)
  t.match(human.stderrText(), /progressing at 50%/, 'progress lines on stderr')
  const jsonExit = await exitWithin(json, 60_000)
  t.equal(jsonExit.code, 0)
  t.match(JSON.parse(json.stdoutText()), { phase: 'succeeded', weight: 0, canary: null }, '--json prints the final status')
  t.equal(json.stderrText(), '', '--json prints no progress lines')
  t.equal(app.app.status().phase, 'succeeded')
})

t.test('exit 1 when the rollout is rolled back', async (t) => {
  const app = await rolloutApp(t, { status: 500 })
  traffic(t, app.proxyUrl)
  const waiting = spawnCli(t, waitArgs(app, '--timeout', '60s'))
  await waiting.waitForLine(/idle at 0%/)
  t.equal((await admin(app.adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)

  const exit = await exitWithin(waiting, 60_000)
  t.equal(exit.code, 1, `exit 1 (stderr: ${waiting.stderrText()})`)
  t.match(waiting.stdoutText(), /^rollout rolled back: .*error rate/m, 'the reason is printed')
  t.equal(app.app.status().phase, 'rolled_back')
})

t.test('exit 1 when the rollout is aborted', async (t) => {
  const app = await rolloutApp(t, {}, '10m')
  traffic(t, app.proxyUrl)
  t.equal((await admin(app.adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  const waiting = spawnCli(t, waitArgs(app, '--timeout', '60s'))
  await waiting.waitForLine(/progressing at 50%/)
  t.notOk(waiting.hasExited(), 'still waiting while the rollout progresses')
  const abort = await runCli(t, ['abort', '--admin', app.adminUrl, '--reason', 'stopped by the pipeline'])
  t.equal(abort.code, 0, abort.stderr)

  const exit = await exitWithin(waiting, 30_000)
  t.equal(exit.code, 1)
  t.match(waiting.stdoutText(), /^rollout aborted: stopped by the pipeline/m)
})

t.test('exit 2 on --timeout while the rollout is still progressing', async (t) => {
  const app = await rolloutApp(t, {}, '10m')
  t.equal((await admin(app.adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  const r = await runCli(t, waitArgs(app, '--timeout', '1s'))
  t.equal(r.code, 2, `exit 2 (stderr: ${r.stderr})`)
  t.match(r.stderr, /timed out after [\d.]+m?s; the rollout is still progressing at 50%/)
  t.equal(r.stdout, '')
  t.equal(app.app.status().phase, 'progressing', 'wait changed nothing')
})

t.test('an ended rollout answers at once; an unreachable admin API is exit 1', async (t) => {
  const app = await rolloutApp(t, {}, '10m')
  t.equal((await admin(app.adminUrl, 'POST', '/api/v1/rollout/promote', {})).status, 200)
  const done = await runCli(t, waitArgs(app))
  t.equal(done.code, 0, 'already succeeded: exit 0 without --timeout')
  t.match(done.stdout, /^rollout succeeded: /m)

  const dead = `http://127.0.0.1:${await closedPort()}`
  const unreachable = await runCli(t, ['wait', '--admin', dead, '--timeout', '30s'])
  t.equal(unreachable.code, 1)
  t.match(unreachable.stderr, `cannot reach the admin API at ${dead}`)

  const bad = await runCli(t, ['wait', '--timeout', 'soon'])
  t.equal(bad.code, 1, 'a bad --timeout is a usage error, not a timeout (2)')
  t.match(bad.stderr, /--timeout must be a duration such as 90s or 10m \(got "soon"\)/)
})
