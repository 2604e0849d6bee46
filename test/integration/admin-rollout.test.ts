/** Admin API rollout actions: 409 rules, promote and abort outcomes, the status shape, and the events API against the audit file. */
import { readFile } from 'node:fs/promises'
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { admin, startApp } from '../helpers/app.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { stickyKey } from '../helpers/sticky-keys.js'
import { startUpstream, type TestUpstream } from '../helpers/upstreams.js'

type Json = Record<string, unknown>
const PHASES = ['idle', 'progressing', 'paused', 'baking', 'succeeded', 'rolled_back', 'aborted']
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/

async function status(adminUrl: string): Promise<Json> {
  const res = await admin(adminUrl, 'GET', '/api/v1/status')
  if (res.status !== 200) throw new Error(`status answered ${res.status}`)
  return res.json
}

async function events(adminUrl: string): Promise<Json[]> {
  const res = await admin(adminUrl, 'GET', '/api/v1/events')
  if (res.status !== 200) throw new Error(`events answered ${res.status}`)
  return res.json.events as Json[]
}

/** Sends n requests through the proxy and returns which upstream answered each. */
async function send(proxyUrl: string, n: number, headers: Record<string, string> = {}): Promise<string[]> {
  const answered: string[] = []
  for (let i = 0; i < n; i++) {
    const res = await request(`${proxyUrl}/x`, { headers })
    answered.push(String(res.headers['x-upstream'] ?? `status ${res.statusCode}`))
    await res.body.dump()
  }
  return answered
}

/** Every field the SPEC lists for GET /api/v1/status, with its type. */
function checkStatusShape(t: Test, s: Json, label: string): void {
  for (const key of ['phase', 'weight', 'step', 'steps', 'stable', 'canary', 'lastDecision']) t.ok(key in s, `${label}: has ${key}`)
  t.ok(PHASES.includes(String(s.phase)), `${label}: phase is one of the seven`)
  t.type(s.weight, 'number', `${label}: weight is a number`)
  t.ok(Array.isArray(s.steps) && (s.steps as unknown[]).every((x) => typeof x === 'number'), `${label}: steps is a list of numbers`)
  const steps = s.steps as number[]
  if (s.step !== null) {
    t.ok(Number.isInteger(s.step) && (s.step as number) >= 0 && (s.step as number) < steps.length, `${label}: step is a 0-based index into steps (${String(s.step)})`)
  }
  const side = (v: unknown, name: string): void => {
    t.type(v, 'object', `${label}: ${name} is an object`)
    const o = v as Json
    t.type(o.url, 'string', `${label}: ${name}.url`)
    t.ok(Number.isInteger(o.requests) && (o.requests as number) >= 0, `${label}: ${name}.requests`)
    t.ok(Number.isInteger(o.errors) && (o.errors as number) >= 0, `${label}: ${name}.errors`)
    t.type(o.errorRate, 'number', `${label}: ${name}.errorRate`)
    t.ok(o.errorRate as number >= 0 && (o.errorRate as number) <= 1, `${label}: ${name}.errorRate within 0..1`)
    for (const p of ['p50Ms', 'p99Ms']) t.ok(p in o && (o[p] === null || typeof o[p] === 'number'), `${label}: ${name}.${p} is a number or null`)
  }
  side(s.stable, 'stable')
  if (s.canary !== null) side(s.canary, 'canary')
  if (s.lastDecision !== null) {
    const d = s.lastDecision as Json
    t.match(d.at, ISO, `${label}: lastDecision.at is an ISO time`)
    t.ok(['pass', 'fail', 'insufficient'].includes(String(d.verdict)), `${label}: lastDecision.verdict`)
    t.type(d.reason, 'string', `${label}: lastDecision.reason`)
  }
}

async function twoUpstreams(t: Test): Promise<{ stable: TestUpstream; canary: TestUpstream }> {
  return { stable: await startUpstream(t, 'stable'), canary: await startUpstream(t, 'canary') }
}

t.test('status shape and step index through a rollout', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const clock = new FakeClock()
  const { adminUrl } = await startApp(
    t,
    { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false, steps: [5, 25, 50, 100], stepDuration: '10s', bake: '10s' }, analysis: { minRequests: 1000, interval: '1s' } },
    { clock },
  )
  const idle = await status(adminUrl)
  checkStatusShape(t, idle, 'idle')
  t.equal(idle.phase, 'idle')
  t.equal(idle.weight, 0)
  t.equal(idle.step, null, 'idle: step null')
  t.same(idle.steps, [5, 25, 50, 100], 'steps as configured')
  t.equal((idle.stable as Json).url, stable.url)
  t.equal((idle.canary as Json).url, canary.url, 'a configured canary is in the canary slot before any rollout')
  t.equal(idle.lastDecision, null)
  t.same(idle.stable, { ...(idle.stable as Json), requests: 0, errors: 0, errorRate: 0, p50Ms: null, p99Ms: null }, 'no traffic: empty figures, null percentiles')

  const started = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(started.status, 200)
  checkStatusShape(t, started.json, 'progressing')
  t.equal(started.json.phase, 'progressing')
  t.equal(started.json.weight, 5)
  t.equal(started.json.step, 0, 'first step is index 0')

  clock.advance(1000)
  const ticked = await status(adminUrl)
  checkStatusShape(t, ticked, 'after a tick')
  t.not(ticked.lastDecision, null, 'an analysis tick records a decision')
  t.equal((ticked.lastDecision as Json).verdict, 'insufficient', 'too little traffic: no verdict')
  t.equal((ticked.lastDecision as Json).at, new Date(clock.now()).toISOString(), 'decision time is the tick time')

  const w30 = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 30 })
  t.equal(w30.json.phase, 'paused')
  t.equal(w30.json.step, 1, '30% sits at or above step index 1 (25)')
  const w3 = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 3 })
  t.equal(w3.json.step, null, 'below the first step: null')
  const w100 = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })
  t.equal(w100.json.step, 3, '100 is index 3 of [5, 25, 50, 100]')
  const bake = await admin(adminUrl, 'POST', '/api/v1/rollout/resume')
  t.equal(bake.status, 200)
  t.equal(bake.json.phase, 'baking')
  t.equal(bake.json.weight, 100)
  checkStatusShape(t, bake.json, 'baking')
  const aborted = await admin(adminUrl, 'POST', '/api/v1/rollout/abort')
  checkStatusShape(t, aborted.json, 'aborted')
  t.equal(aborted.json.step, null, 'ended: step null')
})

t.test('409 rules: start while under way, resume with nothing paused, set-weight with no canary', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const other = await startUpstream(t, 'other')
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false, steps: [10, 100] } })

  const resumeIdle = await admin(adminUrl, 'POST', '/api/v1/rollout/resume')
  t.equal(resumeIdle.status, 409, 'resume while idle')
  t.type(resumeIdle.json.error, 'string')
  t.equal(resumeIdle.json.code, 'CPX_ERR_ADMIN_CONFLICT')

  const started = await admin(adminUrl, 'POST', '/api/v1/rollout/start', { canary: canary.url })
  t.equal(started.status, 200)
  t.equal(started.json.phase, 'progressing')
  const progressing = await status(adminUrl)
  for (const body of [{}, { canary: other.url }]) {
    const again = await admin(adminUrl, 'POST', '/api/v1/rollout/start', body)
    t.equal(again.status, 409, `start while progressing (${JSON.stringify(body)})`)
  }
  t.same(await status(adminUrl), progressing, 'a refused start changes nothing')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 409, 'resume while progressing')

  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', { canary: other.url })).status, 409, 'start while paused')
  t.equal((await status(adminUrl)).phase, 'paused')
  t.equal(((await status(adminUrl)).canary as Json).url, canary.url, 'canary unchanged')

  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200)
  const baking = await admin(adminUrl, 'POST', '/api/v1/rollout/resume')
  t.equal(baking.json.phase, 'baking')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 409, 'start while baking')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 409, 'resume while baking')
  t.equal((await status(adminUrl)).phase, 'baking')

  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort')).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 409, 'resume after abort')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort')).status, 409, 'abort with nothing under way')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 409, 'pause with nothing under way')
  const promoteAborted = await admin(adminUrl, 'POST', '/api/v1/rollout/promote')
  t.equal(promoteAborted.status, 409, 'promote after abort: the canary goes through a start first')
  t.match(promoteAborted.json, { code: 'CPX_ERR_ADMIN_CONFLICT', error: /aborted; start a new rollout/ })
  t.equal((await status(adminUrl)).phase, 'aborted', 'and nothing changed')
})

t.test('set-weight and resume with no canary known are 409, and change nothing', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const { adminUrl, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url } })
  const before = await status(adminUrl)
  t.equal(before.phase, 'idle')
  t.equal(before.canary, null)
  const set = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 5 })
  t.equal(set.status, 409)
  t.equal(set.json.code, 'CPX_ERR_ADMIN_CONFLICT')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 409, 'start without a canary URL and none configured')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/promote')).status, 409, 'promote without a canary')
  t.same(await status(adminUrl), before)
  t.same(await events(adminUrl), [])
  t.same(await send(proxyUrl, 3), ['stable', 'stable', 'stable'])
})

t.test('abort: weight 0, aborted; the canary stays reachable with x-canary: always only; a new start has empty figures', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const { adminUrl, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: true } })
  const started = await status(adminUrl)
  t.equal(started.phase, 'progressing', 'autoStart began the rollout')
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 50 })).status, 200)
  const mixed = await send(proxyUrl, 40)
  t.ok(mixed.includes('canary') && mixed.includes('stable'), 'at 50% both sides serve')
  t.same(await send(proxyUrl, 5, { 'x-canary': 'always' }), Array(5).fill('canary'))
  const withTraffic = await status(adminUrl)
  const canaryRequests = (withTraffic.canary as Json).requests as number
  t.ok(canaryRequests >= 5, `canary figures counted (${canaryRequests})`)

  const aborted = await admin(adminUrl, 'POST', '/api/v1/rollout/abort')
  t.equal(aborted.status, 200)
  t.equal(aborted.json.phase, 'aborted')
  t.equal(aborted.json.weight, 0)
  t.not(aborted.json.canary, null, 'the aborted canary stays in the canary slot')
  t.equal((aborted.json.canary as Json).url, canary.url)
  t.equal((aborted.json.stable as Json).url, stable.url)

  t.same(await send(proxyUrl, 30), Array(30).fill('stable'), 'normal traffic all goes to stable after the abort')
  t.same(await send(proxyUrl, 3, { 'x-canary': 'always' }), Array(3).fill('canary'), 'x-canary: always still reaches the aborted canary')
  t.same(await send(proxyUrl, 3, { 'x-canary': 'never' }), Array(3).fill('stable'))

  const restarted = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(restarted.status, 200, 'start works again after an abort')
  t.equal(restarted.json.phase, 'progressing')
  t.equal(restarted.json.weight, 5)
  t.equal(restarted.json.step, 0)
  t.equal(restarted.json.lastDecision, null, 'a new rollout has no decision yet')
  const fresh = restarted.json.canary as Json
  t.equal(fresh.url, canary.url)
  t.same({ requests: fresh.requests, errors: fresh.errors, errorRate: fresh.errorRate, p50Ms: fresh.p50Ms, p99Ms: fresh.p99Ms }, { requests: 0, errors: 0, errorRate: 0, p50Ms: null, p99Ms: null }, 'a new rollout starts with empty canary figures')
})

t.test('set-weight works from every phase while a canary is known, and gives paused', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false, steps: [10, 100] } })
  const setAndCheck = async (from: string, weight: number): Promise<void> => {
    t.equal((await status(adminUrl)).phase, from)
    const res = await admin(adminUrl, 'PUT', '/api/v1/weight', { weight })
    t.equal(res.status, 200, `set-weight from ${from}`)
    t.equal(res.json.phase, 'paused', `from ${from}: paused`)
    t.equal(res.json.weight, weight, `from ${from}: weight ${weight}`)
  }
  await setAndCheck('idle', 1)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).json.phase, 'progressing')
  await setAndCheck('progressing', 2)
  await setAndCheck('paused', 3)
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 100 })).status, 200)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).json.phase, 'baking')
  await setAndCheck('baking', 4)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort')).json.phase, 'aborted')
  await setAndCheck('aborted', 5)
})

t.test('start with a new canary URL after an abort routes to it', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const next = await startUpstream(t, 'next')
  const { adminUrl, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: true } })
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 'bad build' })).json.reason, 'bad build')
  const started = await admin(adminUrl, 'POST', '/api/v1/rollout/start', { canary: next.url })
  t.equal(started.status, 200)
  t.equal((started.json.canary as Json).url, next.url)
  t.same(await send(proxyUrl, 2, { 'x-canary': 'always' }), ['next', 'next'])
})

t.test('promote: succeeded, the canary is the new stable, canary slot empty, weight 0', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const { adminUrl, proxyUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: true } })
  t.equal((await status(adminUrl)).phase, 'progressing')
  const promoted = await admin(adminUrl, 'POST', '/api/v1/rollout/promote')
  t.equal(promoted.status, 200)
  checkStatusShape(t, promoted.json, 'succeeded')
  t.equal(promoted.json.phase, 'succeeded')
  t.equal(promoted.json.weight, 0)
  t.equal(promoted.json.canary, null, 'canary slot empty')
  t.equal((promoted.json.stable as Json).url, canary.url, 'the canary URL is the stable now')
  t.equal(promoted.json.step, null)
  t.same(await status(adminUrl), promoted.json)
  t.same(await send(proxyUrl, 10), Array(10).fill('canary'), 'all traffic goes to the promoted upstream')
  t.same(await send(proxyUrl, 2, { 'x-canary': 'always' }), ['canary', 'canary'], 'no canary slot: always falls back to the (new) stable')
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 5 })).status, 409, 'set-weight after success: no canary known')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/promote')).status, 409, 'promote again: nothing to promote')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 409, 'start without URL after success: no canary known')
  const again = await admin(adminUrl, 'POST', '/api/v1/rollout/start', { canary: stable.url })
  t.equal(again.status, 200, 'a new rollout towards a given URL starts after success')
  t.equal((again.json.stable as Json).url, canary.url)
  t.equal((again.json.canary as Json).url, stable.url)
})

t.test('events: one per transition and admin action, newest last, same lines in the audit file', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const clock = new FakeClock()
  const { adminUrl, proxyUrl, dir } = await startApp(
    t,
    {
      upstreams: { stable: stable.url, canary: canary.url },
      routing: { stickyHeader: 'x-user-id' },
      rollout: { autoStart: false, steps: [10, 50], stepDuration: '2s', bake: '2s' },
      analysis: { minRequests: 1, interval: '1s', window: '30s' },
    },
    { clock },
  )
  t.same(await events(adminUrl), [], 'no events before any action')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})).status, 200)
  clock.advance(1)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/pause')).status, 200)
  clock.advance(1)
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 12.5 })).status, 200)
  clock.advance(1)
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 200)
  // Refused and invalid calls are not transitions.
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/resume')).status, 409)
  t.equal((await admin(adminUrl, 'PUT', '/api/v1/weight', { weight: 'x' })).status, 400)
  // Traffic on both sides (sticky keys: override requests never reach the gate), then ticks past the step: the analysis advances on its own.
  t.same(await send(proxyUrl, 3, { 'x-user-id': stickyKey('canary', 12.5) }), Array(3).fill('canary'))
  t.same(await send(proxyUrl, 3, { 'x-user-id': stickyKey('stable', 12.5) }), Array(3).fill('stable'))
  clock.advance(3000)
  t.equal((await status(adminUrl)).weight, 50, 'the analysis advanced to the next step')
  t.equal((await admin(adminUrl, 'POST', '/api/v1/rollout/abort', { reason: 'enough' })).status, 200)

  const list = await events(adminUrl)
  const actions = list.map((e) => e.action)
  t.same(actions, ['start', 'pause', 'set-weight', 'resume', 'advance', 'abort'], `one event per transition, in order (${actions.join(', ')})`)
  t.equal(list[4]!.actor, 'auto', 'the analysis acts as auto')
  t.same(list[4]!.to, { phase: 'progressing', weight: 50 })
  t.equal(actions[actions.length - 1], 'abort', 'newest last')
  for (const e of list) {
    t.same(Object.keys(e).sort(), ['action', 'actor', 'at', 'from', 'reason', 'to'], `event ${String(e.action)} has exactly the SPEC's fields`)
    t.match(e.at, ISO, `event ${String(e.action)}: at is ISO`)
    t.type(e.actor, 'string')
    t.ok(PHASES.includes(String((e.from as Json).phase)) && typeof (e.from as Json).weight === 'number', 'from: {phase, weight}')
    t.ok(PHASES.includes(String((e.to as Json).phase)) && typeof (e.to as Json).weight === 'number', 'to: {phase, weight}')
    t.ok(e.reason === null || typeof e.reason === 'string', 'reason')
  }
  const times = list.map((e) => Date.parse(String(e.at)))
  t.same([...times].sort((a, b) => a - b), times, 'times do not go backwards')
  t.same(list[0], { at: list[0]!.at, actor: 'admin', action: 'start', from: { phase: 'idle', weight: 0 }, to: { phase: 'progressing', weight: 10 }, reason: list[0]!.reason })
  t.same(list[1]!.to, { phase: 'paused', weight: 10 })
  t.same(list[2]!.from, { phase: 'paused', weight: 10 })
  t.same(list[2]!.to, { phase: 'paused', weight: 12.5 })
  t.same(list[3]!.to, { phase: 'progressing', weight: 12.5 })
  t.same(list[list.length - 1]!.to, { phase: 'aborted', weight: 0 })
  t.equal(list[list.length - 1]!.reason, 'enough')
  // Consecutive transitions chain: each starts where the one before ended.
  for (let i = 1; i < list.length; i++) t.same(list[i]!.from, list[i - 1]!.to, `event ${i} starts where event ${i - 1} ended`)

  // The audit file holds the same events as JSON lines (writes are queued: poll briefly).
  const file = `${dir}/audit.jsonl`
  let lines: Json[] = []
  for (let i = 0; i < 50; i++) {
    const text = await readFile(file, 'utf8').catch(() => '')
    lines = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Json)
    if (lines.length >= list.length) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  t.same(lines, list, 'audit file lines parse and equal the events API')

  // ?limit=N: the newest N, still newest last; anything but a whole number >= 1 is a 400 naming the field.
  const two = await admin(adminUrl, 'GET', '/api/v1/events?limit=2')
  t.equal(two.status, 200)
  t.same(two.json.events, list.slice(-2), 'limit=2: the two newest')
  t.same((await admin(adminUrl, 'GET', `/api/v1/events?limit=${list.length + 5}`)).json.events, list, 'a limit above the count gives them all')
  for (const bad of ['abc', '0', '-1', '1.5', '']) {
    const res = await admin(adminUrl, 'GET', `/api/v1/events?limit=${bad}`)
    t.equal(res.status, 400, `limit=${bad} -> 400`)
    t.match(res.json, { field: 'limit', error: /^limit: must be a whole number/ }, `limit=${bad}: names the field`)
  }
})

t.test('rolled_back: the canary stays in the slot, reachable with x-canary: always only; the reason is kept', async (t) => {
  const stable = await startUpstream(t, 'stable')
  const canary = await startUpstream(t, 'canary', { status: 500 })
  const clock = new FakeClock()
  const { adminUrl, proxyUrl } = await startApp(
    t,
    {
      upstreams: { stable: stable.url, canary: canary.url },
      routing: { stickyHeader: 'x-user-id' },
      rollout: { autoStart: true, steps: [20, 100] },
      analysis: { interval: '1s', minRequests: 10, maxErrorRate: 0.01 },
    },
    { clock },
  )
  for (let i = 0; i < 15; i++) await send(proxyUrl, 1, { 'x-user-id': stickyKey('canary', 20) })
  clock.advance(1000)
  const s = await status(adminUrl)
  t.equal(s.phase, 'rolled_back')
  t.equal(s.weight, 0)
  t.equal((s.canary as Json | null)?.url, canary.url, 'the failed canary stays in the canary slot')
  t.equal((s.lastDecision as Json).verdict, 'fail')
  t.type(s.reason, 'string', 'the reason is kept')
  t.equal(s.reason, (s.lastDecision as Json).reason)
  canary.behave({ status: 200 })
  t.same(await send(proxyUrl, 30), Array(30).fill('stable'), 'normal traffic: stable only')
  t.same(await send(proxyUrl, 2, { 'x-canary': 'always' }), ['canary', 'canary'], 'x-canary: always reaches the failed canary')
  const list = await events(adminUrl)
  const rollback = list.find((e) => e.action === 'rollback')
  t.ok(rollback, 'a rollback event')
  t.equal(rollback?.actor, 'auto')
  t.same(rollback?.to, { phase: 'rolled_back', weight: 0 })
  t.equal(rollback?.reason, s.reason)
  // A rollout may start again after a rollback, with empty canary figures.
  const again = await admin(adminUrl, 'POST', '/api/v1/rollout/start', {})
  t.equal(again.status, 200)
  t.equal(((again.json.canary as Json).requests), 0)
  t.equal(again.json.reason, null, 'no ended reason while under way')
})

t.test('concurrent starts: exactly one wins, the others get 409', async (t) => {
  const { stable, canary } = await twoUpstreams(t)
  const { adminUrl } = await startApp(t, { upstreams: { stable: stable.url, canary: canary.url }, rollout: { autoStart: false } })
  const results = await Promise.all(Array.from({ length: 8 }, () => admin(adminUrl, 'POST', '/api/v1/rollout/start', {})))
  t.same(
    results.map((r) => r.status).sort(),
    [200, 409, 409, 409, 409, 409, 409, 409],
  )
  t.same((await events(adminUrl)).map((e) => e.action), ['start'], 'one start event')
})
