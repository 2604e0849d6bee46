/**
 * The process guard: in the built CLI's `serve`, an error that escapes every
 * handler (an uncaught exception, an unhandled rejection) is logged with its
 * stack and counted in canary_proxy_uncaught_errors_total, and the proxy
 * keeps serving. buildApp (what tests run) installs nothing, so in tests such
 * an error still fails the test that caused it.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { startApp } from '../helpers/app.js'
import { REPO, serve, tempDir, until, writeConfig } from '../helpers/cli.js'
import { sample, scrape } from '../helpers/raw-http.js'
import { startUpstream } from '../helpers/upstreams.js'

const FIXTURE = pathToFileURL(join(REPO, 'test', 'helpers', 'escape-on-signal.mjs')).href

t.test('serve: an escaped error is logged and counted, and the proxy keeps serving', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const dir = await tempDir()
  const config = await writeConfig(
    dir,
    'config.yaml',
    `listen: { host: 127.0.0.1, port: 0 }
admin: { host: 127.0.0.1, port: 0 }
upstreams: { stable: ${stable.url} }
state: { file: ${JSON.stringify(join(dir, 'state.json'))} }
audit: { file: ${JSON.stringify(join(dir, 'audit.jsonl'))} }
log: { level: info }
`,
  )
  // A generous start-up wait: on a loaded 2-core machine the child was measured taking over 20 s to listen.
  const served = await serve(t, config, { env: { NODE_OPTIONS: `--import=${FIXTURE}` }, timeoutMs: 60_000 })
  const get = async (): Promise<number> => {
    const res = await request(`${served.proxyUrl}/before`)
    await res.body.text()
    return res.statusCode
  }
  t.equal(await get(), 200)
  t.equal(sample(await scrape(served.adminUrl), 'canary_proxy_uncaught_errors_total'), 0, 'exposed from the start')

  served.child.process.kill('SIGUSR2')
  const count = await until('both escapes counted', async () => {
    const value = sample(await scrape(served.adminUrl), 'canary_proxy_uncaught_errors_total')
    return value === 2 ? value : undefined
  })
  t.equal(count, 2)
  t.notOk(served.child.hasExited(), 'still running')
  t.equal(await get(), 200, 'still serving')
  // The counter moves before the log line reaches the pipe (pino writes asynchronously): wait for the lines themselves.
  const logged = await until('both escapes logged', () => {
    const lines = served.logLines().filter((l) => typeof l.origin === 'string')
    return lines.length >= 2 ? lines : undefined
  })
  t.same(
    logged.map((l) => [l.level, l.origin, (l.err as { message?: string } | undefined)?.message]).sort(),
    [
      [50, 'uncaughtException', 'thrown by the test fixture'],
      [50, 'unhandledRejection', 'rejected by the test fixture'],
    ],
    'each logged at error level with its origin and message',
  )
  t.ok(logged.length > 0 && logged.every((l) => typeof (l.err as { stack?: unknown }).stack === 'string'), 'with the stack')
})

t.test('buildApp installs no process guard: in tests an escaped error still fails the test', async (t) => {
  const before = [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')]
  const stable = await startUpstream(t, 'stable')
  await startApp(t, { upstreams: { stable: stable.url } })
  t.same([process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')], before)
})
