/**
 * The client commands of the compiled CLI (status, start, set-weight, pause,
 * resume, promote, abort, events) against a running app: what they print and
 * what they change. Errors, tokens and --admin: cli-client-errors.test.ts.
 */
import t from 'tap'
import { clientSetup, statusJson } from '../helpers/cli.js'
import { startUpstream } from '../helpers/upstreams.js'

t.test('status: human output and --json with the SPEC fields', async (t) => {
  const s = await clientSetup(t)
  // A little traffic so the sides have figures.
  for (let i = 0; i < 5; i++) await (await fetch(`${s.app.proxyUrl}/x`)).text()
  const [human, json] = await Promise.all([s.cli(['status']), s.cli(['status', '--json'])])

  t.equal(human.code, 0, human.stderr)
  t.match(human.stdout, /^phase\s+idle\s+weight 0%/m, 'phase and weight')
  t.match(human.stdout, new RegExp(`^stable\\s+${s.stable.url}\\s+requests 5\\s+error rate 0\\.00%\\s+p50 [\\d.]+ms\\s+p99 [\\d.]+ms`, 'm'), 'the stable side with its figures')
  t.match(human.stdout, new RegExp(`^canary\\s+${s.canary.url}\\s+requests 0\\s+error rate 0\\.00%\\s+p50 -\\s+p99 -`, 'm'), 'the canary side')

  t.equal(json.code, 0, json.stderr)
  const status = statusJson(json)
  t.has(status, { phase: 'idle', weight: 0, step: null, steps: [10, 50, 100], lastDecision: null })
  const side = { url: String, requests: Number, errors: Number, errorRate: Number }
  t.match(status.stable, { ...side, url: s.stable.url, requests: 5, errors: 0, errorRate: 0 })
  t.type(status.stable.p50Ms, 'number')
  t.type(status.stable.p99Ms, 'number')
  t.match(status.canary, { ...side, url: s.canary.url, requests: 0, p50Ms: null, p99Ms: null })
  for (const key of ['phase', 'weight', 'step', 'steps', 'stable', 'canary', 'lastDecision']) t.ok(key in status, `status has ${key}`)
})

t.test('start --canary URL, set-weight, pause, resume, promote, events', async (t) => {
  const s = await clientSetup(t)
  const next = await startUpstream(t, 'canary-v3')

  const started = await s.cli(['start', '--canary', next.url])
  t.equal(started.code, 0, started.stderr)
  t.match(started.stdout, /^phase\s+progressing\s+weight 10%\s+step 1\/3/m)
  t.match(started.stdout, new RegExp(`^canary\\s+${next.url}`, 'm'), 'towards the new canary')

  const set = await s.cli(['set-weight', '30'])
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /^phase\s+paused\s+weight 30%/m)
  t.match(s.app.app.status(), { phase: 'paused', weight: 30 }, 'the app is paused at 30')

  const fine = await s.cli(['set-weight', '12.5', '--json'])
  t.equal(fine.code, 0, fine.stderr)
  t.match(statusJson(fine), { phase: 'paused', weight: 12.5 })

  const resumed = await s.cli(['resume'])
  t.equal(resumed.code, 0, resumed.stderr)
  t.match(resumed.stdout, /^phase\s+progressing\s+weight 12\.5%/m)

  const paused = await s.cli(['pause'])
  t.equal(paused.code, 0, paused.stderr)
  t.match(paused.stdout, /^phase\s+paused\s+weight 12\.5%/m)

  const promoted = await s.cli(['promote', '--json'])
  t.equal(promoted.code, 0, promoted.stderr)
  const after = statusJson(promoted)
  t.match(after, { phase: 'succeeded', weight: 0, canary: null, stable: { url: next.url } }, 'the canary is the new stable')

  const [events, eventsJson] = await Promise.all([s.cli(['events']), s.cli(['events', '--json'])])
  t.equal(events.code, 0, events.stderr)
  const lines = events.stdout.split('\n').filter((l) => l !== '')
  t.ok(lines.length >= 6, `one line per event (${lines.length})`)
  t.match(events.stdout, /start\s+idle 0% -> progressing 10%/)
  t.match(events.stdout, /set-weight\s+progressing 10% -> paused 30%/)
  t.match(events.stdout, /promote\s+paused 12\.5% -> succeeded 0%/)
  t.equal(eventsJson.code, 0, eventsJson.stderr)
  const doc = JSON.parse(eventsJson.stdout) as { events: { at: string; actor: string; action: string; from: { phase: string; weight: number }; to: { phase: string; weight: number }; reason: string | null }[] }
  t.ok(doc.events.length >= 6)
  const last = doc.events.at(-1)!
  t.match(last, { at: String, actor: String, action: 'promote', from: { phase: 'paused', weight: 12.5 }, to: { phase: 'succeeded', weight: 0 } }, 'newest last')
})

t.test('abort: weight 0, phase aborted, with an optional reason', async (t) => {
  const s = await clientSetup(t)
  t.equal((await s.cli(['start'])).code, 0, 'start without --canary uses the canary already known')
  const aborted = await s.cli(['abort', '--reason', 'bad build 1234', '--json'])
  t.equal(aborted.code, 0, aborted.stderr)
  t.match(statusJson(aborted), { phase: 'aborted', weight: 0 })
  const human = await s.cli(['status'])
  t.match(human.stdout, /^phase\s+aborted\s+weight 0%/m)
  t.match(human.stdout, /bad build 1234/, 'the reason is shown')
})
