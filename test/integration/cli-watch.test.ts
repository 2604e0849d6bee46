/**
 * `status --watch` against a running app, on the live stream or by polling
 * (a proxy without /api/v1/stream), through a proxy going away, and Ctrl-C;
 * colour only on a terminal, not with NO_COLOR; redraws in place on a terminal.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { admin } from '../helpers/app.js'
import { ANSI, clientSetup, exitWithin, runCli, runInTty, spawnCli, type ClientSetup } from '../helpers/cli.js'
import { closedPort, startUpstream } from '../helpers/upstreams.js'

interface StatusDoc {
  phase: string
  weight: number
}

async function statusOf(adminUrl: string): Promise<StatusDoc> {
  return (await admin(adminUrl, 'GET', '/api/v1/status')).json as unknown as StatusDoc
}

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
