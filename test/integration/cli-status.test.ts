/**
 * What `status` and `events` print against a running app: times relative to
 * now, the checks of the last decision, "no canary" after success,
 * `events --limit`; `status --watch` on the live stream or by polling; colour
 * only on a terminal, and not with NO_COLOR.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { admin } from '../helpers/app.js'
import { ANSI, clientSetup, exitWithin, runCli, runInTty, spawnCli, until, type ClientSetup } from '../helpers/cli.js'
import { closedPort, startUpstream } from '../helpers/upstreams.js'

/** Steps that stay put during a test, and a gate that gives figures after a few requests. */
const GATE = { analysis: { interval: '100ms', minRequests: 5, maxErrorRate: 0.05, maxP99: '2s' } }

async function traffic(proxyUrl: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await request(`${proxyUrl}/t${i}`)
    await res.body.dump()
  }
}

interface StatusDoc {
  phase: string
  weight: number
  lastDecision: { verdict: string; findings: { check: string }[] } | null
}

async function statusOf(adminUrl: string): Promise<StatusDoc> {
  return (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as StatusDoc
}

t.test('status: the next step relative to now, the checks of the last decision, no canary after success', async (t) => {
  const s = await clientSetup(t, GATE)
  const started = await s.cli(['start'])
  t.equal(started.code, 0, started.stderr)
  t.match(started.stdout, /^phase\s+progressing\s+weight 10%\s+step 1\/3 \(10%\)\s+next step in (9m \d+s|10m)$/m, 'the time to the next step, relative')
  t.notMatch(started.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')

  // Paused at 100%: every request reaches the canary, and the gate keeps judging it.
  t.equal((await s.cli(['set-weight', '100'])).code, 0)
  await traffic(s.app.proxyUrl, 20)
  await until('a decision with the error-rate check', async () => {
    const d = (await statusOf(s.app.adminUrl)).lastDecision
    return d?.verdict === 'pass' && d.findings.some((f) => f.check === 'maxErrorRate') ? true : undefined
  })
  const paused = await s.cli(['status'])
  t.equal(paused.code, 0, paused.stderr)
  t.match(paused.stdout, /^phase\s+paused\s+weight 100%\s+step \d\/3 \(\d+%\)\s+resume continues$/m)
  t.match(paused.stdout, /^decision\s+pass (just now|\d+s ago): canary error rate 0\.0%/m, 'when it was decided, relative')
  t.match(paused.stdout, /^checks\s+pass\s+maxErrorRate\s+0\.00%\s+max 5\.00%\s+n \d+$/m, 'each check: verdict, observed, threshold, n')
  t.match(paused.stdout, /^\s+pass\s+maxP99\s+[\d.]+ms\s+max 2000ms\s+n \d+$/m)
  t.notMatch(paused.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')

  const promoted = await s.cli(['promote'])
  t.equal(promoted.code, 0, promoted.stderr)
  t.match(promoted.stdout, /^phase\s+succeeded\s+weight 0%/m)
  t.match(promoted.stdout, new RegExp(`^stable\\s+${s.canary.url}\\s`, 'm'), 'the canary is the stable')
  t.match(promoted.stdout, new RegExp(`^canary\\s+none \\(${s.canary.url} promoted: now stable\\)$`, 'm'), 'a clear word for no canary')
})

t.test('events --limit N: the last N, newest last, with times relative to now', async (t) => {
  const s = await clientSetup(t)
  for (const args of [['start'], ['set-weight', '20'], ['set-weight', '30'], ['abort', '--reason', 'enough']]) t.equal((await s.cli(args)).code, 0)
  const [all, two, twoJson] = await Promise.all([s.cli(['events', '--json']), s.cli(['events', '--limit', '2']), s.cli(['events', '--limit', '2', '--json'])])
  const every = (JSON.parse(all.stdout) as { events: unknown[] }).events
  t.ok(every.length >= 4, `all the events (${every.length})`)
  t.equal(two.code, 0, two.stderr)
  const heads = two.stdout.split('\n').filter((l) => /^\s+(just now|\d+\S* ago)\s+\S/.test(l))
  t.equal(heads.length, 2, `two events\n${two.stdout}`)
  t.match(heads[0], /set-weight\s+paused 20% -> paused 30%/)
  t.match(heads[1], /abort\s+paused 30% -> aborted 0%\s+enough$/)
  t.notMatch(two.stdout, /\d{4}-\d\d-\d\dT\d\d:\d\d/, 'no absolute UTC times')
  t.same((JSON.parse(twoJson.stdout) as { events: unknown[] }).events, every.slice(-2), '--json: the same last two')
})

/**
 * The admin API as a proxy of another version serves it, in front of the
 * real app: `stream: false` answers 404 to /api/v1/stream (a proxy from before
 * it); `stream: true` sends the app's status as Server-Sent Events every
 * 100 ms. It counts the status polls it answered.
 */
async function adminOfVersion(t: Test, s: ClientSetup, stream: boolean): Promise<{ url: string; polls: () => number; close(): Promise<void> }> {
  let polls = 0
  const streams = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    if (req.url === '/api/v1/status') {
      polls++
      void statusOf(s.app.adminUrl).then((doc) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc)))
    } else if (req.url === '/api/v1/stream' && stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      streams.add(res)
      const send = (): void =>
        void statusOf(s.app.adminUrl)
          .then((doc) => res.write(`event: status\ndata: ${JSON.stringify(doc)}\n\n`))
          .catch(() => undefined)
      send()
      const timer = setInterval(send, 100)
      res.on('close', () => {
        clearInterval(timer)
        streams.delete(res)
      })
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const res of streams) res.destroy()
      server.closeAllConnections()
      server.close(() => resolve())
    })
  t.teardown(close)
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, polls: () => polls, close }
}

t.test('status --watch against the proxy: a new block on every change; Ctrl-C ends it with exit 0', async (t) => {
  const s = await clientSetup(t)
  const watching = spawnCli(t, ['status', '--watch', '--interval', '200ms', '--admin', s.app.adminUrl])
  const json = spawnCli(t, ['status', '--watch', '--json', '--interval', '200ms', '--admin', s.app.adminUrl])
  await watching.waitForLine(/^phase\s+idle\s+weight 0%/)
  t.match(await watching.waitForLine(/watching/), /^canary-proxy status: watching http:\/\/\S+ \((live stream|polling every 200ms: this proxy has no live stream)\)$/, 'says how it follows')
  await json.waitForLine(/"phase":"idle"/)
  t.equal((await admin(s.app.adminUrl, 'PUT', '/api/v1/weight', { weight: 30 })).status, 200)
  await watching.waitForLine(/^phase\s+paused\s+weight 30%/)
  await json.waitForLine(/"weight":30\b/)
  for (const child of [watching, json]) {
    child.process.kill('SIGINT')
    const exit = await exitWithin(child, 10_000)
    t.equal(exit.code, 0, 'Ctrl-C: exit 0')
  }
  const docs = json.stdoutText().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StatusDoc)
  t.ok(docs.length >= 2, `--json: one JSON document per line, per change (${docs.length})`)
  t.match(docs.at(-1), { phase: 'paused', weight: 30 })
})

t.test('status --watch on a proxy without the stream polls every interval, and keeps trying while the proxy is away', async (t) => {
  const s = await clientSetup(t)
  const older = await adminOfVersion(t, s, false)
  const watching = spawnCli(t, ['status', '--watch', '--interval', '200ms', '--admin', older.url])
  await watching.waitForLine(/^phase\s+idle/)
  await watching.waitForLine(/polling every 200ms: this proxy has no live stream/)
  t.equal((await admin(s.app.adminUrl, 'PUT', '/api/v1/weight', { weight: 15 })).status, 200)
  await watching.waitForLine(/^phase\s+paused\s+weight 15%/)
  t.ok(older.polls() >= 2, `it polled GET /api/v1/status (${older.polls()} times)`)
  await older.close()
  await watching.waitForLine(/^canary-proxy status: cannot reach the admin API at .*; retrying every 200ms$/)
  t.notOk(watching.hasExited(), 'still watching while the proxy is away')
  watching.process.kill('SIGINT')
  t.equal((await exitWithin(watching, 10_000)).code, 0)
})

t.test('status --watch on a proxy with the stream follows its status events, without polling', async (t) => {
  const s = await clientSetup(t)
  const newer = await adminOfVersion(t, s, true)
  const watching = spawnCli(t, ['status', '--watch', '--interval', '200ms', '--admin', newer.url])
  await watching.waitForLine(/^phase\s+idle/)
  await watching.waitForLine(/watching http:\/\/\S+ \(live stream\)/)
  t.equal((await admin(s.app.adminUrl, 'PUT', '/api/v1/weight', { weight: 25 })).status, 200)
  await watching.waitForLine(/^phase\s+paused\s+weight 25%/)
  t.equal(newer.polls(), 0, 'no GET /api/v1/status: the stream carries it')
  watching.process.kill('SIGINT')
  t.equal((await exitWithin(watching, 10_000)).code, 0)
})

t.test('status --watch with no proxy there at the start: exit 1, saying so', async (t) => {
  const dead = `http://127.0.0.1:${await closedPort()}`
  const r = await runCli(t, ['status', '--watch', '--admin', dead])
  t.equal(r.code, 1)
  t.match(r.stderr, `cannot reach the admin API at ${dead}`)
})

t.test('colour on a terminal only: none in a pipe, none with NO_COLOR; a watch redraws in place', async (t) => {
  const s = await clientSetup(t)
  const canary = await startUpstream(t, 'next')
  t.equal((await s.cli(['start', '--canary', canary.url])).code, 0)
  const args = ['status', '--admin', s.app.adminUrl]
  const [tty, noColour, emptyNoColour, piped] = await Promise.all([
    runInTty(t, args),
    runInTty(t, args, { env: { NO_COLOR: '1' } }),
    runInTty(t, args, { env: { NO_COLOR: '' } }),
    runCli(t, args),
  ])
  t.match(tty.stdout, /phase\s+\S*progressing/, tty.stdout)
  t.match(tty.stdout, ANSI, 'coloured on a terminal')
  t.match(tty.stdout.replace(ANSI, ''), /^phase\s+progressing\s+weight 10%/m)
  t.match(noColour.stdout, /phase\s+progressing/)
  t.notMatch(noColour.stdout, ANSI, 'NO_COLOR=1: no colour')
  t.match(emptyNoColour.stdout, ANSI, 'an empty NO_COLOR does not count (no-color.org)')
  t.notMatch(piped.stdout, ANSI, 'no colour in a pipe')

  // A watch on a terminal clears and redraws rather than scrolling; `timeout` plays the Ctrl-C.
  const watch = await runInTty(t, ['status', '--watch', '--interval', '200ms', '--admin', s.app.adminUrl], { prefix: ['timeout', '-s', 'INT', '3'] })
  t.match(watch.stdout, '\u001b[1;1H', 'the cursor goes home before a redraw')
  t.match(watch.stdout, '\u001b[0J', 'and the screen below is cleared')
  t.match(watch.stdout, /watching http:\/\/\S+ \((live stream|polling every 200ms: this proxy has no live stream)\); Ctrl-C to stop/)
})
