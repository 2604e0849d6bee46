/**
 * GET /api/v1/stream (Server-Sent Events) without a browser: the opening (retry, replay, status),
 * status on every change and every interval, events in order, heartbeat, limits (streams, bytes),
 * shutdown; first on the route alone with a fake clock and feed, then on the real app.
 */
import { connect, type AddressInfo } from 'node:net'
import { setImmediate as tick } from 'node:timers/promises'
import fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { request } from 'undici'
import type { StatusView } from '../../src/api/wire.js'
import { streamRoutes, type StreamLimits } from '../../src/admin/stream.js'
import { EventFeed, type AuditRecord } from '../../src/events/feed.js'
import { admin, startApp } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { openStream, type SseItem } from '../helpers/sse.js'
import { startUpstream } from '../helpers/upstreams.js'

const INTERVAL_MS = 1000

function statusOf(phase: StatusView['phase'], weight: number, reason: string | null = null): StatusView {
  return {
    phase,
    weight,
    step: null,
    steps: [5, 25, 50, 100],
    stable: { url: 'http://127.0.0.1:9001', requests: 0, errors: 0, errorRate: 0, p50Ms: null, p99Ms: null },
    canary: { url: 'http://127.0.0.1:9002', requests: 0, errors: 0, errorRate: 0, p50Ms: null, p99Ms: null },
    lastDecision: null,
    reason,
    stepStartedAt: null,
    stepEndsAt: null,
    generation: 1,
  }
}

function record(action: string, n: number): AuditRecord {
  return { at: Date.UTC(2026, 10, 30, 12, 0, n), actor: 'admin', action, from: { phase: 'progressing', weight: n }, to: { phase: 'paused', weight: n }, reason: `#${n}` }
}

/** The route alone, on loopback, with a fake clock and a real EventFeed standing in for the control plane. */
async function startRoute(t: Test, limits: Partial<StreamLimits> = {}) {
  const clock = new FakeClock()
  const feed = new EventFeed()
  const state = { status: statusOf('progressing', 5), events: [1, 2, 3].map((n) => ({ ...record('advance', n), at: new Date(record('advance', n).at).toISOString() })) }
  const logs: { level: number; msg: string }[] = []
  const log = pino({ level: 'warn' }, { write: (line: string) => logs.push(JSON.parse(line) as { level: number; msg: string }) })
  const app: FastifyInstance = fastify({ loggerInstance: log as FastifyBaseLogger })
  await app.register(streamRoutes, { status: () => state.status, recentEvents: () => state.events, subscribe: (l) => feed.subscribe(l), intervalMs: INTERVAL_MS, clock, limits })
  await app.listen({ host: '127.0.0.1', port: 0 })
  let closed = false
  t.teardown(async () => {
    if (!closed) await app.close()
  })
  const { port } = app.server.address() as AddressInfo
  return {
    app,
    clock,
    feed,
    state,
    logs,
    url: `http://127.0.0.1:${port}/api/v1/stream`,
    port,
    async close() {
      closed = true
      await app.close()
    },
  }
}

const isStatus = (i: SseItem): boolean => i.kind === 'message' && i.type === 'status'
const kinds = (items: readonly SseItem[]): string[] => items.map((i) => (i.kind === 'message' ? i.type : i.kind))

t.test('the opening: retry, the replayed events asked for, then the status', async (t) => {
  const route = await startRoute(t, { retryMs: 3000 })
  const s = await openStream(t, `${route.url}?events=2`)
  t.equal(s.status, 200)
  t.match(s.headers['content-type'], /^text\/event-stream/)
  t.equal(s.headers['cache-control'], 'no-store')
  t.same(await s.next(), { kind: 'retry', ms: 3000 }, 'retry: first')
  t.equal((await s.next()).kind, 'comment')
  t.same(await s.nextMessage('event'), route.state.events[1], 'the second newest event')
  t.same(await s.nextMessage('event'), route.state.events[2], 'then the newest')
  t.same(await s.nextMessage('status'), route.state.status, 'then the status')

  const plain = await openStream(t, route.url)
  await plain.nextMessage('status')
  t.same(kinds(plain.items), ['retry', 'comment', 'status'], 'without ?events nothing is replayed')
})

t.test('?events must be a whole number within the limit; HEAD answers the headers only', async (t) => {
  const route = await startRoute(t, { maxReplay: 10 })
  for (const bad of ['-1', 'x', '1.5', '11']) {
    const res = await request(`${route.url}?events=${bad}`)
    const body = (await res.body.json()) as { code: string; field: string; error: string }
    t.equal(res.statusCode, 400, `events=${bad}: 400`)
    t.equal(body.code, 'CPX_ERR_ADMIN_BAD_INPUT')
    t.equal(body.field, 'events')
    t.match(body.error, /^events: must be/)
  }
  const head = await request(route.url, { method: 'HEAD' })
  t.equal(head.statusCode, 200)
  t.match(head.headers['content-type'], /^text\/event-stream/)
  t.equal(await head.body.text(), '', 'no body')
})

t.test('a status on every change and on every interval, once per interval', async (t) => {
  const route = await startRoute(t)
  const s = await openStream(t, route.url)
  t.same(await s.nextMessage('status'), statusOf('progressing', 5))

  route.clock.advance(INTERVAL_MS)
  t.same(await s.nextMessage('status'), statusOf('progressing', 5), 'the interval sends the status with nothing changed')

  // A decision mid-interval: its status goes out at once, and the tick right after has nothing to add.
  route.clock.advance(INTERVAL_MS / 2)
  route.state.status = { ...statusOf('progressing', 5), lastDecision: { at: '2026-11-30T12:00:01.500Z', verdict: 'insufficient', reason: 'holding', findings: [] } }
  route.feed.emit({ type: 'decision', decision: { at: 0, verdict: 'insufficient', reason: 'holding', findings: [] }, phase: 'progressing', weight: 5 })
  t.same(((await s.nextMessage('status')) as StatusView).lastDecision?.reason, 'holding', 'a decision sends the status')
  route.clock.advance(INTERVAL_MS / 2)
  route.clock.advance(INTERVAL_MS)

  // A transition: its event, then the status after it.
  route.state.status = statusOf('paused', 5)
  route.feed.emit({ type: 'transition', record: record('pause', 9), generation: 1, findings: [] })
  t.equal(((await s.nextMessage('event')) as { action: string }).action, 'pause')
  t.equal(((await s.nextMessage('status')) as StatusView).phase, 'paused', 'the status after the change')
  t.same(kinds(s.items), ['retry', 'comment', 'status', 'status', 'status', 'status', 'event', 'status'], 'one status per interval: the tick after the decision sent none')

  route.feed.emit({ type: 'persistFailure', at: 0, store: 'file', error: 'disk full' })
  route.feed.emit({ type: 'configReload', at: 0, ok: true, problems: [] })
  await s.nextMessage('status')
  t.same(kinds(s.items).slice(8), ['status'], 'a persistence failure changes no status; a config reload does')
})

t.test('events arrive in order, and a burst of changes gives one status after them', async (t) => {
  const route = await startRoute(t)
  const s = await openStream(t, route.url)
  await s.nextMessage('status')
  const actions = ['pause', 'resume', 'set-weight', 'resume', 'abort']
  actions.forEach((action, n) => route.feed.emit({ type: 'transition', record: record(action, n), generation: 1, findings: [] }))
  const got: unknown[] = []
  for (let i = 0; i < actions.length; i++) got.push(await s.nextMessage('event'))
  t.same(
    got,
    actions.map((action, n) => ({ ...record(action, n), at: new Date(record(action, n).at).toISOString() })),
    'each event as GET /api/v1/events serves it, in order',
  )
  await s.nextMessage('status')
  t.same(kinds(s.items).slice(3), ['event', 'event', 'event', 'event', 'event', 'status'])
})

t.test('a heartbeat comment keeps a quiet stream alive', async (t) => {
  const route = await startRoute(t, { heartbeatMs: 5000 })
  const s = await openStream(t, route.url)
  await s.nextMessage('status')
  route.clock.advance(5000)
  t.same(await s.next((i) => i.kind === 'comment', 'a heartbeat'), { kind: 'comment', text: 'heartbeat' })
})

t.test('at most maxStreams at once; a closed one frees its place', async (t) => {
  const route = await startRoute(t, { maxStreams: 2, retryMs: 4000 })
  const a = await openStream(t, route.url)
  const b = await openStream(t, route.url)
  await a.nextMessage('status')
  await b.nextMessage('status')
  const refused = await request(route.url)
  t.equal(refused.statusCode, 503)
  t.equal(refused.headers['retry-after'], '4')
  const body = (await refused.body.json()) as { code: string; error: string }
  t.equal(body.code, 'CPX_ERR_ADMIN_UNAVAILABLE')
  t.match(body.error, /too many open streams \(2\)/)
  a.close()
  // The server sees the close on its next turn of the loop; ask until it has.
  let status = 0
  for (let i = 0; i < 200 && status !== 200; i++) {
    const res = await request(route.url, { method: 'HEAD' })
    status = res.statusCode
    await res.body.dump()
  }
  t.equal(status, 200, 'a place is free again')
  t.equal(route.feed.size, 1, 'one feed subscription for every open stream')
  b.close()
  await b.ended
  for (let i = 0; i < 200 && route.feed.size > 0; i++) await tick()
  t.equal(route.feed.size, 0, 'no stream open: the feed is let go')
  t.equal(route.clock.pendingTimers, 0, 'and the timers')
})

t.test('a reader that stops reading is dropped; the others go on', async (t) => {
  const route = await startRoute(t, { maxBufferedBytes: 64 * 1024, heartbeatMs: 3_600_000 })
  // 32 KiB per status: the kernel's socket buffers fill after some hundreds, then Node's buffer passes the limit.
  route.state.status = statusOf('progressing', 5, 'x'.repeat(32 * 1024))
  const fast = await openStream(t, route.url)
  await fast.nextMessage('status')

  const slow = connect(route.port, '127.0.0.1')
  t.teardown(() => slow.destroy())
  await new Promise<void>((resolve) => slow.once('connect', resolve))
  slow.pause()
  slow.write(`GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1:${route.port}\r\n\r\n`)
  let closed = false
  slow.once('close', () => (closed = true))
  const dropped = (): boolean => route.logs.some((l) => /dropped a \/api\/v1\/stream reader/.test(l.msg))

  // Each interval sends a status to both; yielding lets the fast reader read, never the slow one.
  let ticks = 0
  while (!dropped() && ticks < 5000) {
    route.clock.advance(INTERVAL_MS)
    ticks++
    await tick()
  }
  t.ok(dropped(), `the slow reader was dropped (after ${ticks} statuses), with a warning in the log`)
  t.match(route.logs.find((l) => /dropped/.test(l.msg))?.msg, /limit 65536/)
  route.clock.advance(INTERVAL_MS)
  const after = await fast.nextMessage('status')
  t.equal((after as StatusView).phase, 'progressing', 'the fast reader still gets every status')
  t.equal(route.feed.size, 1, 'its stream is still subscribed')

  // Once the slow reader reads again it finds the end of what it was sent: the connection is closed.
  slow.resume()
  await new Promise<void>((resolve) => (closed ? resolve() : slow.once('close', () => resolve())))
  t.ok(closed, 'the slow connection is closed')
})

t.test('closing the server ends every stream at once and lets go of the feed and the timers', async (t) => {
  const route = await startRoute(t)
  const a = await openStream(t, route.url)
  const b = await openStream(t, `${route.url}?events=3`)
  await a.nextMessage('status')
  await b.nextMessage('status')
  t.equal(route.clock.pendingTimers, 2, 'an interval and a heartbeat while streams are open')
  await route.close()
  await a.ended
  await b.ended
  t.pass('both streams ended and close() returned')
  t.equal(route.feed.size, 0, 'unsubscribed')
  t.equal(route.clock.pendingTimers, 0, 'timers cancelled')
})

t.test('on the real app: each admin action as an event, in order, and the same status as GET /api/v1/status', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary')
  const { adminUrl, app } = await startApp(t, {
    upstreams: { stable: stable.url, canary: canary.url },
    rollout: { stepDuration: '10m', autoStart: true },
    analysis: { interval: '100ms', minRequests: 1000 },
  })
  const s = await openStream(t, `${adminUrl}/api/v1/stream?events=5`)
  t.equal(((await s.nextMessage('event')) as { action: string }).action, 'start', 'the replay has the auto start')
  t.equal(((await s.nextMessage('status')) as StatusView).phase, 'progressing')

  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 40 })).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 'stop <here>' })).status, 200)
  const events = []
  for (let i = 0; i < 4; i++) events.push(await s.nextMessage('event'))
  const api = (await admin(adminUrl, 'GET', '/api/v1/events')).json as { events: unknown[] }
  t.same(events, api.events.slice(-4), 'the same JSON as GET /api/v1/events, in the same order')
  t.same(
    events.map((e) => (e as { action: string }).action),
    ['pause', 'set-weight', 'resume', 'abort'],
  )
  let status = (await s.nextMessage('status')) as StatusView
  while (status.phase !== 'aborted') status = (await s.nextMessage('status')) as StatusView
  t.same(status, (await admin(adminUrl, 'GET', '/api/v1/status')).json, 'the same JSON as GET /api/v1/status')
  t.equal(status.reason, 'stop <here>')

  // Not under way: the interval alone keeps the status coming.
  const seen = s.items.length
  const fresh = await s.next((i) => isStatus(i) && s.items.indexOf(i) >= seen, 'a status on the interval')
  t.same(fresh.kind === 'message' ? fresh.json : null, status, 'a status on the interval with nothing changing')

  const post = await request(`${adminUrl}/api/v1/stream`, { method: 'POST' })
  t.equal(post.statusCode, 405)
  t.equal(post.headers.allow, 'GET, HEAD')
  await post.body.dump()

  // Shutdown: the stream ends and the app's close() does not wait for it.
  await app.close()
  await s.ended
  t.pass('the stream ended with the app')
})
